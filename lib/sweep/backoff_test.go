package sweep

import (
	"math"
	"testing"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
)

func TestWaitDoublesPerRedrive(t *testing.T) {
	tests := []struct {
		name     string
		base     time.Duration
		redrives int64
		want     time.Duration
	}{
		{"first re-drive waits the base", time.Minute, 0, time.Minute},
		{"second waits twice", time.Minute, 1, 2 * time.Minute},
		{"third waits four times", time.Minute, 2, 4 * time.Minute},
		{"tenth", time.Second, 9, 512 * time.Second},
		{"negative count is the base", time.Minute, -3, time.Minute},
		{"saturates instead of overflowing", time.Hour, 40, math.MaxInt64},
		{"saturates at any count", time.Nanosecond, 1000, math.MaxInt64},
		{"largest exact doubling", time.Nanosecond, 62, 1 << 62},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Wait(tt.base, tt.redrives); got != tt.want {
				t.Errorf("Wait(%s, %d) = %s, want %s", tt.base, tt.redrives, got, tt.want)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	parked := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	entry := func(redrives int64) bus.DeadLetter {
		return bus.DeadLetter{StreamID: "1-0", Payload: []byte("{}"), Redrives: redrives, At: parked}
	}
	tests := []struct {
		name string
		d    bus.DeadLetter
		now  time.Time
		want verdict
	}{
		{"backoff not passed", entry(0), parked.Add(59 * time.Second), waiting},
		{"backoff just passed", entry(0), parked.Add(time.Minute), redrive},
		{"second re-drive waits 2m, not 1m", entry(1), parked.Add(90 * time.Second), waiting},
		{"second re-drive after 2m", entry(1), parked.Add(2 * time.Minute), redrive},
		{"third re-drive after 4m", entry(2), parked.Add(4*time.Minute - time.Millisecond), waiting},
		{"at the limit stays parked however long it waited", entry(3), parked.Add(24 * time.Hour), exhausted},
		{"past the limit stays parked", entry(7), parked.Add(24 * time.Hour), exhausted},
		{"no payload is never moved", bus.DeadLetter{StreamID: "1-0", At: parked}, parked.Add(time.Hour), unmovable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decide(tt.d, tt.now, 3, time.Minute); got != tt.want {
				t.Errorf("decide = %v, want %v", got, tt.want)
			}
		})
	}
	if got := decide(entry(0), parked.Add(time.Hour), 0, time.Minute); got != exhausted {
		t.Errorf("with MaxRedrives 0: %v, want exhausted (nothing is re-driven)", got)
	}
}
