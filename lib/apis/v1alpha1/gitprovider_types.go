package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
	"knative.dev/pkg/kmeta"
)

// Compile-time checks that GitProvider works with knative's generic helpers (owner references,
// condition managers, KResource duck typing) and with the scheme.
var (
	_ runtime.Object          = (*GitProvider)(nil)
	_ runtime.Object          = (*GitProviderList)(nil)
	_ kmeta.OwnerRefable      = (*GitProvider)(nil)
	_ duckv1.KRShaped         = (*GitProvider)(nil)
	_ apis.ConditionsAccessor = (*GitProviderStatus)(nil)
)

// GitProvider is a Git repository the writer commits to, with the credentials to push and the
// identity that commits.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=gitops-reverser
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Last Push",type=date,JSONPath=`.status.lastPushTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GitProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   GitProviderSpec   `json:"spec"`
	Status GitProviderStatus `json:"status,omitempty"`
}

// GitProviderSpec says where the repository is and how to write to it.
type GitProviderSpec struct {
	// URL of the repository: https://, http:// or ssh:// (or scp-like git@host:path). It cannot
	// change: the commits already written belong to this repository.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="url is immutable: create a new GitProvider for another repository"
	URL string `json:"url"`

	// SecretRef names a Secret in the GitProvider's namespace with the push credentials:
	// "username" and "password" (basic auth, or a token as password), or "token" alone, or
	// "ssh-privatekey" with "known_hosts" (and optional "ssh-passphrase"). No Secret means an
	// anonymous remote.
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`

	// Committer is the identity recorded as committer; the author is always the Kubernetes user
	// who made the change. Defaults to "GitOps Reverser <noreply@gitops-reverser.dev>".
	// +optional
	Committer *Identity `json:"committer,omitempty"`
}

// Identity is a Git name and e-mail address.
type Identity struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +kubebuilder:validation:MinLength=1
	Email string `json:"email"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// GitProviderStatus reports whether the repository was reachable and writable.
type GitProviderStatus struct {
	duckv1.Status `json:",inline"`

	// LastPushTime is when a push to the repository, on any branch, last succeeded.
	// +optional
	LastPushTime *metav1.Time `json:"lastPushTime,omitempty"`
}

// GitProviderList is a list of GitProviders.
//
// +kubebuilder:object:root=true
type GitProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []GitProvider `json:"items"`
}
