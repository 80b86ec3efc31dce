package change

import (
	"encoding/json"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/layout"
	"github.com/gitops-reverser/gitops-reverser/lib/rules"
)

// For starts the change of one object for one target: its id (from origin, the audit id or
// reconcile run that saw the change), partition, key, target and file. The caller adds who,
// when and which resourceVersion. It returns nil when the target keeps such objects out of
// Git (Secrets under SecretPolicy exclude). object is the sanitized object; only an upsert
// carries it.
func For(t *rules.Target, origin string, op Op, key identity.Key, object json.RawMessage) *Change {
	if key.Group == "" && key.Resource == "secrets" && t.SecretPolicy == v1alpha1.SecretPolicyExclude {
		return nil
	}
	c := &Change{
		ID:        identity.EventID(origin, key, t.Ref),
		Op:        op,
		Partition: t.Partition.ID,
		Key:       key,
		Target:    t.Ref,
		Path:      layout.Path(t.Path, key),
	}
	if op == OpUpsert {
		c.Object = object
	}
	return c
}
