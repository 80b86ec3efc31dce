package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/lease"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/testenv"
)

// fixture is one real valkey-server and a client on it.
type fixture struct {
	valkey *harness.Valkey
	client valkey.Client
}

func newFixture(t testing.TB, opts harness.ValkeyOptions) *fixture {
	t.Helper()
	v, c := testenv.Valkey(t, opts)
	return &fixture{valkey: v, client: c}
}

func (f *fixture) bus(o bus.Options) *bus.Bus { return bus.New(f.client, o) }

// xlen reads the stream length with a raw command, independent of Bus.Backlog.
func (f *fixture) xlen(t testing.TB, key string) int64 {
	t.Helper()
	n, err := f.client.Do(context.Background(), f.client.B().Xlen().Key(key).Build()).AsInt64()
	if err != nil {
		t.Fatalf("XLEN %s: %v", key, err)
	}
	return n
}

// payloads lists the payloads in a stream with a raw XRANGE, oldest first.
func (f *fixture) payloads(t testing.TB, key string) []string {
	t.Helper()
	entries, err := f.client.Do(context.Background(), f.client.B().Xrange().Key(key).Start("-").End("+").Build()).AsXRange()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", key, err)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.FieldValues["ce"])
	}
	return out
}

func entries(ids ...string) []bus.Entry {
	out := make([]bus.Entry, 0, len(ids))
	for _, id := range ids {
		out = append(out, bus.Entry{ID: id, Payload: []byte("payload-" + id)})
	}
	return out
}

func mustAppend(t testing.TB, b *bus.Bus, partition string, es []bus.Entry) int {
	t.Helper()
	n, err := b.Append(context.Background(), partition, es)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return n
}

func mustRead(t testing.TB, b *bus.Bus, partition string, count int) []bus.Message {
	t.Helper()
	msgs, err := b.Read(context.Background(), partition, count)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return msgs
}

func mustAck(t testing.TB, b *bus.Bus, partition string, msgs []bus.Message) {
	t.Helper()
	if err := b.Ack(context.Background(), partition, streamIDs(msgs), nil); err != nil {
		t.Fatalf("Ack: %v", err)
	}
}

func streamIDs(msgs []bus.Message) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.StreamID)
	}
	return out
}

