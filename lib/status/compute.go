package status

import (
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

// Partition is what is known about one partition (repository branch) when statuses are
// computed: its queue and its recorded results.
type Partition struct {
	ID     string
	Branch string
	Stats  bus.Stats
	Result Result
}

// SecretCheck is what was found reading the Secret keys an object references.
type SecretCheck struct {
	// Reason is empty when every key resolved, else v1alpha1.ReasonSecretNotFound or
	// ReasonSecretKeyMissing, with Message saying which Secret and key to fix.
	Reason, Message string
	// Keys names the keys that hold a GitProvider's credential, for messages about a refused
	// credential, e.g. `"username" and "password"`.
	Keys string
}

// GitProviderStatus computes the status of a GitProvider from its Secret and the partitions of
// the GitTargets that use it. old is the status the object has now: its condition transition
// times and lastPushTime are kept where nothing changed.
//
//	CredentialsResolved  Anonymous (no secretRef) | True | SecretNotFound, SecretKeyMissing
//	RemoteReachable      True once a partition drained | NotUsed, AwaitingPush (Unknown) |
//	                     AuthenticationFailed, RepositoryNotFound, RemoteUnreachable
func GitProviderStatus(p *v1alpha1.GitProvider, secret SecretCheck, parts []Partition) v1alpha1.GitProviderStatus {
	var s v1alpha1.GitProviderStatus
	s.InitializeConditions()
	switch {
	case p.Spec.SecretRef == nil:
		s.MarkCredentialsAnonymous()
	case secret.Reason != "":
		s.MarkCredentialsFailed(secret.Reason, "%s", secret.Message)
	default:
		s.MarkCredentialsResolved()
	}

	// The most recent repository-level failure of any branch wins: the branches share the URL and
	// the credentials, so one branch's refused credential is every branch's.
	var failed *Partition
	reached := false
	for i := range parts {
		r := &parts[i].Result
		switch {
		case remoteReason(r.ErrorReason):
			if failed == nil || r.ErrorAt.After(failed.Result.ErrorAt) {
				failed = &parts[i]
			}
		case r.ErrorReason != "", r.Commit != "", !r.PushedAt.IsZero():
			reached = true // a push the remote refused was still an answer
		}
		if !r.PushedAt.IsZero() && (s.LastPushTime == nil || r.PushedAt.After(s.LastPushTime.Time)) {
			s.LastPushTime = seconds(r.PushedAt)
		}
	}
	switch {
	case failed != nil:
		s.MarkRemoteUnreachable(failed.Result.ErrorReason, "%s", remoteMessage(p, secret, failed))
	case reached:
		s.MarkRemoteReachable()
	case len(parts) == 0:
		s.MarkRemoteUnknown(v1alpha1.ReasonNotUsed, "no GitTarget refers to this GitProvider, so the remote was not contacted")
	default:
		s.MarkRemoteUnknown(v1alpha1.ReasonAwaitingPush, "nothing has been pushed to %s yet", p.Spec.URL)
	}
	if s.LastPushTime == nil {
		s.LastPushTime = p.Status.LastPushTime // results in Valkey can be lost; the status keeps the last one seen
	}
	s.ObservedGeneration = p.Generation
	s.Annotations = p.Status.Annotations
	keepTransitionTimes(&s.Status, &p.Status.Status)
	return s
}

// remoteMessage says what to fix for a repository-level failure.
func remoteMessage(p *v1alpha1.GitProvider, secret SecretCheck, part *Partition) string {
	r := part.Result
	switch r.ErrorReason {
	case v1alpha1.ReasonAuthenticationFailed:
		if p.Spec.SecretRef == nil {
			return fmt.Sprintf("%s refused anonymous access: set spec.secretRef to a Secret with the push credentials (%s)", p.Spec.URL, r.ErrorMessage)
		}
		keys := secret.Keys
		if keys == "" {
			keys = `"username" and "password", or "token"`
		}
		return fmt.Sprintf("%s refused the credentials in Secret %s/%s: put a valid credential in its key %s (%s)",
			p.Spec.URL, p.Namespace, p.Spec.SecretRef.Name, keys, r.ErrorMessage)
	case v1alpha1.ReasonRepositoryNotFound:
		return fmt.Sprintf("%s has no such repository, or the credentials may not see it: check spec.url (%s)", p.Spec.URL, r.ErrorMessage)
	}
	return fmt.Sprintf("%s could not be reached; the writer retries (%s)", p.Spec.URL, r.ErrorMessage)
}

// GitTargetStatus computes the status of a GitTarget from its partition and its GitProvider as
// just computed (nil when spec.providerRef names none). Pushed, in order of precedence:
//
//	False  PushFailed, PushRejected  the last drain failed (since the last success)
//	False  DeadLettered              changes are parked in the branch's dead-letter queue
//	Unknown Backlogged               changes are queued and not pushed yet
//	True                             the branch holds everything (Ready's reason is Pushed)
//	Unknown AwaitingPush             nothing pushed yet, nothing queued
//
// ProviderResolved follows the provider's Ready, and Reconciled (informational) the last
// reconcile. Ready's reason is the failing condition's, the provider's first.
func GitTargetStatus(t *v1alpha1.GitTarget, provider *v1alpha1.GitProvider, part Partition) v1alpha1.GitTargetStatus {
	var s v1alpha1.GitTargetStatus
	s.InitializeConditions()
	ref := identity.TargetRef{Namespace: t.Namespace, Name: t.Name}

	// Reconciled first: it is informational, and marking it recomputes Ready from the others.
	if rec, ok := part.Result.Reconciles[ref]; ok {
		if rec.Error != "" {
			s.MarkReconcileFailed(*seconds(rec.At), "the reconcile did not complete: %s", rec.Error)
		} else {
			s.MarkReconciled(*seconds(rec.At), rec.Drift)
		}
	} else {
		s.LastReconcileTime, s.Drift = t.Status.LastReconcileTime, t.Status.Drift
	}

	r, q := part.Result, part.Stats
	switch {
	case r.ErrorReason != "":
		reason := v1alpha1.ReasonPushFailed
		if r.ErrorReason == v1alpha1.ReasonPushRejected {
			reason = v1alpha1.ReasonPushRejected
		}
		s.MarkPushFailed(reason, "writing branch %s failed: %s: %s", part.Branch, r.ErrorReason, r.ErrorMessage)
		s.Backlog, s.DeadLetters = q.Length, q.DeadLetters
	case q.DeadLetters > 0:
		s.MarkDeadLettered(q.Length, q.DeadLetters)
	case q.Length > 0:
		s.MarkBacklogged(q.Length, q.DeadLetters, q.Leased)
	case r.Commit != "":
		s.MarkPushed(r.Commit)
	default:
		s.MarkAwaitingPush()
	}
	if s.LastCommit == "" {
		s.LastCommit = r.Commit
	}
	if s.LastCommit == "" {
		s.LastCommit = t.Status.LastCommit
	}

	if provider == nil {
		s.MarkProviderNotFound(t.Spec.ProviderRef.Name)
	} else {
		s.PropagateProviderStatus(provider)
	}
	s.MarkReadyPushed()
	s.ObservedGeneration = t.Generation
	s.Annotations = t.Status.Annotations
	keepTransitionTimes(&s.Status, &t.Status.Status)
	return s
}

// SourceClusterStatus computes the status of a SourceCluster from its token Secrets.
func SourceClusterStatus(c *v1alpha1.SourceCluster, tokens SecretCheck) v1alpha1.SourceClusterStatus {
	var s v1alpha1.SourceClusterStatus
	s.InitializeConditions()
	if tokens.Reason != "" {
		s.MarkTokensFailed(tokens.Reason, "%s", tokens.Message)
	} else {
		s.MarkTokensResolved()
	}
	s.ObservedGeneration = c.Generation
	s.Annotations = c.Status.Annotations
	keepTransitionTimes(&s.Status, &c.Status.Status)
	return s
}

// keepTransitionTimes gives each condition whose status did not change the transition time it
// already had. knative stamps a new time on any change of reason or message, and conditions
// are computed afresh here; without this every projection would be a write.
func keepTransitionTimes(s, old *duckv1.Status) {
	for i := range s.Conditions {
		c := &s.Conditions[i]
		for _, o := range old.Conditions {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
		if c.LastTransitionTime.Inner.IsZero() {
			c.LastTransitionTime = apis.VolatileTime{Inner: *seconds(time.Now())}
		}
		c.LastTransitionTime.Inner = *seconds(c.LastTransitionTime.Inner.Time)
	}
}

// seconds is t as the API server stores it: whole seconds, UTC. Comparing a fresh status with a
// stored one would otherwise always find a difference.
func seconds(t time.Time) *metav1.Time {
	m := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &m
}

// Equal reports whether two statuses serialize the same, which is what the API server would
// store.
func Equal(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}
