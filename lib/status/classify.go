package status

import (
	"context"
	"errors"

	"github.com/go-git/go-git/v5/plumbing/transport"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/gitwrite"
	"github.com/gitops-reverser/gitops-reverser/lib/lease"
)

// Classify returns the status reason of a drain error, and false for an error that says nothing
// about the repository or the target (the lease changed hands, Valkey is down, the request
// ended): those are retried by the pipeline and must not turn a status red.
//
//	gitwrite.ErrAuthentication          AuthenticationFailed  (GitProvider)
//	transport.ErrRepositoryNotFound     RepositoryNotFound    (GitProvider)
//	gitwrite.ErrRemoteUnavailable       RemoteUnreachable     (GitProvider)
//	gitwrite.ErrPushRejected,
//	gitwrite.ErrRemoteMoved (retries
//	exhausted)                          PushRejected          (GitTarget)
//	anything else                       PushFailed            (GitTarget)
func Classify(err error) (reason string, ok bool) {
	switch {
	case err == nil:
		return "", false
	// gitwrite's classes first: a Git timeout also matches context.DeadlineExceeded.
	case errors.Is(err, gitwrite.ErrAuthentication):
		return v1alpha1.ReasonAuthenticationFailed, true
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return v1alpha1.ReasonRepositoryNotFound, true
	case errors.Is(err, gitwrite.ErrRemoteUnavailable):
		return v1alpha1.ReasonRemoteUnreachable, true
	case errors.Is(err, gitwrite.ErrPushRejected), errors.Is(err, gitwrite.ErrRemoteMoved):
		return v1alpha1.ReasonPushRejected, true
	case errors.Is(err, lease.ErrLost), errors.Is(err, lease.ErrHeld), errors.Is(err, bus.ErrUnavailable),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "", false
	}
	return v1alpha1.ReasonPushFailed, true
}

// remoteReason reports whether a recorded reason is about the repository as a whole (so the
// GitProvider reports it) rather than about one branch's push.
func remoteReason(reason string) bool {
	switch reason {
	case v1alpha1.ReasonAuthenticationFailed, v1alpha1.ReasonRepositoryNotFound, v1alpha1.ReasonRemoteUnreachable:
		return true
	}
	return false
}
