package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"knative.dev/pkg/kmeta"
)

// Compile-time checks that WatchRule works with knative's generic helpers (owner references,
// condition managers, KResource duck typing) and with the scheme.
var (
	_ runtime.Object          = (*WatchRule)(nil)
	_ runtime.Object          = (*WatchRuleList)(nil)
	_ kmeta.OwnerRefable      = (*WatchRule)(nil)
	_ duckv1.KRShaped         = (*WatchRule)(nil)
	_ apis.ConditionsAccessor = (*RuleStatus)(nil)
)

// WatchRule sends namespaced objects of one namespace to a GitTarget in that same namespace.
// The namespace it watches on the source clusters is the WatchRule's own namespace.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=gitops-reverser
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type WatchRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   WatchRuleSpec `json:"spec"`
	Status RuleStatus    `json:"status,omitempty"`
}

// WatchRuleSpec selects resources in the rule's namespace.
type WatchRuleSpec struct {
	// TargetRef names the GitTarget, in the same namespace.
	TargetRef LocalObjectReference `json:"targetRef"`

	// ObjectSelector keeps only objects whose labels match; empty selects every object.
	// +optional
	ObjectSelector *metav1.LabelSelector `json:"objectSelector,omitempty"`

	// Rules are OR-ed: an object is selected when any rule matches it.
	// +kubebuilder:validation:MinItems=1
	Rules []ResourceRule `json:"rules"`
}

// ResourceRule matches objects by API group, resource and operation.
type ResourceRule struct {
	// APIGroups to match; "" is the core group and "*" matches every group.
	// +kubebuilder:validation:MinItems=1
	APIGroups []string `json:"apiGroups"`

	// Resources (plural, lower case, e.g. "deployments") to match; "*" matches every resource.
	// Subresources are never matched on their own.
	// +kubebuilder:validation:MinItems=1
	Resources []string `json:"resources"`

	// Operations to match; empty matches all of them.
	// +optional
	Operations []Operation `json:"operations,omitempty"`
}

// Operation is a kind of change to an object.
// +kubebuilder:validation:Enum=CREATE;UPDATE;DELETE;*
type Operation string

const (
	OperationCreate Operation = "CREATE"
	OperationUpdate Operation = "UPDATE"
	OperationDelete Operation = "DELETE"
	OperationAll    Operation = "*"
)

// RuleStatus reports whether a rule resolved to a usable target.
type RuleStatus struct {
	duckv1.Status `json:",inline"`
}

// WatchRuleList is a list of WatchRules.
//
// +kubebuilder:object:root=true
type WatchRuleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WatchRule `json:"items"`
}