func payloadsOf(msgs []bus.Message) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, string(m.Payload))
	}
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestAppendDedupesByEventID(t *testing.T) {
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{})
	type batch struct {
		ids  []string
		want int // entries appended
	}
	tests := []struct {
		name    string
		batches []batch
		want    []string // the stream's payloads, in order
	}{
		{
			name:    "same ids twice append once",
			batches: []batch{{[]string{"a", "b"}, 2}, {[]string{"a", "b"}, 0}},
			want:    []string{"a@0", "b@0"},
		},
		{
			name:    "mixed batch appends only the new ids, in order",
			batches: []batch{{[]string{"a", "b"}, 2}, {[]string{"c", "a", "d", "b", "e"}, 3}},
			want:    []string{"a@0", "b@0", "c@1", "d@1", "e@1"},
		},
		{
			name:    "duplicate inside one batch appends once",
			batches: []batch{{[]string{"a", "a", "b"}, 2}},
			want:    []string{"a@0", "b@0"},
		},
		{
			name:    "empty batch appends nothing",
			batches: []batch{{nil, 0}, {[]string{"a"}, 1}, {[]string{}, 0}},
			want:    []string{"a@1"},
		},
		{
			name:    "order of a batch is kept",
			batches: []batch{{[]string{"z", "y", "x", "w"}, 4}},
			want:    []string{"z@0", "y@0", "x@0", "w@0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			partition := strings.ReplaceAll(tt.name, " ", "-")
			for i, bt := range tt.batches {
				es := make([]bus.Entry, 0, len(bt.ids))
				for _, id := range bt.ids {
					// The payload names its batch, so a duplicate that overwrote would show.
					es = append(es, bus.Entry{ID: id, Payload: fmt.Appendf(nil, "%s@%d", id, i)})
				}
				if n := mustAppend(t, b, partition, es); n != bt.want {
					t.Errorf("batch %d %v: Append = %d, want %d", i, bt.ids, n, bt.want)
				}
			}
			stream := b.Keys(partition).Stream
			if n := f.xlen(t, stream); n != int64(len(tt.want)) {
				t.Errorf("XLEN = %d, want %d", n, len(tt.want))
			}
			if n, err := b.Backlog(context.Background(), partition); err != nil || n != int64(len(tt.want)) {
				t.Errorf("Backlog = %d, %v; want %d", n, err, len(tt.want))
			}
			if got := f.payloads(t, stream); !equal(got, tt.want) {
				t.Errorf("stream = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAppendDedupeSurvivesTrim(t *testing.T) {
	// The seen keys, not the stream, carry the dedupe: an id processed and trimmed away is
	// still not appended again (an apiserver retry arriving after the writer caught up).
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{})
	const p = "p"
	mustAppend(t, b, p, entries("a", "b"))
	mustAck(t, b, p, mustRead(t, b, p, 10))
	if n := f.xlen(t, b.Keys(p).Stream); n != 0 {
		t.Fatalf("XLEN after ack = %d, want 0", n)
	}
	if n := mustAppend(t, b, p, entries("a", "b", "c")); n != 1 {
		t.Errorf("Append after trim = %d, want 1", n)
	}
	if got, want := payloadsOf(mustRead(t, b, p, 10)), []string{"payload-c"}; !equal(got, want) {
		t.Errorf("Read = %q, want %q", got, want)
	}
	ttl, err := f.client.Do(context.Background(), f.client.B().Ttl().Key(b.Keys(p).Seen("a")).Build()).AsInt64()
	if err != nil || ttl <= 0 || ttl > int64(bus.DefaultSeenTTL/time.Second) {
		t.Errorf("TTL of seen key = %d, %v; want in (0, %d]", ttl, err, int64(bus.DefaultSeenTTL/time.Second))
	}
}

func TestReadReturnsPendingFirst(t *testing.T) {
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{})
	const p = "p"
	mustAppend(t, b, p, entries("e1", "e2", "e3"))

	first := mustRead(t, b, p, 2)
	if got, want := payloadsOf(first), []string{"payload-e1", "payload-e2"}; !equal(got, want) {
		t.Fatalf("first Read = %q, want %q", got, want)
	}
	// Not acknowledged: the same reader, and a new writer on its own connection after a
	// crash, get the same entries again, with the same stream ids.
	again := mustRead(t, b, p, 2)
	if !equal(streamIDs(again), streamIDs(first)) || !equal(payloadsOf(again), payloadsOf(first)) {
		t.Errorf("second Read = %v %q, want %v %q", streamIDs(again), payloadsOf(again), streamIDs(first), payloadsOf(first))
	}
	other, err := bus.Dial(context.Background(), f.valkey.Addr, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	takeover := mustRead(t, bus.New(other, bus.Options{}), p, 10)
	if !equal(streamIDs(takeover), streamIDs(first)) {
		t.Errorf("Read by a new writer = %v, want the pending %v only", streamIDs(takeover), streamIDs(first))
	}

	mustAck(t, b, p, first)
	third := mustRead(t, b, p, 2)
	if got, want := payloadsOf(third), []string{"payload-e3"}; !equal(got, want) {
		t.Fatalf("Read after ack = %q, want %q", got, want)
	}
	mustAck(t, b, p, third)
	if rest := mustRead(t, b, p, 2); len(rest) != 0 {
		t.Errorf("Read of a drained partition = %v, want empty", streamIDs(rest))
	}
}

func TestAckTrims(t *testing.T) {
	tests := []struct {
		name       string
		appended   int // entries appended
		read       int // entries read (delivered)
		acked      int // prefix of the read entries acknowledged
		wantXLEN   int64
		wantUnread []string // what the next reads return, until drained
	}{
		{name: "everything acked", appended: 3, read: 3, acked: 3, wantXLEN: 0},
		{name: "prefix acked, rest unread", appended: 5, read: 2, acked: 2, wantXLEN: 3, wantUnread: []string{"payload-e3", "payload-e4", "payload-e5"}},
		{name: "one acked, rest unread", appended: 2, read: 1, acked: 1, wantXLEN: 1, wantUnread: []string{"payload-e2"}},
	}
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := strings.ReplaceAll(tt.name, " ", "-")
			var ids []string
			for i := 1; i <= tt.appended; i++ {
				ids = append(ids, "e"+strconv.Itoa(i))
			}
			mustAppend(t, b, p, entries(ids...))
			msgs := mustRead(t, b, p, tt.read)
			if len(msgs) != tt.read {
				t.Fatalf("Read %d = %d entries", tt.read, len(msgs))
			}
			mustAck(t, b, p, msgs[:tt.acked])
			if n := f.xlen(t, b.Keys(p).Stream); n != tt.wantXLEN {
				t.Errorf("XLEN after ack = %d, want %d", n, tt.wantXLEN)
			}
			// What remains is exactly the unacknowledged tail, still in order.
			want := make([]string, 0, tt.wantXLEN)
			for _, id := range ids[len(ids)-int(tt.wantXLEN):] {
				want = append(want, "payload-"+id)
			}
			if got := f.payloads(t, b.Keys(p).Stream); !equal(got, want) {
				t.Errorf("stream after ack = %q, want %q", got, want)
			}
			var got []string
			for range 10 {
				msgs := mustRead(t, b, p, 2)
				if len(msgs) == 0 {
					break
				}
				got = append(got, payloadsOf(msgs)...)
				mustAck(t, b, p, msgs)
			}
			if !equal(got, tt.wantUnread) {
				t.Errorf("rest read = %q, want %q", got, tt.wantUnread)
			}
			if n := f.xlen(t, b.Keys(p).Stream); n != 0 {
				t.Errorf("XLEN after draining = %d, want 0", n)
			}
		})
	}
}

