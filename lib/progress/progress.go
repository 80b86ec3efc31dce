// Package progress shows how a job advances: live counters redrawn on one line in a
// terminal, or a structured log line every few seconds when the output is a log (in a
// cluster), so a long reconcile is never silent in either place.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/term"
)

// Counters are named counts that only go up, shown in the order they were named.
type Counters struct {
	names  []string
	counts []atomic.Int64
	// total, when above 0, is what the last counter heads for: it is drawn as a bar.
	total atomic.Int64

	stop chan struct{}
	done sync.WaitGroup
}

// Start shows the counters until Stop: redrawn on w every 100ms when w is a terminal,
// otherwise logged through log every interval.
func Start(w *os.File, log *zap.SugaredLogger, interval time.Duration, names ...string) *Counters {
	c := &Counters{names: names, counts: make([]atomic.Int64, len(names)), stop: make(chan struct{})}
	tty := term.IsTerminal(int(w.Fd()))
	if tty {
		interval = 100 * time.Millisecond
	}
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-c.stop:
				if tty {
					fmt.Fprintf(w, "\r%s\n", c.line())
				}
				return
			case <-tick.C:
				if tty {
					fmt.Fprintf(w, "\r%s", c.line())
				} else if log != nil {
					log.Infow("Progress", c.fields()...)
				}
			}
		}
	}()
	return c
}

// Add adds n to the counter at index i.
func (c *Counters) Add(i int, n int) { c.counts[i].Add(int64(n)) }

// Counter returns a function that adds to the counter at index i.
func (c *Counters) Counter(i int) func(n int) { return func(n int) { c.Add(i, n) } }

// Get returns the counter at index i.
func (c *Counters) Get(i int) int64 { return c.counts[i].Load() }

// AddTotal raises what the last counter heads for by n; from then on it is drawn as a bar.
func (c *Counters) AddTotal(n int) { c.total.Add(int64(n)) }

// Stop draws the final state and stops.
func (c *Counters) Stop() {
	close(c.stop)
	c.done.Wait()
}

func (c *Counters) line() string {
	var b strings.Builder
	for i, n := range c.names {
		if i > 0 {
			b.WriteString("  ")
		}
		v := c.counts[i].Load()
		if total := c.total.Load(); total > 0 && i == len(c.names)-1 {
			writeBar(&b, v, total)
		}
		fmt.Fprintf(&b, "%s %d", n, v)
		if total := c.total.Load(); total > 0 && i == len(c.names)-1 {
			fmt.Fprintf(&b, "/%d", total)
		}
	}
	return b.String()
}

func (c *Counters) fields() []any {
	out := make([]any, 0, 2*len(c.names)+2)
	for i, n := range c.names {
		out = append(out, n, c.counts[i].Load())
	}
	if total := c.total.Load(); total > 0 {
		out = append(out, "of", total)
	}
	return out
}

// writeBar draws [#####.....] for v of total.
func writeBar(w io.StringWriter, v, total int64) {
	const width = 20
	filled := int(min(v, total) * width / total)
	_, _ = w.WriteString("[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "] ")
}
