package v1alpha1

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"knative.dev/pkg/kmeta"
)

// cond is the part of a condition a lifecycle test checks.
type cond struct {
	Type    apis.ConditionType
	Status  corev1.ConditionStatus
	Reason  string
	Message string // substring; empty checks nothing
}

var (
	unknown = corev1.ConditionUnknown
	isTrue  = corev1.ConditionTrue
	isFalse = corev1.ConditionFalse
)

// checkConditions fails t for every condition in want that s does not match, and when s holds a
// condition the kind's ConditionSet does not know.
func checkConditions(t *testing.T, obj duckv1.KRShaped, want ...cond) {
	t.Helper()
	m := obj.GetConditionSet().Manage(obj.GetStatus())
	for _, w := range want {
		got := m.GetCondition(w.Type)
		if got == nil {
			t.Errorf("condition %s missing", w.Type)
			continue
		}
		if got.Status != w.Status || got.Reason != w.Reason {
			t.Errorf("condition %s = %s/%q (%q), want %s/%q", w.Type, got.Status, got.Reason, got.Message, w.Status, w.Reason)
		}
		if !strings.Contains(got.Message, w.Message) {
			t.Errorf("condition %s message = %q, want it to contain %q", w.Type, got.Message, w.Message)
		}
	}
	for _, w := range want {
		if w.Type == apis.ConditionReady && m.IsHappy() != (w.Status == isTrue) {
			t.Errorf("IsHappy() = %v, want %v", m.IsHappy(), w.Status == isTrue)
		}
	}
}

func TestGitProviderLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name string
		mark func(*GitProviderStatus)
		want []cond
	}{{
		name: "initialized",
		mark: func(*GitProviderStatus) {},
		want: []cond{
			{Type: GitProviderConditionReady, Status: unknown},
			{Type: GitProviderConditionCredentialsResolved, Status: unknown},
			{Type: GitProviderConditionRemoteReachable, Status: unknown},
		},
	}, {
		name: "credentials only: not ready yet",
		mark: func(s *GitProviderStatus) { s.MarkCredentialsResolved() },
		want: []cond{
			{Type: GitProviderConditionReady, Status: unknown},
			{Type: GitProviderConditionCredentialsResolved, Status: isTrue},
		},
	}, {
		name: "remote only: not ready yet",
		mark: func(s *GitProviderStatus) { s.MarkRemoteReachable() },
		want: []cond{
			{Type: GitProviderConditionReady, Status: unknown},
			{Type: GitProviderConditionRemoteReachable, Status: isTrue},
		},
	}, {
		name: "all dependents true: ready",
		mark: func(s *GitProviderStatus) {
			s.MarkCredentialsResolved()
			s.MarkRemoteReachable()
		},
		want: []cond{
			{Type: GitProviderConditionReady, Status: isTrue},
			{Type: GitProviderConditionCredentialsResolved, Status: isTrue},
			{Type: GitProviderConditionRemoteReachable, Status: isTrue},
		},
	}, {
		name: "anonymous remote: ready, with a reason",
		mark: func(s *GitProviderStatus) {
			s.MarkCredentialsAnonymous()
			s.MarkRemoteReachable()
		},
		want: []cond{
			{Type: GitProviderConditionReady, Status: isTrue},
			{Type: GitProviderConditionCredentialsResolved, Status: isTrue, Reason: ReasonAnonymous, Message: "no secretRef"},
		},
	}, {
		name: "secret missing: false with its reason",
		mark: func(s *GitProviderStatus) {
			s.MarkCredentialsFailed(ReasonSecretNotFound, "Secret %q not found", "git-creds")
		},
		want: []cond{
			{Type: GitProviderConditionReady, Status: isFalse, Reason: ReasonSecretNotFound, Message: `Secret "git-creds" not found`},
			{Type: GitProviderConditionCredentialsResolved, Status: isFalse, Reason: ReasonSecretNotFound},
			{Type: GitProviderConditionRemoteReachable, Status: unknown},
		},
	}, {
		name: "ready, then the remote refuses the credentials",
		mark: func(s *GitProviderStatus) {
			s.MarkCredentialsResolved()
			s.MarkRemoteReachable()
			s.MarkRemoteUnreachable(ReasonAuthenticationFailed, "authentication required")
		},
		want: []cond{
			{Type: GitProviderConditionReady, Status: isFalse, Reason: ReasonAuthenticationFailed, Message: "authentication required"},
			{Type: GitProviderConditionCredentialsResolved, Status: isTrue},
			{Type: GitProviderConditionRemoteReachable, Status: isFalse, Reason: ReasonAuthenticationFailed},
		},
	}, {
		name: "a failed dependent keeps Ready false when another turns true",
		mark: func(s *GitProviderStatus) {
			s.MarkCredentialsFailed(ReasonSecretKeyMissing, "key %q missing", "password")
			s.MarkRemoteReachable()
		},
		want: []cond{
			{Type: GitProviderConditionReady, Status: isFalse, Reason: ReasonSecretKeyMissing},
			{Type: GitProviderConditionRemoteReachable, Status: isTrue},
		},
	}, {
		name: "recovers once the failed dependent is true again",
		mark: func(s *GitProviderStatus) {
			s.MarkCredentialsResolved()
			s.MarkRemoteUnreachable(ReasonRemoteUnreachable, "dial tcp: i/o timeout")
			s.MarkRemoteReachable()
		},
		want: []cond{
			{Type: GitProviderConditionReady, Status: isTrue},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			p := &GitProvider{}
			p.Status.InitializeConditions()
			tc.mark(&p.Status)
			checkConditions(t, p, tc.want...)
			if got, want := p.Status.IsReady(), tc.want[0].Status == isTrue; got != want {
				t.Errorf("IsReady() = %v, want %v", got, want)
			}
		})
	}
}