func TestAckTrimsOnlyBelowPendingWork(t *testing.T) {
	// Four entries are read (all pending), then acknowledged in the given groups, by index.
	// After each group the stream holds exactly the acknowledged-or-not entries from the
	// oldest still-pending one on, and every pending entry still reads with its payload.
	tests := []struct {
		name     string
		acks     [][]int
		wantXLEN []int64 // after each group
	}{
		{name: "prefix while later entries pending", acks: [][]int{{0, 1}, {2, 3}}, wantXLEN: []int64{2, 0}},
		{name: "newer entry first", acks: [][]int{{1}, {0}, {2, 3}}, wantXLEN: []int64{4, 2, 0}},
		{name: "newest entry first", acks: [][]int{{3}, {0, 1}, {2}}, wantXLEN: []int64{4, 2, 0}},
		{name: "one at a time", acks: [][]int{{0}, {1}, {2}, {3}}, wantXLEN: []int64{3, 2, 1, 0}},
	}
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := strings.ReplaceAll(tt.name, " ", "-")
			mustAppend(t, b, p, entries("e0", "e1", "e2", "e3", "later"))
			msgs := mustRead(t, b, p, 4)
			if len(msgs) != 4 {
				t.Fatalf("Read = %d entries, want 4", len(msgs))
			}
			acked := map[int]bool{}
			for step, group := range tt.acks {
				var ids []string
				for _, i := range group {
					ids = append(ids, msgs[i].StreamID)
					acked[i] = true
				}
				if err := b.Ack(context.Background(), p, ids, nil); err != nil {
					t.Fatalf("step %d: Ack: %v", step, err)
				}
				// The unread fifth entry is never trimmed.
				if n := f.xlen(t, b.Keys(p).Stream); n != tt.wantXLEN[step]+1 {
					t.Errorf("step %d: XLEN = %d, want %d pending-or-above plus the unread one", step, n, tt.wantXLEN[step]+1)
				}
				var want []string
				for i, m := range msgs {
					if !acked[i] {
						want = append(want, m.StreamID+"="+string(m.Payload))
					}
				}
				var got []string
				if len(want) > 0 {
					for _, m := range mustRead(t, b, p, 4) {
						got = append(got, m.StreamID+"="+string(m.Payload))
					}
				}
				if !equal(got, want) {
					t.Errorf("step %d: pending read = %q, want %q", step, got, want)
				}
			}
			if got, want := payloadsOf(mustRead(t, b, p, 4)), []string{"payload-later"}; !equal(got, want) {
				t.Errorf("Read after acking all = %q, want %q", got, want)
			}
		})
	}
}

func TestReadBeforeGroupExists(t *testing.T) {
	tests := []struct {
		name   string
		before []string // appended before the first Read
		want   []string
	}{
		{name: "no stream and no group", want: nil},
		{name: "entries appended before the group existed", before: []string{"a", "b"}, want: []string{"payload-a", "payload-b"}},
	}
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := strings.ReplaceAll(tt.name, " ", "-")
			if len(tt.before) > 0 {
				mustAppend(t, b, p, entries(tt.before...))
			}
			msgs, err := b.Read(context.Background(), p, 10)
			if err != nil {
				t.Fatalf("first Read: %v", err)
			}
			if got := payloadsOf(msgs); !equal(got, tt.want) {
				t.Errorf("first Read = %q, want %q", got, tt.want)
			}
			mustAck(t, b, p, msgs)
			// The group exists now; later appends are read as usual.
			mustAppend(t, b, p, entries("later"))
			if got, want := payloadsOf(mustRead(t, b, p, 10)), []string{"payload-later"}; !equal(got, want) {
				t.Errorf("Read after a later append = %q, want %q", got, want)
			}
		})
	}
}

