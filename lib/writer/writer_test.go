package writer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/lease"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/testenv"
)

// fixture is a Writer on a real Valkey and a real Git remote over smart HTTP.
type fixture struct {
	w         *Writer
	newWriter func(t testing.TB) *Writer // another replica, with its own mirror
	bus       *bus.Bus
	git       *harness.GitRemote
	partition identity.Partition
}

const catalogYAML = `
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
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitTarget
metadata: {name: main, namespace: gitops}
spec: {providerRef: {name: repo}, branch: main, path: clusters/prod, sourceClusters: [prod]}
`

func newFixture(t testing.TB) *fixture {
	t.Helper()
	_, client := testenv.Valkey(t, harness.ValkeyOptions{})
	git := testenv.GitRemote(t, harness.GitRemoteOptions{})

	file := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(catalogYAML, git.Username, git.Password, git.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.LoadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b := bus.New(client, bus.Options{})
	replica := func(t testing.TB) *Writer {
		return New(Options{Catalog: cat, Bus: b, CacheDir: t.TempDir(), LeaseTTL: 2 * time.Second, GitTimeout: 5 * time.Second})
	}
	return &fixture{
		w:         replica(t),
		newWriter: replica,
		bus:       b,
		git:       git,
		partition: identity.PartitionOf(git.URL, "main"),
	}
}

// appendChanges queues ConfigMap upserts as ingest would, one audit id per call.
func (f *fixture) appendChanges(t testing.TB, auditID string, names ...string) {
	t.Helper()
	f.appendOps(t, auditID, change.OpUpsert, names...)
}

// appendOps queues one kind of change to ConfigMaps.
func (f *fixture) appendOps(t testing.TB, auditID string, op change.Op, names ...string) {
	t.Helper()
	var entries []bus.Entry
	for _, name := range names {
		m := msgIn(t, "0-0", "alice", "apps", name, op)
		c, err := change.Unmarshal(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		c.ID, c.AuditID, c.Partition = identity.EventID(auditID, c.Key, c.Target), auditID, f.partition.ID
		b, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, bus.Entry{ID: c.ID, Payload: b})
	}
	if _, err := f.bus.Append(context.Background(), f.partition.ID, entries); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) backlog(t *testing.T) int64 {
	t.Helper()
	n, err := f.bus.Backlog(context.Background(), f.partition.ID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDrainPushesThenAcknowledges(t *testing.T) {
	f := newFixture(t)
	f.appendChanges(t, "a1", "one", "two", "three")
	res, err := f.w.Drain(context.Background(), f.partition)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 3 || res.Commits != 1 {
		t.Errorf("result = %+v, want 3 events in 1 commit", res)
	}
	files, err := f.git.Files("main")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"one", "two", "three"} {
		if _, ok := files["clusters/prod/apps/core/configmaps/"+name+".yaml"]; !ok {
			t.Errorf("%s.yaml not pushed; files: %v", name, files)
		}
	}
	if _, ok := files["README.md"]; !ok {
		t.Error("the human file outside the target folder was lost")
	}
	if n := f.backlog(t); n != 0 {
		t.Errorf("backlog after drain = %d, want 0 (acknowledged and trimmed)", n)
	}

	// The same content delivered again (a redelivery after a crash between push and ack)
	// makes no commit.
	head, _ := f.git.Head("main")
	f.appendChanges(t, "a2", "one", "two")
	res, err = f.w.Drain(context.Background(), f.partition)
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := f.git.Head("main"); res.Commits != 0 || after != head || res.Events != 2 {
		t.Errorf("redelivery: result %+v, head %s -> %s; want no commit", res, head, after)
	}
}

func TestDrainLeavesThePartitionToTheLeaseHolder(t *testing.T) {
	f := newFixture(t)
	f.appendChanges(t, "a1", "one")
	keys := f.bus.Keys(f.partition.ID)
	l, err := lease.Acquire(context.Background(), f.bus.Client(), lease.Keys{Lease: keys.Lease, Epoch: keys.Epoch}, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.w.Drain(context.Background(), f.partition)
	if err != nil || !res.Busy || res.Events != 0 {
		t.Fatalf("Drain = %+v, %v; want Busy and nothing read", res, err)
	}
	if n := f.backlog(t); n != 1 {
		t.Errorf("backlog = %d, want 1", n)
	}
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res, err := f.w.Drain(context.Background(), f.partition); err != nil || res.Events != 1 {
		t.Errorf("after release: %+v, %v", res, err)
	}
}

func TestDrainParksPoisonAndKeepsFlowing(t *testing.T) {
	f := newFixture(t)
	if _, err := f.bus.Append(context.Background(), f.partition.ID, []bus.Entry{{ID: "poison", Payload: []byte(`{"specversion":"1.0","not":"a change"}`)}}); err != nil {
		t.Fatal(err)
	}
	f.appendChanges(t, "a1", "after-poison")
	res, err := f.w.Drain(context.Background(), f.partition)
	if err != nil {
		t.Fatal(err)
	}
	if res.DeadLettered != 1 || res.Commits != 1 {
		t.Errorf("result = %+v, want 1 parked and 1 commit", res)
	}
	dead, err := f.bus.DeadLetters(context.Background(), f.partition.ID)
	if err != nil || len(dead) != 1 || dead[0].Reason == "" {
		t.Fatalf("DLQ = %+v, %v; want the poison with its reason", dead, err)
	}
	if n := f.backlog(t); n != 0 {
		t.Errorf("backlog = %d, want 0", n)
	}
}

func TestDrainKeepsEventsWhileTheRemoteIsDown(t *testing.T) {
	f := newFixture(t)
	f.appendChanges(t, "a1", "one")
	if _, err := f.w.Drain(context.Background(), f.partition); err != nil {
		t.Fatal(err) // warm the mirror, so the next failure is the push's
	}
	f.appendChanges(t, "a2", "two")
	if err := f.git.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.w.Drain(context.Background(), f.partition); err == nil {
		t.Fatal("Drain succeeded with the remote down")
	}
	if n := f.backlog(t); n != 1 {
		t.Errorf("backlog = %d, want the unwritten event kept", n)
	}
	if err := f.git.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res, err := f.w.Drain(context.Background(), f.partition); err != nil || res.Commits != 1 {
		t.Fatalf("after the remote came back: %+v, %v", res, err)
	}
	if files, _ := f.git.Files("main"); files["clusters/prod/apps/core/configmaps/two.yaml"] == "" {
		t.Error("two.yaml not pushed after recovery")
	}
}

func TestDrainRefusesUnknownPartitions(t *testing.T) {
	f := newFixture(t)
	_, err := f.w.Drain(context.Background(), identity.PartitionOf("http://elsewhere/repo.git", "main"))
	if !errors.Is(err, ErrUnknownPartition) {
		t.Errorf("err = %v, want ErrUnknownPartition", err)
	}
}

// A replica whose mirror is older than the branch must not take "nothing to change in my
// copy" for "nothing to change": that would acknowledge a delete without writing it.
func TestDrainJudgesAgainstTheBranchNotAStaleMirror(t *testing.T) {
	f := newFixture(t)
	other := f.newWriter(t)
	drain := func(w *Writer) {
		t.Helper()
		if _, err := w.Drain(context.Background(), f.partition); err != nil {
			t.Fatal(err)
		}
	}
	f.appendChanges(t, "a1", "a")
	drain(other) // other's mirror now knows a, and nothing after it
	f.appendChanges(t, "a2", "b")
	drain(f.w) // b is pushed by the first replica
	f.appendOps(t, "a3", change.OpDelete, "b")
	drain(other)
	files, err := f.git.Files("main")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files["clusters/prod/apps/core/configmaps/b.yaml"]; ok {
		t.Error("the delete of b was acknowledged without being written")
	}
	if _, ok := files["clusters/prod/apps/core/configmaps/a.yaml"]; !ok {
		t.Error("a is missing")
	}
}

func TestCollectOftenRestoresGOGCWhenTheLastCloneEnds(t *testing.T) {
	gogc := func() int { p := debug.SetGCPercent(100); debug.SetGCPercent(p); return p }
	defer debug.SetGCPercent(debug.SetGCPercent(150))
	first, second := collectOften(), collectOften()
	first()
	if got := gogc(); got != cloneGCPercent {
		t.Fatalf("GOGC %d while a clone still runs, want %d", got, cloneGCPercent)
	}
	second()
	if got := gogc(); got != 150 {
		t.Fatalf("GOGC %d after the clones, want 150 as before", got)
	}
}
