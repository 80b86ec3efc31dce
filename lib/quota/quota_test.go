package quota

import (
	"context"
	"testing"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/testenv"
)

func TestBucketIsSharedAndRefusesWithAWait(t *testing.T) {
	_, c1 := testenv.Valkey(t, harness.ValkeyOptions{})
	ctx := context.Background()
	a := New(c1, "gr")
	limit := v1alpha1.RateLimit{EventsPerSecond: 1, Burst: 10}

	// A batch larger than the burst passes a full bucket and leaves it 5 in debt.
	if ok, _, err := a.Take(ctx, "noisy", limit, 15); err != nil || !ok {
		t.Fatalf("first batch: admitted %v, %v; want admitted", ok, err)
	}
	// The debt is refused, by this replica and by another one on the same Valkey, with the
	// time the bucket needs to be positive again: 6 tokens at 1/s.
	b := New(c1, "gr")
	for name, l := range map[string]*Limiter{"same replica": a, "other replica": b} {
		ok, wait, err := l.Take(ctx, "noisy", limit, 1)
		if err != nil || ok {
			t.Fatalf("%s: admitted %v, %v; want refused", name, ok, err)
		}
		if wait < 5*time.Second || wait > 6*time.Second {
			t.Errorf("%s: wait %v, want about 6s", name, wait)
		}
	}
	// Another cluster has its own bucket.
	if ok, _, err := a.Take(ctx, "quiet", limit, 3); err != nil || !ok {
		t.Errorf("quiet cluster: admitted %v, %v; want admitted", ok, err)
	}
	// No limit, no bucket.
	if ok, _, err := a.Take(ctx, "noisy", v1alpha1.RateLimit{}, 1000); err != nil || !ok {
		t.Errorf("no rate: admitted %v, %v; want admitted", ok, err)
	}
}

func TestBucketRefills(t *testing.T) {
	_, c := testenv.Valkey(t, harness.ValkeyOptions{})
	ctx := context.Background()
	l := New(c, "gr")
	limit := v1alpha1.RateLimit{EventsPerSecond: 50, Burst: 50}
	if ok, _, _ := l.Take(ctx, "c", limit, 60); !ok {
		t.Fatal("a full bucket refused a batch")
	}
	ok, wait, err := l.Take(ctx, "c", limit, 1)
	if err != nil || ok {
		t.Fatalf("in debt: admitted %v, %v", ok, err)
	}
	time.Sleep(wait + 20*time.Millisecond)
	if ok, _, err := l.Take(ctx, "c", limit, 1); err != nil || !ok {
		t.Errorf("after the wait it named (%v): admitted %v, %v; want admitted", wait, ok, err)
	}
}

func TestEffectiveBurst(t *testing.T) {
	for _, tc := range []struct {
		limit v1alpha1.RateLimit
		want  int32
	}{
		{v1alpha1.RateLimit{EventsPerSecond: 10}, 400},
		{v1alpha1.RateLimit{EventsPerSecond: 1000}, 1000},
		{v1alpha1.RateLimit{EventsPerSecond: 10, Burst: 20}, 20},
	} {
		if got := tc.limit.EffectiveBurst(); got != tc.want {
			t.Errorf("%+v: burst %d, want %d", tc.limit, got, tc.want)
		}
	}
}