func TestAppendFull(t *testing.T) {
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{MaxLen: 3})
	const p = "p"
	for _, id := range []string{"a", "b", "c"} {
		if n := mustAppend(t, b, p, entries(id)); n != 1 {
			t.Fatalf("Append %s = %d, want 1", id, n)
		}
	}
	tests := []struct {
		name string
		ids  []string
	}{
		{"one new entry", []string{"d"}},
		{"several new entries", []string{"e", "f"}},
		{"only already-seen entries", []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := b.Append(context.Background(), p, entries(tt.ids...))
			if !errors.Is(err, bus.ErrFull) {
				t.Errorf("Append at the cap = %d, %v; want ErrFull", n, err)
			}
			if errors.Is(err, bus.ErrUnavailable) {
				t.Errorf("ErrFull is also ErrUnavailable: %v", err)
			}
			if n != 0 {
				t.Errorf("Append at the cap reported %d appended", n)
			}
			if got, want := f.payloads(t, b.Keys(p).Stream), []string{"payload-a", "payload-b", "payload-c"}; !equal(got, want) {
				t.Errorf("stream = %q, want %q", got, want)
			}
		})
	}
	// The failed calls did not mark their ids seen: once there is room they are appended.
	mustAck(t, b, p, mustRead(t, b, p, 10))
	if n := mustAppend(t, b, p, entries("d", "e", "f")); n != 3 {
		t.Errorf("Append after draining = %d, want 3 (ids of failed appends must not be marked seen)", n)
	}
}

