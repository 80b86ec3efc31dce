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
	// OpScale sets the replicas of an object through its scale subresource. The audit event
	// holds only the Scale, not the object, so the change carries the replicas alone.
	OpScale Op = "scale"
)

// Reason says why an event proved no object change. Callers count them; none is an error.
type Reason string

const (
	ReasonNotComplete Reason = "not-complete" // a stage before ResponseComplete
	ReasonFailed      Reason = "failed"       // no 2xx response: nothing was persisted
	ReasonDryRun      Reason = "dry-run"      // validated, never persisted
	ReasonReadOnly    Reason = "read-only"    // get, list, watch and other non-mutating verbs
	ReasonSubresource Reason = "subresource"  // status and others that do not change what is declared
	ReasonNoObject    Reason = "no-object"    // no object to read (e.g. audit level below RequestResponse)
	ReasonTerminating Reason = "terminating"  // a delete held by finalizers: the object still exists

	// ReasonSubresourceRefresh is a subresource write that changes the parent's spec in a way
	// the event does not show (pods/binding, pods/ephemeralcontainers, pods/resize,
	// pods/eviction, namespaces/finalize). The reconcile job refreshes such objects.
	ReasonSubresourceRefresh Reason = "subresource-refresh"
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
	// Object is the object as the apiserver returned it; nil for deletes and scales.
	Object map[string]any
	// Replicas is what a scale (OpScale) set the object's spec.replicas to.
	Replicas *int64

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
	case dryRun(e.RequestURI), e.dryRunDelete():
		return nil, ReasonDryRun
	case e.ObjectRef.Subresource != "":
		return e.subresourceChanges()
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
//
// The apiserver answers with the items as it listed them before deleting each, not as the
// deletes left them, so a held delete does not show. An item that had finalizers, or a
// propagation policy that adds one (Foreground, Orphan), leaves the object Terminating; the
// update that removes its last finalizer proves it gone.
func (e *Event) collectionDeletes(list map[string]any) ([]Change, Reason) {
	items, _ := list["items"].([]any)
	if len(items) == 0 {
		return nil, ReasonNoObject
	}
	if e.addsFinalizer() {
		return nil, ReasonTerminating
	}
	changes := make([]Change, 0, len(items))
	for _, it := range items {
		item, _ := it.(map[string]any)
		if fin, _ := meta(item)["finalizers"].([]any); item == nil || len(fin) > 0 {
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

// Subresources whose writes change the parent object's spec without the event showing the
// result.
var refreshSubresources = map[string]bool{
	"binding":             true, // pods: spec.nodeName
	"ephemeralcontainers": true, // pods: spec.ephemeralContainers
	"resize":              true, // pods: container resources
	"eviction":            true, // pods: a graceful delete
	"finalize":            true, // namespaces: spec.finalizers
}

// subresourceChanges judges a write to a subresource. Only scale proves a change of the
// declared object that can be written from the event alone.
func (e *Event) subresourceChanges() ([]Change, Reason) {
	switch sub := e.ObjectRef.Subresource; {
	case sub == "scale":
		return e.scale()
	case refreshSubresources[sub]:
		return nil, ReasonSubresourceRefresh
	}
	return nil, ReasonSubresource
}

// scale reads an autoscaling/v1 Scale response into a change of its parent object. The
// Scale's uid and resourceVersion are the parent's, so the change orders with the parent's
// other changes. Its labels are not the parent's: they are left unknown, so a rule's label
// selector does not drop the change (the writer only edits files that exist).
func (e *Event) scale() ([]Change, Reason) {
	obj := decodeObject(e.ResponseObject)
	if obj == nil || obj["apiVersion"] != "autoscaling/v1" || obj["kind"] != "Scale" {
		return nil, ReasonNoObject
	}
	spec, _ := obj["spec"].(map[string]any)
	var replicas int64
	switch n := spec["replicas"].(type) {
	case json.Number:
		v, err := n.Int64()
		if err != nil {
			return nil, ReasonNoObject
		}
		replicas = v
	case nil:
		// spec.replicas is omitempty in autoscaling/v1: absent means zero.
		if spec == nil {
			return nil, ReasonNoObject
		}
	default:
		return nil, ReasonNoObject
	}
	c := e.change(OpScale, nil)
	if uid := metaString(obj, "uid"); uid != "" {
		c.UID = uid
	}
	if rv := metaString(obj, "resourceVersion"); rv != "" {
		c.ResourceVersion = rv
	}
	c.Replicas = &replicas
	if c.Name == "" {
		return nil, ReasonNoObject
	}
	return []Change{c}, ""
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

// dryRunDelete reports a delete whose DeleteOptions, sent as the request body, ask for a
// dry run. Its response looks like a real delete's, so only the request tells them apart.
func (e *Event) dryRunDelete() bool {
	if e.Verb != "delete" && e.Verb != "deletecollection" {
		return false
	}
	r := e.RequestObject
	return r != nil && r.Kind == "DeleteOptions" && len(r.DryRun) > 0
}

// addsFinalizer reports a delete whose options make the apiserver add a finalizer to every
// object it deletes (foregroundDeletion or orphan), so none is gone when the request ends.
// The options come in the body or, less often, the query string.
func (e *Event) addsFinalizer() bool {
	policy, orphan := "", false
	if r := e.RequestObject; r != nil && r.Kind == "DeleteOptions" {
		policy, orphan = r.PropagationPolicy, r.OrphanDependents != nil && *r.OrphanDependents
	}
	if _, query, ok := strings.Cut(e.RequestURI, "?"); ok {
		if values, err := url.ParseQuery(query); err == nil {
			if p := values.Get("propagationPolicy"); p != "" {
				policy = p
			}
			orphan = orphan || values.Get("orphanDependents") == "true"
		}
	}
	return policy == "Foreground" || policy == "Orphan" || (policy == "" && orphan)
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