func TestGitTargetLifecycle(t *testing.T) {
	readyProvider := func() *GitProvider {
		p := &GitProvider{ObjectMeta: metav1.ObjectMeta{Name: "repo", Generation: 2}}
		p.Status.ObservedGeneration = 2
		p.Status.InitializeConditions()
		p.Status.MarkCredentialsResolved()
		p.Status.MarkRemoteReachable()
		return p
	}
	for _, tc := range []struct {
		name       string
		mark       func(*GitTargetStatus)
		want       []cond
		lastCommit string
	}{{
		name: "initialized",
		mark: func(*GitTargetStatus) {},
		want: []cond{
			{Type: GitTargetConditionReady, Status: unknown},
			{Type: GitTargetConditionProviderResolved, Status: unknown},
			{Type: GitTargetConditionPushed, Status: unknown},
		},
	}, {
		name: "provider ready but nothing pushed yet",
		mark: func(s *GitTargetStatus) { s.PropagateProviderStatus(readyProvider()) },
		want: []cond{
			{Type: GitTargetConditionReady, Status: unknown},
			{Type: GitTargetConditionProviderResolved, Status: isTrue},
			{Type: GitTargetConditionPushed, Status: unknown},
		},
	}, {
		name: "provider ready and pushed: ready",
		mark: func(s *GitTargetStatus) {
			s.PropagateProviderStatus(readyProvider())
			s.MarkPushed("0123abc")
		},
		want: []cond{
			{Type: GitTargetConditionReady, Status: isTrue},
			{Type: GitTargetConditionProviderResolved, Status: isTrue},
			{Type: GitTargetConditionPushed, Status: isTrue},
		},
		lastCommit: "0123abc",
	}, {
		name: "provider missing",
		mark: func(s *GitTargetStatus) {
			s.MarkPushed("0123abc")
			s.MarkProviderNotFound("repo")
		},
		want: []cond{
			{Type: GitTargetConditionReady, Status: isFalse, Reason: ReasonProviderNotFound, Message: `GitProvider "repo" not found`},
			{Type: GitTargetConditionProviderResolved, Status: isFalse, Reason: ReasonProviderNotFound},
		},
		lastCommit: "0123abc",
	}, {
		name: "provider failed: its reason travels in the message",
		mark: func(s *GitTargetStatus) {
			p := readyProvider()
			p.Status.MarkRemoteUnreachable(ReasonAuthenticationFailed, "bad token")
			s.PropagateProviderStatus(p)
			s.MarkPushed("0123abc")
		},
		want: []cond{
			{Type: GitTargetConditionReady, Status: isFalse, Reason: ReasonProviderNotReady, Message: `GitProvider "repo" is not ready: AuthenticationFailed: bad token`},
			{Type: GitTargetConditionProviderResolved, Status: isFalse, Reason: ReasonProviderNotReady},
			{Type: GitTargetConditionPushed, Status: isTrue},
		},
		lastCommit: "0123abc",
	}, {
		name: "provider not reconciled at its generation: unknown",
		mark: func(s *GitTargetStatus) {
			p := readyProvider()
			p.Generation++
			s.PropagateProviderStatus(p)
			s.MarkPushed("0123abc")
		},
		want: []cond{
			{Type: GitTargetConditionReady, Status: unknown, Reason: ReasonProviderNotReady, Message: "not been reconciled"},
			{Type: GitTargetConditionProviderResolved, Status: unknown, Reason: ReasonProviderNotReady},
		},
		lastCommit: "0123abc",
	}, {
		name: "push rejected after a good push: false, last commit kept",
		mark: func(s *GitTargetStatus) {
			s.MarkProviderResolved()
			s.MarkPushed("0123abc")
			s.MarkPushFailed(ReasonPushRejected, "protected branch %q", "main")
		},
		want: []cond{
			{Type: GitTargetConditionReady, Status: isFalse, Reason: ReasonPushRejected, Message: `protected branch "main"`},
			{Type: GitTargetConditionProviderResolved, Status: isTrue},
			{Type: GitTargetConditionPushed, Status: isFalse, Reason: ReasonPushRejected},
		},
		lastCommit: "0123abc",
	}, {
		name: "next push succeeds: ready again",
		mark: func(s *GitTargetStatus) {
			s.MarkProviderResolved()
			s.MarkPushFailed(ReasonPushFailed, "timeout")
			s.MarkPushed("4567def")
		},
		want: []cond{
			{Type: GitTargetConditionReady, Status: isTrue},
		},
		lastCommit: "4567def",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			gt := &GitTarget{}
			gt.Status.InitializeConditions()
			tc.mark(&gt.Status)
			checkConditions(t, gt, tc.want...)
			if gt.Status.LastCommit != tc.lastCommit {
				t.Errorf("LastCommit = %q, want %q", gt.Status.LastCommit, tc.lastCommit)
			}
		})
	}
}

func TestRuleLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name string
		mark func(*RuleStatus)
		want []cond
	}{{
		name: "initialized",
		mark: func(*RuleStatus) {},
		want: []cond{
			{Type: RuleConditionReady, Status: unknown},
			{Type: RuleConditionTargetResolved, Status: unknown},
		},
	}, {
		name: "target found: ready",
		mark: func(s *RuleStatus) { s.MarkTargetResolved() },
		want: []cond{
			{Type: RuleConditionReady, Status: isTrue},
			{Type: RuleConditionTargetResolved, Status: isTrue},
		},
	}, {
		name: "target gone: false",
		mark: func(s *RuleStatus) {
			s.MarkTargetResolved()
			s.MarkTargetNotFound("team-a", "main")
		},
		want: []cond{
			{Type: RuleConditionReady, Status: isFalse, Reason: ReasonTargetNotFound, Message: `GitTarget "main" not found in namespace "team-a"`},
			{Type: RuleConditionTargetResolved, Status: isFalse, Reason: ReasonTargetNotFound},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			// Both rule kinds share RuleStatus and its ConditionSet: check each.
			wr := &WatchRule{}
			wr.Status.InitializeConditions()
			tc.mark(&wr.Status)
			checkConditions(t, wr, tc.want...)

			cwr := &ClusterWatchRule{}
			cwr.Status.InitializeConditions()
			tc.mark(&cwr.Status)
			checkConditions(t, cwr, tc.want...)
		})
	}
}

func TestSourceClusterLifecycle(t *testing.T) {
	for _, tc := range []struct {
		name string
		mark func(*SourceClusterStatus)
		want []cond
	}{{
		name: "initialized",
		mark: func(*SourceClusterStatus) {},
		want: []cond{
			{Type: SourceClusterConditionReady, Status: unknown},
			{Type: SourceClusterConditionTokensResolved, Status: unknown},
		},
	}, {
		name: "tokens resolved: ready",
		mark: func(s *SourceClusterStatus) { s.MarkTokensResolved() },
		want: []cond{
			{Type: SourceClusterConditionReady, Status: isTrue},
			{Type: SourceClusterConditionTokensResolved, Status: isTrue},
		},
	}, {
		name: "token key missing: false with its reason",
		mark: func(s *SourceClusterStatus) {
			s.MarkTokensResolved()
			s.MarkTokensFailed(ReasonSecretKeyMissing, "Secret %s/%s has no key %q", "ops", "audit", "token")
		},
		want: []cond{
			{Type: SourceClusterConditionReady, Status: isFalse, Reason: ReasonSecretKeyMissing, Message: `Secret ops/audit has no key "token"`},
			{Type: SourceClusterConditionTokensResolved, Status: isFalse, Reason: ReasonSecretKeyMissing},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			sc := &SourceCluster{}
			sc.Status.InitializeConditions()
			tc.mark(&sc.Status)
			checkConditions(t, sc, tc.want...)
		})
	}
}

// dependent drives one dependent condition of a kind through its Mark* methods.
type dependent struct {
	cond apis.ConditionType
	ok   func()
	fail func(reason string)
}

// readinessCase is a freshly built object of one kind, with the Mark* methods of each dependent.
type readinessCase struct {
	obj        duckv1.KRShaped
	init       func()
	dependents []dependent
}

func gitProviderCase() readinessCase {
	p := &GitProvider{}
	s := &p.Status
	return readinessCase{obj: p, init: s.InitializeConditions, dependents: []dependent{
		{GitProviderConditionCredentialsResolved, s.MarkCredentialsResolved, func(r string) { s.MarkCredentialsFailed(r, "failed") }},
		{GitProviderConditionRemoteReachable, s.MarkRemoteReachable, func(r string) { s.MarkRemoteUnreachable(r, "failed") }},
	}}
}