func TestUnavailable(t *testing.T) {
	f := newFixture(t, harness.ValkeyOptions{AppendOnly: true})
	b := f.bus(bus.Options{Timeout: time.Second})
	const p = "p"
	ctx := context.Background()
	mustAppend(t, b, p, entries("a", "b"))
	delivered := mustRead(t, b, p, 1) // "a" is pending across the restart

	ops := []struct {
		name string
		do   func() error
	}{
		{"Append", func() error { _, err := b.Append(ctx, p, entries("c")); return err }},
		{"Read", func() error { _, err := b.Read(ctx, p, 10); return err }},
		{"Ack", func() error { return b.Ack(ctx, p, streamIDs(delivered), map[string]string{"o": "1"}) }},
		{"Versions", func() error { _, err := b.Versions(ctx, p, []string{"o"}); return err }},
		{"DeadLetter", func() error { return b.DeadLetter(ctx, p, delivered[0], "x", "c") }},
		{"DeadLetters", func() error { _, err := b.DeadLetters(ctx, p); return err }},
		{"Backlog", func() error { _, err := b.Backlog(ctx, p); return err }},
		{"Ping", func() error { return b.Ping(ctx) }},
	}

	if err := f.valkey.Stop(); err != nil {
		t.Fatalf("stop Valkey: %v", err)
	}
	for _, op := range ops {
		t.Run("stopped/"+op.name, func(t *testing.T) {
			start := time.Now()
			err := op.do()
			if !errors.Is(err, bus.ErrUnavailable) {
				t.Errorf("%s with Valkey stopped = %v, want ErrUnavailable", op.name, err)
			}
			if errors.Is(err, bus.ErrFull) {
				t.Errorf("%s with Valkey stopped is ErrFull: %v", op.name, err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("%s took %v with Valkey stopped, want it bounded by Options.Timeout", op.name, d)
			}
		})
	}

	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := f.valkey.Restart(rctx); err != nil {
		t.Fatalf("restart Valkey: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for err := b.Ping(ctx); err != nil; err = b.Ping(ctx) {
		if time.Now().After(deadline) {
			t.Fatalf("Ping after restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Data appended before the stop survived, including the pending state and the dedupe.
	if n, err := b.Backlog(ctx, p); err != nil || n != 2 {
		t.Errorf("Backlog after restart = %d, %v; want 2", n, err)
	}
	msgs, err := b.Read(ctx, p, 10)
	if err != nil {
		t.Fatalf("Read after restart: %v", err)
	}
	if got, want := streamIDs(msgs), streamIDs(delivered); !equal(got, want) {
		t.Errorf("Read after restart = %v, want the pending %v", got, want)
	}
	n, err := b.Append(ctx, p, entries("a", "b", "c"))
	if err != nil || n != 1 {
		t.Errorf("Append after restart = %d, %v; want 1 (a and b were seen before the stop)", n, err)
	}
	mustAck(t, b, p, msgs)
	var rest []string
	for range 5 {
		m := mustRead(t, b, p, 10)
		if len(m) == 0 {
			break
		}
		rest = append(rest, payloadsOf(m)...)
		mustAck(t, b, p, m)
	}
	if want := []string{"payload-b", "payload-c"}; !equal(rest, want) {
		t.Errorf("rest after restart = %q, want %q", rest, want)
	}
}

func TestServerErrorIsNotUnavailable(t *testing.T) {
	// A reply from a serving Valkey that is not a busy/loading state is a bug, not "retry later".
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{})
	const p = "p"
	if err := f.client.Do(context.Background(), f.client.B().Set().Key(b.Keys(p).Stream).Value("not a stream").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		do   func() error
	}{
		{"Append to a key of the wrong type", func() error { _, err := b.Append(context.Background(), p, entries("a")); return err }},
		{"Read a key of the wrong type", func() error { _, err := b.Read(context.Background(), p, 1); return err }},
		{"Ack a malformed stream id", func() error { return b.Ack(context.Background(), "other", []string{"garbage"}, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, bus.ErrUnavailable) || errors.Is(err, bus.ErrFull) {
				t.Errorf("error %v is classified as a sentinel", err)
			}
		})
	}
}

func TestDeadLetter(t *testing.T) {
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{})
	const p = "p"
	mustAppend(t, b, p, entries("a", "b", "c"))
	msgs := mustRead(t, b, p, 2)
	if len(msgs) != 2 {
		t.Fatalf("Read = %d entries, want 2", len(msgs))
	}
	// Delivered twice before it is given up on.
	msgs = mustRead(t, b, p, 2)
	if err := b.DeadLetter(context.Background(), p, msgs[0], "cannot decode", "prod"); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	// The parked message is acknowledged: only the other pending one comes back, then new ones.
	again := mustRead(t, b, p, 10)
	if got, want := streamIDs(again), streamIDs(msgs[1:]); !equal(got, want) {
		t.Errorf("Read after DeadLetter = %v, want %v", got, want)
	}
	mustAck(t, b, p, again)
	last := mustRead(t, b, p, 10)
	if got, want := payloadsOf(last), []string{"payload-c"}; !equal(got, want) {
		t.Errorf("Read of the rest = %q, want %q", got, want)
	}
	mustAck(t, b, p, last)
	if rest := mustRead(t, b, p, 10); len(rest) != 0 {
		t.Errorf("Read of a drained partition = %v", streamIDs(rest))
	}
	if n := f.xlen(t, b.Keys(p).Stream); n != 0 {
		t.Errorf("XLEN after draining = %d, want 0", n)
	}

	// Dead-lettering the newest delivered entry trims it too: nothing is left behind that
	// Backlog would count.
	mustAppend(t, b, p, entries("d"))
	last = mustRead(t, b, p, 10)
	if err := b.DeadLetter(context.Background(), p, last[0], "still bad", "prod"); err != nil {
		t.Fatalf("DeadLetter of the newest entry: %v", err)
	}
	if n, err := b.Backlog(context.Background(), p); err != nil || n != 0 {
		t.Errorf("Backlog after dead-lettering the newest entry = %d, %v; want 0", n, err)
	}
	if rest := mustRead(t, b, p, 10); len(rest) != 0 {
		t.Errorf("Read after dead-lettering the newest entry = %v, want empty", streamIDs(rest))
	}

	dl, err := b.DeadLetters(context.Background(), p)
	if err != nil {
		t.Fatalf("DeadLetters: %v", err)
	}
	if len(dl) != 2 {
		t.Fatalf("DeadLetters = %d entries, want 2", len(dl))
	}
	if d := dl[1]; string(d.Payload) != "payload-d" || d.Reason != "still bad" || d.Attempts != 1 || d.StreamID <= dl[0].StreamID {
		t.Errorf("DeadLetters[1] = %+v, want payload-d, reason %q, 1 attempt, after the first", d, "still bad")
	}
	if d := dl[0]; string(d.Payload) != "payload-a" || d.Reason != "cannot decode" || d.Cluster != "prod" || d.Attempts != 2 || d.StreamID == "" {
		t.Errorf("DeadLetters[0] = %+v, want payload-a, reason %q, cluster prod, 2 attempts", d, "cannot decode")
	}
	if other, err := b.DeadLetters(context.Background(), "other"); err != nil || len(other) != 0 {
		t.Errorf("DeadLetters of another partition = %v, %v; want empty", other, err)
	}
}

func TestReadCountsDeliveries(t *testing.T) {
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{})
	const p = "p"
	mustAppend(t, b, p, entries("e1", "e2", "e3"))
	other, err := bus.Dial(context.Background(), f.valkey.Addr, "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	takeover := bus.New(other, bus.Options{})
	tests := []struct {
		name  string
		by    *bus.Bus
		count int
		want  map[string]int64 // payload -> deliveries
	}{
		{"first read", b, 2, map[string]int64{"payload-e1": 1, "payload-e2": 1}},
		{"redelivered", b, 2, map[string]int64{"payload-e1": 2, "payload-e2": 2}},
		{"redelivered to a new writer", takeover, 2, map[string]int64{"payload-e1": 3, "payload-e2": 3}},
		{"part of the pending entries", b, 1, map[string]int64{"payload-e1": 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := mustRead(t, tt.by, p, tt.count)
			got := map[string]int64{}
			for _, m := range msgs {
				got[string(m.Payload)] = m.Deliveries
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("deliveries = %v, want %v", got, tt.want)
			}
		})
	}
	mustAck(t, b, p, mustRead(t, b, p, 2))
	fresh := mustRead(t, b, p, 2)
	if len(fresh) != 1 || string(fresh[0].Payload) != "payload-e3" || fresh[0].Deliveries != 1 {
		t.Errorf("new entry after acking = %+v, want payload-e3 delivered once", fresh)
	}
}

func TestAckRecordsVersions(t *testing.T) {
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{})
	const p = "p"
	ctx := context.Background()
	mustAppend(t, b, p, entries("e1", "e2", "e3"))
	steps := []struct {
		name     string
		read     int
		versions map[string]string
		want     map[string]string // Versions of objects a, b, c afterwards
	}{
		{"ack without versions records none", 1, nil, map[string]string{}},
		{"ack records versions", 1, map[string]string{"a": "5", "b": "7"}, map[string]string{"a": "5", "b": "7"}},
		{"a later ack overwrites and adds", 1, map[string]string{"a": "9", "c": "1"}, map[string]string{"a": "9", "b": "7", "c": "1"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			msgs := mustRead(t, b, p, st.read)
			if len(msgs) != st.read {
				t.Fatalf("Read = %d entries, want %d", len(msgs), st.read)
			}
			if err := b.Ack(ctx, p, streamIDs(msgs), st.versions); err != nil {
				t.Fatalf("Ack: %v", err)
			}
			got, err := b.Versions(ctx, p, []string{"a", "b", "c"})
			if err != nil {
				t.Fatalf("Versions: %v", err)
			}
			if fmt.Sprint(got) != fmt.Sprint(st.want) {
				t.Errorf("Versions = %v, want %v", got, st.want)
			}
			// The ack itself happened too. (The probe leaves the next entry pending, which
			// the next step then reads first.)
			if again := mustRead(t, b, p, 1); len(again) > 0 && again[0].StreamID == msgs[0].StreamID {
				t.Errorf("entry %s read again after Ack", msgs[0].StreamID)
			}
		})
	}
	if got, err := b.Versions(ctx, p, nil); err != nil || len(got) != 0 {
		t.Errorf("Versions of no objects = %v, %v; want empty", got, err)
	}
	if got, err := b.Versions(ctx, "other", []string{"a"}); err != nil || len(got) != 0 {
		t.Errorf("Versions of another partition = %v, %v; want empty", got, err)
	}
}

// hashTag returns the part of key that Valkey Cluster hashes: the substring between the first
// '{' and the next '}', when non-empty; otherwise the whole key.
func hashTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	closing := strings.IndexByte(key[open+1:], '}')
	if closing <= 0 {
		return key
	}
	return key[open+1 : open+1+closing]
}

func TestKeysShareHashTag(t *testing.T) {
	tests := []struct {
		name, prefix, partition string
	}{
		{"default prefix", bus.DefaultPrefix, "3f2a9c0d1b4e5a67"},
		{"custom prefix", "staging", "3f2a9c0d1b4e5a67"},
		{"other partition", bus.DefaultPrefix, "0000000000000001"},
	}
	tags := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := bus.KeysOf(tt.prefix, tt.partition)
			all := map[string]string{"Stream": k.Stream, "DLQ": k.DLQ, "Lease": k.Lease, "Epoch": k.Epoch, "Versions": k.Versions, "Seen": k.Seen("event-1")}
			distinct := map[string]bool{}
			for name, key := range all {
				if !strings.HasPrefix(key, tt.prefix+":") {
					t.Errorf("%s key %q lacks the prefix %q", name, key, tt.prefix)
				}
				if got := hashTag(key); got != tt.partition {
					t.Errorf("%s key %q has hash tag %q, want %q", name, key, got, tt.partition)
				}
				distinct[key] = true
			}
			if len(distinct) != len(all) {
				t.Errorf("keys are not distinct: %v", all)
			}
			if k.Seen("event-1") == k.Seen("event-2") {
				t.Errorf("seen keys of two events are equal: %q", k.Seen("event-1"))
			}
			if got := bus.New(nil, bus.Options{Prefix: tt.prefix}).Keys(tt.partition); got != k {
				t.Errorf("Bus.Keys = %+v, want KeysOf = %+v", got, k)
			}
			tags[tt.prefix+"/"+tt.partition] = hashTag(k.Stream)
		})
	}
	if tags[bus.DefaultPrefix+"/3f2a9c0d1b4e5a67"] == tags[bus.DefaultPrefix+"/0000000000000001"] {
		t.Errorf("two partitions share the hash tag %q", tags[bus.DefaultPrefix+"/3f2a9c0d1b4e5a67"])
	}
	if a, b := bus.KeysOf("gr", "p1").Stream, bus.KeysOf("gr", "p2").Stream; a == b || hashTag(a) == hashTag(b) {
		t.Errorf("partitions p1 and p2 share stream key or tag: %q %q", a, b)
	}
}

