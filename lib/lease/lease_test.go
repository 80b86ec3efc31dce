package lease_test

import (
	"context"
	"errors"
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

type fixture struct {
	valkey *harness.Valkey
	client valkey.Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	v, c := testenv.Valkey(t, harness.ValkeyOptions{})
	return &fixture{valkey: v, client: c}
}

// keysOf returns the lease keys of a partition as the writer names them.
func keysOf(partition string) lease.Keys {
	k := bus.KeysOf(bus.DefaultPrefix, partition)
	return lease.Keys{Lease: k.Lease, Epoch: k.Epoch}
}

func partitionOf(t *testing.T) string { return strings.ReplaceAll(t.Name(), "/", "_") }

func (f *fixture) get(t *testing.T, key string) (string, bool) {
	t.Helper()
	v, err := f.client.Do(context.Background(), f.client.B().Get().Key(key).Build()).ToString()
	if valkey.IsValkeyNil(err) {
		return "", false
	}
	if err != nil {
		t.Fatalf("GET %s: %v", key, err)
	}
	return v, true
}

func (f *fixture) do(t *testing.T, cmd valkey.Completed) {
	t.Helper()
	if err := f.client.Do(context.Background(), cmd).Error(); err != nil {
		t.Fatalf("command: %v", err)
	}
}

func (f *fixture) acquire(t *testing.T, keys lease.Keys, ttl time.Duration) *lease.Lease {
	t.Helper()
	l, err := lease.Acquire(context.Background(), f.client, keys, ttl)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	t.Cleanup(func() { _ = l.Release(context.Background()) })
	return l
}

func done(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return true
	default:
		return false
	}
}

func TestAcquireReleaseEpoch(t *testing.T) {
	f := newFixture(t)
	keys := keysOf("p")
	const ttl = 5 * time.Second
	var lastEpoch int64
	tokens := map[string]bool{}
	for round := 1; round <= 3; round++ {
		l := f.acquire(t, keys, ttl)
		if l.Token == "" || tokens[l.Token] {
			t.Errorf("round %d: token %q is empty or reused", round, l.Token)
		}
		tokens[l.Token] = true
		if l.Epoch != int64(round) || l.Epoch <= lastEpoch {
			t.Errorf("round %d: epoch %d, want %d (strictly above %d)", round, l.Epoch, round, lastEpoch)
		}
		lastEpoch = l.Epoch
		if v, ok := f.get(t, keys.Lease); !ok || v != l.Token {
			t.Errorf("round %d: lease key = %q (exists %v), want the token %q", round, v, ok, l.Token)
		}
		pttl, err := f.client.Do(context.Background(), f.client.B().Pttl().Key(keys.Lease).Build()).AsInt64()
		if err != nil || pttl <= 0 || pttl > ttl.Milliseconds() {
			t.Errorf("round %d: PTTL = %d, %v; want in (0, %d]", round, pttl, err, ttl.Milliseconds())
		}

		other, err := lease.Acquire(context.Background(), f.client, keys, ttl)
		if !errors.Is(err, lease.ErrHeld) || other != nil {
			t.Errorf("round %d: second Acquire = %v, %v; want nil, ErrHeld", round, other, err)
		}
		if v, _ := f.get(t, keys.Epoch); v != strconv.Itoa(round) {
			t.Errorf("round %d: epoch key = %q after a refused Acquire, want %d (refusals must not bump it)", round, v, round)
		}
		if done(l.Context()) {
			t.Errorf("round %d: Context done while held: %v", round, context.Cause(l.Context()))
		}

		if err := l.Release(context.Background()); err != nil {
			t.Fatalf("round %d: Release: %v", round, err)
		}
		if _, ok := f.get(t, keys.Lease); ok {
			t.Errorf("round %d: lease key still exists after Release", round)
		}
		if !done(l.Context()) {
			t.Errorf("round %d: Context not done after Release", round)
		} else if cause := context.Cause(l.Context()); errors.Is(cause, lease.ErrLost) {
			t.Errorf("round %d: Release canceled Context with ErrLost: %v", round, cause)
		}
		if err := l.Release(context.Background()); err != nil {
			t.Errorf("round %d: second Release: %v", round, err)
		}
	}
}

func TestAcquireContextOutlivesRequest(t *testing.T) {
	// The request that acquired the lease ends; the lease (and its renewals) must not.
	f := newFixture(t)
	keys := keysOf("p")
	ctx, cancel := context.WithCancel(context.Background())
	l, err := lease.Acquire(ctx, f.client, keys, 600*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())
	cancel()
	select {
	case <-l.Context().Done():
		t.Fatalf("lease Context ended with its request: %v", context.Cause(l.Context()))
	case <-time.After(time.Second):
	}
	if _, err := lease.Acquire(context.Background(), f.client, keys, time.Second); !errors.Is(err, lease.ErrHeld) {
		t.Errorf("Acquire after the acquiring request ended = %v, want ErrHeld", err)
	}
}

