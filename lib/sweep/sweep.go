package sweep

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"knative.dev/pkg/logging"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

// Defaults of Options.
const (
	DefaultBackoff  = time.Minute
	DefaultParallel = 8
)

// Notifier tells a writer that a partition has work and says whether the writer took it
// (notify.Notifier.Send).
type Notifier interface {
	Send(ctx context.Context, p identity.Partition) error
}

// Options are the parts and limits of a pass.
type Options struct {
	Bus *bus.Bus
	// Notifier sends "partition ready"; nil sends nothing.
	Notifier Notifier
	// MaxRedrives is how often one event is re-driven at most. There is no default: 0
	// re-drives nothing, so a pass only reports and notifies.
	MaxRedrives int64
	// Backoff is the wait after parking before the first re-drive; it doubles with every
	// earlier re-drive of the event. Default 1m.
	Backoff time.Duration
	// Parallel is how many notifications are in flight at once; each stays open while the
	// writer drains. Default 8.
	Parallel int
}

// Wait is how long an event parked after redrives earlier re-drives waits before the next:
// base doubled redrives times, saturating instead of overflowing.
func Wait(base time.Duration, redrives int64) time.Duration {
	d := base
	for i := int64(0); i < redrives; i++ {
		if d > math.MaxInt64/2 {
			return math.MaxInt64
		}
		d *= 2
	}
	return d
}

// verdict is what a pass does with one DLQ entry.
type verdict int

const (
	redrive   verdict = iota
	waiting           // its backoff has not passed yet
	exhausted         // re-driven MaxRedrives times: parked for a human
	unmovable         // holds no payload; nothing to write
)

// decide judges one DLQ entry at time now.
func decide(d bus.DeadLetter, now time.Time, maxRedrives int64, backoff time.Duration) verdict {
	switch {
	case len(d.Payload) == 0:
		return unmovable
	case d.Redrives >= maxRedrives:
		return exhausted
	case now.Before(d.At.Add(Wait(backoff, d.Redrives))):
		return waiting
	}
	return redrive
}

// Run sweeps every partition of the snapshot once. A partition that fails is reported with
// its error and the others are still swept; the returned error joins every failure.
func Run(ctx context.Context, snap *catalog.Snapshot, o Options) (*Report, error) {
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	rep := &Report{}
	var errs []error
	var ready []int // indexes of partitions to notify
	for _, id := range snap.PartitionIDs() {
		info, _ := snap.Partition(id)
		pr, notify, err := sweepOne(ctx, info.Partition, o)
		if err != nil {
			pr.Error = err.Error()
			errs = append(errs, fmt.Errorf("partition %s (%s branch %s): %w", id, info.RepoURL, info.Branch, err))
		}
		rep.Partitions = append(rep.Partitions, pr)
		if notify && o.Notifier != nil {
			ready = append(ready, len(rep.Partitions)-1)
		}
	}
	errs = append(errs, notifyAll(ctx, rep, ready, o))
	rep.total()
	return rep, errors.Join(errs...)
}

// sweepOne re-drives what is due in one partition's DLQ and reads its state afterwards. It
// says whether the partition needs a "partition ready" event.
func sweepOne(ctx context.Context, p identity.Partition, o Options) (PartitionReport, bool, error) {
	pr := PartitionReport{ID: p.ID, RepoURL: p.RepoURL, Branch: p.Branch}
	log := logging.FromContext(ctx).With("partition", p.ID)
	dead, err := o.Bus.DeadLetters(ctx, p.ID)
	if err != nil {
		return pr, false, err
	}
	now := time.Now()
	full := false
	for _, d := range dead {
		v := decide(d, now, o.MaxRedrives, o.Backoff)
		if v != redrive || full {
			pr.Parked++
			if v == exhausted {
				pr.Exhausted++
			}
			continue
		}
		moved, err := o.Bus.Redrive(ctx, p.ID, d.StreamID)
		switch {
		case errors.Is(err, bus.ErrFull):
			// The stream is at its cap: everything else waits for the next pass.
			log.Warnw("Partition backlog at its cap; parked events wait for the next sweep", "error", err)
			full = true
			pr.Parked++
			continue
		case err != nil:
			return pr, false, err
		case moved:
			pr.Redriven++
			log.Infow("Re-driving parked event", "dlq-id", d.StreamID, "redrive", d.Redrives+1, "parked-at", d.At, "reason", d.Reason, "cluster", d.Cluster)
		}
		// Not moved: another pass took it first; it is no longer this pass's to count.
	}
	st, err := o.Bus.Stats(ctx, p.ID)
	if err != nil {
		return pr, false, err
	}
	pr.Backlog, pr.DeadLetters, pr.Leased = st.Length, st.DeadLetters, st.Leased
	// A lease holder sees new entries before it lets go (writer.Drain looks at the backlog
	// after releasing), so a held partition needs a notification only for what was re-driven.
	return pr, st.Length > 0 && (!st.Leased || pr.Redriven > 0), nil
}

// notifyAll sends "partition ready" to the listed partitions, o.Parallel at a time.
func notifyAll(ctx context.Context, rep *Report, ready []int, o Options) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, o.Parallel)
	)
	for _, i := range ready {
		pr := &rep.Partitions[i]
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			err := o.Notifier.Send(ctx, identity.Partition{ID: pr.ID, RepoURL: pr.RepoURL, Branch: pr.Branch})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				pr.Error = joinText(pr.Error, err.Error())
				errs = append(errs, fmt.Errorf("partition %s: %w", pr.ID, err))
				return
			}
			pr.Notified = true
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func joinText(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
