package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"knative.dev/pkg/kmeta"
)

// Compile-time checks that GitTarget works with knative's generic helpers (owner references,
// condition managers, KResource duck typing) and with the scheme.
var (
	_ runtime.Object          = (*GitTarget)(nil)
	_ runtime.Object          = (*GitTargetList)(nil)
	_ kmeta.OwnerRefable      = (*GitTarget)(nil)
	_ duckv1.KRShaped         = (*GitTarget)(nil)
	_ apis.ConditionsAccessor = (*GitTargetStatus)(nil)
)

// GitTarget is a branch and folder of a GitProvider's repository. It receives the objects that
// WatchRules and ClusterWatchRules send it, from the source clusters it names.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=gitops-reverser
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.providerRef.name`
// +kubebuilder:printcolumn:name="Branch",type=string,JSONPath=`.spec.branch`
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.spec.path`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Backlog",type=integer,JSONPath=`.status.backlog`
// +kubebuilder:printcolumn:name="DLQ",type=integer,JSONPath=`.status.deadLetters`
// +kubebuilder:printcolumn:name="Commit",type=string,JSONPath=`.status.lastCommit`,priority=1
// +kubebuilder:printcolumn:name="Reconciled",type=date,JSONPath=`.status.lastReconcileTime`,priority=1
// +kubebuilder:printcolumn:name="Drift",type=integer,JSONPath=`.status.drift`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GitTarget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   GitTargetSpec   `json:"spec"`
	Status GitTargetStatus `json:"status,omitempty"`
}

// GitTargetSpec says where in Git the objects go and which clusters they may come from.
//
// The path rule sits on the spec rather than on the field: a transition rule on an optional field
// only runs when both the old and the new object set it, so adding or removing the path would slip
// through.
//
// +kubebuilder:validation:XValidation:rule=`(has(self.path) ? self.path : "") == (has(oldSelf.path) ? oldSelf.path : "")`,message="path is immutable: create a new GitTarget for another folder",fieldPath=".path"
type GitTargetSpec struct {
	// ProviderRef names the GitProvider, in the same namespace.
	ProviderRef LocalObjectReference `json:"providerRef"`

	// Branch receives the commits. It is created on the first push if missing. It cannot change.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="branch is immutable: create a new GitTarget for another branch"
	Branch string `json:"branch"`

	// Path is the folder inside the repository that this target owns; empty means the root.
	// Files outside it are never touched. It is relative to the repository root (no leading "/"),
	// may not contain a ".." segment, and cannot change.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/')",message="path must be relative to the repository root: remove the leading '/'"
	// +kubebuilder:validation:XValidation:rule="!self.matches('(^|/)[.][.](/|$)')",message="path may not contain '..': it must stay inside the repository"
	Path string `json:"path,omitempty"`

	// SourceClusters lists the clusterIDs whose objects this target accepts.
	// +kubebuilder:validation:MinItems=1
	SourceClusters []string `json:"sourceClusters"`

	// SecretPolicy says what happens to Secrets routed here: "redact" (the default) keeps the
	// keys and replaces every value; "exclude" keeps Secrets out of Git.
	// +optional
	// +kubebuilder:validation:Enum=redact;exclude
	SecretPolicy SecretPolicy `json:"secretPolicy,omitempty"`
}

// SecretPolicy is how a GitTarget treats Secret objects.
type SecretPolicy string

const (
	// SecretPolicyRedact keeps a Secret's keys and replaces its values.
	SecretPolicyRedact SecretPolicy = "redact"
	// SecretPolicyExclude keeps Secrets out of Git altogether.
	SecretPolicyExclude SecretPolicy = "exclude"
)

// GitTargetStatus reports what was last written to the target.
type GitTargetStatus struct {
	duckv1.Status `json:",inline"`

	// LastCommit is the hash of the last commit pushed for this target.
	// +optional
	LastCommit string `json:"lastCommit,omitempty"`

	// Backlog is the number of changes queued for the target's repository branch and not in Git
	// yet, when the status was last written. The branch's targets share one queue.
	// It is always written, so that 0 shows in `kubectl get`.
	// +optional
	Backlog int64 `json:"backlog"`

	// DeadLetters is the number of changes of the target's repository branch that could not be
	// written and are parked in its dead-letter queue. They are not in Git.
	// +optional
	DeadLetters int64 `json:"deadLetters"`

	// LastReconcileTime is when the target was last compared with its source clusters.
	// +optional
	LastReconcileTime *metav1.Time `json:"lastReconcileTime,omitempty"`

	// Drift is how many objects the last reconcile found different between the cluster and Git.
	// +optional
	Drift *int64 `json:"drift,omitempty"`
}

// GitTargetList is a list of GitTargets.
//
// +kubebuilder:object:root=true
type GitTargetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GitTarget `json:"items"`
}
