package multicluster

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// env is shared by the tests: starting two apiservers costs seconds. Each test works on its
// own objects, and a test that changes a SourceCluster puts it back before it ends.
var env *rig

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	dir, err := os.MkdirTemp("", "gitops-reverser-multicluster-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r, err := startRig(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "multicluster: cannot start: %v\n", err)
		if r != nil {
			fmt.Fprintln(os.Stderr, r.Logs(40))
		}
		os.RemoveAll(dir)
		os.Exit(1)
	}
	env = r
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, env.Logs(80))
	}
	env.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// waitTimeout covers the apiserver's 1 s batch wait plus the pipeline, with room for a slow
// machine.
const waitTimeout = 30 * time.Second

func ctxFor(t testing.TB, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

// poll calls f every interval until it reports done, fails, or ctx ends.
func poll(ctx context.Context, interval time.Duration, f func() (bool, error)) error {
	for {
		done, err := f()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// waitFiles polls the branch until cond holds for its files (path -> content).
func waitFiles(t testing.TB, d time.Duration, what string, cond func(files map[string]string) bool) map[string]string {
	t.Helper()
	var files map[string]string
	var lastErr error
	err := poll(ctxFor(t, d), 50*time.Millisecond, func() (bool, error) {
		files, lastErr = env.Git.Files(env.Git.Branch)
		return lastErr == nil && cond(files), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last read error: %v)\n%s", what, err, lastErr, env.Logs(40))
	}
	return files
}

// configMapData is the data of a ConfigMap file; nil when it does not parse.
func configMapData(content string) map[string]string {
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if yaml.Unmarshal([]byte(content), &cm) != nil {
		return nil
	}
	return cm.Data
}

// commitsTouching returns the commits of the branch that changed p, newest first.
func commitsTouching(t testing.TB, p string) []harness.Commit {
	t.Helper()
	log, err := env.Git.Log(env.Git.Branch)
	if err != nil {
		t.Fatal(err)
	}
	var out []harness.Commit
	for _, c := range log {
		for _, f := range c.Files {
			if f == p {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// metric reads an ingest metric, failing the test when it cannot.
func metric(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	v, err := env.metric(ctxFor(t, 10*time.Second), name, labels)
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return v
}

const (
	batchesMetric = "gitops_reverser_ingest_batches_total"
	eventsMetric  = "gitops_reverser_ingest_audit_events_total"
)

// percentile returns the p-quantile (0..1) of ds by the nearest-rank method.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func hasTrailer(message, key, value string) bool {
	for _, line := range strings.Split(message, "\n") {
		if strings.TrimSpace(line) == key+": "+value {
			return true
		}
	}
	return false
}
