package v1alpha1

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestGitTargetProjectionMarks covers the Mark* methods lib/status projects results with.
func TestGitTargetProjectionMarks(t *testing.T) {
	const commit = "0123456789abcdef"
	for _, tc := range []struct {
		name string
		mark func(*GitTargetStatus)
		want []cond
	}{{
		name: "pushed and provider ready: Ready says Pushed with the short commit",
		mark: func(s *GitTargetStatus) { s.MarkProviderResolved(); s.MarkPushed(commit); s.MarkReadyPushed() },
		want: []cond{{Type: GitTargetConditionReady, Status: isTrue, Reason: ReasonPushed, Message: "branch holds 0123456"}},
	}, {
		name: "MarkReadyPushed leaves a target that is not ready alone",
		mark: func(s *GitTargetStatus) { s.MarkPushed(commit); s.MarkReadyPushed() },
		want: []cond{{Type: GitTargetConditionReady, Status: unknown}},
	}, {
		name: "backlogged",
		mark: func(s *GitTargetStatus) { s.MarkProviderResolved(); s.MarkBacklogged(4, 1, true) },
		want: []cond{{Type: GitTargetConditionReady, Status: unknown, Reason: ReasonBacklogged, Message: "4 changes queued"}},
	}, {
		name: "dead letters",
		mark: func(s *GitTargetStatus) { s.MarkProviderResolved(); s.MarkDeadLettered(0, 2) },
		want: []cond{{Type: GitTargetConditionReady, Status: isFalse, Reason: ReasonDeadLettered, Message: "2 changes could not be written"}},
	}, {
		name: "awaiting the first push",
		mark: func(s *GitTargetStatus) { s.MarkProviderResolved(); s.MarkAwaitingPush() },
		want: []cond{{Type: GitTargetConditionReady, Status: unknown, Reason: ReasonAwaitingPush}},
	}, {
		name: "a failed reconcile does not change Ready",
		mark: func(s *GitTargetStatus) {
			s.MarkProviderResolved()
			s.MarkPushed(commit)
			s.MarkReconcileFailed(metav1.Now(), "cluster %s unreachable", "prod")
		},
		want: []cond{
			{Type: GitTargetConditionReady, Status: isTrue},
			{Type: GitTargetConditionReconciled, Status: isFalse, Reason: ReasonReconcileFailed, Message: "cluster prod unreachable"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			gt := &GitTarget{}
			gt.Status.InitializeConditions()
			tc.mark(&gt.Status)
			checkConditions(t, gt, tc.want...)
		})
	}
	var s GitTargetStatus
	s.InitializeConditions()
	s.MarkReconciled(metav1.NewTime(time.Unix(1700000000, 0)), 3)
	if s.Drift == nil || *s.Drift != 3 || s.LastReconcileTime == nil {
		t.Errorf("after MarkReconciled: drift %v, time %v", s.Drift, s.LastReconcileTime)
	}
}

func TestGitProviderRemoteUnknown(t *testing.T) {
	p := &GitProvider{}
	p.Status.InitializeConditions()
	p.Status.MarkCredentialsResolved()
	p.Status.MarkRemoteUnknown(ReasonNotUsed, "no GitTarget refers to this GitProvider")
	checkConditions(t, p, cond{Type: GitProviderConditionReady, Status: unknown, Reason: ReasonNotUsed, Message: "no GitTarget"})
}
