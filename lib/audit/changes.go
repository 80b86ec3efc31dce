package audit

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

// Op is what happened to an object.
type Op string

const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Reason says why an event proved no object change. Callers count them; none is an error.
type Reason string

const (
	ReasonNotComplete Reason = "not-complete" // a stage before ResponseComplete
	ReasonFailed      Reason = "failed"       // no 2xx response: nothing was persisted
	ReasonDryRun      Reason = "dry-run"      // validated, never persisted
	ReasonReadOnly    Reason = "read-only"    // get, list, watch and other non-mutating verbs
	ReasonSubresource Reason = "subresource"  // status, scale and others: not the object itself
	ReasonNoObject    Reason = "no-object"    // no object to read (e.g. audit level below RequestResponse)
	ReasonTerminating Reason = "terminating"  // a delete held by finalizers: the object still exists
)

// Actor is who made a change: the impersonated user when there is one, since that is whose
// authority the change was made with; the real user is kept in ImpersonatedBy.
type Actor struct {
	Username       string   `json:"username"`
	Groups         []string `json:"groups,omitempty"`
	ImpersonatedBy string   `json:"impersonatedBy,omitempty"`
}

// Change is one object's change, as proved by an audit event.
type Change struct {
	Op       Op
	Verb     string
	Group    string
	Version  string
	Resource string

	Namespace       string
	Name            string
	UID             string
	ResourceVersion string
	// Labels are the object's labels; nil when unknown (a delete answered with a Status).
	Labels map[string]string
	// Object is the object as the apiserver returned it; nil for deletes.
	Object map[string]any

	Actor   Actor
	AuditID string
	Time    time.Time
}

// Changes returns the object changes an event proves, or the reason it proves none.
func (e *Event) Changes() ([]Change, Reason) {
	switch {
	case e.Stage != StageResponseComplete:
		return nil, ReasonNotComplete
	case e.ResponseStatus == nil || e.ResponseStatus.Code < 200 || e.ResponseStatus.Code > 299:
		return nil, ReasonFailed
	case !mutating(e.Verb):
		return nil, ReasonReadOnly
	case e.ObjectRef == nil || e.ObjectRef.Resource == "":
		return nil, ReasonNoObject
	case e.ObjectRef.Subresource != "":
		return nil, ReasonSubresource
	case dryRun(e.RequestURI):
		return nil, ReasonDryRun
	}

	obj := decodeObject(e.ResponseObject)
	if e.Verb == "deletecollection" {
		return e.collectionDeletes(obj)
	}
	if obj != nil && obj["kind"] == "Status" {
		obj = nil // a delete answered with a Status: the object is gone, its content unknown
	}

	c := e.change(OpUpdate, obj)
	switch {
	case e.Verb == "create" || e.ResponseStatus.Code == 201: // a server-side apply can create
		c.Op = OpCreate
	case e.Verb == "delete":
		if terminating(obj) {
			return nil, ReasonTerminating
		}
		c.Op, c.Object = OpDelete, nil
	case deleted(obj):
		// An update that removed the last finalizer of a deleting object: it is gone now.
		c.Op, c.Object = OpDelete, nil
	}
	if c.Op != OpDelete && c.Object == nil {
		return nil, ReasonNoObject
	}
	if c.Name == "" {
		return nil, ReasonNoObject
	}
	return []Change{c}, ""
}

// collectionDeletes expands a deletecollection response (a list of the deleted items).
func (e *Event) collectionDeletes(list map[string]any) ([]Change, Reason) {
	items, _ := list["items"].([]any)
	if len(items) == 0 {
		return nil, ReasonNoObject
	}
	changes := make([]Change, 0, len(items))
	for _, it := range items {
		item, _ := it.(map[string]any)
		if item == nil || terminating(item) {
			continue
		}
		c := e.change(OpDelete, item)
		c.Name, c.Object = metaString(item, "name"), nil
		if c.Name != "" {
			changes = append(changes, c)
		}
	}
	if len(changes) == 0 {
		return nil, ReasonTerminating
	}
	return changes, ""
}

// change fills a Change from the event and, when known, the object.
func (e *Event) change(op Op, obj map[string]any) Change {
	ref := e.ObjectRef
	c := Change{
		Op:              op,
		Verb:            e.Verb,
		Group:           ref.APIGroup,
		Version:         ref.APIVersion,
		Resource:        ref.Resource,
		Namespace:       ref.Namespace,
		Name:            ref.Name,
		UID:             ref.UID,
		ResourceVersion: ref.ResourceVersion,
		Object:          obj,
		Actor:           actor(e),
		AuditID:         e.AuditID,
		Time:            e.StageTimestamp,
	}
	if obj == nil {
		return c
	}
	if ns := metaString(obj, "namespace"); ns != "" {
		c.Namespace = ns
	}
	if name := metaString(obj, "name"); name != "" {
		c.Name = name // create with generateName has no name in the objectRef
	}
	if uid := metaString(obj, "uid"); uid != "" {
		c.UID = uid
	}
	if rv := metaString(obj, "resourceVersion"); rv != "" {
		c.ResourceVersion = rv
	}
	c.Labels = map[string]string{}
	if m, ok := meta(obj)["labels"].(map[string]any); ok {
		for k, v := range m {
			if s, ok := v.(string); ok {
				c.Labels[k] = s
			}
		}
	}
	return c
}

func actor(e *Event) Actor {
	if e.ImpersonatedUser != nil && e.ImpersonatedUser.Username != "" {
		return Actor{Username: e.ImpersonatedUser.Username, Groups: e.ImpersonatedUser.Groups, ImpersonatedBy: e.User.Username}
	}
	return Actor{Username: e.User.Username, Groups: e.User.Groups}
}

func mutating(verb string) bool {
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

// dryRun reports whether the request asked for a dry run (?dryRun=All).
func dryRun(requestURI string) bool {
	_, query, ok := strings.Cut(requestURI, "?")
	if !ok {
		return false
	}
	values, err := url.ParseQuery(query)
	return err == nil && len(values["dryRun"]) > 0
}

// decodeObject parses a response object, keeping numbers exact. It returns nil for anything
// that is not a JSON object.
func decodeObject(raw json.RawMessage) map[string]any {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil
	}
	return obj
}

func meta(obj map[string]any) map[string]any {
	m, _ := obj["metadata"].(map[string]any)
	return m
}

func metaString(obj map[string]any, field string) string {
	s, _ := meta(obj)[field].(string)
	return s
}

// terminating reports an object marked for deletion but held by finalizers.
func terminating(obj map[string]any) bool {
	m := meta(obj)
	fin, _ := m["finalizers"].([]any)
	return m["deletionTimestamp"] != nil && len(fin) > 0
}

// deleted reports an object marked for deletion with no finalizers left: the apiserver
// removes it as part of the same request.
func deleted(obj map[string]any) bool {
	m := meta(obj)
	fin, _ := m["finalizers"].([]any)
	return m["deletionTimestamp"] != nil && len(fin) == 0
}
