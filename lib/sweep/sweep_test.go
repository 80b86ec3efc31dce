package sweep_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/valkey-io/valkey-go"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/layout"
	"github.com/gitops-reverser/gitops-reverser/lib/lease"
	"github.com/gitops-reverser/gitops-reverser/lib/notify"
	"github.com/gitops-reverser/gitops-reverser/lib/sweep"
	"github.com/gitops-reverser/gitops-reverser/lib/writer"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/testenv"
)

// providerYAML is a GitProvider on the test's Git remote; targetYAML a GitTarget on it.
const providerYAML = `
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: gitops}
stringData: {username: %q, password: %q}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitProvider
metadata: {name: repo, namespace: gitops}
spec:
  url: %q
  secretRef: {name: creds}
  committer: {name: Bot, email: bot@example.com}
`

const targetYAML = `
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitTarget
metadata: {name: %s, namespace: gitops}
spec: {providerRef: {name: repo}, branch: main, path: %s, sourceClusters: [prod]}
`

// source is a catalog whose snapshot a test replaces, as a Watcher would on a change.
type source struct {
	p atomic.Pointer[catalog.Snapshot]
}

func (s *source) Snapshot() *catalog.Snapshot { return s.p.Load() }

// rig is a real Valkey, a real Git remote over smart HTTP, and a real writer serving its
// CloudEvent handler, which the sweep notifies.
type rig struct {
	client    valkey.Client
	bus       *bus.Bus
	git       *harness.GitRemote
	partition identity.Partition
	writerCat *source // what the writer knows
	writer    *writer.Writer
	notifier  *notify.Notifier
}

