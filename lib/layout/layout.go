// Package layout decides where an object lives in Git. It is the only place that knows the
// file layout, so the writer, the reconcile job and the tests agree on every path:
//
//	{target path}/{namespace or _cluster}/{group or core}/{resource}/{name}.yaml
package layout

import (
	"path"
	"strings"

	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

// Ext is the extension of every object file.
const Ext = ".yaml"

// Path returns the slash-separated path, relative to the repository root, of the file holding
// the object with the given key in a target rooted at targetPath.
func Path(targetPath string, k identity.Key) string {
	return path.Join(Root(targetPath), identity.NamespaceDir(k.Namespace), identity.GroupDir(k.Group), k.Resource, k.Name+Ext)
}

// Root cleans a target path into the folder the target owns; "" means the repository root.
func Root(targetPath string) string {
	p := strings.Trim(path.Clean("/"+targetPath), "/")
	return p
}