func TestReadTrimmedPendingEntry(t *testing.T) {
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{})
	const p = "p"
	mustAppend(t, b, p, entries("e1", "e2", "e3"))
	msgs := mustRead(t, b, p, 3)
	if len(msgs) != 3 {
		t.Fatalf("Read = %d entries, want 3", len(msgs))
	}
	// Trim the first entry away while it is still pending.
	stream := b.Keys(p).Stream
	if err := f.client.Do(context.Background(), f.client.B().Xtrim().Key(stream).Minid().Threshold(msgs[1].StreamID).Build()).Error(); err != nil {
		t.Fatalf("XTRIM: %v", err)
	}
	if n := f.xlen(t, stream); n != 2 {
		t.Fatalf("XLEN after XTRIM = %d, want 2", n)
	}
	again := mustRead(t, b, p, 10)
	if got, want := streamIDs(again), streamIDs(msgs); !equal(got, want) {
		t.Fatalf("Read after trim = %v, want %v", got, want)
	}
	if again[0].Payload != nil {
		t.Errorf("trimmed entry Payload = %q, want nil", again[0].Payload)
	}
	if got, want := payloadsOf(again[1:]), []string{"payload-e2", "payload-e3"}; !equal(got, want) {
		t.Errorf("untrimmed payloads = %q, want %q", got, want)
	}
	mustAck(t, b, p, again)
	if rest := mustRead(t, b, p, 10); len(rest) != 0 {
		t.Errorf("Read after acking = %v, want empty", streamIDs(rest))
	}
	if n := f.xlen(t, stream); n != 0 {
		t.Errorf("XLEN after acking = %d, want 0", n)
	}
}