func newRig(t *testing.T) *rig {
	t.Helper()
	_, client := testenv.Valkey(t, harness.ValkeyOptions{})
	git := testenv.GitRemote(t, harness.GitRemoteOptions{})
	b := bus.New(client, bus.Options{})
	r := &rig{client: client, bus: b, git: git, partition: identity.PartitionOf(git.URL, "main"), writerCat: &source{}}
	r.writerCat.p.Store(r.catalog(t, "main", "clusters/prod"))
	// One delivery: an event that cannot be written is parked at once.
	r.writer = writer.New(writer.Options{Catalog: r.writerCat, Bus: b, CacheDir: t.TempDir(), LeaseTTL: 2 * time.Second, GitTimeout: 10 * time.Second, MaxDeliveries: 1})
	srv := httptest.NewServer(r.writer.Handler())
	t.Cleanup(srv.Close)
	n, err := notify.New(context.Background(), notify.Options{Sink: srv.URL, Source: "/dlq-sweep", Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	r.notifier = n
	return r
}

// catalog builds a snapshot with the provider and the given target name, path pairs.
func (r *rig) catalog(t *testing.T, targets ...string) *catalog.Snapshot {
	t.Helper()
	doc := fmt.Sprintf(providerYAML, r.git.Username, r.git.Password, r.git.URL)
	for i := 0; i < len(targets); i += 2 {
		doc += fmt.Sprintf(targetYAML, targets[i], targets[i+1])
	}
	s, err := catalog.Decode(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Problems) != 0 {
		t.Fatalf("catalog problems: %v", s.Problems)
	}
	return s
}

// event is a ConfigMap upsert for a target, queued the way ingest queues it (with its
// dedupe key). object nil means a well-formed ConfigMap.
func (r *rig) event(t *testing.T, target, root, name string, object json.RawMessage) string {
	t.Helper()
	key := identity.Key{Cluster: "prod", Resource: "configmaps", Namespace: "apps", Name: name}
	ref := identity.TargetRef{Namespace: "gitops", Name: target}
	if object == nil {
		object = json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `","namespace":"apps"},"data":{"k":"v"}}`)
	}
	c := &change.Change{
		ID: identity.EventID("audit-"+name, key, ref), Op: change.OpUpsert, Time: time.Now(), Partition: r.partition.ID,
		Actor: change.Actor{Username: "alice"}, AuditID: "audit-" + name, Verb: "update",
		Key: key, Target: ref, Path: layout.Path(root, key), Object: object,
	}
	payload, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.bus.Append(context.Background(), r.partition.ID, []bus.Entry{{ID: c.ID, Payload: payload}}); err != nil || n != 1 {
		t.Fatalf("Append = %d, %v", n, err)
	}
	return c.ID
}

func (r *rig) drain(t *testing.T) writer.Result {
	t.Helper()
	res, err := r.writer.Drain(context.Background(), r.partition)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (r *rig) deadLetters(t *testing.T) []bus.DeadLetter {
	t.Helper()
	dl, err := r.bus.DeadLetters(context.Background(), r.partition.ID)
	if err != nil {
		t.Fatal(err)
	}
	return dl
}

func (r *rig) stats(t *testing.T) bus.Stats {
	t.Helper()
	s, err := r.bus.Stats(context.Background(), r.partition.ID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// commitsWith counts the commits on main whose message names the event id.
func (r *rig) commitsWith(t *testing.T, eventID string) int {
	t.Helper()
	log, err := r.git.Log("main")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range log {
		if strings.Contains(c.Message, writer.TrailerEventID+": "+eventID) {
			n++
		}
	}
	return n
}

func run(t *testing.T, snap *catalog.Snapshot, o sweep.Options) *sweep.Report {
	t.Helper()
	rep, err := sweep.Run(context.Background(), snap, o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Partitions) != len(snap.PartitionIDs()) {
		t.Fatalf("report of %d partitions, want %d", len(rep.Partitions), len(snap.PartitionIDs()))
	}
	return rep
}

// TestTransientFailureIsRedrivenToGit: a GitTarget is added; ingest already routes to it but
// the writer has not seen it yet, so it parks the event as outside its folders. Once the
// writer knows the target, the sweep re-drives the event, the writer commits it, and the DLQ
// is empty. Before its backoff has passed, the event is left parked.
func TestTransientFailureIsRedrivenToGit(t *testing.T) {
	r := newRig(t)
	current := r.catalog(t, "main", "clusters/prod", "late", "clusters/late")
	id := r.event(t, "late", "clusters/late", "settings", nil)
	if res := r.drain(t); res.DeadLettered != 1 || res.Commits != 0 {
		t.Fatalf("writer with the old catalog: %+v, want the event parked", res)
	}
	dl := r.deadLetters(t)
	if len(dl) != 1 || !strings.Contains(dl[0].Reason, "outside the folders") || dl[0].Redrives != 0 {
		t.Fatalf("DLQ = %+v, want the event parked as outside the folders, never re-driven", dl)
	}

	// The backoff has not passed: nothing moves, nothing to announce.
	rep := run(t, current, sweep.Options{Bus: r.bus, Notifier: r.notifier, MaxRedrives: 3, Backoff: time.Hour})
	if p := rep.Partitions[0]; p.Redriven != 0 || p.Parked != 1 || p.Exhausted != 0 || p.DeadLetters != 1 || p.Backlog != 0 || p.Notified {
		t.Fatalf("sweep before the backoff: %+v, want the event parked and no notification", p)
	}

	// The writer picks up the new GitTarget; the next sweep re-drives the event and the
	// writer, notified, commits it.
	r.writerCat.p.Store(current)
	time.Sleep(20 * time.Millisecond)
	rep = run(t, current, sweep.Options{Bus: r.bus, Notifier: r.notifier, MaxRedrives: 3, Backoff: 10 * time.Millisecond})
	p := rep.Partitions[0]
	if p.ID != r.partition.ID || p.Redriven != 1 || p.Parked != 0 || p.DeadLetters != 0 || p.Backlog != 1 || !p.Notified || p.Error != "" {
		t.Fatalf("sweep after the fix: %+v, want 1 re-driven and the writer notified", p)
	}
	if rep.Totals.Redriven != 1 || rep.Totals.Notified != 1 || rep.Totals.Failed != 0 {
		t.Errorf("totals = %+v", rep.Totals)
	}
	files, err := r.git.Files("main")
	if err != nil {
		t.Fatal(err)
	}
	path := "clusters/late/apps/core/configmaps/settings.yaml"
	if !strings.Contains(files[path], "kind: ConfigMap") {
		t.Fatalf("%s not in Git after the re-drive; files: %v", path, keys(files))
	}
	if n := r.commitsWith(t, id); n != 1 {
		t.Errorf("%d commits carry the event id, want 1", n)
	}
	if s := r.stats(t); s.Length != 0 || s.DeadLetters != 0 || s.Leased {
		t.Errorf("after the drain: %+v, want stream and DLQ empty, lease released", s)
	}

	// A further sweep has nothing to do.
	rep = run(t, current, sweep.Options{Bus: r.bus, Notifier: r.notifier, MaxRedrives: 3, Backoff: time.Millisecond})
	if p := rep.Partitions[0]; p.Redriven != 0 || p.Parked != 0 || p.Notified || p.Backlog != 0 {
		t.Errorf("idle sweep: %+v", p)
	}
}

// TestPermanentFailureStaysParked: an object that cannot render is re-driven MaxRedrives
// times, comes back each time with its re-drive count, then stays parked with its reason.
// The event beside it is committed once.
func TestPermanentFailureStaysParked(t *testing.T) {
	r := newRig(t)
	snap := r.writerCat.Snapshot()
	bad := r.event(t, "main", "clusters/prod", "broken", json.RawMessage(`{"metadata":{"name":"broken"}}`))
	good := r.event(t, "main", "clusters/prod", "fine", nil)
	if res := r.drain(t); res.DeadLettered != 1 || res.Commits != 1 {
		t.Fatalf("first drain: %+v, want 1 parked and 1 commit", res)
	}
	first := r.deadLetters(t)
	if len(first) != 1 {
		t.Fatalf("DLQ = %+v, want 1 entry", first)
	}
	reason := first[0].Reason
	if !strings.Contains(reason, "render") {
		t.Fatalf("reason = %q, want a render error", reason)
	}

	const maxRedrives = 2
	backoff := 5 * time.Millisecond
	for round := int64(1); round <= maxRedrives; round++ {
		time.Sleep(sweep.Wait(backoff, round-1) + 10*time.Millisecond)
		rep := run(t, snap, sweep.Options{Bus: r.bus, Notifier: r.notifier, MaxRedrives: maxRedrives, Backoff: backoff})
		if p := rep.Partitions[0]; p.Redriven != 1 || p.Parked != 0 || !p.Notified {
			t.Fatalf("round %d: %+v, want the event re-driven and the writer notified", round, p)
		}
		dl := r.deadLetters(t)
		if len(dl) != 1 || dl[0].Redrives != round || dl[0].Reason != reason || dl[0].Cluster != "prod" || dl[0].Attempts != 1 {
			t.Fatalf("round %d: DLQ = %+v, want exactly the one event, parked again after %d re-drives with its reason", round, dl, round)
		}
		if s := r.stats(t); s.Length != 0 {
			t.Fatalf("round %d: stream length %d, want 0", round, s.Length)
		}
	}

	// At the limit: it stays parked, however long it has waited.
	time.Sleep(sweep.Wait(backoff, maxRedrives) + 10*time.Millisecond)
	for range 2 {
		rep := run(t, snap, sweep.Options{Bus: r.bus, Notifier: r.notifier, MaxRedrives: maxRedrives, Backoff: backoff})
		if p := rep.Partitions[0]; p.Redriven != 0 || p.Parked != 1 || p.Exhausted != 1 || p.DeadLetters != 1 || p.Notified {
			t.Fatalf("at the limit: %+v, want the event parked for a human", p)
		}
	}
	dl := r.deadLetters(t)
	if len(dl) != 1 || dl[0].Redrives != maxRedrives || dl[0].Reason != reason || string(dl[0].Payload) != string(first[0].Payload) {
		t.Fatalf("DLQ = %+v, want the one event with %d re-drives, its reason and its payload", dl, maxRedrives)
	}
	if !strings.Contains(string(dl[0].Payload), bad) {
		t.Errorf("parked payload is not event %s", bad)
	}
	if n := r.commitsWith(t, good); n != 1 {
		t.Errorf("the good event is in %d commits, want 1", n)
	}
	if n := r.commitsWith(t, bad); n != 0 {
		t.Errorf("the broken event is in %d commits, want 0", n)
	}
}

// readySink records the partition.ready CloudEvents it receives.
type readySink struct {
	status int
	mu     sync.Mutex
	got    []identity.Partition
}

func (s *readySink) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	e, err := cloudevents.NewEventFromHTTPRequest(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p, err := change.ReadyFromEvent(*e)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.got = append(s.got, p)
	s.mu.Unlock()
	w.WriteHeader(s.status)
}

func (s *readySink) partitions() []identity.Partition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]identity.Partition(nil), s.got...)
}

// TestNotifiesStrandedBacklogOnly: of three partitions, only the one with backlog and no
// lease holder (its writer crashed with entries read but not acknowledged) is announced; the
// one whose lease is held and the one without backlog are not.
func TestNotifiesStrandedBacklogOnly(t *testing.T) {
	_, client := testenv.Valkey(t, harness.ValkeyOptions{})
	b := bus.New(client, bus.Options{})
	doc := ""
	for _, repo := range []string{"stranded", "held", "idle"} {
		doc += fmt.Sprintf(`
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitProvider
metadata: {name: %[1]s, namespace: gitops}
spec: {url: "http://git.invalid/%[1]s.git"}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitTarget
metadata: {name: %[1]s, namespace: gitops}
spec: {providerRef: {name: %[1]s}, branch: main, path: clusters/prod, sourceClusters: [prod]}
`, repo)
	}
	snap, err := catalog.Decode(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	stranded := identity.PartitionOf("http://git.invalid/stranded.git", "main")
	held := identity.PartitionOf("http://git.invalid/held.git", "main")
	idle := identity.PartitionOf("http://git.invalid/idle.git", "main")
	ctx := context.Background()
	appendN := func(p identity.Partition, ids ...string) {
		t.Helper()
		var es []bus.Entry
		for _, id := range ids {
			es = append(es, bus.Entry{ID: id, Payload: []byte(`{"id":"` + id + `"}`)})
		}
		if _, err := b.Append(ctx, p.ID, es); err != nil {
			t.Fatal(err)
		}
	}
	// A writer read two entries and died before acknowledging them; a third is unread.
	appendN(stranded, "s1", "s2", "s3")
	if msgs, err := b.Read(ctx, stranded.ID, 2); err != nil || len(msgs) != 2 {
		t.Fatalf("Read = %d, %v", len(msgs), err)
	}
	// A live writer holds this one.
	appendN(held, "h1")
	k := b.Keys(held.ID)
	l, err := lease.Acquire(ctx, client, lease.Keys{Lease: k.Lease, Epoch: k.Epoch}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	// This one has only a parked event, not due yet: no backlog.
	appendN(idle, "i1")
	msgs, err := b.Read(ctx, idle.ID, 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Read = %d, %v", len(msgs), err)
	}
	if err := b.DeadLetter(ctx, idle.ID, msgs[0], "bad", "prod"); err != nil {
		t.Fatal(err)
	}

	sink := &readySink{status: http.StatusOK}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	n, err := notify.New(ctx, notify.Options{Sink: srv.URL, Source: "/dlq-sweep", Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep := run(t, snap, sweep.Options{Bus: b, Notifier: n, MaxRedrives: 3, Backoff: time.Hour})
	got := sink.partitions()
	if len(got) != 1 || got[0] != stranded {
		t.Fatalf("partition.ready sent for %+v, want only %+v", got, stranded)
	}
	byID := map[string]sweep.PartitionReport{}
	for _, p := range rep.Partitions {
		byID[p.ID] = p
	}
	if p := byID[stranded.ID]; !p.Notified || p.Backlog != 3 || p.Leased {
		t.Errorf("stranded: %+v, want notified with backlog 3", p)
	}
	if p := byID[held.ID]; p.Notified || p.Backlog != 1 || !p.Leased {
		t.Errorf("held: %+v, want leased, backlog 1, not notified", p)
	}
	if p := byID[idle.ID]; p.Notified || p.Backlog != 0 || p.Parked != 1 || p.DeadLetters != 1 {
		t.Errorf("idle: %+v, want 1 parked, no backlog, not notified", p)
	}
	if rep.Totals.Notified != 1 || rep.Totals.Backlog != 4 || rep.Totals.DeadLetters != 1 || rep.Totals.Partitions != 3 {
		t.Errorf("totals = %+v", rep.Totals)
	}

	// A writer that does not take the notification fails the run, naming the partition,
	// and the other partitions are still reported.
	failing := &readySink{status: http.StatusServiceUnavailable}
	srv2 := httptest.NewServer(failing)
	defer srv2.Close()
	n2, err := notify.New(ctx, notify.Options{Sink: srv2.URL, Source: "/dlq-sweep", Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = sweep.Run(ctx, snap, sweep.Options{Bus: b, Notifier: n2, MaxRedrives: 3, Backoff: time.Hour})
	if err == nil || !strings.Contains(err.Error(), stranded.ID) {
		t.Fatalf("Run with a failing writer = %v, want an error naming %s", err, stranded.ID)
	}
	if rep.Totals.Failed != 1 || rep.Totals.Notified != 0 || len(rep.Partitions) != 3 {
		t.Errorf("totals with a failing writer = %+v", rep.Totals)
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
