package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// coldStart starts each function from its binary, as Knative does a new pod's container,
// and times the start to the first 200 from /readyz: the catalog read, Valkey reached and
// the server listening. The median of several starts counts.
func coldStart(ctx context.Context, s *Suite) error {
	r, err := startRig(ctx, s, rigOptions{})
	if err != nil {
		return err
	}
	defer r.Close()
	runs := s.Size(7, 3)
	for _, fn := range []string{"ingest", "writer"} {
		var took []time.Duration
		for range runs {
			d, err := startOnce(ctx, s.Binary(fn), []string{"VALKEY_ADDR=" + r.valkey.Addr, "CATALOG_FILE=" + r.catalog, "CACHE_DIR=" + s.Scratch("cold")})
			if err != nil {
				return fmt.Errorf("%s: %w", fn, err)
			}
			took = append(took, d)
		}
		ms := Millis(took)
		s.Add(Row{
			Measure: "Cold start to ready, " + fn, Value: Quantile(ms, 0.5), Unit: "ms",
			Target: Target{Max: true, Limit: 1000},
			Note:   fmt.Sprintf("median of %d starts; slowest %.0f ms", runs, Quantile(ms, 1)),
		})
	}
	return nil
}

// startOnce runs bin until /readyz answers 200 and returns how long that took; then stops it.
func startOnce(ctx context.Context, bin string, env []string) (time.Duration, error) {
	port, err := harness.FreePort()
	if err != nil {
		return 0, err
	}
	log, err := os.CreateTemp("", filepath.Base(bin)+"-*.log")
	if err != nil {
		return 0, err
	}
	defer os.Remove(log.Name())
	defer log.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), env...), "PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = log, log
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/readyz"
	client := &http.Client{Timeout: time.Second}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for time.Since(start) < 30*time.Second {
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	out, _ := os.ReadFile(log.Name())
	return 0, fmt.Errorf("not ready after 30s:\n%s", out)
}
