package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

// Obj names a ConfigMap of the source cluster.
type Obj struct{ Namespace, Name string }

func (o Obj) String() string { return o.Namespace + "/" + o.Name }

// Path is where the writer must keep the object's file.
func (o Obj) Path() string {
	return TargetPath + "/" + o.Namespace + "/core/configmaps/" + o.Name + ".yaml"
}

// Key is the object's identity in the product.
func (o Obj) Key() identity.Key {
	return identity.Key{Cluster: ClusterID, Resource: "configmaps", Namespace: o.Namespace, Name: o.Name}
}

// Op is what an event does to its object.
type Op string

const (
	OpCreate Op = "create"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// Event is one audit event the driver sent, and what it must do in Git.
type Event struct {
	AuditID string
	EventID string // the id the product derives from the audit id, object and target
	Obj     Obj
	Op      Op
	Verb    string
	Seq     int64 // the object's resourceVersion, increasing over all events
	User    string
	// ImpersonatedBy is the real user when User was impersonated.
	ImpersonatedBy string
	Data           map[string]string // the ConfigMap's data; nil for a delete
	Poison         bool              // the responseObject has no kind: it cannot be rendered
	Batch          int
}

// Step is one exact event of a batch: an operation on an object by a user.
type Step struct {
	Obj  Obj
	Op   Op
	User string
}

// Batch is one audit EventList: a fixed body, so retries carry the very same event ids.
type Batch struct {
	N      int
	Events []*Event
	Body   []byte

	accepted atomic.Bool
	// Appended sums what ingest reported as newly appended over every accepted attempt.
	Appended atomic.Int64
	Attempts atomic.Int64
}

// Accepted reports whether an ingest answered 2xx for the batch.
func (b *Batch) Accepted() bool { return b.accepted.Load() }

// Changes is the number of change events the batch makes (one target, one per event).
func (b *Batch) Changes() int { return len(b.Events) }

type objState struct {
	live bool
	data map[string]string
	uid  string
}

// Model is the driver and what it expects: every event it generated, the state each object
// must end in, and the poison it injected. Events are generated, and batches posted, in one
// order per object, so the last event of an object is its expected final state.
type Model struct {
	r *Rig

	mu       sync.Mutex
	rv       int64
	objs     map[Obj]*objState
	events   map[string]*Event
	order    []*Event
	batches  []*Batch
	random   []Obj // the objects random batches pick from
	poisonN  int
	postMu   sync.Mutex
	client   *http.Client
	retries  atomic.Int64
	attempts atomic.Int64
}

// Namespaces and names of the objects random batches change.
var (
	randomNamespaces = []string{"team-a", "team-b", "team-c"}
	users            = []string{"alice", "bob", "carol", "system:serviceaccount:kube-system:configmap-controller"}
)

// NewModel returns an empty model with the random object pool.
func NewModel(r *Rig) *Model {
	m := &Model{r: r, objs: map[Obj]*objState{}, events: map[string]*Event{}, client: &http.Client{Timeout: 30 * time.Second}}
	for _, ns := range randomNamespaces {
		for i := range 10 {
			m.random = append(m.random, Obj{ns, fmt.Sprintf("cm-%02d", i)})
		}
	}
	return m
}

// BatchOptions shape a generated batch.
type BatchOptions struct {
	// Events is the number of events; default 1 to 8 at random.
	Events int
	// Objects to change, in order (forced upserts, or deletes with Delete); default random
	// objects and operations.
	Objects []Obj
	// Delete makes the events of Objects deletes; each object must be live.
	Delete bool
	// PoisonAt puts a poison event at these positions.
	PoisonAt []int
	// Pad adds this many bytes of data to each object, for big batches.
	Pad int
	// Steps are exact events, in order, instead of random ones.
	Steps []Step
	// Pool is what random events pick objects from; default the shared random pool. Batches
	// posted concurrently must use disjoint pools, or their order per object is undefined.
	Pool []Obj
}

// NewBatch generates a batch and applies it to the expected state.
func (m *Model) NewBatch(o BatchOptions) *Batch {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := o.Events
	if len(o.Objects) > 0 {
		n = len(o.Objects)
	}
	if len(o.Steps) > 0 {
		n = len(o.Steps)
	}
	if n == 0 && len(o.PoisonAt) == 0 {
		n = 1 + m.r.IntN(8)
	}
	b := &Batch{N: len(m.batches)}
	var items []json.RawMessage
	for i := range n + len(o.PoisonAt) {
		var e *Event
		if slices.Contains(o.PoisonAt, i) {
			e = m.poisonEvent()
		} else if len(o.Steps) > 0 {
			st, live := o.Steps[0], m.objs[o.Steps[0].Obj] != nil && m.objs[o.Steps[0].Obj].live
			if live == (st.Op == OpCreate) {
				panic(fmt.Sprintf("BatchOptions.Steps: cannot %s %s (live: %v)", st.Op, st.Obj, live))
			}
			e = m.applyAs(st.Obj, st.Op, o.Pad, st.User)
			o.Steps = o.Steps[1:]
		} else if len(o.Objects) > 0 && o.Delete {
			if st := m.objs[o.Objects[0]]; st == nil || !st.live {
				panic(fmt.Sprintf("BatchOptions.Delete: %s is not live", o.Objects[0]))
			}
			e = m.apply(o.Objects[0], OpDelete, o.Pad)
			o.Objects = o.Objects[1:]
		} else if len(o.Objects) > 0 {
			e = m.upsert(o.Objects[0], o.Pad)
			o.Objects = o.Objects[1:]
		} else {
			e = m.randomEvent(o.Pool, o.Pad)
		}
		if e == nil {
			continue
		}
		e.Batch = b.N
		b.Events = append(b.Events, e)
		m.events[e.EventID] = e
		m.order = append(m.order, e)
		items = append(items, m.auditJSON(e, o.Pad))
	}
	body, err := json.Marshal(map[string]any{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": map[string]any{}, "items": items})
	if err != nil {
		panic(err) // unreachable: plain maps and strings
	}
	b.Body = body
	m.batches = append(m.batches, b)
	return b
}

func (m *Model) randomEvent(pool []Obj, pad int) *Event {
	if len(pool) == 0 {
		pool = m.random
	}
	o := pool[m.r.IntN(len(pool))]
	st := m.objs[o]
	if st != nil && st.live && m.r.IntN(4) == 0 {
		return m.apply(o, OpDelete, pad)
	}
	return m.upsert(o, pad)
}

func (m *Model) upsert(o Obj, pad int) *Event {
	if st := m.objs[o]; st != nil && st.live {
		return m.apply(o, OpUpdate, pad)
	}
	return m.apply(o, OpCreate, pad)
}

// apply makes an event of o by a random user and applies it to the expected state.
func (m *Model) apply(o Obj, op Op, pad int) *Event {
	return m.applyAs(o, op, pad, users[m.r.IntN(len(users))])
}

// applyAs makes an event of o by user and applies it to the expected state.
func (m *Model) applyAs(o Obj, op Op, pad int, user string) *Event {
	m.rv++
	st := m.objs[o]
	if st == nil {
		st = &objState{}
		m.objs[o] = st
	}
	e := &Event{AuditID: newUUID(), Obj: o, Op: op, Seq: m.rv, User: user}
	e.EventID = identity.EventID(e.AuditID, o.Key(), Target)
	switch op {
	case OpCreate:
		e.Verb = "create"
		st.live, st.uid = true, newUUID()
	case OpUpdate:
		e.Verb = []string{"update", "patch"}[m.r.IntN(2)]
	case OpDelete:
		e.Verb = "delete"
		st.live, st.data = false, nil
	}
	if op != OpDelete {
		e.Data = map[string]string{"seq": strconv.FormatInt(e.Seq, 10), "by": e.User, "note": randomHex(4)}
		if pad > 0 {
			e.Data["pad"] = strings.Repeat("x", pad)
		}
		st.data = e.Data
	}
	return e
}

// poisonEvent is an update whose responseObject has no kind: ingest queues it, the writer
// cannot render it. Each poison event has an object of its own, so no file may appear for it.
func (m *Model) poisonEvent() *Event {
	m.rv++
	m.poisonN++
	o := Obj{"team-poison", fmt.Sprintf("poison-%d", m.poisonN)}
	e := &Event{AuditID: newUUID(), Obj: o, Op: OpUpdate, Verb: "update", Seq: m.rv, User: "mallory", Poison: true,
		Data: map[string]string{"seq": strconv.FormatInt(m.rv, 10)}}
	e.EventID = identity.EventID(e.AuditID, o.Key(), Target)
	return e
}

// auditJSON is the audit event kube-apiserver would send for e at level RequestResponse.
func (m *Model) auditJSON(e *Event, pad int) json.RawMessage {
	st := m.objs[e.Obj]
	uid := ""
	if st != nil {
		uid = st.uid
	}
	now := time.Now().UTC()
	uri := "/api/v1/namespaces/" + e.Obj.Namespace + "/configmaps/" + e.Obj.Name
	code := 200
	if e.Op == OpCreate {
		uri, code = "/api/v1/namespaces/"+e.Obj.Namespace+"/configmaps", 201
	}
	meta := map[string]any{
		"name": e.Obj.Name, "namespace": e.Obj.Namespace, "uid": uid,
		"resourceVersion":   strconv.FormatInt(e.Seq, 10),
		"creationTimestamp": "2025-01-01T00:00:00Z",
		"labels":            map[string]any{"app.kubernetes.io/part-of": "faults"},
		"managedFields": []any{map[string]any{
			"manager": "kubectl", "operation": "Update", "apiVersion": "v1", "time": now.Format(time.RFC3339),
			"fieldsType": "FieldsV1", "fieldsV1": map[string]any{"f:data": map[string]any{}},
		}},
	}
	var obj map[string]any
	switch {
	case e.Poison:
		obj = map[string]any{"apiVersion": "v1", "metadata": meta, "data": e.Data} // no kind
	case e.Op == OpDelete && m.r.IntN(10) < 7:
		// What kube-apiserver answers a ConfigMap delete with: a Status, no resourceVersion.
		obj = map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Success",
			"details": map[string]any{"name": e.Obj.Name, "kind": "configmaps", "uid": uid}}
	case e.Op == OpDelete:
		// Resources that return the deleted object (pods, custom resources) look like this.
		meta["deletionTimestamp"] = now.Format(time.RFC3339)
		meta["deletionGracePeriodSeconds"] = 0
		obj = map[string]any{"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta, "data": map[string]any{"gone": "yes"}}
	default:
		obj = map[string]any{"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta, "data": e.Data}
	}
	user := map[string]any{"username": e.User, "groups": []string{"system:authenticated"}}
	ev := map[string]any{
		"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
		"auditID": e.AuditID, "stage": "ResponseComplete", "requestURI": uri, "verb": e.Verb,
		"user": user, "sourceIPs": []string{"10.0.0.7"}, "userAgent": "kubectl/v1.35.0 (linux/amd64)",
		"objectRef":                map[string]any{"resource": "configmaps", "namespace": e.Obj.Namespace, "name": e.Obj.Name, "apiVersion": "v1"},
		"responseStatus":           map[string]any{"metadata": map[string]any{}, "code": code},
		"responseObject":           obj,
		"requestReceivedTimestamp": now.Add(-3 * time.Millisecond).Format(time.RFC3339Nano),
		"stageTimestamp":           now.Format(time.RFC3339Nano),
		"annotations":              map[string]any{"authorization.k8s.io/decision": "allow"},
	}
	if e.User == "bob" && m.r.IntN(2) == 0 {
		// alice acting as bob: the change is bob's, made with alice's credentials.
		ev["user"] = map[string]any{"username": "alice", "groups": []string{"system:authenticated"}}
		ev["impersonatedUser"] = user
		e.ImpersonatedBy = "alice"
	}
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	return b
}

// IngestResult is ingest's answer to an accepted batch.
type IngestResult struct {
	Events   int `json:"events"`
	Changes  int `json:"changes"`
	Appended int `json:"appended"`
}

// PostOnce sends body to ingest i once. status is 0 when the request failed.
func (m *Model) PostOnce(ctx context.Context, i int, body io.Reader) (status int, res IngestResult, err error) {
	m.attempts.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.r.Ingest(i).URL+"/audit-webhook/"+ClusterID, body)
	if err != nil {
		return 0, res, err
	}
	req.Header.Set("Authorization", "Bearer "+m.r.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, res, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, &res); err != nil {
			return resp.StatusCode, res, fmt.Errorf("ingest answered %d with %q: %w", resp.StatusCode, raw, err)
		}
		return resp.StatusCode, res, nil
	}
	return resp.StatusCode, res, fmt.Errorf("ingest-%d answered %d: %s", i, resp.StatusCode, strings.TrimSpace(string(raw)))
}

// Post delivers a batch the way kube-apiserver's audit webhook does: the same body again on
// any connection error or non-2xx answer (a 4xx other than 429 is a bug in the batch and
// fails at once), after a short backoff, until ctx ends. The first attempt goes to ingest
// first; retries go round the live replicas, as through a Service.
func (m *Model) Post(ctx context.Context, b *Batch, first int) error {
	backoff := 20 * time.Millisecond
	var last error
	for attempt := 0; ; attempt++ {
		target := first
		if attempt > 0 {
			target = m.nextIngest(first + attempt)
		}
		if target >= 0 {
			b.Attempts.Add(1)
			if attempt > 0 {
				m.retries.Add(1)
			}
			status, res, err := m.PostOnce(ctx, target, bytes.NewReader(b.Body))
			if err == nil {
				if res.Events != len(b.Events) {
					return fmt.Errorf("batch %d: ingest counted %d events, sent %d", b.N, res.Events, len(b.Events))
				}
				b.Appended.Add(int64(res.Appended))
				b.accepted.Store(true)
				return nil
			}
			last = err
			if status >= 400 && status < 500 && status != http.StatusTooManyRequests {
				return fmt.Errorf("batch %d refused: %w", b.N, err)
			}
		} else {
			last = errors.New("no ingest replica is running")
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("batch %d not accepted after %d attempts: %w (last: %v)", b.N, attempt+1, ctx.Err(), last)
		case <-time.After(backoff):
		}
		backoff = min(backoff*3/2, 400*time.Millisecond)
	}
}

// nextIngest returns a live ingest, trying from index from on; -1 when none runs.
func (m *Model) nextIngest(from int) int {
	ins := m.r.Ingests()
	for k := range ins {
		in := ins[(from+k)%len(ins)]
		if in.Alive() {
			return in.Index
		}
	}
	return -1
}

// Send generates a batch and posts it through a random live ingest; it fails the test when
// the batch is never accepted.
func (m *Model) Send(o BatchOptions) *Batch {
	m.r.T.Helper()
	m.postMu.Lock() // after the batch a flow may be posting: per-object order
	defer m.postMu.Unlock()
	b := m.NewBatch(o)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := m.Post(ctx, b, m.nextIngest(m.r.IntN(len(m.r.Ingests())))); err != nil {
		m.r.T.Fatalf("send: %v", err)
	}
	return b
}

// Flow posts random batches in the background until stopped, like a busy cluster.
type Flow struct {
	Batches, Events atomic.Int64
	cancel          context.CancelFunc
	done            chan struct{}
	err             atomic.Pointer[error]
}

// StartFlow posts random batches, one at a time, with gaps of gap on average between them.
func (m *Model) StartFlow(gap time.Duration, o BatchOptions) *Flow {
	ctx, cancel := context.WithCancel(context.Background())
	f := &Flow{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		for ctx.Err() == nil {
			m.postMu.Lock() // one batch at a time keeps per-object order
			b := m.NewBatch(o)
			// A batch once generated is delivered even after Stop: it is in the model.
			pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Minute)
			err := m.Post(pctx, b, m.nextIngest(m.r.IntN(len(m.r.Ingests()))))
			pcancel()
			m.postMu.Unlock()
			if err != nil {
				f.err.Store(&err)
				return
			}
			f.Batches.Add(1)
			f.Events.Add(int64(len(b.Events)))
			sleepCtx(ctx, m.r.Duration(gap/2, gap*3/2))
		}
	}()
	return f
}

// Stop ends the flow after the batch in flight and fails the test if a batch was refused.
func (f *Flow) Stop(t interface {
	Helper()
	Fatalf(string, ...any)
}) {
	t.Helper()
	f.cancel()
	<-f.done
	if err := f.err.Load(); err != nil {
		t.Fatalf("flow: %v", *err)
	}
}

// Expected returns the objects that must have a file, with their data.
func (m *Model) Expected() map[Obj]map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[Obj]map[string]string{}
	for o, st := range m.objs {
		if st.live {
			out[o] = st.data
		}
	}
	return out
}

// Known reports whether any event touched o.
func (m *Model) Known(o Obj) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.objs[o] != nil
}

// Events returns every generated event in order.
func (m *Model) Events() []*Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.order)
}

// EventByID returns the event with a product event id.
func (m *Model) EventByID(id string) (*Event, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.events[id]
	return e, ok
}

// Batches returns every generated batch.
func (m *Model) Batches() []*Batch {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.batches)
}

// Counts says how much was sent: batches, events, poison events, delivery attempts, retries.
func (m *Model) Counts() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	poison := 0
	for _, e := range m.order {
		if e.Poison {
			poison++
		}
	}
	return fmt.Sprintf("%d batches, %d events (%d poison), %d POSTs (%d retries)", len(m.batches), len(m.order), poison, m.attempts.Load(), m.retries.Load())
}

func newUUID() string {
	h := randomHex(16)
	return h[:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}
