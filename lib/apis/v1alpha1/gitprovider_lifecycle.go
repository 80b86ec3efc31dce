package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"knative.dev/pkg/apis"
	duckv1 "knative.dev/pkg/apis/duck/v1"
)

// GitProvider conditions. Ready is True once the credentials resolved and the remote answered.
const (
	// GitProviderConditionReady is the top-level condition, computed from the others.
	GitProviderConditionReady = apis.ConditionReady
	// GitProviderConditionCredentialsResolved: the Secret in spec.secretRef exists and holds a
	// usable credential (or no Secret is referenced and the remote is used anonymously).
	GitProviderConditionCredentialsResolved apis.ConditionType = "CredentialsResolved"
	// GitProviderConditionRemoteReachable: the repository answered with these credentials.
	GitProviderConditionRemoteReachable apis.ConditionType = "RemoteReachable"
)

// GitProvider reasons, besides the shared ReasonSecret* ones for CredentialsResolved.
const (
	// ReasonAnonymous: no secretRef, so the remote is used without credentials. Not a failure.
	ReasonAnonymous = "Anonymous"
	// ReasonRemoteUnreachable: the remote could not be reached (DNS, connection, TLS, host key).
	ReasonRemoteUnreachable = "RemoteUnreachable"
	// ReasonAuthenticationFailed: the remote answered but refused the credentials.
	ReasonAuthenticationFailed = "AuthenticationFailed"
	// ReasonRepositoryNotFound: the remote answered but has no such repository.
	ReasonRepositoryNotFound = "RepositoryNotFound"
	// ReasonNotUsed: no GitTarget refers to the provider, so the remote was never contacted.
	ReasonNotUsed = "NotUsed"
)

// gitProviderCondSet is the only ConditionSet of GitProvider; every Mark* method goes through it.
var gitProviderCondSet = apis.NewLivingConditionSet(
	GitProviderConditionCredentialsResolved,
	GitProviderConditionRemoteReachable,
)

// GetConditionSet returns the ConditionSet of GitProvider (duckv1.KRShaped).
func (*GitProvider) GetConditionSet() apis.ConditionSet { return gitProviderCondSet }

// GetGroupVersionKind returns the kind of GitProvider (kmeta.OwnerRefable).
func (*GitProvider) GetGroupVersionKind() schema.GroupVersionKind {
	return SchemeGroupVersion.WithKind("GitProvider")
}

// GetStatus returns the knative status of the GitProvider (duckv1.KRShaped).
func (p *GitProvider) GetStatus() *duckv1.Status { return &p.Status.Status }

// IsReady reports whether the latest spec was reconciled and found Ready.
func (p *GitProvider) IsReady() bool {
	return p.Status.ObservedGeneration == p.Generation && p.Status.IsReady()
}

// InitializeConditions sets every unset condition to Unknown.
func (s *GitProviderStatus) InitializeConditions() {
	gitProviderCondSet.Manage(s).InitializeConditions()
}

// GetCondition returns the condition of type t, or nil.
func (s *GitProviderStatus) GetCondition(t apis.ConditionType) *apis.Condition {
	return gitProviderCondSet.Manage(s).GetCondition(t)
}

// IsReady reports whether the Ready condition is True.
func (s *GitProviderStatus) IsReady() bool {
	return gitProviderCondSet.Manage(s).IsHappy()
}

// MarkCredentialsResolved records that the Secret holds a usable credential.
func (s *GitProviderStatus) MarkCredentialsResolved() {
	gitProviderCondSet.Manage(s).MarkTrue(GitProviderConditionCredentialsResolved)
}

// MarkCredentialsAnonymous records that no Secret is referenced, which is fine for a public
// remote; RemoteReachable then says whether the remote agrees.
func (s *GitProviderStatus) MarkCredentialsAnonymous() {
	gitProviderCondSet.Manage(s).MarkTrueWithReason(GitProviderConditionCredentialsResolved,
		ReasonAnonymous, "no secretRef: the remote is accessed without credentials")
}

// MarkCredentialsFailed records why the credentials could not be used; reason is one of
// ReasonSecretNotFound, ReasonSecretKeyMissing or ReasonSecretInvalid. Ready becomes False.
func (s *GitProviderStatus) MarkCredentialsFailed(reason, messageFormat string, messageA ...any) {
	gitProviderCondSet.Manage(s).MarkFalse(GitProviderConditionCredentialsResolved,
		reason, messageFormat, messageA...)
}

// MarkRemoteReachable records that the repository answered with the credentials.
func (s *GitProviderStatus) MarkRemoteReachable() {
	gitProviderCondSet.Manage(s).MarkTrue(GitProviderConditionRemoteReachable)
}

// MarkRemoteUnreachable records why the repository could not be used; reason is one of
// ReasonRemoteUnreachable, ReasonAuthenticationFailed or ReasonRepositoryNotFound. Ready becomes
// False.
func (s *GitProviderStatus) MarkRemoteUnreachable(reason, messageFormat string, messageA ...any) {
	gitProviderCondSet.Manage(s).MarkFalse(GitProviderConditionRemoteReachable,
		reason, messageFormat, messageA...)
}

// MarkRemoteUnknown records that it is not known yet whether the repository works: reason is
// ReasonNotUsed (no GitTarget refers to the provider) or ReasonAwaitingPush (nothing was pushed
// yet). Ready becomes Unknown unless something failed.
func (s *GitProviderStatus) MarkRemoteUnknown(reason, messageFormat string, messageA ...any) {
	gitProviderCondSet.Manage(s).MarkUnknown(GitProviderConditionRemoteReachable,
		reason, messageFormat, messageA...)
}
