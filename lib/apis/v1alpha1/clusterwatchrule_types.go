package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"knative.dev/pkg/kmeta"
)

// Compile-time checks that ClusterWatchRule works with knative's generic helpers (owner
// references, KResource duck typing) and with the scheme. Its RuleStatus is checked in
// watchrule_types.go.
var (
	_ runtime.Object     = (*ClusterWatchRule)(nil)
	_ runtime.Object     = (*ClusterWatchRuleList)(nil)
	_ kmeta.OwnerRefable = (*ClusterWatchRule)(nil)
	_ duckv1.KRShaped    = (*ClusterWatchRule)(nil)
)

// ClusterWatchRule sends cluster-scoped objects, or namespaced objects of any namespaces, to a
// GitTarget.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=gitops-reverser
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetRef.name`
// +kubebuilder:printcolumn:name="Target Namespace",type=string,JSONPath=`.spec.targetRef.namespace`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterWatchRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ClusterWatchRuleSpec `json:"spec"`
	Status RuleStatus           `json:"status,omitempty"`
}

// ClusterWatchRuleSpec selects resources across the cluster.
type ClusterWatchRuleSpec struct {
	// TargetRef names the GitTarget and its namespace.
	TargetRef NamespacedObjectReference `json:"targetRef"`

	// ObjectSelector keeps only objects whose labels match; empty selects every object.
	// +optional
	ObjectSelector *metav1.LabelSelector `json:"objectSelector,omitempty"`

	// Rules are OR-ed: an object is selected when any rule matches it.
	// +kubebuilder:validation:MinItems=1
	Rules []ClusterResourceRule `json:"rules"`
}

// ClusterResourceRule is a ResourceRule with a scope and, for namespaced objects, namespaces.
type ClusterResourceRule struct {
	ResourceRule `json:",inline"`

	// Scope limits the rule to "Cluster" (cluster-scoped objects) or "Namespaced" objects;
	// empty matches both, or only namespaced objects when Namespaces is set.
	// +optional
	// +kubebuilder:validation:Enum=Cluster;Namespaced
	Scope Scope `json:"scope,omitempty"`

	// Namespaces limits namespaced objects to these namespaces; empty means every namespace.
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`
}

// Scope says whether a rule matches cluster-scoped or namespaced objects.
type Scope string

const (
	ScopeCluster    Scope = "Cluster"
	ScopeNamespaced Scope = "Namespaced"
)

// NamespacedObjectReference names an object in a given namespace.
type NamespacedObjectReference struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +kubebuilder:validation:MinLength=1
	Namespace string `json:"namespace"`
}

// ClusterWatchRuleList is a list of ClusterWatchRules.
//
// +kubebuilder:object:root=true
type ClusterWatchRuleList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterWatchRule `json:"items"`
}
