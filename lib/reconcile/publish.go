package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

// publish appends the changes to the partition's stream in batches, in order, and tells the
// writer. A partition at its backlog cap is waited on, never skipped: the job is the safety
// net and must not lose what it found.
func publish(ctx context.Context, o *Options, p identity.Partition, changes []*change.Change) (int, error) {
	if len(changes) == 0 {
		return 0, nil
	}
	now := time.Now()
	published := 0
	for start := 0; start < len(changes); start += o.Batch {
		end := min(start+o.Batch, len(changes))
		entries := make([]bus.Entry, 0, end-start)
		for _, c := range changes[start:end] {
			if c.Time.IsZero() {
				c.Time = now
			}
			payload, err := c.Marshal()
			if err != nil {
				return published, err
			}
			entries = append(entries, bus.Entry{ID: c.ID, Payload: payload})
		}
		n, err := appendWaiting(ctx, o, p, entries)
		published += n
		o.Published(end - start)
		if err != nil {
			return published, err
		}
		if o.Notifier != nil {
			o.Notifier.Notify(p) // let the writer start on the first batches while we append
		}
	}
	return published, nil
}

// appendWaiting appends, waiting with backoff while the partition is full or Valkey is away.
func appendWaiting(ctx context.Context, o *Options, p identity.Partition, entries []bus.Entry) (int, error) {
	deadline := time.Now().Add(o.FullWait)
	wait := 200 * time.Millisecond
	for {
		n, err := o.Bus.Append(ctx, p.ID, entries)
		if err == nil || !(errors.Is(err, bus.ErrFull) || errors.Is(err, bus.ErrUnavailable)) {
			return n, err
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("partition %s: %w for %v; is a writer draining it?", p.ID, err, o.FullWait)
		}
		if o.Notifier != nil && errors.Is(err, bus.ErrFull) {
			o.Notifier.Notify(p)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}
