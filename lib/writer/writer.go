package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"knative.dev/pkg/logging"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/gitwrite"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/lease"
	"github.com/gitops-reverser/gitops-reverser/lib/metrics"
	"github.com/gitops-reverser/gitops-reverser/lib/notify"
)

// Defaults of Options.
const (
	DefaultLeaseTTL      = 15 * time.Second
	DefaultBatchSize     = 1000
	DefaultDrainSlice    = 60 * time.Second
	DefaultGitTimeout    = 60 * time.Second
	DefaultPushAttempts  = 5
	DefaultMaxDeliveries = 5
)

// ErrUnknownPartition means no GitTarget routes to the partition (any more).
var ErrUnknownPartition = errors.New("partition not configured")

// Options are the parts and limits of a Writer. Zero values mean the defaults.
type Options struct {
	Catalog catalog.Source
	Bus     *bus.Bus
	// Notifier re-announces a partition left with backlog at the end of a slice.
	Notifier *notify.Notifier
	// CacheDir holds a bare mirror per partition.
	CacheDir string
	// LeaseTTL is how long a lease lives unrenewed. Default 15s.
	LeaseTTL time.Duration
	// BatchSize is how many events one push covers at most. Default 1000.
	BatchSize int
	// DrainSlice is the longest one Drain works before handing on. Default 60s.
	DrainSlice time.Duration
	// GitTimeout bounds each fetch and push. Default 60s.
	GitTimeout time.Duration
	// PushAttempts is how often a push rejected because the branch moved is rebuilt on the
	// new tip and retried. Default 5.
	PushAttempts int
	// MaxDeliveries is how often an event that cannot be written is tried before it is
	// parked in the DLQ. Default 5.
	MaxDeliveries int64
	// Metrics records what the writer does; nil records nothing.
	Metrics *metrics.Writer
	// Observer is told how each drain ended; nil tells no one. lib/status records it for the
	// status of the GitTargets and GitProviders.
	Observer Observer
}

// Observer is told how a drain of a partition ended, after the lease is released: tip is the
// branch's commit as last fetched or pushed (empty when unknown), commits the number pushed,
// and err the drain's error. Drains that found the partition busy or unconfigured are not
// reported. It runs in the drain's request, so it must return quickly.
type Observer interface {
	Drained(ctx context.Context, p identity.Partition, tip string, commits int, err error)
}

// Writer drains partitions. It is safe for concurrent use.
type Writer struct {
	o     Options
	mu    sync.Mutex
	repos map[string]*mirror // by partition id
	// busy serialises the use of each partition's mirror within this process. Leases keep
	// two processes apart, but not two drains of one process: a drain that lost its lease
	// (paused past it, say) may still be finishing when a new drain takes the next lease, and
	// the two must not share the mirror's files, tip and memory of applied events.
	busy map[string]chan struct{} // a one-slot semaphore per partition
}

// mirror is a cached local mirror, the credentials it was opened with, and the event ids
// its branch already holds. Only the lease holder of its partition uses it.
type mirror struct {
	partition string
	repo      *gitwrite.Repo
	auth      gitwrite.Auth
	applied   *applied
}

// New returns a Writer.
func New(o Options) *Writer {
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.DrainSlice <= 0 {
		o.DrainSlice = DefaultDrainSlice
	}
	if o.GitTimeout <= 0 {
		o.GitTimeout = DefaultGitTimeout
	}
	if o.PushAttempts <= 0 {
		o.PushAttempts = DefaultPushAttempts
	}
	if o.MaxDeliveries <= 0 {
		o.MaxDeliveries = DefaultMaxDeliveries
	}
	return &Writer{o: o, repos: map[string]*mirror{}, busy: map[string]chan struct{}{}}
}

// Result says what a Drain did.
type Result struct {
	// Busy means another writer holds the partition's lease; it will see the new events.
	Busy bool `json:"busy,omitempty"`
	// Events is the number of stream entries acknowledged: written, or skipped.
	Events int `json:"events"`
	// Commits is the number of commits pushed.
	Commits int `json:"commits"`
	// DeadLettered is the number of events parked in the DLQ.
	DeadLettered int `json:"deadLettered,omitempty"`
	// Skipped is the number of events already in Git, or older than what is.
	Skipped int `json:"skipped,omitempty"`
	// HandedOn means the slice ended with backlog left and a new notification was sent.
	HandedOn bool `json:"handedOn,omitempty"`
}

