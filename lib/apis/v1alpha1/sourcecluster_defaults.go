package v1alpha1

// DefaultSecretKey is the Secret key read when a SecretKeyReference names none.
const DefaultSecretKey = "token"

// EffectiveKey returns the Secret key to read: Key, or DefaultSecretKey when it is empty.
func (r SecretKeyReference) EffectiveKey() string {
	if r.Key == "" {
		return DefaultSecretKey
	}
	return r.Key
}
