// Package notify tells a writer that a partition has work, with a partition.ready CloudEvent
// sent to a sink (K_SINK). Sends are asynchronous and coalesced: per partition at most one
// request is in flight and at most one more is queued, however many batches arrive meanwhile.
//
// A request stays open while the writer drains, because under Knative work happens inside
// requests (a writer with no request in flight may be scaled to zero). Notifications are a
// latency optimisation, never the only path: a lost one leaves events safely queued for the
// next notification or for the dlq-sweep job.
package notify

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"knative.dev/pkg/logging"

	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

// Options tune a Notifier. Zero values mean the defaults.
type Options struct {
	// Sink is the URL of the writer. Empty makes Notify a no-op.
	Sink string
	// Source is the CloudEvent source of the notifications, e.g. "/ingest".
	Source string
	// Timeout bounds one request, drain included. Default 5m (Knative's request timeout).
	Timeout time.Duration
	// Attempts is how often a failed notification is retried. Default 3.
	Attempts int
}

// Notifier sends partition.ready events.
type Notifier struct {
	o      Options
	client cloudevents.Client
	ctx    context.Context
	seq    atomic.Uint64
	wg     sync.WaitGroup

	mu    sync.Mutex
	state map[string]int // partition id -> 1 in flight, 2 in flight and queued again
}

// New returns a Notifier whose sends run under ctx.
func New(ctx context.Context, o Options) (*Notifier, error) {
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	n := &Notifier{o: o, ctx: ctx, state: map[string]int{}}
	if o.Sink == "" {
		return n, nil
	}
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	n.client = c
	return n, nil
}

// Notify schedules a partition.ready event for p and returns at once.
func (n *Notifier) Notify(p identity.Partition) {
	if n.client == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch n.state[p.ID] {
	case 0:
		n.state[p.ID] = 1
		n.wg.Add(1)
		go n.loop(p)
	case 1:
		n.state[p.ID] = 2
	}
}

// Wait blocks until every scheduled notification has been sent or given up.
func (n *Notifier) Wait() { n.wg.Wait() }

// loop sends for p until no notification is queued for it any more.
func (n *Notifier) loop(p identity.Partition) {
	defer n.wg.Done()
	for {
		n.send(p)
		n.mu.Lock()
		if n.state[p.ID] == 2 {
			n.state[p.ID] = 1
			n.mu.Unlock()
			continue
		}
		delete(n.state, p.ID)
		n.mu.Unlock()
		return
	}
}

func (n *Notifier) send(p identity.Partition) {
	if err := n.deliver(n.ctx, p); err != nil && n.ctx.Err() == nil {
		logging.FromContext(n.ctx).Errorw("Writer not notified; the events stay queued until the next notification or the dlq-sweep job", "partition", p.ID, "error", err)
	}
}

// Send delivers one partition.ready event for p now, with the same retries, and returns
// when the writer answered (after its drain) or the attempts ran out. A job that must know
// the outcome uses it instead of Notify. Without a sink it does nothing.
func (n *Notifier) Send(ctx context.Context, p identity.Partition) error {
	if n.client == nil {
		return nil
	}
	return n.deliver(ctx, p)
}

// deliver sends one notification, retrying failures with backoff.
func (n *Notifier) deliver(ctx context.Context, p identity.Partition) error {
	log := logging.FromContext(ctx).With("partition", p.ID)
	backoff := 200 * time.Millisecond
	var last error
	for attempt := 1; attempt <= n.o.Attempts; attempt++ {
		id := fmt.Sprintf("%s-%d-%d", p.ID, time.Now().UnixNano(), n.seq.Add(1))
		e, err := change.ReadyEvent(p, n.o.Source, id)
		if err != nil {
			return fmt.Errorf("notify: build partition.ready event: %w", err)
		}
		sctx, cancel := context.WithTimeout(cloudevents.ContextWithTarget(ctx, n.o.Sink), n.o.Timeout)
		res := n.client.Send(sctx, e)
		cancel()
		if cloudevents.IsACK(res) {
			return nil
		}
		last = res
		if ctx.Err() != nil {
			break
		}
		log.Warnw("Writer notification failed", "attempt", attempt, "error", res)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff *= 2
	}
	return fmt.Errorf("notify %s of partition %s: %w", n.o.Sink, p.ID, last)
}
