package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// SourceCluster conditions. Ready is True once every token Secret key resolved, so the cluster's
// audit events are accepted.
const (
	// SourceClusterConditionReady is the top-level condition, computed from the others.
	SourceClusterConditionReady = apis.ConditionReady
	// SourceClusterConditionTokensResolved: every entry of spec.tokenSecretRefs names an existing
	// Secret key with a non-empty token. It fails with ReasonSecretNotFound or
	// ReasonSecretKeyMissing.
	SourceClusterConditionTokensResolved apis.ConditionType = "TokensResolved"
)

// sourceClusterCondSet is the only ConditionSet of SourceCluster; every Mark* method goes
// through it.
var sourceClusterCondSet = apis.NewLivingConditionSet(
	SourceClusterConditionTokensResolved,
)

// GetConditionSet returns the ConditionSet of SourceCluster (duckv1.KRShaped).
func (*SourceCluster) GetConditionSet() apis.ConditionSet { return sourceClusterCondSet }

// GetGroupVersionKind returns the kind of SourceCluster (kmeta.OwnerRefable).
func (*SourceCluster) GetGroupVersionKind() schema.GroupVersionKind {
	return SchemeGroupVersion.WithKind("SourceCluster")
}

// GetStatus returns the knative status of the SourceCluster (duckv1.KRShaped).
func (c *SourceCluster) GetStatus() *duckv1.Status { return &c.Status.Status }

// IsReady reports whether the latest spec was reconciled and found Ready.
func (c *SourceCluster) IsReady() bool {
	return c.Status.ObservedGeneration == c.Generation && c.Status.IsReady()
}

// InitializeConditions sets every unset condition to Unknown.
func (s *SourceClusterStatus) InitializeConditions() {
	sourceClusterCondSet.Manage(s).InitializeConditions()
}

// GetCondition returns the condition of type t, or nil.
func (s *SourceClusterStatus) GetCondition(t apis.ConditionType) *apis.Condition {
	return sourceClusterCondSet.Manage(s).GetCondition(t)
}

// IsReady reports whether the Ready condition is True.
func (s *SourceClusterStatus) IsReady() bool {
	return sourceClusterCondSet.Manage(s).IsHappy()
}

// MarkTokensResolved records that every token Secret key resolved.
func (s *SourceClusterStatus) MarkTokensResolved() {
	sourceClusterCondSet.Manage(s).MarkTrue(SourceClusterConditionTokensResolved)
}

// MarkTokensFailed records why a token could not be read; reason is ReasonSecretNotFound or
// ReasonSecretKeyMissing. Ready becomes False.
func (s *SourceClusterStatus) MarkTokensFailed(reason, messageFormat string, messageA ...any) {
	sourceClusterCondSet.Manage(s).MarkFalse(SourceClusterConditionTokensResolved,
		reason, messageFormat, messageA...)
}