func BenchmarkAppend400(b *testing.B) {
	const batch, size = 400, 2048
	f := newFixture(b, harness.ValkeyOptions{})
	bs := f.bus(bus.Options{})
	payload := []byte(strings.Repeat("x", size))
	es := make([]bus.Entry, batch)
	for i := range es {
		es[i].Payload = payload
	}
	ctx := context.Background()
	var ops, seq int
	for b.Loop() {
		b.StopTimer()
		if err := f.client.Do(ctx, f.client.B().Flushall().Build()).Error(); err != nil {
			b.Fatalf("FLUSHALL: %v", err)
		}
		for i := range es {
			seq++
			es[i].ID = "event-" + strconv.Itoa(seq)
		}
		b.StartTimer()
		n, err := bs.Append(ctx, "bench", es)
		if err != nil {
			b.Fatalf("Append: %v", err)
		}
		if n != batch {
			b.Fatalf("Append = %d, want %d", n, batch)
		}
		ops++
	}
	b.ReportMetric(float64(ops*batch)/b.Elapsed().Seconds(), "events/s")
}

func TestOnValkeyCluster(t *testing.T) {
	// Every script touches only keys of one partition, so the same calls work on a cluster
	// whose nodes each own a third of the slots (no CROSSSLOT, no MOVED left unhandled).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	vc, err := harness.StartValkeyCluster(ctx, harness.ValkeyClusterOptions{})
	if err != nil {
		t.Fatalf("start Valkey cluster: %v", err)
	}
	t.Cleanup(func() { _ = vc.Close() })
	c, err := bus.Dial(ctx, strings.Join(vc.Addrs, ","), "", "")
	if err != nil {
		t.Fatalf("dial Valkey cluster: %v", err)
	}
	t.Cleanup(c.Close)
	if n := len(c.Nodes()); n != len(vc.Addrs) {
		t.Fatalf("client knows %d nodes, want %d", n, len(vc.Addrs))
	}
	b := bus.New(c, bus.Options{})
	slots := map[int64]bool{}
	for i := range 6 {
		p := fmt.Sprintf("partition-%d", i)
		t.Run(p, func(t *testing.T) {
			slot, err := c.Do(ctx, c.B().ClusterKeyslot().Key(b.Keys(p).Stream).Build()).AsInt64()
			if err != nil {
				t.Fatalf("CLUSTER KEYSLOT: %v", err)
			}
			slots[slot*int64(len(vc.Addrs))/16384] = true // the node owning it, as slots are spread evenly
			if n, err := b.Append(ctx, p, entries("a", "b", "c")); err != nil || n != 3 {
				t.Fatalf("Append = %d, %v; want 3", n, err)
			}
			if n, err := b.Append(ctx, p, entries("a", "d")); err != nil || n != 1 {
				t.Errorf("Append of a seen and a new id = %d, %v; want 1", n, err)
			}
			msgs, err := b.Read(ctx, p, 10)
			if err != nil || len(msgs) != 4 {
				t.Fatalf("Read = %d messages, %v; want 4", len(msgs), err)
			}
			if err := b.DeadLetter(ctx, p, msgs[0], "bad", "prod"); err != nil {
				t.Errorf("DeadLetter: %v", err)
			}
			if err := b.Ack(ctx, p, streamIDs(msgs[1:]), map[string]string{"obj": "7"}); err != nil {
				t.Errorf("Ack: %v", err)
			}
			if v, err := b.Versions(ctx, p, []string{"obj"}); err != nil || v["obj"] != "7" {
				t.Errorf("Versions = %v, %v; want obj=7", v, err)
			}
			if n, err := b.Backlog(ctx, p); err != nil || n != 0 {
				t.Errorf("Backlog = %d, %v; want 0", n, err)
			}
			if dl, err := b.DeadLetters(ctx, p); err != nil || len(dl) != 1 || string(dl[0].Payload) != "payload-a" {
				t.Errorf("DeadLetters = %v, %v; want payload-a", dl, err)
			}
		})
	}
	if len(slots) < 2 {
		t.Errorf("partitions all landed on one node %v: the test would not span nodes", slots)
	}
	// The lease's script touches the lease and epoch keys of one partition: one slot too.
	k := b.Keys("partition-0")
	l, err := lease.Acquire(ctx, c, lease.Keys{Lease: k.Lease, Epoch: k.Epoch}, 5*time.Second)
	if err != nil {
		t.Fatalf("lease Acquire on the cluster: %v", err)
	}
	if err := l.Check(ctx); err != nil {
		t.Errorf("lease Check on the cluster: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Errorf("lease Release on the cluster: %v", err)
	}
}

func TestAppendRefusesABatchThatWouldPassTheCap(t *testing.T) {
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{MaxLen: 3})
	if _, err := b.Append(context.Background(), "p", entries("a", "b", "c", "d", "e")); !errors.Is(err, bus.ErrFull) {
		t.Fatalf("5 entries under a cap of 3: err = %v, want ErrFull", err)
	}
	if got := f.payloads(t, b.Keys("p").Stream); len(got) != 0 {
		t.Errorf("a refused batch appended %q", got)
	}
	if n := mustAppend(t, b, "p", entries("a", "b", "c")); n != 3 {
		t.Errorf("a batch that fits: appended %d, want 3", n)
	}
}
