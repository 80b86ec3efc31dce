package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// GitTarget conditions. Ready is True once the provider is Ready and the last push succeeded.
const (
	// GitTargetConditionReady is the top-level condition, computed from the others.
	GitTargetConditionReady = apis.ConditionReady
	// GitTargetConditionProviderResolved: spec.providerRef names a GitProvider that is Ready.
	GitTargetConditionProviderResolved apis.ConditionType = "ProviderResolved"
	// GitTargetConditionPushed: the branch holds everything routed to this target so far.
	GitTargetConditionPushed apis.ConditionType = "Pushed"
	// GitTargetConditionReconciled: the last reconcile (a full comparison of the source clusters
	// with Git) ran. It is informational: it never changes Ready, since drift is repaired by
	// writing, which Pushed reports.
	GitTargetConditionReconciled apis.ConditionType = "Reconciled"
)

// GitTarget reasons.
const (
	// ReasonProviderNotFound: no GitProvider of that name in the GitTarget's namespace.
	ReasonProviderNotFound = "ProviderNotFound"
	// ReasonProviderNotReady: the GitProvider exists but is not Ready (its reason is in the
	// message).
	ReasonProviderNotReady = "ProviderNotReady"
	// ReasonPushFailed: the push did not reach the remote (network, credentials, timeout).
	ReasonPushFailed = "PushFailed"
	// ReasonPushRejected: the remote refused the push (protected branch, hook, lost a race it
	// could not recover from).
	ReasonPushRejected = "PushRejected"
	// ReasonPushed: the branch holds everything routed to the target (Pushed and Ready True).
	ReasonPushed = "Pushed"
	// ReasonBacklogged: changes are queued and not in Git yet (Unknown: they may just be on
	// their way). The message says how many, and whether a writer is on it.
	ReasonBacklogged = "Backlogged"
	// ReasonDeadLettered: changes could not be written and are parked in the branch's
	// dead-letter queue; they are not in Git.
	ReasonDeadLettered = "DeadLettered"
	// ReasonAwaitingPush: nothing was pushed for the target yet, and nothing is queued.
	ReasonAwaitingPush = "AwaitingPush"
	// ReasonReconcileFailed: the last reconcile did not complete (Reconciled False).
	ReasonReconcileFailed = "ReconcileFailed"
)

// gitTargetCondSet is the only ConditionSet of GitTarget; every Mark* method goes through it.
var gitTargetCondSet = apis.NewLivingConditionSet(
	GitTargetConditionProviderResolved,
	GitTargetConditionPushed,
)

// GetConditionSet returns the ConditionSet of GitTarget (duckv1.KRShaped).
func (*GitTarget) GetConditionSet() apis.ConditionSet { return gitTargetCondSet }

// GetGroupVersionKind returns the kind of GitTarget (kmeta.OwnerRefable).
func (*GitTarget) GetGroupVersionKind() schema.GroupVersionKind {
	return SchemeGroupVersion.WithKind("GitTarget")
}

// GetStatus returns the knative status of the GitTarget (duckv1.KRShaped).
func (t *GitTarget) GetStatus() *duckv1.Status { return &t.Status.Status }

// IsReady reports whether the latest spec was reconciled and found Ready.
func (t *GitTarget) IsReady() bool {
	return t.Status.ObservedGeneration == t.Generation && t.Status.IsReady()
}

// InitializeConditions sets every unset condition to Unknown.
func (s *GitTargetStatus) InitializeConditions() {
	gitTargetCondSet.Manage(s).InitializeConditions()
}

// GetCondition returns the condition of type t, or nil.
func (s *GitTargetStatus) GetCondition(t apis.ConditionType) *apis.Condition {
	return gitTargetCondSet.Manage(s).GetCondition(t)
}

// IsReady reports whether the Ready condition is True.
func (s *GitTargetStatus) IsReady() bool {
	return gitTargetCondSet.Manage(s).IsHappy()
}

// MarkProviderResolved records that the GitProvider exists and is Ready.
func (s *GitTargetStatus) MarkProviderResolved() {
	gitTargetCondSet.Manage(s).MarkTrue(GitTargetConditionProviderResolved)
}

// MarkProviderNotFound records that spec.providerRef names no GitProvider. Ready becomes False.
func (s *GitTargetStatus) MarkProviderNotFound(name string) {
	gitTargetCondSet.Manage(s).MarkFalse(GitTargetConditionProviderResolved, ReasonProviderNotFound,
		"GitProvider %q not found in this namespace", name)
}

