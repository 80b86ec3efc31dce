package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// Rule conditions, for WatchRule and ClusterWatchRule alike (both report a RuleStatus). Ready is
// True once the rule's GitTarget was found.
const (
	// RuleConditionReady is the top-level condition, computed from the others.
	RuleConditionReady = apis.ConditionReady
	// RuleConditionTargetResolved: spec.targetRef names an existing GitTarget.
	RuleConditionTargetResolved apis.ConditionType = "TargetResolved"
)

// Rule reasons.
const (
	// ReasonTargetNotFound: no GitTarget of that name in that namespace.
	ReasonTargetNotFound = "TargetNotFound"
)

// ruleCondSet is the only ConditionSet of WatchRule and ClusterWatchRule, which share RuleStatus;
// every Mark* method goes through it.
var ruleCondSet = apis.NewLivingConditionSet(
	RuleConditionTargetResolved,
)

// GetConditionSet returns the ConditionSet of WatchRule (duckv1.KRShaped).
func (*WatchRule) GetConditionSet() apis.ConditionSet { return ruleCondSet }

// GetGroupVersionKind returns the kind of WatchRule (kmeta.OwnerRefable).
func (*WatchRule) GetGroupVersionKind() schema.GroupVersionKind {
	return SchemeGroupVersion.WithKind("WatchRule")
}

// GetStatus returns the knative status of the WatchRule (duckv1.KRShaped).
func (r *WatchRule) GetStatus() *duckv1.Status { return &r.Status.Status }

// IsReady reports whether the latest spec was reconciled and found Ready.
func (r *WatchRule) IsReady() bool {
	return r.Status.ObservedGeneration == r.Generation && r.Status.IsReady()
}

// GetConditionSet returns the ConditionSet of ClusterWatchRule (duckv1.KRShaped).
func (*ClusterWatchRule) GetConditionSet() apis.ConditionSet { return ruleCondSet }

// GetGroupVersionKind returns the kind of ClusterWatchRule (kmeta.OwnerRefable).
func (*ClusterWatchRule) GetGroupVersionKind() schema.GroupVersionKind {
	return SchemeGroupVersion.WithKind("ClusterWatchRule")
}

// GetStatus returns the knative status of the ClusterWatchRule (duckv1.KRShaped).
func (r *ClusterWatchRule) GetStatus() *duckv1.Status { return &r.Status.Status }

// IsReady reports whether the latest spec was reconciled and found Ready.
func (r *ClusterWatchRule) IsReady() bool {
	return r.Status.ObservedGeneration == r.Generation && r.Status.IsReady()
}

// InitializeConditions sets every unset condition to Unknown.
func (s *RuleStatus) InitializeConditions() {
	ruleCondSet.Manage(s).InitializeConditions()
}

// GetCondition returns the condition of type t, or nil.
func (s *RuleStatus) GetCondition(t apis.ConditionType) *apis.Condition {
	return ruleCondSet.Manage(s).GetCondition(t)
}

// IsReady reports whether the Ready condition is True.
func (s *RuleStatus) IsReady() bool {
	return ruleCondSet.Manage(s).IsHappy()
}

// MarkTargetResolved records that the GitTarget exists.
func (s *RuleStatus) MarkTargetResolved() {
	ruleCondSet.Manage(s).MarkTrue(RuleConditionTargetResolved)
}

// MarkTargetNotFound records that spec.targetRef names no GitTarget. Ready becomes False.
func (s *RuleStatus) MarkTargetNotFound(namespace, name string) {
	ruleCondSet.Manage(s).MarkFalse(RuleConditionTargetResolved, ReasonTargetNotFound,
		"GitTarget %q not found in namespace %q", name, namespace)
}
