package v1alpha1

// Reasons shared by kinds that read a Secret. Each kind's own reasons sit at the top of its
// _lifecycle.go file, next to the ConditionSet and the Mark* methods that use them. A reason is a
// CamelCase word meant for machines and `kubectl get`; the condition message says what to fix.
const (
	// ReasonSecretNotFound: the referenced Secret does not exist (or cannot be read).
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretKeyMissing: the Secret exists but lacks a required key, or the value is empty.
	ReasonSecretKeyMissing = "SecretKeyMissing"
	// ReasonSecretInvalid: the Secret's keys are present but their values cannot be used (a
	// malformed private key, known_hosts without an entry, a key combination that means nothing).
	ReasonSecretInvalid = "SecretInvalid"
)
