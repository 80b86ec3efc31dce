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

// Parse is the inverse of Path: the object a file under the target's root holds. ok is false
// for any file the layout does not produce (a README, a file at the wrong depth), which the
// product must leave alone. The key's Cluster is not in the path and is left empty.
func Parse(targetPath, p string) (k identity.Key, ok bool) {
	root := Root(targetPath)
	if root != "" {
		rest, found := strings.CutPrefix(p, root+"/")
		if !found {
			return k, false
		}
		p = rest
	}
	parts := strings.Split(p, "/")
	if len(parts) != 4 || !strings.HasSuffix(parts[3], Ext) {
		return k, false
	}
	name := strings.TrimSuffix(parts[3], Ext)
	if parts[0] == "" || parts[1] == "" || parts[2] == "" || name == "" {
		return k, false
	}
	k = identity.Key{Namespace: parts[0], Group: parts[1], Resource: parts[2], Name: name}
	if k.Namespace == identity.NamespaceDir("") {
		k.Namespace = ""
	}
	if k.Group == identity.GroupDir("") {
		k.Group = ""
	}
	return k, true
}
