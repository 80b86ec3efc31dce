package status

import (
	"context"
	"sync"
	"time"

	"knative.dev/pkg/logging"

	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

// DefaultInterval is the least time between two projections of one partition by an Observer.
const DefaultInterval = 5 * time.Second

// projectTimeout bounds one projection started by an Observer.
const projectTimeout = 30 * time.Second

// Observer is the writer's drain hook (writer.Options.Observer): it records how each drain
// ended and, with a Projector, projects the statuses of the partition's GitTargets and
// GitProviders, at most once per Interval per partition. A drain inside the interval schedules
// one projection at its end, so the last drain of a burst is always shown.
type Observer struct {
	rec       *Recorder
	projector *Projector // nil: record only
	interval  time.Duration

	mu      sync.Mutex
	last    map[string]time.Time // partition -> last projection started
	pending map[string]bool      // partition -> a trailing projection is scheduled
}

// NewObserver returns an Observer recording through rec and projecting through projector (nil
// when the catalog is a file: there is no API server to write to). interval <= 0 means
// DefaultInterval.
func NewObserver(rec *Recorder, projector *Projector, interval time.Duration) *Observer {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Observer{rec: rec, projector: projector, interval: interval, last: map[string]time.Time{}, pending: map[string]bool{}}
}

// Drained records a drain of p: tip is the branch's commit afterwards, commits the number of
// commits it pushed, err why it failed. Failures to record or project are logged, not
// returned: status must never fail a drain.
func (o *Observer) Drained(ctx context.Context, p identity.Partition, tip string, commits int, err error) {
	log := logging.FromContext(ctx)
	ctx = context.WithoutCancel(ctx) // the request may end; the record should still land
	var rerr error
	if err != nil {
		rerr = o.rec.RecordError(ctx, p.ID, err)
	} else {
		var when time.Time
		if commits > 0 {
			when = time.Now()
		}
		rerr = o.rec.RecordPush(ctx, p.ID, tip, when)
	}
	if rerr != nil {
		log.Warnw("Could not record the drain's result for status", "error", rerr)
	}
	if o.projector == nil {
		return
	}
	o.mu.Lock()
	wait := o.interval - time.Since(o.last[p.ID])
	switch {
	case wait <= 0:
		o.last[p.ID] = time.Now()
		o.mu.Unlock()
		o.project(ctx, p.ID)
	case !o.pending[p.ID]:
		o.pending[p.ID] = true
		o.mu.Unlock()
		time.AfterFunc(wait, func() {
			o.mu.Lock()
			o.pending[p.ID] = false
			o.last[p.ID] = time.Now()
			o.mu.Unlock()
			o.project(ctx, p.ID)
		})
	default:
		o.mu.Unlock() // the scheduled projection will show this drain too
	}
}

func (o *Observer) project(ctx context.Context, partitionID string) {
	ctx, cancel := context.WithTimeout(ctx, projectTimeout)
	defer cancel()
	if err := o.projector.ProjectPartition(ctx, partitionID); err != nil {
		logging.FromContext(ctx).Warnw("Could not project status", "partition", partitionID, "error", err)
	}
}