// Drain writes the partition's pending events to Git until it is empty or the slice ends.
func (w *Writer) Drain(ctx context.Context, p identity.Partition) (Result, error) {
	res, err := w.drain(ctx, p)
	if w.o.Observer != nil && !res.Busy && !errors.Is(err, ErrUnknownPartition) {
		w.o.Observer.Drained(ctx, p, w.head(p.ID), res.Commits, err)
	}
	return res, err
}

// head is the partition's branch tip as its mirror last fetched or pushed it.
func (w *Writer) head(partitionID string) string {
	w.mu.Lock()
	m, ok := w.repos[partitionID]
	w.mu.Unlock()
	if !ok || m.repo.Head().IsZero() {
		return ""
	}
	return m.repo.Head().String()
}

func (w *Writer) drain(ctx context.Context, p identity.Partition) (Result, error) {
	deadline := time.Now().Add(w.o.DrainSlice)
	var total Result
	for {
		r, err := w.drainHeld(ctx, p, deadline)
		total.Events += r.Events
		total.Commits += r.Commits
		total.DeadLettered += r.DeadLettered
		total.Skipped += r.Skipped
		total.Busy = r.Busy
		if err != nil || r.Busy {
			return total, err
		}
		// Events appended while we released the lease found it held and were answered Busy:
		// look again, or they would wait for the next notification.
		backlog, err := w.o.Bus.Backlog(ctx, p.ID)
		if err != nil || backlog == 0 {
			return total, err
		}
		if time.Now().After(deadline) || r.Events+r.DeadLettered == 0 {
			if w.o.Notifier != nil {
				w.o.Notifier.Notify(p)
			}
			total.HandedOn = true
			return total, nil
		}
	}
}

// drainHeld drains under the partition's lease.
func (w *Writer) drainHeld(ctx context.Context, p identity.Partition, deadline time.Time) (Result, error) {
	var res Result
	busy, err := w.underLease(ctx, p, func(ctx context.Context, l *lease.Lease, m *mirror, st batchState) error {
		for time.Now().Before(deadline) {
			msgs, err := w.o.Bus.Read(ctx, p.ID, w.o.BatchSize)
			if err != nil || len(msgs) == 0 {
				return err
			}
			if _, err := w.writeAndAck(ctx, l, m, decode(msgs), st, &res); err != nil {
				return err
			}
		}
		return nil
	})
	res.Busy = busy
	return res, err
}

// underLease runs fn holding the partition's lease, with the partition's mirror fetched. It
// reports busy, without running fn, when another writer holds the lease.
func (w *Writer) underLease(ctx context.Context, p identity.Partition, fn func(context.Context, *lease.Lease, *mirror, batchState) error) (busy bool, err error) {
	info, ok := w.o.Catalog.Snapshot().Partition(p.ID)
	if !ok {
		return false, fmt.Errorf("%w: %s branch %s (%s)", ErrUnknownPartition, p.RepoURL, p.Branch, p.ID)
	}
	keys := w.o.Bus.Keys(p.ID)
	l, err := lease.Acquire(ctx, w.o.Bus.Client(), lease.Keys{Lease: keys.Lease, Epoch: keys.Epoch}, w.o.LeaseTTL)
	if errors.Is(err, lease.ErrHeld) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: %v", bus.ErrUnavailable, err)
	}
	w.o.Metrics.Lease(p.ID, l.Epoch, true)
	defer func() {
		w.o.Metrics.Lease(p.ID, l.Epoch, false)
		if err := l.Release(context.WithoutCancel(ctx)); err != nil {
			logging.FromContext(ctx).Warnw("Lease release failed; it expires by itself", "error", err)
		}
	}()
	// Work stops as soon as the lease is lost or the request ends.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(l.Context(), func() { cancel(context.Cause(l.Context())) })
	defer stop()
	ctx = logging.WithLogger(ctx, logging.FromContext(ctx).With("partition", p.ID, "epoch", l.Epoch))
	logging.FromContext(ctx).Debug("Lease taken") // who held which epoch, for reading logs after a fault

	unlock, err := w.lockPartition(ctx, p.ID)
	if err != nil {
		return false, err
	}
	defer unlock()
	m, err := w.mirror(ctx, info)
	if err != nil {
		return false, err
	}
	return false, fn(ctx, l, m, batchState{roots: info.Roots, committer: info.Committer, epoch: l.Epoch, maxDeliveries: w.o.MaxDeliveries})
}

