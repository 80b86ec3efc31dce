package status

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/gitwrite"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/lease"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		reason string
		ok     bool
	}{
		{"nil", nil, "", false},
		{"credentials refused", fmt.Errorf("drain: %w", gitwrite.ErrAuthentication), v1alpha1.ReasonAuthenticationFailed, true},
		{"no repository", fmt.Errorf("fetch: %w", transport.ErrRepositoryNotFound), v1alpha1.ReasonRepositoryNotFound, true},
		{"remote down", errors.Join(gitwrite.ErrRemoteUnavailable, errors.New("connection refused")), v1alpha1.ReasonRemoteUnreachable, true},
		{"a Git timeout is the remote, not the request", errors.Join(gitwrite.ErrRemoteUnavailable, context.DeadlineExceeded), v1alpha1.ReasonRemoteUnreachable, true},
		{"the request ended", fmt.Errorf("read: %w", context.Canceled), "", false},
		{"hook refused", gitwrite.ErrPushRejected, v1alpha1.ReasonPushRejected, true},
		{"lost every race", gitwrite.ErrRemoteMoved, v1alpha1.ReasonPushRejected, true},
		{"lease lost", fmt.Errorf("stopped before push: %w", lease.ErrLost), "", false},
		{"valkey down", fmt.Errorf("x: %w", bus.ErrUnavailable), "", false},
		{"anything else", gitwrite.ErrPathConflict, v1alpha1.ReasonPushFailed, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, ok := Classify(tc.err)
			if reason != tc.reason || ok != tc.ok {
				t.Errorf("Classify = %q, %v; want %q, %v", reason, ok, tc.reason, tc.ok)
			}
		})
	}
}

// cond is the part of a condition a test checks.
type cond struct {
	Type    apis.ConditionType
	Status  corev1.ConditionStatus
	Reason  string
	Message string // substring
}

func check(t *testing.T, s *duckv1.Status, want ...cond) {
	t.Helper()
	for _, w := range want {
		got := s.GetCondition(w.Type)
		if got == nil {
			t.Errorf("condition %s missing", w.Type)
			continue
		}
		if got.Status != w.Status || got.Reason != w.Reason || !strings.Contains(got.Message, w.Message) {
			t.Errorf("%s = %s/%s %q; want %s/%s containing %q", w.Type, got.Status, got.Reason, got.Message, w.Status, w.Reason, w.Message)
		}
	}
}

var (
	isTrue  = corev1.ConditionTrue
	isFalse = corev1.ConditionFalse
	unknown = corev1.ConditionUnknown
	pushed  = time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
)

func provider(secret bool) *v1alpha1.GitProvider {
	p := &v1alpha1.GitProvider{ObjectMeta: metav1.ObjectMeta{Namespace: "gitops", Name: "repo", Generation: 3}}
	p.Spec.URL = "https://git.example/repo.git"
	if secret {
		p.Spec.SecretRef = &v1alpha1.LocalObjectReference{Name: "creds"}
	}
	return p
}

