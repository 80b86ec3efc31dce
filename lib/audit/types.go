package audit

import (
	"encoding/json"
	"time"
)

// APIVersion and ListKind are what an audit webhook batch must declare.
const (
	APIVersion = "audit.k8s.io/v1"
	ListKind   = "EventList"
)

// StageResponseComplete is the stage at which the response has been sent.
const StageResponseComplete = "ResponseComplete"

// EventList is a batch of audit events.
type EventList struct {
	APIVersion string  `json:"apiVersion"`
	Kind       string  `json:"kind"`
	Items      []Event `json:"items"`
}

// Event is one audit event, reduced to what ingest reads.
type Event struct {
	AuditID          string           `json:"auditID"`
	Stage            string           `json:"stage"`
	RequestURI       string           `json:"requestURI"`
	Verb             string           `json:"verb"`
	User             UserInfo         `json:"user"`
	ImpersonatedUser *UserInfo        `json:"impersonatedUser,omitempty"`
	ObjectRef        *ObjectReference `json:"objectRef,omitempty"`
	ResponseStatus   *ResponseStatus  `json:"responseStatus,omitempty"`
	// RequestObject is read only for the DeleteOptions of a delete, which clients send in
	// the body (client-go, kubectl) rather than the query string.
	RequestObject  *RequestObject    `json:"requestObject,omitempty"`
	ResponseObject json.RawMessage   `json:"responseObject,omitempty"`
	StageTimestamp time.Time         `json:"stageTimestamp"`
	Annotations    map[string]string `json:"annotations,omitempty"`
}

// RequestObject is the little read of a request body: enough of a DeleteOptions to tell a
// dry run and a delete held by the finalizer it adds. Any other body (a whole object) decodes to its kind alone, so the
// request side of an event costs no copy.
type RequestObject struct {
	Kind              string   `json:"kind"`
	DryRun            []string `json:"dryRun"`
	PropagationPolicy string   `json:"propagationPolicy"`
	OrphanDependents  *bool    `json:"orphanDependents"`
}

// UserInfo is the authenticated user of a request.
type UserInfo struct {
	Username string   `json:"username"`
	Groups   []string `json:"groups,omitempty"`
}

// ObjectReference names the object a request acted on.
type ObjectReference struct {
	Resource        string `json:"resource,omitempty"`
	Namespace       string `json:"namespace,omitempty"`
	Name            string `json:"name,omitempty"`
	UID             string `json:"uid,omitempty"`
	APIGroup        string `json:"apiGroup,omitempty"`
	APIVersion      string `json:"apiVersion,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	Subresource     string `json:"subresource,omitempty"`
}

// ResponseStatus is the status the apiserver answered with.
type ResponseStatus struct {
	Code int `json:"code"`
}
