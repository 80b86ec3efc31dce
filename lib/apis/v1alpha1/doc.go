// Package v1alpha1 holds the reverser.gitops.dev/v1alpha1 API: the objects a user applies to
// say which Kubernetes changes become which Git commits.
//
//   - GitProvider: a Git repository and how to reach and commit to it.
//   - GitTarget: a branch and folder of a GitProvider that receives objects from named clusters.
//   - WatchRule: which namespaced resources of one namespace go to a GitTarget.
//   - ClusterWatchRule: the same for cluster-scoped resources or many namespaces.
//   - SourceCluster: a cluster allowed to send audit events, and how it authenticates.
//
// The same documents are read from the API server in a cluster, or from one YAML file in local
// mode (see lib/catalog). Status uses knative.dev/pkg conditions; each kind declares its
// ConditionSet once, in its _lifecycle.go file, and only the Mark* methods there change
// conditions.
//
// The generated CRD schemas (test/tools/codegen.sh) describe status from knative's own Go types.
// controller-gen handles them without help: apis.VolatileTime, which would otherwise be an object
// wrapping metav1.Time, carries a +kubebuilder:validation:Type=string marker in knative.dev/pkg,
// so lastTransitionTime is a string, and each condition still requires type and status. The
// API server therefore validates conditions, and nothing here overrides knative's schema.
//
// +k8s:deepcopy-gen=package
// +groupName=reverser.gitops.dev
package v1alpha1
