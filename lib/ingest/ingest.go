// Package ingest is the audit webhook: it authenticates a source cluster, keeps the audit
// events that prove a persisted change, routes each changed object to the GitTargets that want
// it, sanitizes it, and appends one change event per (object, target) to the target's
// partition stream. It answers 2xx only once every event of the batch is durable in Valkey, so
// the apiserver's retries cover every failure; the dedupe in lib/bus makes those retries safe.
package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"knative.dev/pkg/logging"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/audit"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/metrics"
	"github.com/gitops-reverser/gitops-reverser/lib/notify"
	"github.com/gitops-reverser/gitops-reverser/lib/quota"
	"github.com/gitops-reverser/gitops-reverser/lib/rules"
	"github.com/gitops-reverser/gitops-reverser/lib/sanitize"
	"github.com/gitops-reverser/gitops-reverser/lib/serve"
)

// RetryAfterSeconds is what a throttled apiserver is asked to wait.
const RetryAfterSeconds = 5

// UnknownClusterLabel is the cluster label of batches for a route no SourceCluster names. It
// cannot be a clusterID, which starts with a letter.
const UnknownClusterLabel = "_unknown"

// Options are the parts a Handler works with.
type Options struct {
	Catalog  catalog.Source
	Bus      *bus.Bus
	Notifier *notify.Notifier
	// MaxBodyBytes is the largest batch accepted; larger ones get 413.
	MaxBodyBytes int64
	// MaxInFlight is how many batches are processed at once; more get 503 and are retried by
	// the apiserver, so a burst cannot exhaust memory. Zero means no limit.
	MaxInFlight int
	// MaxInFlightPerCluster is how many of those one cluster may hold; more get 429, so a
	// noisy cluster cannot take every slot from a quiet one. Zero means MaxInFlight.
	MaxInFlightPerCluster int
	// Quota enforces the SourceClusters' rate limits; nil enforces none.
	Quota *quota.Limiter
	// Metrics records what ingest does; nil records nothing.
	Metrics *metrics.Ingest
}

// Handler serves the ingest routes.
type Handler struct {
	o        Options
	mux      *http.ServeMux
	inFlight chan struct{} // a slot per batch being processed; nil when unlimited

	mu         sync.Mutex
	perCluster map[string]int // batches in flight per cluster
}

