package bus_test

import (
	"context"
	"testing"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/testenv"
)

func TestStatsTracksTheQueue(t *testing.T) {
	ctx := context.Background()
	_, c := testenv.Valkey(t, harness.ValkeyOptions{})
	b := bus.New(c, bus.Options{})

	want := func(step string, want bus.Stats) {
		t.Helper()
		got, err := b.Stats(ctx, "p")
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if got != want {
			t.Errorf("%s: Stats = %+v, want %+v", step, got, want)
		}
	}
	want("empty", bus.Stats{})
	if _, err := b.Append(ctx, "p", []bus.Entry{{ID: "a", Payload: []byte("1")}, {ID: "b", Payload: []byte("2")}, {ID: "c", Payload: []byte("3")}}); err != nil {
		t.Fatal(err)
	}
	want("appended, no reader yet", bus.Stats{Length: 3, Lag: 3})
	msgs, err := b.Read(ctx, "p", 2)
	if err != nil {
		t.Fatal(err)
	}
	want("two read", bus.Stats{Length: 3, Pending: 2, Lag: 1})
	if err := b.DeadLetter(ctx, "p", msgs[0], "bad", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(ctx, "p", []string{msgs[1].StreamID}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, c.B().Set().Key(b.Keys("p").Lease).Value("x").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	want("one parked, one acked, leased", bus.Stats{Length: 1, Lag: 1, DeadLetters: 1, Leased: true})
}
