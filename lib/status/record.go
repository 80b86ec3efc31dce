package status

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

// DefaultTimeout bounds each Valkey call of a Recorder.
const DefaultTimeout = 5 * time.Second

// maxMessage caps a recorded error message; a status condition is no place for a whole log.
const maxMessage = 1024

// Fields of a partition's status hash (bus.Keys.Status). Reconcile results are one field per
// target: reconcilePrefix + "namespace/name", holding a JSON Reconcile.
const (
	fieldCommit       = "commit"
	fieldPushedAt     = "pushedAt"
	fieldErrorReason  = "errorReason"
	fieldErrorMessage = "errorMessage"
	fieldErrorAt      = "errorAt"
	reconcilePrefix   = "reconcile:"
)

// Recorder keeps the results of a partition's drains and reconciles in Valkey, where every
// replica and job can read them. It is safe for concurrent use.
type Recorder struct {
	b *bus.Bus
}

// NewRecorder returns a Recorder on the bus's Valkey client and key prefix.
func NewRecorder(b *bus.Bus) *Recorder { return &Recorder{b: b} }

// Result is what was recorded for one partition (repository branch).
type Result struct {
	// Commit is the branch tip after the last successful drain; empty before the first.
	Commit string
	// PushedAt is when a drain last pushed a commit; zero before the first.
	PushedAt time.Time
	// ErrorReason and ErrorMessage describe the last failed drain since the last successful
	// one (a success clears them); ErrorReason is one Classify returns.
	ErrorReason, ErrorMessage string
	ErrorAt                   time.Time
	// Reconciles are the last reconcile of each of the partition's targets.
	Reconciles map[identity.TargetRef]Reconcile
}

// Reconcile is the last reconcile of one target.
type Reconcile struct {
	At    time.Time `json:"at"`
	Drift int64     `json:"drift"`
	// Error is why the reconcile did not complete; empty when it did.
	Error string `json:"error,omitempty"`
}

// RecordPush records a successful drain of a partition: the branch is at commit now. when is
// the time of the push; a zero when means the drain pushed nothing new (the branch was found
// at commit), which still clears the last error. An empty commit means the branch does not
// exist yet and nothing needed pushing.
func (r *Recorder) RecordPush(ctx context.Context, partitionID, commit string, when time.Time) error {
	fields := []string{fieldErrorReason, "", fieldErrorMessage, "", fieldErrorAt, ""}
	if commit != "" {
		fields = append(fields, fieldCommit, commit)
	}
	if !when.IsZero() {
		fields = append(fields, fieldPushedAt, when.UTC().Format(time.RFC3339Nano))
	}
	return r.hset(ctx, partitionID, fields)
}

// RecordError records a failed drain of a partition, with the reason Classify gives. An error
// Classify does not report (lease lost, Valkey down, request ended) records nothing.
func (r *Recorder) RecordError(ctx context.Context, partitionID string, err error) error {
	reason, ok := Classify(err)
	if !ok {
		return nil
	}
	return r.hset(ctx, partitionID, []string{
		fieldErrorReason, reason,
		fieldErrorMessage, truncate(err.Error()),
		fieldErrorAt, time.Now().UTC().Format(time.RFC3339Nano),
	})
}

// RecordReconcile records that the reconcile job compared target (whose repository branch is
// partitionID) with its source clusters at when and found drift objects that differed
// between them and Git; err is why it did not complete, or nil. The next projection shows it
// as the GitTarget's status.lastReconcileTime, status.drift and Reconciled condition.
func (r *Recorder) RecordReconcile(ctx context.Context, target identity.TargetRef, partitionID string, when time.Time, drift int, err error) error {
	rec := Reconcile{At: when.UTC(), Drift: int64(drift)}
	if err != nil {
		rec.Error = truncate(err.Error())
	}
	b, jerr := json.Marshal(rec)
	if jerr != nil {
		return fmt.Errorf("status: %w", jerr)
	}
	return r.hset(ctx, partitionID, []string{reconcilePrefix + target.String(), string(b)})
}

// Read returns what was recorded for a partition; nothing recorded is a zero Result.
func (r *Recorder) Read(ctx context.Context, partitionID string) (Result, error) {
	c := r.b.Client()
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	m, err := c.Do(ctx, c.B().Hgetall().Key(r.b.Keys(partitionID).Status).Build()).AsStrMap()
	if err != nil {
		return Result{}, fmt.Errorf("status: read results of partition %s: %w", partitionID, err)
	}
	res := Result{
		Commit:       m[fieldCommit],
		PushedAt:     parseTime(m[fieldPushedAt]),
		ErrorReason:  m[fieldErrorReason],
		ErrorMessage: m[fieldErrorMessage],
		ErrorAt:      parseTime(m[fieldErrorAt]),
		Reconciles:   map[identity.TargetRef]Reconcile{},
	}
	for k, v := range m {
		ref, ok := strings.CutPrefix(k, reconcilePrefix)
		if !ok {
			continue
		}
		ns, name, ok := strings.Cut(ref, "/")
		var rec Reconcile
		if !ok || json.Unmarshal([]byte(v), &rec) != nil {
			continue // written by a newer version: ignore rather than fail the whole projection
		}
		res.Reconciles[identity.TargetRef{Namespace: ns, Name: name}] = rec
	}
	return res, nil
}

func (r *Recorder) hset(ctx context.Context, partitionID string, fieldValues []string) error {
	c := r.b.Client()
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	cmd := c.B().Hset().Key(r.b.Keys(partitionID).Status).FieldValue()
	for i := 0; i+1 < len(fieldValues); i += 2 {
		cmd = cmd.FieldValue(fieldValues[i], fieldValues[i+1])
	}
	if err := c.Do(ctx, cmd.Build()).Error(); err != nil {
		return fmt.Errorf("status: record results of partition %s: %w", partitionID, err)
	}
	return nil
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	return strings.ToValidUTF8(s[:maxMessage], "") + "…"
}
