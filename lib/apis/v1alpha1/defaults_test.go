package v1alpha1

import "testing"

func TestEffectiveSecretPolicy(t *testing.T) {
	for _, tc := range []struct {
		in, want SecretPolicy
	}{
		{"", SecretPolicyRedact},
		{SecretPolicyRedact, SecretPolicyRedact},
		{SecretPolicyExclude, SecretPolicyExclude},
	} {
		spec := &GitTargetSpec{SecretPolicy: tc.in}
		if got := spec.EffectiveSecretPolicy(); got != tc.want {
			t.Errorf("EffectiveSecretPolicy() with %q = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEffectiveCommitter(t *testing.T) {
	def := Identity{Name: "GitOps Reverser", Email: "noreply@gitops-reverser.dev"}
	for _, tc := range []struct {
		name string
		in   *Identity
		want Identity
	}{
		{"unset: the documented default", nil, def},
		{"set", &Identity{Name: "Bot", Email: "bot@example.com"}, Identity{Name: "Bot", Email: "bot@example.com"}},
		{"only a name (local mode)", &Identity{Name: "Bot"}, Identity{Name: "Bot", Email: def.Email}},
		{"only an e-mail (local mode)", &Identity{Email: "bot@example.com"}, Identity{Name: def.Name, Email: "bot@example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &GitProviderSpec{Committer: tc.in}
			if got := spec.EffectiveCommitter(); got != tc.want {
				t.Errorf("EffectiveCommitter() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestEffectiveCommitterDoesNotAlias(t *testing.T) {
	spec := &GitProviderSpec{Committer: &Identity{Name: "Bot", Email: "bot@example.com"}}
	id := spec.EffectiveCommitter()
	id.Name = "changed"
	if spec.Committer.Name != "Bot" {
		t.Errorf("changing the result changed the spec: %+v", spec.Committer)
	}
}

func TestEffectiveKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "token"},
		{"bearer", "bearer"},
	} {
		ref := SecretKeyReference{Namespace: "ops", Name: "audit", Key: tc.in}
		if got := ref.EffectiveKey(); got != tc.want {
			t.Errorf("EffectiveKey() with %q = %q, want %q", tc.in, got, tc.want)
		}
	}
}