func TestReleaseIsCompareAndDelete(t *testing.T) {
	const ttl = 5 * time.Second
	tests := []struct {
		name string
		// takeOver changes the lease key behind the first holder's back and returns the value
		// the key must still have after the first holder's Release ("" = absent).
		takeOver func(t *testing.T, f *fixture, keys lease.Keys) string
	}{
		{
			name: "expired and acquired by a second holder",
			takeOver: func(t *testing.T, f *fixture, keys lease.Keys) string {
				f.do(t, f.client.B().Del().Key(keys.Lease).Build())
				second := f.acquire(t, keys, ttl)
				if second.Epoch != 2 {
					t.Errorf("second holder's epoch = %d, want 2", second.Epoch)
				}
				return second.Token
			},
		},
		{
			name: "overwritten with another token",
			takeOver: func(t *testing.T, f *fixture, keys lease.Keys) string {
				f.do(t, f.client.B().Set().Key(keys.Lease).Value("intruder").Px(ttl).Build())
				return "intruder"
			},
		},
		{
			name: "expired and vacant",
			takeOver: func(t *testing.T, f *fixture, keys lease.Keys) string {
				f.do(t, f.client.B().Del().Key(keys.Lease).Build())
				return ""
			},
		},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := keysOf(partitionOf(t))
			first := f.acquire(t, keys, ttl)
			want := tt.takeOver(t, f, keys)
			if err := first.Release(context.Background()); err != nil {
				t.Errorf("first holder's Release: %v", err)
			}
			got, ok := f.get(t, keys.Lease)
			if want == "" && ok {
				t.Errorf("lease key = %q after Release, want absent", got)
			}
			if want != "" && (!ok || got != want) {
				t.Errorf("lease key = %q (exists %v) after the first holder's Release, want %q untouched", got, ok, want)
			}
			if want != "" {
				if _, err := lease.Acquire(context.Background(), f.client, keys, ttl); !errors.Is(err, lease.ErrHeld) {
					t.Errorf("Acquire after the stale Release = %v, want ErrHeld", err)
				}
			}
		})
	}
}

func TestRenewalKeepsLeaseAlive(t *testing.T) {
	f := newFixture(t)
	keys := keysOf("p")
	const ttl = 600 * time.Millisecond
	l := f.acquire(t, keys, ttl)
	end := time.After(2 * time.Second) // more than three TTLs
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	tries := 0
	for running := true; running; {
		select {
		case <-l.Context().Done():
			t.Fatalf("lease lost while its holder was alive: %v", context.Cause(l.Context()))
		case <-end:
			running = false
		case <-tick.C:
			tries++
			if c, err := lease.Acquire(context.Background(), f.client, keys, ttl); !errors.Is(err, lease.ErrHeld) {
				if c != nil {
					_ = c.Release(context.Background())
				}
				t.Fatalf("competitor's Acquire after %d tries = %v, want ErrHeld", tries, err)
			}
		}
	}
	if v, ok := f.get(t, keys.Lease); !ok || v != l.Token {
		t.Errorf("lease key = %q (exists %v), want the holder's token", v, ok)
	}
	if v, _ := f.get(t, keys.Epoch); v != "1" {
		t.Errorf("epoch = %q, want 1 (renewals must not bump it)", v)
	}
}

func TestLoss(t *testing.T) {
	// A renewal that finds another token (or none) ends the lease at once: the loss shows at
	// the next renewal, ttl/3 later, well before a TTL would have run out.
	const ttl = 1200 * time.Millisecond
	tests := []struct {
		name string
		take func(t *testing.T, f *fixture, keys lease.Keys)
	}{
		{"overwritten with another token", func(t *testing.T, f *fixture, keys lease.Keys) {
			f.do(t, f.client.B().Set().Key(keys.Lease).Value("intruder").Px(10*time.Second).Build())
		}},
		{"overwritten without a TTL", func(t *testing.T, f *fixture, keys lease.Keys) {
			f.do(t, f.client.B().Set().Key(keys.Lease).Value("intruder").Build())
		}},
		{"deleted", func(t *testing.T, f *fixture, keys lease.Keys) {
			f.do(t, f.client.B().Del().Key(keys.Lease).Build())
		}},
		{"expired and acquired by another holder", func(t *testing.T, f *fixture, keys lease.Keys) {
			f.do(t, f.client.B().Del().Key(keys.Lease).Build())
			f.acquire(t, keys, 10*time.Second)
		}},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := keysOf(partitionOf(t))
			l := f.acquire(t, keys, ttl)
			tt.take(t, f, keys)
			after, _ := f.get(t, keys.Lease)
			start := time.Now()
			select {
			case <-l.Context().Done():
			case <-time.After(ttl + 2*time.Second): // ~ttl/3 expected; generous for a loaded machine
				t.Fatalf("Context not canceled %v after the lease was taken", time.Since(start))
			}
			if d := time.Since(start); d >= ttl*3/4 {
				t.Errorf("loss noticed after %v, want at the next renewal (every %v), before the TTL %v", d, ttl/3, ttl)
			}
			if cause := context.Cause(l.Context()); !errors.Is(cause, lease.ErrLost) {
				t.Errorf("cause = %v, want ErrLost", cause)
			}
			// The lost holder never touched the key after losing it.
			if got, _ := f.get(t, keys.Lease); got != after {
				t.Errorf("lease key = %q after the loss, want %q", got, after)
			}
			if err := l.Release(context.Background()); err != nil {
				t.Errorf("Release after loss: %v", err)
			}
			if got, _ := f.get(t, keys.Lease); got != after {
				t.Errorf("lease key = %q after the lost holder's Release, want %q", got, after)
			}
		})
	}
}

