package bus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// park appends one entry, reads it and dead-letters it, and returns its DLQ entry.
func park(t *testing.T, b *bus.Bus, p, id string) bus.DeadLetter {
	t.Helper()
	mustAppend(t, b, p, entries(id))
	msgs := mustRead(t, b, p, 10)
	if len(msgs) != 1 {
		t.Fatalf("Read = %d entries, want 1", len(msgs))
	}
	if err := b.DeadLetter(context.Background(), p, msgs[0], "bad", "prod"); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	dl, err := b.DeadLetters(context.Background(), p)
	if err != nil || len(dl) != 1 {
		t.Fatalf("DeadLetters = %+v, %v; want 1 entry", dl, err)
	}
	return dl[0]
}

func TestRedriveRoundTrip(t *testing.T) {
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{})
	const p = "p"
	before := time.Now().Add(-time.Second)
	d := park(t, b, p, "a")
	if d.Redrives != 0 || d.At.Before(before) || d.At.After(time.Now().Add(time.Second)) {
		t.Fatalf("first parking = %+v, want 0 re-drives and At about now", d)
	}

	for round := int64(1); round <= 3; round++ {
		moved, err := b.Redrive(context.Background(), p, d.StreamID)
		if err != nil || !moved {
			t.Fatalf("round %d: Redrive = %v, %v; want moved", round, moved, err)
		}
		if n := f.xlen(t, b.Keys(p).DLQ); n != 0 {
			t.Fatalf("round %d: DLQ length after Redrive = %d, want 0", round, n)
		}
		// The event id was seen at the first append; the re-driven entry is read anyway.
		msgs := mustRead(t, b, p, 10)
		if len(msgs) != 1 || string(msgs[0].Payload) != "payload-a" || msgs[0].Redrives != round || msgs[0].Deliveries != 1 {
			t.Fatalf("round %d: Read = %+v, want payload-a, first delivery, %d re-drives", round, msgs, round)
		}
		if err := b.DeadLetter(context.Background(), p, msgs[0], "still bad", "prod"); err != nil {
			t.Fatal(err)
		}
		dl, err := b.DeadLetters(context.Background(), p)
		if err != nil || len(dl) != 1 {
			t.Fatalf("round %d: DeadLetters = %+v, %v", round, dl, err)
		}
		if dl[0].Redrives != round || dl[0].Reason != "still bad" || dl[0].Cluster != "prod" || dl[0].Attempts != 1 {
			t.Errorf("round %d: parked again as %+v, want %d re-drives with reason, cluster, attempts", round, dl[0], round)
		}
		d = dl[0]
	}
	if n, err := b.Backlog(context.Background(), p); err != nil || n != 0 {
		t.Errorf("Backlog = %d, %v; want 0", n, err)
	}
}

func TestRedriveMovesOnceUnderRaces(t *testing.T) {
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{})
	const p = "p"
	d := park(t, b, p, "a")
	var wg sync.WaitGroup
	var mu sync.Mutex
	moved := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := b.Redrive(context.Background(), p, d.StreamID)
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				moved++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if moved != 1 {
		t.Errorf("%d of 8 concurrent re-drives moved the entry, want exactly 1", moved)
	}
	if n := f.xlen(t, b.Keys(p).Stream); n != 1 {
		t.Errorf("stream length = %d, want 1", n)
	}
	if ok, err := b.Redrive(context.Background(), p, "1-0"); ok || err != nil {
		t.Errorf("Redrive of an unknown id = %v, %v; want false, nil", ok, err)
	}
}

func TestRedriveRespectsTheCap(t *testing.T) {
	f := newFixture(t, harness.ValkeyOptions{})
	b := f.bus(bus.Options{MaxLen: 2})
	const p = "p"
	d := park(t, b, p, "a")
	mustAppend(t, b, p, entries("b", "c")) // the stream is at its cap
	_, err := b.Redrive(context.Background(), p, d.StreamID)
	if !errors.Is(err, bus.ErrFull) {
		t.Fatalf("Redrive onto a full stream = %v, want ErrFull", err)
	}
	if n := f.xlen(t, b.Keys(p).DLQ); n != 1 {
		t.Errorf("DLQ length = %d, want the entry still parked", n)
	}
	if n := f.xlen(t, b.Keys(p).Stream); n != 2 {
		t.Errorf("stream length = %d, want 2", n)
	}
}
