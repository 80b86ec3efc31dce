package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/testenv"
)

// recorder answers every request with status and keeps what it received.
type recorder struct {
	status int
	mu     sync.Mutex
	reqs   []string // "METHOD PATH"
	bodies []string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.Path)
	r.bodies = append(r.bodies, string(body))
	r.mu.Unlock()
	w.WriteHeader(r.status)
}

func (r *recorder) seen() ([]string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.reqs...), strings.Join(r.bodies, "\n")
}

// TestJob builds and runs the job against a real Valkey with the shipped catalog format:
// a run that re-drives and notifies exits 0 with JSON report lines and pushes its counts;
// a run whose writer refuses the notification, or whose configuration is incomplete, exits 1
// and says why.
func TestJob(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "dlq-sweep")
	if err := harness.BuildGo(ctx, "./jobs/dlq-sweep", bin); err != nil {
		t.Fatal(err)
	}
	v, client := testenv.Valkey(t, harness.ValkeyOptions{})

	// The catalog the end-to-end tests run with, filled in.
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := template.ParseFiles(filepath.Join(root, "test", "stack", "catalog.yaml.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var cat bytes.Buffer
	const gitURL = "http://git.invalid/repo.git"
	remote := &harness.GitRemote{URL: gitURL, Username: "u", Password: "p"} // never contacted
	if err := tmpl.Execute(&cat, map[string]string{"Provider": remote.ProviderManifests(), "ClusterID": "prod", "ClusterToken": "t"}); err != nil {
		t.Fatal(err)
	}
	catalogFile := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(catalogFile, cat.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	// One event parked long enough ago, one left unacknowledged by a writer that died.
	p := identity.PartitionOf(gitURL, "main")
	b := bus.New(client, bus.Options{})
	if _, err := b.Append(ctx, p.ID, []bus.Entry{{ID: "e1", Payload: []byte(`{"id":"e1"}`)}, {ID: "e2", Payload: []byte(`{"id":"e2"}`)}}); err != nil {
		t.Fatal(err)
	}
	msgs, err := b.Read(ctx, p.ID, 2)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Read = %d, %v", len(msgs), err)
	}
	if err := b.DeadLetter(ctx, p.ID, msgs[0], "path outside", "prod"); err != nil {
		t.Fatal(err)
	}

	job := func(t *testing.T, env ...string) (code int, stdout, stderr string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "VALKEY_ADDR=" + v.Addr, "CATALOG_FILE=" + catalogFile}, env...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			code = exit.ExitCode()
		case err != nil:
			t.Fatal(err)
		}
		return code, out.String(), errOut.String()
	}

	t.Run("refused notification fails the run", func(t *testing.T) {
		sink := httptest.NewServer(&recorder{status: http.StatusServiceUnavailable})
		defer sink.Close()
		code, _, stderr := job(t, "K_SINK="+sink.URL, "SWEEP_BACKOFF=1h")
		if code != 1 || !strings.Contains(stderr, "dlq-sweep: ") || !strings.Contains(stderr, p.ID) {
			t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 and an error naming partition %s", code, stderr, p.ID)
		}
	})

	t.Run("missing K_SINK fails before doing anything", func(t *testing.T) {
		code, _, stderr := job(t)
		if code != 1 || !strings.Contains(stderr, "K_SINK") {
			t.Fatalf("exit %d, stderr:\n%s\nwant exit 1 naming K_SINK", code, stderr)
		}
		if n, err := b.Backlog(ctx, p.ID); err != nil || n != 1 {
			t.Errorf("backlog = %d, %v; want 1, untouched", n, err)
		}
	})

	t.Run("re-drives, notifies, reports and pushes", func(t *testing.T) {
		sink := &recorder{status: http.StatusOK}
		sinkSrv := httptest.NewServer(sink)
		defer sinkSrv.Close()
		gateway := &recorder{status: http.StatusOK}
		gatewaySrv := httptest.NewServer(gateway)
		defer gatewaySrv.Close()
		code, stdout, stderr := job(t, "K_SINK="+sinkSrv.URL, "SWEEP_BACKOFF=1ms", "PUSHGATEWAY_URL="+gatewaySrv.URL)
		if code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr)
		}
		if stdout != "" {
			t.Errorf("stdout is not a terminal, yet got:\n%s", stdout)
		}
		var partition, done map[string]any
		sc := bufio.NewScanner(strings.NewReader(stderr))
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				t.Fatalf("not a JSON log line: %q", sc.Text())
			}
			switch line["msg"] {
			case "Partition swept":
				partition = line
			case "Sweep done":
				done = line
			}
		}
		if partition == nil || partition["partition"] != p.ID || partition["redriven"] != 1.0 || partition["notified"] != true ||
			partition["backlog"] != 2.0 || partition["deadLetters"] != 0.0 {
			t.Errorf("partition line = %v, want %s with 1 re-driven, backlog 2, notified", partition, p.ID)
		}
		if done == nil || done["partitions"] != 1.0 || done["redriven"] != 1.0 || done["failed"] != 0.0 {
			t.Errorf("totals line = %v", done)
		}
		if reqs, _ := sink.seen(); len(reqs) != 1 || reqs[0] != "POST /" {
			t.Errorf("writer received %v, want one partition.ready POST", reqs)
		}
		reqs, body := gateway.seen()
		if len(reqs) != 1 || reqs[0] != "PUT /metrics/job/gitops-reverser-dlq-sweep" {
			t.Errorf("Pushgateway received %v, want one PUT for the job", reqs)
		}
		// The push is in the protobuf format; the metric names are in it as plain text.
		for _, name := range []string{"gitops_reverser_sweep_redriven", "gitops_reverser_sweep_dead_letters", "gitops_reverser_sweep_last_run_timestamp_seconds"} {
			if !strings.Contains(body, name) {
				t.Errorf("pushed metrics lack %s", name)
			}
		}
		if dl, err := b.DeadLetters(ctx, p.ID); err != nil || len(dl) != 0 {
			t.Errorf("DLQ after the run = %+v, %v; want empty", dl, err)
		}
	})
}