// New returns the ingest HTTP handler: POST /audit-webhook/{clusterID}, GET /healthz and
// GET /readyz (ready while Valkey answers).
func New(o Options) *Handler {
	h := &Handler{o: o, mux: http.NewServeMux(), perCluster: map[string]int{}}
	if o.MaxInFlight > 0 {
		h.inFlight = make(chan struct{}, o.MaxInFlight)
	}
	h.mux.HandleFunc("POST /audit-webhook/{clusterID}", h.auditWebhook)
	serve.Health(h.mux, o.Bus.Ping)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Result is the body of a successful answer.
type Result struct {
	// Events is the number of audit events in the batch.
	Events int `json:"events"`
	// Changes is the number of change events produced (objects times targets).
	Changes int `json:"changes"`
	// Appended is how many of them were new; the rest were retries already queued.
	Appended int `json:"appended"`
	// Skipped counts audit events that proved no change, by reason.
	Skipped map[audit.Reason]int `json:"skipped,omitempty"`
}

// statusWriter remembers the status code of an answer, for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (h *Handler) auditWebhook(rw http.ResponseWriter, r *http.Request) {
	clusterID := r.PathValue("clusterID")
	start, w := time.Now(), &statusWriter{ResponseWriter: rw, code: http.StatusOK}
	label := clusterID
	defer func() { h.o.Metrics.Batch(label, w.code, time.Since(start)) }()
	log := logging.FromContext(r.Context()).With(zap.String("cluster", clusterID))
	snap := h.o.Catalog.Snapshot()

	cluster, ok := snap.Cluster(clusterID)
	if !ok {
		// Anyone can name any route: one series per name would grow without bound.
		label = UnknownClusterLabel
		serve.WriteError(w, http.StatusNotFound, "unknown cluster %q: apply a SourceCluster with spec.clusterID %q", clusterID, clusterID)
		return
	}
	token, ok := bearer(r)
	if !ok || !cluster.Authenticate(token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="audit-webhook"`)
		serve.WriteError(w, http.StatusUnauthorized, "missing or wrong bearer token for cluster %q: use a token from the SourceCluster's tokenSecretRefs", clusterID)
		return
	}
	if h.inFlight != nil {
		if !h.enterCluster(clusterID) {
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
			serve.WriteError(w, http.StatusTooManyRequests, "too many batches in flight from cluster %q (MAX_IN_FLIGHT_PER_CLUSTER=%d); retry later", clusterID, h.perClusterLimit())
			return
		}
		defer h.leaveCluster(clusterID)
		select {
		case h.inFlight <- struct{}{}:
			defer func() { <-h.inFlight }()
		default:
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
			serve.WriteError(w, http.StatusServiceUnavailable, "too many batches in flight (MAX_IN_FLIGHT=%d); retry later", h.o.MaxInFlight)
			return
		}
	}
	if r.ContentLength > h.o.MaxBodyBytes {
		serve.WriteError(w, http.StatusRequestEntityTooLarge, "batch of %d bytes is over the %d byte limit (MAX_BODY_BYTES); lower --audit-webhook-batch-max-size", r.ContentLength, h.o.MaxBodyBytes)
		return
	}
	list, err := audit.Decode(http.MaxBytesReader(w, r.Body, h.o.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			serve.WriteError(w, http.StatusRequestEntityTooLarge, "batch is over the %d byte limit (MAX_BODY_BYTES); lower --audit-webhook-batch-max-size", h.o.MaxBodyBytes)
			return
		}
		serve.WriteError(w, http.StatusBadRequest, "%v", err)
		return
	}

	if h.o.Quota != nil && cluster.RateLimit != nil {
		ok, wait, err := h.o.Quota.Take(r.Context(), clusterID, *cluster.RateLimit, len(list.Items))
		if err != nil {
			h.appendFailed(w, log, fmt.Errorf("%w: %v", bus.ErrUnavailable, err))
			return
		}
		if !ok {
			// The apiserver retries the whole batch later; nothing of it is kept here.
			h.o.Metrics.Events(clusterID, "throttled", len(list.Items))
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			serve.WriteError(w, http.StatusTooManyRequests, "cluster %q is over its rate limit of %d events/s (SourceCluster spec.rateLimit); retry in %v", clusterID, cluster.RateLimit.EventsPerSecond, wait.Round(time.Millisecond))
			return
		}
	}

	batch, res := route(snap.Plan, cluster, list)
	for _, p := range batch.order {
		n, err := h.o.Bus.Append(r.Context(), p.ID, batch.entries[p.ID])
		if err != nil {
			h.appendFailed(w, log, err)
			return
		}
		res.Appended += n
	}
	for _, p := range batch.order {
		h.o.Notifier.Notify(p)
	}
	h.o.Metrics.Events(clusterID, "changed", res.Events-skipped(res))
	for reason, n := range res.Skipped {
		h.o.Metrics.Events(clusterID, string(reason), n)
	}
	h.o.Metrics.Changes(clusterID, res.Appended, res.Changes-res.Appended)
	log.Debugw("Audit batch accepted", "events", res.Events, "changes", res.Changes, "appended", res.Appended)
	serve.WriteJSON(w, http.StatusOK, res)
}

func skipped(r Result) int {
	n := 0
	for _, c := range r.Skipped {
		n += c
	}
	return n
}

// appendFailed answers so that the apiserver retries: nothing is acknowledged.
func (h *Handler) appendFailed(w http.ResponseWriter, log *zap.SugaredLogger, err error) {
	switch {
	case errors.Is(err, bus.ErrFull):
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		serve.WriteError(w, http.StatusTooManyRequests, "partition backlog is full; retry later")
	case errors.Is(err, bus.ErrUnavailable):
		log.Warnw("Valkey unavailable; batch refused for retry", "error", err)
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		serve.WriteError(w, http.StatusServiceUnavailable, "event store unavailable; retry later")
	default:
		log.Errorw("Append failed; batch refused for retry", "error", err)
		serve.WriteError(w, http.StatusInternalServerError, "append failed; retry later")
	}
}

// batch is the change events of one audit batch, grouped by partition in first-seen order.
type batch struct {
	order   []identity.Partition
	entries map[string][]bus.Entry
}

func (b *batch) add(p identity.Partition, e bus.Entry) {
	if _, ok := b.entries[p.ID]; !ok {
		b.order = append(b.order, p)
	}
	b.entries[p.ID] = append(b.entries[p.ID], e)
}

// ReasonPolicy counts the audit events whose objects the SourceCluster may not send
// (spec.namespaces, spec.resources): dropped, not an error for the apiserver.
const ReasonPolicy audit.Reason = "policy"

// route turns an audit batch into change events per partition.
func route(plan *rules.Plan, cluster *catalog.Cluster, list *audit.EventList) (*batch, Result) {
	b := &batch{entries: map[string][]bus.Entry{}}
	res := Result{Events: len(list.Items), Skipped: map[audit.Reason]int{}}
	for i := range list.Items {
		changes, reason := list.Items[i].Changes()
		if reason != "" {
			res.Skipped[reason]++
			continue
		}
		admitted := 0
		for j := range changes {
			c := &changes[j]
			if !cluster.Admits(c.Group, c.Resource, c.Namespace) {
				continue
			}
			admitted++
			for _, e := range events(plan, cluster.ID, c) {
				b.add(e.partition, e.entry)
				res.Changes++
			}
		}
		if admitted == 0 {
			res.Skipped[ReasonPolicy]++
		}
	}
	return b, res
}

// enterCluster takes one of the cluster's in-flight slots, or reports there is none left.
func (h *Handler) enterCluster(clusterID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perCluster[clusterID] >= h.perClusterLimit() {
		return false
	}
	h.perCluster[clusterID]++
	return true
}

func (h *Handler) leaveCluster(clusterID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perCluster[clusterID]--; h.perCluster[clusterID] <= 0 {
		delete(h.perCluster, clusterID)
	}
}

func (h *Handler) perClusterLimit() int {
	if h.o.MaxInFlightPerCluster > 0 {
		return h.o.MaxInFlightPerCluster
	}
	return h.o.MaxInFlight
}

type routed struct {
	partition identity.Partition
	entry     bus.Entry
}

// events builds the change events of one object change, one per target that wants it.
func events(plan *rules.Plan, clusterID string, c *audit.Change) []routed {
	targets := plan.Match(rules.Object{
		Cluster:   clusterID,
		Group:     c.Group,
		Resource:  c.Resource,
		Namespace: c.Namespace,
		Labels:    c.Labels,
		Operation: operation(c.Op),
	})
	if len(targets) == 0 {
		return nil
	}
	key := identity.Key{Cluster: clusterID, Group: c.Group, Resource: c.Resource, Namespace: c.Namespace, Name: c.Name}
	op := change.OpUpsert
	switch c.Op {
	case audit.OpDelete:
		op = change.OpDelete
	case audit.OpScale:
		op = change.OpScale // the writer edits the parent's file: only the replicas travel
	}
	var object []byte
	if op == change.OpUpsert {
		var err error
		if object, err = json.Marshal(sanitize.Object(c.Object)); err != nil {
			return nil // unreachable: the object was decoded from JSON
		}
	}
	out := make([]routed, 0, len(targets))
	for _, t := range targets {
		ch := change.For(t, c.AuditID, op, key, object)
		if ch == nil {
			continue
		}
		ch.Time, ch.AuditID, ch.Verb = c.Time, c.AuditID, c.Verb
		ch.Actor = change.Actor{Username: c.Actor.Username, ImpersonatedBy: c.Actor.ImpersonatedBy}
		ch.UID, ch.ResourceVersion, ch.Replicas = c.UID, c.ResourceVersion, c.Replicas
		payload, err := ch.Marshal()
		if err != nil {
			continue // unreachable: every field is JSON-safe
		}
		out = append(out, routed{partition: t.Partition, entry: bus.Entry{ID: ch.ID, Payload: payload}})
	}
	return out
}

// operation is the rule operation a change counts as; a scale updates its parent.
func operation(op audit.Op) v1alpha1.Operation {
	switch op {
	case audit.OpCreate:
		return v1alpha1.OperationCreate
	case audit.OpDelete:
		return v1alpha1.OperationDelete
	}
	return v1alpha1.OperationUpdate
}

// bearer extracts the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return strings.TrimSpace(token), true
}
