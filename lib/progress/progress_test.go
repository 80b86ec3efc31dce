package progress

import (
	"sync/atomic"
	"testing"
)

func TestLine(t *testing.T) {
	c := &Counters{names: []string{"listed", "published"}, counts: make([]atomic.Int64, 2)}
	c.Counter(0)(1200)
	if got, want := c.line(), "listed 1200  published 0"; got != want {
		t.Errorf("line() = %q, want %q", got, want)
	}
	c.AddTotal(300)
	c.AddTotal(100)
	c.Add(1, 100)
	if got, want := c.line(), "listed 1200  [#####...............] published 100/400"; got != want {
		t.Errorf("line() = %q, want %q", got, want)
	}
	c.Add(1, 500) // more than planned (a retried batch): the bar stays full
	if got, want := c.line(), "listed 1200  [####################] published 600/400"; got != want {
		t.Errorf("line() = %q, want %q", got, want)
	}
}
