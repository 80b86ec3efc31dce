package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/template"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/notify"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// clusterID is the source cluster every measure without an apiserver posts as.
const clusterID = "bench"

// rig is the product without an apiserver: Valkey, one Git remote, ingest and writers as
// processes, and a catalog with one target per branch. Events for namespace ns-<i> go to
// branch b<i>, so each branch is its own partition.
type rig struct {
	dir     string
	valkey  *harness.Valkey
	client  valkey.Client
	bus     *bus.Bus
	git     *harness.GitRemote
	catalog string
	token   string

	ingest    *harness.Process
	ingestURL string
	writers   []*harness.Process
	writerURL []string

	closers []func() error
}

// rigOptions shape a rig.
type rigOptions struct {
	Branches int // partitions, default 1
	Writers  int // writer processes, default 1
	// Notify makes ingest announce new events to the first writer, as in production.
	// Without it events wait in Valkey until the measure sends the announcement itself.
	Notify bool
	// Seed, when set, fills each branch before the writers start (see seedBare).
	Seed func(ctx context.Context, bareDir, branch string) error
	// Env is added to both functions' environment.
	Env []string
}

const catalogTemplate = `{{.Provider}}---
apiVersion: v1
kind: Secret
metadata: {name: cluster-tokens, namespace: gitops}
stringData: {token: {{.Token}}}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: SourceCluster
metadata: {name: ` + clusterID + `}
spec:
  clusterID: ` + clusterID + `
  tokenSecretRefs: [{namespace: gitops, name: cluster-tokens}]
{{range .Branches}}---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitTarget
metadata: {name: b{{.}}, namespace: gitops}
spec:
  providerRef: {name: repo}
  branch: b{{.}}
  path: clusters/` + clusterID + `
  sourceClusters: [` + clusterID + `]
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: ClusterWatchRule
metadata: {name: b{{.}}}
spec:
  targetRef: {namespace: gitops, name: b{{.}}}
  rules:
  - apiGroups: [""]
    resources: [configmaps]
    namespaces: [ns-{{.}}]
{{end}}`

// startRig starts a rig. Close stops it.
func startRig(ctx context.Context, s *Suite, o rigOptions) (r *rig, err error) {
	o.Branches, o.Writers = max(o.Branches, 1), max(o.Writers, 1)
	r = &rig{dir: s.Scratch("rig"), token: strconv.FormatInt(time.Now().UnixNano(), 36)}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.valkey, err = harness.StartValkey(ctx, harness.ValkeyOptions{Dir: r.sub("valkey"), AppendOnly: true}); err != nil {
		return nil, err
	}
	r.closers = append(r.closers, r.valkey.Close)
	if r.client, err = bus.Dial(ctx, r.valkey.Addr, "", ""); err != nil {
		return nil, err
	}
	r.closers = append(r.closers, func() error { r.client.Close(); return nil })
	r.bus = bus.New(r.client, bus.Options{})
	if r.git, err = harness.StartGitRemote(ctx, harness.GitRemoteOptions{Dir: r.sub("git"), Username: "reverser"}); err != nil {
		return nil, err
	}
	r.closers = append(r.closers, r.git.Close)
	if o.Seed != nil {
		for i := range o.Branches {
			if err := o.Seed(ctx, r.git.BareDir, "b"+strconv.Itoa(i)); err != nil {
				return nil, err
			}
		}
	}
	if err := r.writeCatalog(o.Branches); err != nil {
		return nil, err
	}
	common := append([]string{"VALKEY_ADDR=" + r.valkey.Addr, "CATALOG_FILE=" + r.catalog, "LOG_LEVEL=info"}, o.Env...)
	for i := range o.Writers {
		w, url, err := r.start(ctx, s.Binary("writer"), fmt.Sprintf("writer-%d", i), append(common, "CACHE_DIR="+r.sub(fmt.Sprintf("writer-%d/cache", i))))
		if err != nil {
			return nil, err
		}
		r.writers, r.writerURL = append(r.writers, w), append(r.writerURL, url)
	}
	ingestEnv := common
	if o.Notify {
		ingestEnv = append(ingestEnv, "K_SINK="+r.writerURL[0])
	}
	if r.ingest, r.ingestURL, err = r.start(ctx, s.Binary("ingest"), "ingest", ingestEnv); err != nil {
		return nil, err
	}
	return r, nil
}

// start runs one function on a free port and waits until it is ready.
func (r *rig) start(ctx context.Context, bin, name string, env []string) (*harness.Process, string, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, "", err
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)
	p, err := harness.StartProcess(ctx, harness.ProcessOptions{
		Name: name, Path: bin, Dir: r.sub(name),
		Env:      append(env, "PORT="+strconv.Itoa(port)),
		ReadyURL: url + "/readyz",
	})
	if err != nil {
		return nil, "", err
	}
	r.closers = append(r.closers, p.Close)
	return p, url, nil
}

func (r *rig) writeCatalog(branches int) error {
	var idx []int
	for i := range branches {
		idx = append(idx, i)
	}
	var buf bytes.Buffer
	err := template.Must(template.New("catalog").Parse(catalogTemplate)).Execute(&buf, map[string]any{
		"Provider": r.git.ProviderManifests(), "Token": r.token, "Branches": idx,
	})
	if err != nil {
		return err
	}
	r.catalog = filepath.Join(r.dir, "catalog.yaml")
	return os.WriteFile(r.catalog, buf.Bytes(), 0o600)
}

// partition is branch i's partition.
func (r *rig) partition(i int) identity.Partition {
	return identity.PartitionOf(r.git.URL, "b"+strconv.Itoa(i))
}

// drain announces partitions to the writers, spread over them as Knative spreads requests,
// and returns when each writer has answered and every backlog is empty.
func (r *rig) drain(ctx context.Context, partitions []identity.Partition) error {
	errs := make(chan error, len(partitions))
	for i, p := range partitions {
		n, err := notify.New(ctx, notify.Options{Sink: r.writerURL[i%len(r.writerURL)], Source: "/bench"})
		if err != nil {
			return err
		}
		go func() { errs <- n.Send(ctx, p) }()
	}
	var all []error
	for range partitions {
		all = append(all, <-errs)
	}
	if err := errors.Join(all...); err != nil {
		return err
	}
	// A drain hands on when its slice ends; wait for those too.
	return r.waitEmpty(ctx, partitions, 5*time.Minute)
}

// waitEmpty waits until no partition has entries left.
func (r *rig) waitEmpty(ctx context.Context, partitions []identity.Partition, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var left int64
		for _, p := range partitions {
			n, err := r.bus.Backlog(ctx, p.ID)
			if err != nil {
				return err
			}
			left += n
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d events still queued after %s\n%s", left, timeout, r.logs(20))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logs returns the tails of the functions' logs, for error messages.
func (r *rig) logs(n int) string {
	var b bytes.Buffer
	for _, p := range append([]*harness.Process{r.ingest}, r.writers...) {
		if p != nil {
			fmt.Fprintf(&b, "--- %s ---\n%s\n", p.Name, p.LogTail(n))
		}
	}
	return b.String()
}

func (r *rig) sub(name string) string {
	d := filepath.Join(r.dir, name)
	_ = os.MkdirAll(d, 0o755)
	return d
}

// Close stops everything, newest first.
func (r *rig) Close() error {
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		errs = append(errs, r.closers[i]())
	}
	r.closers = nil
	return errors.Join(errs...)
}