// lockPartition waits until no other drain of this process uses the partition's mirror, or
// ctx ends (the lease is lost meanwhile, or the request ends).
func (w *Writer) lockPartition(ctx context.Context, partitionID string) (unlock func(), err error) {
	w.mu.Lock()
	slot, ok := w.busy[partitionID]
	if !ok {
		slot = make(chan struct{}, 1)
		w.busy[partitionID] = slot
	}
	w.mu.Unlock()
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// writeAndAck writes one batch: commits and pushes it, parks its poison in the DLQ, then
// acknowledges it with the versions it wrote, and adds what it did to res. It returns the
// plan it wrote.
func (w *Writer) writeAndAck(ctx context.Context, l *lease.Lease, m *mirror, batch []decoded, st batchState, res *Result) (plan, error) {
	var err error
	if st.versions, err = w.o.Bus.Versions(ctx, m.partition, objects(batch)); err != nil {
		return plan{}, err
	}
	p, n, err := w.writeBatch(ctx, l, m, batch, st)
	if err != nil {
		return plan{}, err
	}
	log := logging.FromContext(ctx)
	for _, bad := range p.poison {
		log.Errorw("Event parked in the DLQ", "stream-id", bad.msg.StreamID, "attempts", bad.msg.Deliveries, "reason", bad.reason)
		if err := w.o.Bus.DeadLetter(ctx, m.partition, bad.msg, bad.reason, bad.cluster); err != nil {
			return plan{}, err
		}
		res.DeadLettered++
	}
	if err := w.o.Bus.Ack(ctx, m.partition, streamIDs(p.ack), p.versions); err != nil {
		return plan{}, err
	}
	w.record(batch, p)
	res.Events += len(p.ack)
	res.Commits += n
	res.Skipped += p.skipped
	log.Debugw("Batch written", "events", len(p.ack), "commits", n, "skipped", p.skipped, "tip", m.repo.Head())
	return p, nil
}

// streamIDs drops the empty ids of changes that did not come from the stream (Apply).
func streamIDs(ids []string) []string {
	out := ids[:0:0]
	for _, id := range ids {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}

// record counts a written batch in the metrics.
func (w *Writer) record(batch []decoded, p plan) {
	if w.o.Metrics == nil {
		return
	}
	for i, d := range batch {
		cluster := clusterOf(d)
		w.o.Metrics.Events(cluster, p.outcomes[i], 1)
		if p.outcomes[i] == outcomeWritten {
			w.o.Metrics.Lag(cluster, d.change.Time)
		}
	}
}

// objects lists the version keys of a batch's changes.
func objects(batch []decoded) []string {
	var out []string
	for _, d := range batch {
		if d.change != nil {
			out = append(out, versionKey(d.change))
		}
	}
	return out
}

// writeBatch plans the batch against the branch as it is, commits and pushes. When the
// branch moved meanwhile it fetches and plans again on the new tip, so events another writer
// pushed in the meantime are not written twice. It returns the plan that was pushed and the
// number of commits it made.
func (w *Writer) writeBatch(ctx context.Context, l *lease.Lease, m *mirror, batch []decoded, st batchState) (plan, int, error) {
	partition := m.partition
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		if err := m.applied.refresh(m.repo); err != nil {
			return plan{}, 0, err
		}
		st.now, st.applied = time.Now(), m.applied.has
		p := planBatch(batch, st)
		n := 0
		for _, req := range p.commits {
			_, changed, err := m.repo.Commit(req)
			if err != nil {
				return plan{}, 0, err
			}
			if changed {
				n++
			}
		}
		w.o.Metrics.Committed(partition, time.Since(st.now))
		if m.repo.Tip() == m.repo.Head() {
			return p, 0, nil // nothing new for Git: acknowledge without a push
		}
		// Never push without the lease: a holder that lost it must leave the branch alone.
		if err := l.Check(ctx); err != nil {
			return plan{}, 0, errors.Join(fmt.Errorf("stopped before push: %w", err), m.repo.Reset())
		}
		pushed := time.Now()
		err := m.repo.Push(ctx)
		w.o.Metrics.Pushed(partition, pushResult(err), n, time.Since(pushed))
		if err == nil {
			return p, n, nil
		}
		// Whatever happened, the unpushed commits go: the next attempt, in this drain or a
		// later one, plans the batch again from the remote's state.
		if rerr := m.repo.Reset(); rerr != nil {
			return plan{}, 0, errors.Join(err, rerr)
		}
		if !errors.Is(err, gitwrite.ErrRemoteMoved) || attempt >= w.o.PushAttempts {
			return plan{}, 0, err
		}
		if err := m.repo.Fetch(ctx); err != nil {
			return plan{}, 0, err
		}
		logging.FromContext(ctx).Infow("Branch moved under us; planning again on the new tip", "attempt", attempt)
		select {
		case <-ctx.Done():
			return plan{}, 0, context.Cause(ctx)
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func pushResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, gitwrite.ErrRemoteMoved):
		return "conflict"
	}
	return "error"
}

// mirror returns the partition's local mirror, fetched up to date. It is opened on first use
// and reopened when the credentials changed.
func (w *Writer) mirror(ctx context.Context, info *catalog.Partition) (*mirror, error) {
	w.mu.Lock()
	m, ok := w.repos[info.ID]
	w.mu.Unlock()
	if ok && sameAuth(m.auth, info.Auth) {
		// Fetch under the new lease, every time: another writer may have pushed since this
		// mirror last did, and a batch that changes nothing must be judged against the branch
		// as it is. A change planned on a stale tree would be caught by the push's
		// compare-and-swap, but "nothing to write" would be acknowledged and lost. The fetch
		// also drops commits a failed drain left unpushed.
		if err := m.repo.Fetch(ctx); err != nil {
			return nil, err
		}
		return m, nil
	}
	defer collectOften()()
	repo, err := gitwrite.Open(ctx, gitwrite.Options{
		URL:     info.RepoURL,
		Branch:  info.Branch,
		Auth:    info.Auth,
		Dir:     filepath.Join(w.o.CacheDir, info.ID),
		Timeout: w.o.GitTimeout,
	})
	if err != nil {
		return nil, err
	}
	m = &mirror{partition: info.ID, repo: repo, auth: info.Auth, applied: newApplied()}
	w.mu.Lock()
	w.repos[info.ID] = m
	w.mu.Unlock()
	return m, nil
}

func sameAuth(a, b gitwrite.Auth) bool {
	return a.Username == b.Username && a.Password == b.Password && a.SSHPassphrase == b.SSHPassphrase &&
		bytes.Equal(a.SSHPrivateKey, b.SSHPrivateKey) && bytes.Equal(a.KnownHosts, b.KnownHosts)
}

// A first clone allocates several times the repository's size in short-lived buffers
// (go-git's delta resolution reads each delta through a new buffered reader): 370 MB for a
// 100k-file repository. The garbage collector runs more often while a clone runs, so the
// process peaks near what it keeps, not at twice that; the setting is process-wide, so
// the last clone to finish restores it, after a collection: otherwise the next one would
// wait for the heap to double from the size the clone's parser had.
var clones struct {
	sync.Mutex
	n       int
	percent int
}

// cloneGCPercent is GOGC while a clone runs.
const cloneGCPercent = 20

func collectOften() (restore func()) {
	clones.Lock()
	defer clones.Unlock()
	if clones.n == 0 {
		clones.percent = debug.SetGCPercent(cloneGCPercent)
	}
	clones.n++
	return func() {
		clones.Lock()
		defer clones.Unlock()
		if clones.n--; clones.n == 0 {
			debug.FreeOSMemory()
			debug.SetGCPercent(clones.percent)
		}
	}
}