func TestLossWhenValkeyStopped(t *testing.T) {
	f := newFixture(t)
	keys := keysOf("p")
	const ttl = 900 * time.Millisecond
	l := f.acquire(t, keys, ttl)

	// Stop Valkey right after a renewal, and learn when that renewal ran: the holder's last
	// confirmed renewal is no earlier than that.
	var lastRenewal time.Time
	deadline := time.Now().Add(5 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("no renewal observed")
		}
		sent := time.Now()
		pttl, err := f.client.Do(context.Background(), f.client.B().Pttl().Key(keys.Lease).Build()).AsInt64()
		if err != nil {
			t.Fatalf("PTTL: %v", err)
		}
		if pttl < 0 {
			t.Fatalf("PTTL = %d: the lease key is gone", pttl)
		}
		// The renewal ran ttl-pttl before the PTTL, which ran no earlier than sent; allow for
		// PTTL's millisecond rounding.
		if ran := time.Duration(ttl.Milliseconds()-pttl) * time.Millisecond; ran < 50*time.Millisecond && pttl < ttl.Milliseconds() {
			lastRenewal = sent.Add(-ran - 2*time.Millisecond)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := f.valkey.Stop(); err != nil {
		t.Fatalf("stop Valkey: %v", err)
	}
	stopped := time.Now() // no renewal can be confirmed after this

	select {
	case <-l.Context().Done():
	case <-time.After(ttl + ttl/3 + 3*time.Second):
		t.Fatalf("Context not canceled %v after Valkey stopped", time.Since(stopped))
	}
	canceled := time.Now()
	if cause := context.Cause(l.Context()); !errors.Is(cause, lease.ErrLost) {
		t.Errorf("cause = %v, want ErrLost", cause)
	}
	// The holder counts the TTL from when it sent the renewal, a request's latency before
	// Valkey ran it: allow for that, far less than a renewal interval.
	if d := canceled.Sub(lastRenewal); d < ttl-ttl/10 {
		t.Errorf("canceled %v after the last confirmed renewal, before the TTL %v had passed", d, ttl)
	}
	// Renewals come every ttl/3; the first one at or past the TTL ends the lease.
	if limit := ttl + ttl/3 + 300*time.Millisecond; canceled.Sub(stopped) > limit {
		t.Errorf("canceled %v after Valkey stopped, want within about TTL + renewal interval (%v)", canceled.Sub(stopped), limit)
	}
	t.Logf("canceled %v after the last renewal, %v after Valkey stopped", canceled.Sub(lastRenewal), canceled.Sub(stopped))
}

func TestCheck(t *testing.T) {
	const ttl = 5 * time.Second // no renewal runs during a row: Check alone must notice
	tests := []struct {
		name     string
		before   func(t *testing.T, f *fixture, l *lease.Lease)
		wantErr  bool
		wantLost bool // Check's error and the Context's cause are ErrLost
	}{
		{name: "held", before: func(*testing.T, *fixture, *lease.Lease) {}},
		{name: "overwritten with another token", wantErr: true, wantLost: true, before: func(t *testing.T, f *fixture, l *lease.Lease) {
			f.do(t, f.client.B().Set().Key(keysOf(partitionOf(t)).Lease).Value("intruder").Build())
		}},
		{name: "deleted", wantErr: true, wantLost: true, before: func(t *testing.T, f *fixture, l *lease.Lease) {
			f.do(t, f.client.B().Del().Key(keysOf(partitionOf(t)).Lease).Build())
		}},
		{name: "released", wantErr: true, before: func(t *testing.T, f *fixture, l *lease.Lease) {
			if err := l.Release(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := f.acquire(t, keysOf(partitionOf(t)), ttl)
			tt.before(t, f, l)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			err := l.Check(ctx)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Check = %v, want error %v", err, tt.wantErr)
			}
			if errors.Is(err, lease.ErrLost) != tt.wantLost {
				t.Errorf("Check = %v, want ErrLost %v", err, tt.wantLost)
			}
			if tt.wantLost {
				if !done(l.Context()) {
					t.Errorf("Context not canceled by a Check that found the lease lost")
				} else if cause := context.Cause(l.Context()); !errors.Is(cause, lease.ErrLost) {
					t.Errorf("cause = %v, want ErrLost", cause)
				}
			}
			if !tt.wantErr && done(l.Context()) {
				t.Errorf("Context canceled by a passing Check: %v", context.Cause(l.Context()))
			}
		})
	}

	t.Run("Valkey stopped", func(t *testing.T) {
		g := newFixture(t)
		l := g.acquire(t, keysOf("p"), ttl)
		if err := g.valkey.Stop(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if err := l.Check(ctx); err == nil {
			t.Error("Check with Valkey stopped = nil, want an error")
		}
	})
}
