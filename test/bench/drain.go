package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

// objectsPerPartition is how many ConfigMaps the drain measures update, round after round:
// each event is a real change of a known object, as a busy namespace makes them.
const objectsPerPartition = 2000

// writerDrain queues events in one partition with no writer told, then announces the
// partition and times the drain into pushed commits, on repositories of growing size. The
// writer has the mirror cloned before the clock starts, as a warm writer does. Its peak RSS
// on the largest repository is a row of its own.
func writerDrain(ctx context.Context, s *Suite) error {
	sizes := []int{100, 1000, 10_000, 100_000}
	if s.Quick {
		sizes = []int{100, 1000}
	}
	events := s.Size(20_000, 2_000)
	curve := Curve{Name: "writer drain", Unit: "events/s"}
	var rss int64
	for _, files := range sizes {
		r, err := startRig(ctx, s, rigOptions{Seed: func(ctx context.Context, bareDir, branch string) error {
			return seedBare(ctx, bareDir, branch, files)
		}})
		if err != nil {
			return err
		}
		d, err := timedDrain(ctx, r, 1, events)
		if err == nil && files == sizes[len(sizes)-1] {
			rss, err = peakRSS(r.writers[0].Pid())
		}
		r.Close()
		if err != nil {
			return fmt.Errorf("%d files: %w", files, err)
		}
		curve.Files, curve.Value = append(curve.Files, float64(files)), append(curve.Value, d.rate)
	}
	s.AddCurve(curve)
	largest := sizes[len(sizes)-1]
	cloned, err := clonePeak(ctx, s, largest)
	if err != nil {
		return err
	}
	s.Add(Row{
		Measure: fmt.Sprintf("Writer drain, one partition, %d-file repo", sizes[0]), Value: curve.Value[0], Unit: "events/s",
		Target: Target{Limit: 5000},
		Note:   fmt.Sprintf("%d events on %d objects; %.0f events/s on a %d-file repo", events, objectsPerPartition, curve.Value[len(sizes)-1], largest),
	}, Row{
		Measure: fmt.Sprintf("RSS of the writer, %d-file repo", largest), Value: float64(rss) / (1 << 20), Unit: "MiB",
		Target: Target{Max: true, Limit: 256},
		Note:   fmt.Sprintf("peak after clone and drain; the clone alone peaks at %d MiB", cloned>>20),
	})
	return nil
}

// timedDrain warms the rig's writers on its first partitions (one event each, drained, so
// every writer's mirror is cloned), queues perPartition events in each of them through
// ingest, and returns the events per second of draining them all.
func timedDrain(ctx context.Context, r *rig, partitions, perPartition int) (drained, error) {
	var ps []identity.Partition
	for i := range partitions {
		ps = append(ps, r.partition(i))
	}
	p := newPoster(r.ingestURL, r.token, 4)
	if err := warm(ctx, r, p, ps); err != nil {
		return drained{}, err
	}
	if err := fill(ctx, p, partitions, perPartition); err != nil {
		return drained{}, err
	}
	start, cpu := time.Now(), machineCPU()
	if err := r.drain(ctx, ps); err != nil {
		return drained{}, err
	}
	took := time.Since(start)
	return drained{rate: float64(partitions*perPartition) / took.Seconds(), busy: (machineCPU() - cpu) / took.Seconds()}, nil
}

// drained is what a timed drain measured: events per second, and how many cores the whole
// machine kept busy meanwhile.
type drained struct{ rate, busy float64 }

// machineCPU is the CPU time, in seconds, all cores have spent busy since boot.
func machineCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	busy := 0.0
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, _ := strconv.ParseFloat(v, 64)
		busy += n
	}
	return busy / 100 // USER_HZ
}

// warm drains one event per partition; partition i goes to writer i mod writers, so with at
// least as many partitions as writers every writer clones the mirrors it will drain.
func warm(ctx context.Context, r *rig, p *poster, ps []identity.Partition) error {
	for i := range ps {
		if err := p.post(ctx, batch(fmt.Sprintf("ns-%d", i), 0, 1, 1, "warm")); err != nil {
			return err
		}
	}
	return r.drain(ctx, ps)
}

// clonePeak is the writer's peak RSS when its first drain clones a repository of files.
func clonePeak(ctx context.Context, s *Suite, files int) (int64, error) {
	r, err := startRig(ctx, s, rigOptions{Seed: func(ctx context.Context, bareDir, branch string) error {
		return seedBare(ctx, bareDir, branch, files)
	}})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	if err := warm(ctx, r, newPoster(r.ingestURL, r.token, 1), []identity.Partition{r.partition(0)}); err != nil {
		return 0, err
	}
	return peakRSS(r.writers[0].Pid())
}

// fill queues n events in each of the first partitions: rounds of updates of
// objectsPerPartition objects, 400 per batch.
func fill(ctx context.Context, p *poster, partitions, n int) error {
	for i := range partitions {
		ns := fmt.Sprintf("ns-%d", i)
		for sent := 0; sent < n; {
			size := min(400, n-sent, objectsPerPartition-sent%objectsPerPartition)
			rv := int64(2 + sent/objectsPerPartition)
			if err := p.post(ctx, batch(ns, sent%objectsPerPartition, size, rv, fmt.Sprint(rv))); err != nil {
				return err
			}
			sent += size
		}
	}
	return nil
}

// writerScale drains eight partitions with one writer process, then with four, and compares
// the rates: how far adding writers helps on this machine.
func writerScale(ctx context.Context, s *Suite) error {
	const partitions = 8
	per := s.Size(5_000, 500)
	rate, busy := map[int]float64{}, map[int]float64{}
	for _, writers := range []int{1, 4} {
		r, err := startRig(ctx, s, rigOptions{Branches: partitions, Writers: writers})
		if err != nil {
			return err
		}
		d, err := timedDrain(ctx, r, partitions, per)
		rate[writers], busy[writers] = d.rate, d.busy
		r.Close()
		if err != nil {
			return fmt.Errorf("%d writers: %w", writers, err)
		}
	}
	s.Add(Row{
		Measure: "Writers 4 vs 1 on 8 partitions", Value: rate[4], Unit: "events/s",
		Baseline: rate[1], BaselineOf: "1 writer, this run", Ratio: rate[4] / rate[1],
		Target: Target{OnRatio: true, Limit: 2.5},
		Note: fmt.Sprintf("%d events per partition; cores busy: %.1f of %d with 1 writer, %.1f with 4",
			per, busy[1], runtime.NumCPU(), busy[4]),
	})
	return nil
}
