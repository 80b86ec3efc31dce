package v1alpha1

// DefaultSecretKey is the Secret key read when a SecretKeyReference names none.
const DefaultSecretKey = "token"

// DefaultKubeconfigKey is the Secret key read for a SourceCluster's kubeconfig when its
// reference names none.
const DefaultKubeconfigKey = "kubeconfig"

// EffectiveKey returns the Secret key to read: Key, or DefaultSecretKey when it is empty.
func (r SecretKeyReference) EffectiveKey() string { return r.keyOr(DefaultSecretKey) }

// EffectiveKubeconfigKey returns the Secret key of a kubeconfig reference: Key, or
// DefaultKubeconfigKey when it is empty.
func (r SecretKeyReference) EffectiveKubeconfigKey() string { return r.keyOr(DefaultKubeconfigKey) }

func (r SecretKeyReference) keyOr(def string) string {
	if r.Key == "" {
		return def
	}
	return r.Key
}

// DefaultMinBurst is the smallest default Burst of a RateLimit: the apiserver's default
// audit batch size, so one batch fits in a full bucket.
const DefaultMinBurst = 400

// EffectiveBurst returns Burst, or one second of EventsPerSecond and at least
// DefaultMinBurst when it is unset.
func (r RateLimit) EffectiveBurst() int32 {
	if r.Burst > 0 {
		return r.Burst
	}
	return max(r.EventsPerSecond, DefaultMinBurst)
}
