package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"knative.dev/pkg/kmeta"
)

// Compile-time checks that SourceCluster works with knative's generic helpers (owner references,
// condition managers, KResource duck typing) and with the scheme.
var (
	_ runtime.Object          = (*SourceCluster)(nil)
	_ runtime.Object          = (*SourceClusterList)(nil)
	_ kmeta.OwnerRefable      = (*SourceCluster)(nil)
	_ duckv1.KRShaped         = (*SourceCluster)(nil)
	_ apis.ConditionsAccessor = (*SourceClusterStatus)(nil)
)

// SourceCluster is a Kubernetes cluster allowed to send its audit events to
// /audit-webhook/<clusterID>. Onboarding a cluster is applying one of these.
//
// +genclient
// +genclient:nonNamespaced
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=gitops-reverser
// +kubebuilder:printcolumn:name="Cluster ID",type=string,JSONPath=`.spec.clusterID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type SourceCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SourceClusterSpec   `json:"spec"`
	Status SourceClusterStatus `json:"status,omitempty"`
}

// SourceClusterSpec identifies a cluster and how its apiserver authenticates.
type SourceClusterSpec struct {
	// ClusterID is the cluster's name in routes, commits, metrics and stream entries:
	// lower case letters, digits and '-', starting with a letter, at most 63 characters. It cannot
	// change: it is already part of routes, commits and stream entries.
	// +kubebuilder:validation:Pattern=`^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="clusterID is immutable: create a new SourceCluster"
	ClusterID string `json:"clusterID"`

	// TokenSecretRefs are the Secret keys holding the bearer token the cluster's apiserver sends.
	// Two may be listed at once so a token can be rotated without downtime.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=2
	TokenSecretRefs []SecretKeyReference `json:"tokenSecretRefs"`

	// KubeconfigSecretRef is the Secret key holding a kubeconfig with which the reconcile and
	// resnapshot jobs read this cluster (key defaults to "kubeconfig").
	// Absent means the cluster the jobs run in (in-cluster credentials, or KUBECONFIG in a
	// terminal). The ingest and writer functions never read source clusters.
	// +optional
	KubeconfigSecretRef *SecretKeyReference `json:"kubeconfigSecretRef,omitempty"`

	// Namespaces the cluster may send objects from. Empty means every namespace and the
	// cluster-scoped objects; otherwise only objects in these namespaces are accepted. Events
	// outside are dropped at ingest and counted (metric reason "policy"), never an error for
	// the apiserver.
	// +optional
	// +listType=set
	Namespaces []string `json:"namespaces,omitempty"`

	// Resources the cluster may send. Empty means every resource. "*" matches any group or
	// resource. Events for other resources are dropped and counted as for Namespaces.
	// +optional
	Resources []GroupResources `json:"resources,omitempty"`

	// RateLimit is the cluster's share of ingest, enforced across ingest replicas: past it an
	// audit batch is answered 429 with Retry-After, and the apiserver retries it. Absent
	// means no limit.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
}

// GroupResources names resources of API groups, as RBAC rules do.
type GroupResources struct {
	// APIGroups: "" is the core group; "*" is any group.
	// +kubebuilder:validation:MinItems=1
	APIGroups []string `json:"apiGroups"`
	// Resources: plural names, e.g. "deployments"; "*" is any resource.
	// +kubebuilder:validation:MinItems=1
	Resources []string `json:"resources"`
}

// RateLimit is a token bucket of audit events: it refills at EventsPerSecond up to Burst.
// A batch is accepted while the bucket is not empty and takes one token per event, so a
// batch larger than Burst still passes and the average stays at EventsPerSecond.
type RateLimit struct {
	// EventsPerSecond is the sustained rate of audit events accepted from the cluster.
	// +kubebuilder:validation:Minimum=1
	EventsPerSecond int32 `json:"eventsPerSecond"`
	// Burst is how many events may arrive at once after a quiet spell. Default: one second
	// of EventsPerSecond, and at least 400 (the apiserver's default batch).
	// +optional
	// +kubebuilder:validation:Minimum=1
	Burst int32 `json:"burst,omitempty"`
}

// SecretKeyReference names one key of a Secret in a given namespace.
type SecretKeyReference struct {
	// +kubebuilder:validation:MinLength=1
	Namespace string `json:"namespace"`
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Key in the Secret's data; defaults to "token".
	// +optional
	Key string `json:"key,omitempty"`
}

// SourceClusterStatus reports whether the cluster's credentials resolved.
type SourceClusterStatus struct {
	duckv1.Status `json:",inline"`
}

// SourceClusterList is a list of SourceClusters.
//
// +kubebuilder:object:root=true
type SourceClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SourceCluster `json:"items"`
}
