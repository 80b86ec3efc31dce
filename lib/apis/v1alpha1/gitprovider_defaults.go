package v1alpha1

// The committer used when spec.committer is unset, as documented on GitProviderSpec.Committer.
const (
	DefaultCommitterName  = "GitOps Reverser"
	DefaultCommitterEmail = "noreply@gitops-reverser.dev"
)

// EffectiveCommitter returns the identity to record as committer: spec.committer, with
// DefaultCommitterName and DefaultCommitterEmail filling whatever is unset. The API server
// rejects an empty name or e-mail, but documents read in local mode are not schema-checked.
func (s *GitProviderSpec) EffectiveCommitter() Identity {
	id := Identity{Name: DefaultCommitterName, Email: DefaultCommitterEmail}
	if s.Committer == nil {
		return id
	}
	if s.Committer.Name != "" {
		id.Name = s.Committer.Name
	}
	if s.Committer.Email != "" {
		id.Email = s.Committer.Email
	}
	return id
}
