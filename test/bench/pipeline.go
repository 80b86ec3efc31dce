package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// pipelineLatency posts isolated edits, one audit event each, and times each from the post
// to its commit being on the remote branch: the product's own share of the end-to-end
// latency, without the apiserver's batching wait.
func pipelineLatency(ctx context.Context, s *Suite) error {
	r, err := startRig(ctx, s, rigOptions{Notify: true})
	if err != nil {
		return err
	}
	defer r.Close()
	p := newPoster(r.ingestURL, r.token, 1)
	edits := s.Size(200, 20)
	var lat []time.Duration
	last := "" // the branch has no commit yet
	for n := 1; n <= edits+1; n++ {
		body := eventList([]map[string]any{auditEvent("ns-0", "cm-pipeline", int64(n), fmt.Sprint(n), time.Now())})
		start := time.Now()
		if err := p.post(ctx, body); err != nil {
			return err
		}
		if last, err = waitRefMoves(ctx, r.git, "b0", last, 30*time.Second); err != nil {
			return fmt.Errorf("edit %d: %w\n%s", n, err, r.logs(20))
		}
		if n > 1 { // the first edit pays for the mirror's clone
			lat = append(lat, time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
	}
	content, ok, err := r.git.FileAt("b0", "clusters/bench/ns-0/core/configmaps/cm-pipeline.yaml")
	if err != nil || !ok || !strings.Contains(content, fmt.Sprintf("value: %q", fmt.Sprint(edits+1))) {
		return fmt.Errorf("the last edit is not the file's content on the remote (%v, %v):\n%s", ok, err, content)
	}
	ms := Millis(lat)
	s.AddLatency(Series{Name: "pipeline, isolated edits", MS: ms})
	s.Add(Row{
		Measure: "Pipeline latency p50, ingest to remote", Value: Quantile(ms, 0.50), Unit: "ms",
		Baseline: 110, BaselineOf: "old operator, commit window 0 s, quoted",
		Target: Target{Max: true, Limit: 100}, Note: fmt.Sprintf("%d isolated edits", len(ms)),
	}, Row{
		Measure: "Pipeline latency p99, ingest to remote", Value: Quantile(ms, 0.99), Unit: "ms",
		Target: Target{Max: true, Limit: 300},
	})
	return nil
}

// waitRefMoves polls the branch until it is no longer at from ("" for absent), and returns
// where it is.
func waitRefMoves(ctx context.Context, git *harness.GitRemote, branch, from string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		at, err := git.Head(branch)
		if errors.Is(err, harness.ErrNoBranch) {
			at, err = "", nil
		}
		if err != nil {
			return "", err
		}
		if at != from {
			return at, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("branch %s stayed at %q for %s", branch, from, timeout)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}
