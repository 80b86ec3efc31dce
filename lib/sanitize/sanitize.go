// Package sanitize turns an object as the apiserver returns it into the object worth keeping
// in Git: it drops the state the server owns (status, uid, resourceVersion, managedFields, ...)
// and replaces every Secret value before the object is queued anywhere, so no plaintext secret
// ever reaches Valkey or Git. Every other field is kept as it was.
package sanitize

// Redacted replaces each Secret value. It is not valid base64 on purpose: a redacted Secret
// applied back to a cluster fails loudly instead of storing a bogus value.
const Redacted = "REDACTED"

// LastAppliedAnnotation holds kubectl's copy of the last applied object, Secret values included.
const LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// serverMetadata are metadata fields the apiserver sets; they change without a user's intent.
var serverMetadata = []string{
	"uid", "resourceVersion", "generation", "creationTimestamp", "selfLink", "managedFields",
	"deletionTimestamp", "deletionGracePeriodSeconds",
}

// Object sanitizes obj in place and returns it.
func Object(obj map[string]any) map[string]any {
	delete(obj, "status")
	if meta, ok := obj["metadata"].(map[string]any); ok {
		for _, f := range serverMetadata {
			delete(meta, f)
		}
		if ann, ok := meta["annotations"].(map[string]any); ok {
			delete(ann, LastAppliedAnnotation)
			if len(ann) == 0 {
				delete(meta, "annotations")
			}
		}
	}
	if IsSecret(obj) {
		redact(obj, "data")
		redact(obj, "stringData")
	}
	return obj
}

// IsSecret reports whether obj is a core v1 Secret.
func IsSecret(obj map[string]any) bool {
	return obj["apiVersion"] == "v1" && obj["kind"] == "Secret"
}

// redact replaces every value of the map at field, keeping the keys.
func redact(obj map[string]any, field string) {
	m, ok := obj[field].(map[string]any)
	if !ok {
		return
	}
	for k := range m {
		m[k] = Redacted
	}
}