func TestGitProviderStatus(t *testing.T) {
	ok := Partition{ID: "p1", Branch: "main", Result: Result{Commit: "abc", PushedAt: pushed}}
	authFailed := Partition{ID: "p2", Branch: "dev", Result: Result{ErrorReason: v1alpha1.ReasonAuthenticationFailed, ErrorMessage: "401", ErrorAt: pushed}}
	for _, tc := range []struct {
		name     string
		secret   bool
		check    SecretCheck
		parts    []Partition
		want     []cond
		lastPush bool
	}{{
		name: "pushed with a good Secret", secret: true, check: SecretCheck{Keys: `"token"`}, parts: []Partition{ok},
		want:     []cond{{Type: apis.ConditionReady, Status: isTrue}, {Type: v1alpha1.GitProviderConditionRemoteReachable, Status: isTrue}},
		lastPush: true,
	}, {
		name: "Secret missing", secret: true, check: SecretCheck{Reason: v1alpha1.ReasonSecretNotFound, Message: "credentials Secret gitops/creds not found"}, parts: []Partition{ok},
		want:     []cond{{Type: apis.ConditionReady, Status: isFalse, Reason: v1alpha1.ReasonSecretNotFound, Message: "gitops/creds"}},
		lastPush: true,
	}, {
		name: "credentials refused: the message names the Secret and its keys", secret: true, check: SecretCheck{Keys: `"username" and "password"`}, parts: []Partition{ok, authFailed},
		want: []cond{
			{Type: apis.ConditionReady, Status: isFalse, Reason: v1alpha1.ReasonAuthenticationFailed, Message: `Secret gitops/creds: put a valid credential in its key "username" and "password"`},
			{Type: v1alpha1.GitProviderConditionCredentialsResolved, Status: isTrue},
		},
		lastPush: true,
	}, {
		name: "anonymous and refused: set a secretRef", parts: []Partition{authFailed},
		want: []cond{{Type: apis.ConditionReady, Status: isFalse, Reason: v1alpha1.ReasonAuthenticationFailed, Message: "set spec.secretRef"}},
	}, {
		name: "a rejected push still reached the remote", secret: true,
		parts: []Partition{{ID: "p", Result: Result{ErrorReason: v1alpha1.ReasonPushRejected, ErrorAt: pushed}}},
		want:  []cond{{Type: apis.ConditionReady, Status: isTrue}},
	}, {
		name: "not used", secret: true,
		want: []cond{{Type: apis.ConditionReady, Status: unknown, Reason: v1alpha1.ReasonNotUsed}},
	}, {
		name: "used, nothing pushed yet", secret: true, parts: []Partition{{ID: "p"}},
		want: []cond{{Type: apis.ConditionReady, Status: unknown, Reason: v1alpha1.ReasonAwaitingPush}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := provider(tc.secret)
			s := GitProviderStatus(p, tc.check, tc.parts)
			check(t, &s.Status, tc.want...)
			if s.ObservedGeneration != 3 {
				t.Errorf("ObservedGeneration = %d, want 3", s.ObservedGeneration)
			}
			if got := s.LastPushTime != nil && s.LastPushTime.Equal(seconds(pushed)); got != tc.lastPush {
				t.Errorf("LastPushTime = %v, want set to %v: %v", s.LastPushTime, pushed, tc.lastPush)
			}
		})
	}
}

func readyProvider() *v1alpha1.GitProvider {
	p := provider(true)
	p.Status = GitProviderStatus(p, SecretCheck{}, []Partition{{Result: Result{Commit: "abc"}}})
	return p
}

