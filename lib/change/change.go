package change

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

// CloudEvent types.
const (
	TypeUpsert         = "dev.gitops.reverser.object.upsert"
	TypeDelete         = "dev.gitops.reverser.object.delete"
	TypeScale          = "dev.gitops.reverser.object.scale"
	TypePartitionReady = "dev.gitops.reverser.partition.ready"
)

// CloudEvent extension attributes.
const (
	ExtPartitionKey = "partitionkey" // the standard partitioning extension
	ExtActor        = "actor"
	ExtAuditID      = "auditid"
)

// ErrInvalid is returned when a CloudEvent is not a well-formed change.
var ErrInvalid = errors.New("invalid change event")

// Op is what the writer does with the object's file.
type Op string

const (
	OpUpsert Op = "upsert"
	OpDelete Op = "delete"
	// OpScale sets spec.replicas in the object's file, if the file exists and has the field:
	// a write to the scale subresource proves the new replicas, not the whole object.
	OpScale Op = "scale"
)

// Actor is the Kubernetes user behind a change.
type Actor struct {
	Username       string `json:"username"`
	ImpersonatedBy string `json:"impersonatedBy,omitempty"`
}

// Change is one object's change for one target.
type Change struct {
	ID        string             `json:"-"`
	Op        Op                 `json:"-"`
	Time      time.Time          `json:"-"`
	Partition string             `json:"-"`
	Actor     Actor              `json:"actor"`
	AuditID   string             `json:"auditID"`
	Verb      string             `json:"verb"`
	Key       identity.Key       `json:"key"`
	Target    identity.TargetRef `json:"target"`
	// Path is the file, relative to the repository root.
	Path string `json:"path"`
	// UID and ResourceVersion order changes to one object; they are not written to Git.
	UID             string `json:"uid,omitempty"`
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// Object is the sanitized object as JSON; empty for deletes and scales.
	Object json.RawMessage `json:"object,omitempty"`
	// Replicas is the new spec.replicas of a scale; nil for the other ops.
	Replicas *int64 `json:"replicas,omitempty"`
}

// Source is the CloudEvent source of a cluster's changes.
func Source(cluster string) string { return "/clusters/" + cluster }

// Event returns the change as a CloudEvent.
func (c *Change) Event() (cloudevents.Event, error) {
	e := cloudevents.NewEvent()
	e.SetID(c.ID)
	e.SetSource(Source(c.Key.Cluster))
	e.SetSubject(c.Key.String())
	e.SetTime(c.Time)
	switch c.Op {
	case OpDelete:
		e.SetType(TypeDelete)
	case OpScale:
		e.SetType(TypeScale)
	default:
		e.SetType(TypeUpsert)
	}
	e.SetExtension(ExtPartitionKey, c.Partition)
	e.SetExtension(ExtActor, c.Actor.Username)
	e.SetExtension(ExtAuditID, c.AuditID)
	if err := e.SetData(cloudevents.ApplicationJSON, c); err != nil {
		return e, err
	}
	return e, nil
}

// Marshal encodes the change as a structured-mode CloudEvent (application/cloudevents+json):
// the form stored in a stream entry.
func (c *Change) Marshal() ([]byte, error) {
	e, err := c.Event()
	if err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// FromEvent reads a change from a CloudEvent.
func FromEvent(e cloudevents.Event) (*Change, error) {
	c := &Change{}
	switch e.Type() {
	case TypeUpsert:
		c.Op = OpUpsert
	case TypeDelete:
		c.Op = OpDelete
	case TypeScale:
		c.Op = OpScale
	default:
		return nil, fmt.Errorf("%w: type %q", ErrInvalid, e.Type())
	}
	if err := e.DataAs(c); err != nil {
		return nil, fmt.Errorf("%w: data: %v", ErrInvalid, err)
	}
	c.ID, c.Time = e.ID(), e.Time()
	c.Partition, _ = e.Extensions()[ExtPartitionKey].(string)
	if c.Key.Cluster == "" || c.Key.Resource == "" || c.Key.Name == "" || c.Path == "" {
		return nil, fmt.Errorf("%w: %s: key or path missing", ErrInvalid, e.ID())
	}
	if strings.TrimPrefix(e.Source(), "/clusters/") != c.Key.Cluster {
		return nil, fmt.Errorf("%w: %s: source %q does not match cluster %q", ErrInvalid, e.ID(), e.Source(), c.Key.Cluster)
	}
	if c.Op == OpUpsert && len(c.Object) == 0 {
		return nil, fmt.Errorf("%w: %s: upsert without object", ErrInvalid, e.ID())
	}
	if c.Op == OpScale && (c.Replicas == nil || *c.Replicas < 0) {
		return nil, fmt.Errorf("%w: %s: scale without replicas", ErrInvalid, e.ID())
	}
	return c, nil
}

// Unmarshal decodes a structured-mode CloudEvent into a change.
func Unmarshal(b []byte) (*Change, error) {
	var e cloudevents.Event
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return FromEvent(e)
}

// PartitionReady is the data of a partition.ready event: the partition has work queued.
type PartitionReady struct {
	Partition identity.Partition `json:"partition"`
}

// ReadyEvent builds the CloudEvent that tells a writer a partition has work. Its id is unique
// per notification; writers treat repeats as harmless.
func ReadyEvent(p identity.Partition, source, id string) (cloudevents.Event, error) {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetSource(source)
	e.SetType(TypePartitionReady)
	e.SetSubject(p.ID)
	e.SetTime(time.Now())
	e.SetExtension(ExtPartitionKey, p.ID)
	err := e.SetData(cloudevents.ApplicationJSON, PartitionReady{Partition: p})
	return e, err
}

// ReadyFromEvent reads a partition.ready event.
func ReadyFromEvent(e cloudevents.Event) (identity.Partition, error) {
	if e.Type() != TypePartitionReady {
		return identity.Partition{}, fmt.Errorf("%w: type %q, want %s", ErrInvalid, e.Type(), TypePartitionReady)
	}
	var r PartitionReady
	if err := e.DataAs(&r); err != nil {
		return identity.Partition{}, fmt.Errorf("%w: data: %v", ErrInvalid, err)
	}
	p := r.Partition
	if p.RepoURL == "" || p.Branch == "" || identity.PartitionOf(p.RepoURL, p.Branch).ID != p.ID {
		return identity.Partition{}, fmt.Errorf("%w: partition %+v is not consistent", ErrInvalid, p)
	}
	return p, nil
}