// PropagateProviderStatus sets ProviderResolved from the GitProvider's Ready condition: True when
// it is Ready, False (ReasonProviderNotReady) when it failed, and Unknown while the provider has
// not been reconciled at its current generation.
func (s *GitTargetStatus) PropagateProviderStatus(p *GitProvider) {
	m := gitTargetCondSet.Manage(s)
	ready := p.Status.GetCondition(GitProviderConditionReady)
	switch {
	case ready == nil || p.Status.ObservedGeneration != p.Generation:
		m.MarkUnknown(GitTargetConditionProviderResolved, ReasonProviderNotReady,
			"GitProvider %q has not been reconciled yet", p.Name)
	case ready.IsTrue():
		m.MarkTrue(GitTargetConditionProviderResolved)
	case ready.IsFalse():
		m.MarkFalse(GitTargetConditionProviderResolved, ReasonProviderNotReady,
			"GitProvider %q is not ready: %s: %s", p.Name, ready.Reason, ready.Message)
	default:
		m.MarkUnknown(GitTargetConditionProviderResolved, ReasonProviderNotReady,
			"GitProvider %q is not ready yet: %s", p.Name, ready.Message)
	}
}

// MarkPushed records a successful push, or a check that found nothing to push: commit is the
// hash the branch points at afterwards, kept in LastCommit.
func (s *GitTargetStatus) MarkPushed(commit string) {
	s.LastCommit = commit
	gitTargetCondSet.Manage(s).MarkTrue(GitTargetConditionPushed)
}

// MarkPushFailed records why the last push did not land; reason is ReasonPushFailed or
// ReasonPushRejected. LastCommit keeps the last commit that did land. Ready becomes False.
func (s *GitTargetStatus) MarkPushFailed(reason, messageFormat string, messageA ...any) {
	gitTargetCondSet.Manage(s).MarkFalse(GitTargetConditionPushed, reason, messageFormat, messageA...)
}

// MarkBacklogged records that backlog changes are queued for the branch and not pushed yet;
// draining says whether a writer holds the branch's lease right now. Pushed (and Ready, unless
// something failed) becomes Unknown: the changes may just be on their way.
func (s *GitTargetStatus) MarkBacklogged(backlog, deadLetters int64, draining bool) {
	s.Backlog, s.DeadLetters = backlog, deadLetters
	who := "no writer is draining it: check that the writer function receives partition.ready events"
	if draining {
		who = "a writer is draining it"
	}
	gitTargetCondSet.Manage(s).MarkUnknown(GitTargetConditionPushed, ReasonBacklogged,
		"%d changes queued for the branch, not in Git yet (dead letters %d); %s", backlog, deadLetters, who)
}

// MarkDeadLettered records that deadLetters changes of the branch could not be written and are
// parked in its dead-letter queue. Ready becomes False: Git is missing them.
func (s *GitTargetStatus) MarkDeadLettered(backlog, deadLetters int64) {
	s.Backlog, s.DeadLetters = backlog, deadLetters
	gitTargetCondSet.Manage(s).MarkFalse(GitTargetConditionPushed, ReasonDeadLettered,
		"%d changes could not be written and are parked in the branch's dead-letter queue (backlog %d); "+
			"the writer log names the cause of each", deadLetters, backlog)
}

// MarkAwaitingPush records that nothing was pushed for the target yet and nothing is queued.
func (s *GitTargetStatus) MarkAwaitingPush() {
	s.Backlog, s.DeadLetters = 0, 0
	gitTargetCondSet.Manage(s).MarkUnknown(GitTargetConditionPushed, ReasonAwaitingPush,
		"no change routed to this target has been pushed yet")
}

// MarkReadyPushed gives a Ready target the reason Pushed and the short commit in its message, so
// `kubectl get` shows what the branch holds. Call it last; it does nothing unless Ready is True.
func (s *GitTargetStatus) MarkReadyPushed() {
	m := gitTargetCondSet.Manage(s)
	if !m.IsHappy() || s.LastCommit == "" {
		return
	}
	m.MarkTrueWithReason(GitTargetConditionReady, ReasonPushed, "branch holds %s", ShortCommit(s.LastCommit))
}

// MarkReconciled records a completed reconcile at when that found drift objects different.
func (s *GitTargetStatus) MarkReconciled(when metav1.Time, drift int64) {
	s.LastReconcileTime, s.Drift = &when, &drift
	gitTargetCondSet.Manage(s).MarkTrueWithReason(GitTargetConditionReconciled, "Reconciled",
		"%d objects differed between the source clusters and Git", drift)
}

// MarkReconcileFailed records a reconcile at when that did not complete. Ready is not changed.
func (s *GitTargetStatus) MarkReconcileFailed(when metav1.Time, messageFormat string, messageA ...any) {
	s.LastReconcileTime = &when
	gitTargetCondSet.Manage(s).MarkFalse(GitTargetConditionReconciled, ReasonReconcileFailed,
		messageFormat, messageA...)
}

// ShortCommit abbreviates a commit hash the way git log --oneline does.
func ShortCommit(hash string) string {
	if len(hash) > 7 {
		return hash[:7]
	}
	return hash
}
