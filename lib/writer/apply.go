package writer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/lease"
)

// Apply writes changes that do not come from the stream (a snapshot of a target) as one
// commit per cluster, made even when nothing differs, under the partition's lease as a drain
// would: a live event already written at a newer resourceVersion is not rolled back, and the
// versions written are recorded so older live events queued meanwhile are skipped. id names
// the snapshot in the commit. It waits up to wait for a busy lease.
func (w *Writer) Apply(ctx context.Context, p identity.Partition, id string, changes []*change.Change, wait time.Duration) (Result, error) {
	batch := make([]decoded, 0, len(changes))
	for _, c := range changes {
		payload, err := c.Marshal()
		if err != nil {
			return Result{}, err
		}
		// Delivered once and never dead-lettered: a change that cannot be written fails
		// the Apply instead, since there is no stream entry to park.
		batch = append(batch, decoded{msg: bus.Message{Payload: payload, Deliveries: 1}, change: c})
	}
	deadline := time.Now().Add(wait)
	backoff := 100 * time.Millisecond
	for {
		var res Result
		var failed []error
		busy, err := w.underLease(ctx, p, func(ctx context.Context, l *lease.Lease, m *mirror, st batchState) error {
			st.snapshot = id
			st.maxDeliveries = 2 // above the single delivery: nothing is parked
			p, err := w.writeAndAck(ctx, l, m, batch, st, &res)
			for i, outcome := range p.outcomes {
				if outcome == outcomeRetried {
					_, why := fileChange(batch[i].change, st.roots) // the reason, found again
					failed = append(failed, fmt.Errorf("%s not written: %v", batch[i].change.Key, why))
				}
			}
			return err
		})
		if err != nil || !busy {
			return res, errors.Join(err, errors.Join(failed...))
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("partition %s: the lease stayed held for %v; is a writer stuck?", p.ID, wait)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}
