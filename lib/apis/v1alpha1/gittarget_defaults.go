package v1alpha1

// DefaultSecretPolicy is the SecretPolicy of a GitTarget that names none.
const DefaultSecretPolicy = SecretPolicyRedact

// EffectiveSecretPolicy returns spec.secretPolicy, or DefaultSecretPolicy when it is empty.
func (s *GitTargetSpec) EffectiveSecretPolicy() SecretPolicy {
	if s.SecretPolicy == "" {
		return DefaultSecretPolicy
	}
	return s.SecretPolicy
}
