package identity

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Key identifies one object in one source cluster. The API version is not part of it: the
// same object read at two versions is still one object.
type Key struct {
	Cluster   string `json:"cluster"`
	Group     string `json:"group,omitempty"`
	Resource  string `json:"resource"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String renders the key as cluster/group/resource/namespace/name, with "core" for the core
// group and "_cluster" for cluster-scoped objects, so every part is non-empty and unambiguous.
func (k Key) String() string {
	return k.Cluster + "/" + GroupDir(k.Group) + "/" + k.Resource + "/" + NamespaceDir(k.Namespace) + "/" + k.Name
}

// GroupDir is the name used for an API group where an empty string would be ambiguous.
func GroupDir(group string) string {
	if group == "" {
		return "core"
	}
	return group
}

// NamespaceDir is the name used for a namespace where an empty string would be ambiguous.
func NamespaceDir(namespace string) string {
	if namespace == "" {
		return "_cluster"
	}
	return namespace
}

// TargetRef names a GitTarget.
type TargetRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// String renders the reference as namespace/name.
func (r TargetRef) String() string { return r.Namespace + "/" + r.Name }

// Partition is one Git repository branch. All changes for it are queued in one stream and
// written by one writer at a time, so commits on a branch never race each other.
type Partition struct {
	// ID is a short stable hash of RepoURL and Branch, safe in Valkey keys and CloudEvent
	// extensions.
	ID      string `json:"id"`
	RepoURL string `json:"repoURL"`
	Branch  string `json:"branch"`
}

// PartitionOf returns the partition of a repository branch. A trailing slash on the URL does
// not make a new partition.
func PartitionOf(repoURL, branch string) Partition {
	repoURL = strings.TrimRight(repoURL, "/")
	return Partition{ID: hash(repoURL, branch)[:16], RepoURL: repoURL, Branch: branch}
}

// EventID is the deterministic id of the event that carries one object's change to one target.
// origin is what produced the change: an audit id, or a reconcile run id. Retrying the same
// audit batch therefore produces the same ids, which ingest uses to append each event once.
func EventID(origin string, key Key, target TargetRef) string {
	return hash(origin, key.String(), target.String())[:32]
}

// hash joins the parts with a NUL (which none of them can contain) and returns hex SHA-256.
func hash(parts ...string) string {
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}