func gitTargetCase() readinessCase {
	gt := &GitTarget{}
	s := &gt.Status
	return readinessCase{obj: gt, init: s.InitializeConditions, dependents: []dependent{
		{GitTargetConditionProviderResolved, s.MarkProviderResolved, func(string) { s.MarkProviderNotFound("p") }},
		{GitTargetConditionPushed, func() { s.MarkPushed("abc") }, func(r string) { s.MarkPushFailed(r, "failed") }},
	}}
}

func watchRuleCase() readinessCase {
	r := &WatchRule{}
	s := &r.Status
	return readinessCase{obj: r, init: s.InitializeConditions, dependents: []dependent{
		{RuleConditionTargetResolved, s.MarkTargetResolved, func(string) { s.MarkTargetNotFound("ns", "t") }},
	}}
}

func clusterWatchRuleCase() readinessCase {
	r := &ClusterWatchRule{}
	s := &r.Status
	return readinessCase{obj: r, init: s.InitializeConditions, dependents: []dependent{
		{RuleConditionTargetResolved, s.MarkTargetResolved, func(string) { s.MarkTargetNotFound("ns", "t") }},
	}}
}

func sourceClusterCase() readinessCase {
	c := &SourceCluster{}
	s := &c.Status
	return readinessCase{obj: c, init: s.InitializeConditions, dependents: []dependent{
		{SourceClusterConditionTokensResolved, s.MarkTokensResolved, func(r string) { s.MarkTokensFailed(r, "failed") }},
	}}
}

// TestReadyNeedsEveryDependent checks, for every kind, the rule all ConditionSets here follow:
// Ready is True only when every dependent is True, and a single False dependent makes Ready False
// with that dependent's reason and message, until it recovers.
func TestReadyNeedsEveryDependent(t *testing.T) {
	for name, newCase := range map[string]func() readinessCase{
		"GitProvider":      gitProviderCase,
		"GitTarget":        gitTargetCase,
		"WatchRule":        watchRuleCase,
		"ClusterWatchRule": clusterWatchRuleCase,
		"SourceCluster":    sourceClusterCase,
	} {
		t.Run(name, func(t *testing.T) {
			tc := newCase()
			m := tc.obj.GetConditionSet().Manage(tc.obj.GetStatus())
			ready := func() *apis.Condition { return m.GetCondition(apis.ConditionReady) }

			tc.init()
			for i, d := range tc.dependents {
				if got := ready(); got.Status != unknown {
					t.Fatalf("Ready = %s with only %d of %d dependents True, want Unknown", got.Status, i, len(tc.dependents))
				}
				d.ok()
			}
			if got := ready(); got.Status != isTrue {
				t.Fatalf("Ready = %s (%s) with every dependent True, want True", got.Status, got.Reason)
			}

			for _, d := range tc.dependents {
				d.fail("SomethingBroke")
				got, dep := ready(), m.GetCondition(d.cond)
				if got.Status != isFalse || dep.Status != isFalse {
					t.Errorf("after %s failed: Ready = %s, %s = %s, want both False", d.cond, got.Status, d.cond, dep.Status)
				}
				if got.Reason != dep.Reason || got.Message != dep.Message {
					t.Errorf("after %s failed: Ready says %q %q, want the dependent's %q %q", d.cond, got.Reason, got.Message, dep.Reason, dep.Message)
				}
				d.ok()
				if got := ready(); got.Status != isTrue {
					t.Errorf("after %s recovered: Ready = %s (%s), want True", d.cond, got.Status, got.Reason)
				}
			}
		})
	}
}

func TestIsReadyNeedsObservedGeneration(t *testing.T) {
	c := &SourceCluster{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
	c.Status.InitializeConditions()
	c.Status.MarkTokensResolved()
	c.Status.ObservedGeneration = 2
	if c.IsReady() {
		t.Error("IsReady() = true for a spec that was not reconciled yet")
	}
	c.Status.ObservedGeneration = 3
	if !c.IsReady() {
		t.Error("IsReady() = false once Ready and the generation was observed")
	}
}

// TestGroupVersionKinds checks that each kind names itself as the scheme registers it, so owner
// references built by kmeta.NewControllerRef point at the right kind.
func TestGroupVersionKinds(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []interface {
		runtime.Object
		kmeta.OwnerRefable
	}{&GitProvider{}, &GitTarget{}, &WatchRule{}, &ClusterWatchRule{}, &SourceCluster{}} {
		gvks, _, err := scheme.ObjectKinds(obj)
		if err != nil {
			t.Fatal(err)
		}
		if len(gvks) != 1 || gvks[0] != obj.GetGroupVersionKind() {
			t.Errorf("%T: GetGroupVersionKind() = %v, scheme says %v", obj, obj.GetGroupVersionKind(), gvks)
		}
	}
}
