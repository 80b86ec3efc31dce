package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ingestThroughput posts 400-event audit batches from several connections for a while and
// counts the events ingest appended per second; then valkey-benchmark XADDs entries of the
// same size to the same Valkey, which is as fast as the data can go into a stream. Ingest's
// peak RSS under that load is a row of its own.
func ingestThroughput(ctx context.Context, s *Suite) error {
	r, err := startRig(ctx, s, rigOptions{Env: []string{"PARTITION_MAX_LEN=100000000"}})
	if err != nil {
		return err
	}
	defer r.Close()

	const batchSize, conns = 400, 8
	duration := time.Duration(s.Size(15, 3)) * time.Second
	tmpl := newBatchTemplate("ns-0", batchSize)
	p := newPoster(r.ingestURL, r.token, conns)
	var sent atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Since(start) < duration {
				if err := p.post(ctx, tmpl.next()); err != nil {
					errs <- err
					return
				}
				sent.Add(batchSize)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("post a batch: %w\n%s", err, r.logs(20))
	}
	queued, err := r.bus.Backlog(ctx, r.partition(0).ID)
	if err != nil {
		return err
	}
	if queued != sent.Load() {
		return fmt.Errorf("ingest accepted %d events but the partition holds %d", sent.Load(), queued)
	}
	rate := float64(queued) / took.Seconds()
	rss, err := peakRSS(r.ingest.Pid())
	if err != nil {
		return err
	}

	entry, err := r.client.Do(ctx, r.client.B().Xrange().Key(r.bus.Keys(r.partition(0).ID).Stream).Start("-").End("+").Count(1).Build()).AsXRange()
	if err != nil || len(entry) == 0 {
		return fmt.Errorf("read back a queued event: %v", err)
	}
	size := len(entry[0].FieldValues["ce"])
	raw, err := xaddRate(ctx, r.valkey.Addr, size, s.Size(200_000, 20_000))
	if err != nil {
		return err
	}
	s.Add(Row{
		Measure: "Ingest throughput, 400-event batches", Value: rate, Unit: "events/s",
		Baseline: raw, BaselineOf: fmt.Sprintf("valkey-benchmark XADD, %d B, 50 clients, this run", size),
		Ratio: rate / raw, Target: Target{OnRatio: true, Limit: 0.25},
		Note: fmt.Sprintf("%d connections, %d events of %d B queued in %s", conns, queued, size, took.Round(time.Millisecond)),
	}, Row{
		Measure: "RSS of ingest under that load", Value: float64(rss) / (1 << 20), Unit: "MiB",
		Target: Target{Max: true, Limit: 128},
	})
	return nil
}

// batchTemplate renders a batch once and stamps fresh audit ids into a copy for each post,
// so the load generator spends its CPU on sending, not on encoding JSON.
type batchTemplate struct {
	body  []byte
	marks []int // offsets of the batch number in body
	seq   atomic.Int64
}

const batchMark = "BATCH#########"

func newBatchTemplate(namespace string, n int) *batchTemplate {
	events := make([]map[string]any, n)
	now := time.Now()
	for i := range events {
		events[i] = auditEvent(namespace, fmt.Sprintf("cm-%05d", i), 1, "v", now)
		events[i]["auditID"] = fmt.Sprintf("%s-%05d", batchMark, i)
	}
	t := &batchTemplate{body: eventList(events)}
	for off := 0; ; {
		i := bytes.Index(t.body[off:], []byte(batchMark))
		if i < 0 {
			break
		}
		t.marks = append(t.marks, off+i)
		off += i + len(batchMark)
	}
	return t
}

// next returns a batch no post sent before.
func (t *batchTemplate) next() []byte {
	b := bytes.Clone(t.body)
	id := fmt.Sprintf("%0*d", len(batchMark), t.seq.Add(1))
	for _, off := range t.marks {
		copy(b[off:], id)
	}
	return b
}

// xaddRate runs valkey-benchmark: n XADDs of a size-byte field from 50 clients.
func xaddRate(ctx context.Context, addr string, size, n int) (float64, error) {
	host, port, _ := strings.Cut(addr, ":")
	bin, err := exec.LookPath("valkey-benchmark")
	if err != nil {
		return 0, fmt.Errorf("valkey-benchmark not found: run test/tools/install-valkey.sh")
	}
	cmd := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-n", strconv.Itoa(n), "-c", "50", "--csv",
		"XADD", "bench:xadd", "*", "ce", strings.Repeat("x", size))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("valkey-benchmark: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	fields := strings.Split(lines[len(lines)-1], ",")
	if len(fields) < 2 {
		return 0, fmt.Errorf("valkey-benchmark printed %q", out)
	}
	return strconv.ParseFloat(strings.Trim(fields[1], `"`), 64)
}

// peakRSS is a process's peak resident set size in bytes (VmHWM).
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}