func TestGitTargetStatus(t *testing.T) {
	const commit = "0123456789abcdef0123456789abcdef01234567"
	ref := identity.TargetRef{Namespace: "gitops", Name: "main"}
	failedProvider := provider(true)
	failedProvider.Status = GitProviderStatus(failedProvider, SecretCheck{},
		[]Partition{{Result: Result{ErrorReason: v1alpha1.ReasonAuthenticationFailed, ErrorMessage: "401", ErrorAt: pushed}}})
	for _, tc := range []struct {
		name     string
		provider *v1alpha1.GitProvider
		part     Partition
		want     []cond
		backlog  int64
		dlq      int64
	}{{
		name: "pushed: Ready's reason is Pushed, with the short commit", provider: readyProvider(),
		part: Partition{Branch: "main", Result: Result{Commit: commit, PushedAt: pushed}},
		want: []cond{{Type: apis.ConditionReady, Status: isTrue, Reason: v1alpha1.ReasonPushed, Message: "0123456"}},
	}, {
		name: "backlogged, no writer on it", provider: readyProvider(),
		part:    Partition{Result: Result{Commit: commit}, Stats: bus.Stats{Length: 3}},
		want:    []cond{{Type: apis.ConditionReady, Status: unknown, Reason: v1alpha1.ReasonBacklogged, Message: "3 changes queued for the branch, not in Git yet (dead letters 0); no writer is draining it"}},
		backlog: 3,
	}, {
		name: "backlogged while a writer drains", provider: readyProvider(),
		part:    Partition{Stats: bus.Stats{Length: 2, Leased: true}},
		want:    []cond{{Type: v1alpha1.GitTargetConditionPushed, Status: unknown, Reason: v1alpha1.ReasonBacklogged, Message: "a writer is draining it"}},
		backlog: 2,
	}, {
		name: "dead letters make it not ready", provider: readyProvider(),
		part:    Partition{Result: Result{Commit: commit}, Stats: bus.Stats{Length: 1, DeadLetters: 2}},
		want:    []cond{{Type: apis.ConditionReady, Status: isFalse, Reason: v1alpha1.ReasonDeadLettered, Message: "2 changes could not be written"}},
		backlog: 1, dlq: 2,
	}, {
		name: "push rejected beats the backlog", provider: readyProvider(),
		part:    Partition{Branch: "main", Result: Result{Commit: commit, ErrorReason: v1alpha1.ReasonPushRejected, ErrorMessage: "protected branch"}, Stats: bus.Stats{Length: 4}},
		want:    []cond{{Type: apis.ConditionReady, Status: isFalse, Reason: v1alpha1.ReasonPushRejected, Message: "writing branch main failed: PushRejected: protected branch"}},
		backlog: 4,
	}, {
		name: "provider refused the credentials: Ready points at the provider", provider: failedProvider,
		part: Partition{Branch: "main", Result: Result{ErrorReason: v1alpha1.ReasonAuthenticationFailed, ErrorMessage: "401"}},
		want: []cond{
			{Type: apis.ConditionReady, Status: isFalse, Reason: v1alpha1.ReasonProviderNotReady, Message: `GitProvider "repo" is not ready: AuthenticationFailed`},
			{Type: v1alpha1.GitTargetConditionPushed, Status: isFalse, Reason: v1alpha1.ReasonPushFailed},
		},
	}, {
		name: "provider missing", provider: nil,
		want: []cond{{Type: apis.ConditionReady, Status: isFalse, Reason: v1alpha1.ReasonProviderNotFound}},
	}, {
		name: "nothing yet", provider: readyProvider(),
		want: []cond{{Type: apis.ConditionReady, Status: unknown, Reason: v1alpha1.ReasonAwaitingPush}},
	}, {
		name: "a failed reconcile is informational", provider: readyProvider(),
		part: Partition{Result: Result{Commit: commit, Reconciles: map[identity.TargetRef]Reconcile{ref: {At: pushed, Error: "cluster unreachable"}}}},
		want: []cond{
			{Type: apis.ConditionReady, Status: isTrue, Reason: v1alpha1.ReasonPushed},
			{Type: v1alpha1.GitTargetConditionReconciled, Status: isFalse, Reason: v1alpha1.ReasonReconcileFailed, Message: "cluster unreachable"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			gt := &v1alpha1.GitTarget{ObjectMeta: metav1.ObjectMeta{Namespace: "gitops", Name: "main", Generation: 5}}
			gt.Spec.ProviderRef.Name = "repo"
			s := GitTargetStatus(gt, tc.provider, tc.part)
			check(t, &s.Status, tc.want...)
			if s.Backlog != tc.backlog || s.DeadLetters != tc.dlq || s.ObservedGeneration != 5 {
				t.Errorf("backlog %d, dead letters %d, observed %d; want %d, %d, 5", s.Backlog, s.DeadLetters, s.ObservedGeneration, tc.backlog, tc.dlq)
			}
		})
	}
}

func TestGitTargetStatusKeepsWhatValkeyLost(t *testing.T) {
	gt := &v1alpha1.GitTarget{ObjectMeta: metav1.ObjectMeta{Name: "main"}}
	drift := int64(4)
	gt.Status.LastCommit, gt.Status.LastReconcileTime, gt.Status.Drift = "abc", seconds(pushed), &drift
	s := GitTargetStatus(gt, readyProvider(), Partition{})
	if s.LastCommit != "abc" || s.LastReconcileTime == nil || s.Drift == nil || *s.Drift != 4 {
		t.Errorf("status = %+v, want the old lastCommit, lastReconcileTime and drift kept", s)
	}
}

func TestReconcileIsShown(t *testing.T) {
	ref := identity.TargetRef{Namespace: "gitops", Name: "main"}
	gt := &v1alpha1.GitTarget{ObjectMeta: metav1.ObjectMeta{Namespace: "gitops", Name: "main"}}
	s := GitTargetStatus(gt, readyProvider(), Partition{Result: Result{Commit: "abc", Reconciles: map[identity.TargetRef]Reconcile{ref: {At: pushed, Drift: 2}}}})
	if s.Drift == nil || *s.Drift != 2 || !s.LastReconcileTime.Equal(seconds(pushed)) {
		t.Errorf("drift %v at %v, want 2 at %v", s.Drift, s.LastReconcileTime, pushed)
	}
	check(t, &s.Status, cond{Type: v1alpha1.GitTargetConditionReconciled, Status: isTrue, Reason: "Reconciled", Message: "2 objects differed"})
}

// TestRecomputingChangesNothing is the no-churn rule: a status computed again from the same
// facts, on the object that already has it, serializes the same, whatever knative did to the
// transition times meanwhile.
func TestRecomputingChangesNothing(t *testing.T) {
	part := Partition{Branch: "main", Result: Result{Commit: "abc", PushedAt: pushed}, Stats: bus.Stats{Length: 2}}
	gt := &v1alpha1.GitTarget{ObjectMeta: metav1.ObjectMeta{Name: "main", Generation: 1}}
	gt.Status = GitTargetStatus(gt, readyProvider(), part)
	time.Sleep(1100 * time.Millisecond) // a new second: a fresh transition time would differ
	if again := GitTargetStatus(gt, readyProvider(), part); !Equal(again, gt.Status) {
		t.Errorf("recomputed status differs:\n%+v\n%+v", again, gt.Status)
	}
	// A changed count rewrites the message but keeps the transition time: the status did not flip.
	part.Stats.Length = 5
	next := GitTargetStatus(gt, readyProvider(), part)
	before, after := gt.Status.GetCondition(apis.ConditionReady), next.GetCondition(apis.ConditionReady)
	if after.Message == before.Message || !after.LastTransitionTime.Inner.Equal(&before.LastTransitionTime.Inner) {
		t.Errorf("Ready %+v -> %+v: want a new message and the old transition time", before, after)
	}

	p := provider(true)
	p.Status = GitProviderStatus(p, SecretCheck{}, []Partition{part})
	if again := GitProviderStatus(p, SecretCheck{}, []Partition{part}); !Equal(again, p.Status) {
		t.Errorf("recomputed provider status differs:\n%+v\n%+v", again, p.Status)
	}
}

func TestSourceClusterStatus(t *testing.T) {
	c := &v1alpha1.SourceCluster{ObjectMeta: metav1.ObjectMeta{Name: "prod", Generation: 2}}
	s := SourceClusterStatus(c, SecretCheck{})
	check(t, &s.Status, cond{Type: apis.ConditionReady, Status: isTrue})
	s = SourceClusterStatus(c, SecretCheck{Reason: v1alpha1.ReasonSecretNotFound, Message: "token Secret gitops/t not found"})
	check(t, &s.Status, cond{Type: apis.ConditionReady, Status: isFalse, Reason: v1alpha1.ReasonSecretNotFound, Message: "gitops/t"})
}
