// Package faults is the fault suite: it runs the real ingest and writer functions as processes
// on loopback against a real Valkey (a single server with AOF, or a 3-node Valkey Cluster) and a
// real Git remote, injects faults (writers killed or paused at any instant, Valkey restarted,
// the remote down or moved by a human, poison events, duplicate and interrupted audit batches)
// and checks after each scenario that every accepted change reached Git exactly once in effect,
// in per-object order, with no duplicate commits and nothing silently dropped.
//
// The functions are black boxes driven over HTTP, as kube-apiserver and Knative drive them.
// Short form by default; FAULTS=long runs more kills and iterations. FAULTS_SEED replays the
// random choices of a run (timing is real, so a replay is similar, not identical).
package faults

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// The names the catalog gives things. The event ids the driver predicts depend on them.
const (
	ClusterID    = "faults"
	TargetPath   = "clusters/faults"
	TargetNS     = "gitops"
	TargetName   = "faults"
	Branch       = "main"
	KeyPrefix    = "gr"
	CommitterBot = "GitOps Reverser"
)

// Target is the GitTarget every change is routed to.
var Target = identity.TargetRef{Namespace: TargetNS, Name: TargetName}

const catalogTemplate = `# The fault suite's configuration: one source cluster "faults", one repository, one target
# folder, and every ConfigMap of every namespace.
{{.Provider}}---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitTarget
metadata: {name: ` + TargetName + `, namespace: ` + TargetNS + `}
spec:
  providerRef: {name: repo}
  branch: ` + Branch + `
  path: ` + TargetPath + `
  sourceClusters: [` + ClusterID + `]
---
apiVersion: v1
kind: Secret
metadata: {name: cluster-tokens, namespace: gitops}
stringData:
  token: {{.ClusterToken}}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: SourceCluster
metadata: {name: ` + ClusterID + `}
spec:
  clusterID: ` + ClusterID + `
  tokenSecretRefs: [{namespace: gitops, name: cluster-tokens}]
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: ClusterWatchRule
metadata: {name: configmaps}
spec:
  targetRef: {namespace: ` + TargetNS + `, name: ` + TargetName + `}
  rules:
  - apiGroups: [""]
    resources: [configmaps]
`

// binDir holds the ingest and writer binaries, built once per test binary (see TestMain).
var binDir string

// BuildFunctions builds ./functions/ingest and ./functions/writer into dir. With FAULTS_BIN
// set, the binaries already in that directory are used instead.
func BuildFunctions(ctx context.Context, dir string) (string, error) {
	if pre := os.Getenv("FAULTS_BIN"); pre != "" {
		for _, fn := range []string{"ingest", "writer"} {
			if _, err := os.Stat(filepath.Join(pre, fn)); err != nil {
				return "", fmt.Errorf("FAULTS_BIN=%s: %w", pre, err)
			}
		}
		return pre, nil
	}
	for _, fn := range []string{"ingest", "writer"} {
		if err := harness.BuildGo(ctx, "./functions/"+fn, filepath.Join(dir, fn)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// Long reports whether the long form runs (FAULTS=long).
func Long() bool { return os.Getenv("FAULTS") == "long" }

// Pick returns short in the short form and long in the long form.
func Pick(short, long int) int {
	if Long() {
		return long
	}
	return short
}

// Options shape a Rig. Zero values mean the defaults.
type Options struct {
	// Writers and Ingests are how many processes of each to start. Defaults 2 and 1.
	Writers, Ingests int
	// Cluster runs a 3-node Valkey Cluster instead of one server with AOF.
	Cluster bool
	// BatchSize is the writer's BATCH_SIZE. Default 10, so a kill lands mid-drain.
	BatchSize int
	// DrainSlice is the writer's DRAIN_SLICE. Default 2s.
	DrainSlice time.Duration
	// MaxDeliveries is the writer's MAX_DELIVERIES. Default 3.
	MaxDeliveries int
}

// Rig is the product on loopback, with handles to hurt every part of it.
type Rig struct {
	T         *testing.T
	Seed      uint64
	Dir       string
	Opts      Options
	Valkey    *harness.Valkey        // nil with Options.Cluster
	Cluster   *harness.ValkeyCluster // nil without
	Addr      string                 // VALKEY_ADDR: host:port, comma-separated for a cluster
	Git       *harness.GitRemote
	Catalog   string
	Token     string
	Partition identity.Partition
	Keys      bus.Keys
	VK        valkey.Client
	Model     *Model
	Gate      *Gate

	rngMu sync.Mutex
	rng   *mrand.Rand

	mu      sync.Mutex
	writers []*Writer
	ingests []*Ingest
	outside map[string]string // expected files outside the target folder
	inside  map[string]string // human files inside the target folder no event touches

	kicks   atomic.Int64
	kickSeq atomic.Int64
	client  *http.Client
}

// Writer is one writer process slot; it keeps its port and cache over restarts.
type Writer struct {
	Index    int
	Port     int
	URL      string
	CacheDir string
	dir      string

	mu       sync.Mutex
	proc     *harness.Process
	alive    bool
	paused   bool
	starts   int
	logStart int64 // offset in the log where the current incarnation begins
	inflight atomic.Int32
}

// Ingest is one ingest process slot; it keeps its port over restarts.
type Ingest struct {
	Index int
	Port  int
	URL   string
	dir   string

	mu     sync.Mutex
	proc   *harness.Process
	alive  bool
	starts int
}

// NewRig starts Valkey (or a Valkey Cluster), a Git remote and the functions. Everything
// stops when the test ends; when it failed, the end of every function's log is printed.
func NewRig(t *testing.T, o Options) *Rig {
	t.Helper()
	if o.Writers == 0 {
		o.Writers = 2
	}
	if o.Ingests == 0 {
		o.Ingests = 1
	}
	if o.BatchSize == 0 {
		o.BatchSize = 10
	}
	if o.DrainSlice == 0 {
		o.DrainSlice = 2 * time.Second
	}
	if o.MaxDeliveries == 0 {
		o.MaxDeliveries = 3
	}
	seed := testSeed(t)
	dir, err := os.MkdirTemp("", "faults-"+sanitizeName(t.Name())+"-*")
	if err != nil {
		t.Fatal(err)
	}
	r := &Rig{
		T: t, Seed: seed, Dir: dir, Opts: o,
		rng:     mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		Token:   randomHex(16),
		outside: map[string]string{},
		inside:  map[string]string{},
		client:  &http.Client{Timeout: 90 * time.Second},
	}
	t.Cleanup(r.close)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	if o.Cluster {
		r.Cluster, err = harness.StartValkeyCluster(ctx, harness.ValkeyClusterOptions{Nodes: 3, AppendOnly: true, Dir: r.sub("valkey-cluster")})
		if err != nil {
			t.Fatalf("start Valkey Cluster: %v", err)
		}
		r.Addr = strings.Join(r.Cluster.Addrs, ",")
	} else {
		r.Valkey, err = harness.StartValkey(ctx, harness.ValkeyOptions{AppendOnly: true, Dir: r.sub("valkey")})
		if err != nil {
			t.Fatalf("start Valkey: %v", err)
		}
		r.Addr = r.Valkey.Addr
	}
	if r.VK, err = bus.Dial(ctx, r.Addr, "", ""); err != nil {
		t.Fatalf("connect to Valkey: %v", err)
	}
	r.Git, err = harness.StartGitRemote(ctx, harness.GitRemoteOptions{Dir: r.sub("git"), Username: "reverser", Password: randomHex(12)})
	if err != nil {
		t.Fatalf("start Git remote: %v", err)
	}
	r.installGate()
	r.Partition = identity.PartitionOf(r.Git.URL, Branch)
	r.Keys = bus.KeysOf(KeyPrefix, r.Partition.ID)
	seeded, err := r.Git.Files(Branch)
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range seeded {
		r.outside[p] = c
	}
	if err := r.writeCatalog(); err != nil {
		t.Fatal(err)
	}
	r.Model = NewModel(r)

	// Writers first: ingest's K_SINK points at writer 0.
	for range o.Writers {
		r.AddWriter()
	}
	for range o.Ingests {
		r.AddIngest()
	}
	t.Logf("rig: seed %d (replay: FAULTS_SEED=%d go test ./test/faults -run '^%s$'), valkey %s, %d writers, %d ingest, BATCH_SIZE=%d DRAIN_SLICE=%s LEASE_TTL=1s MAX_DELIVERIES=%d, partition %s, dir %s",
		seed, seed, t.Name(), r.Addr, o.Writers, o.Ingests, o.BatchSize, o.DrainSlice, o.MaxDeliveries, r.Partition.ID, dir)
	return r
}

func (r *Rig) writeCatalog() error {
	var buf bytes.Buffer
	err := template.Must(template.New("catalog").Parse(catalogTemplate)).Execute(&buf, map[string]string{
		"ClusterToken": r.Token, "Provider": r.Git.ProviderManifests(),
	})
	if err != nil {
		return err
	}
	r.Catalog = filepath.Join(r.Dir, "catalog.yaml")
	return os.WriteFile(r.Catalog, buf.Bytes(), 0o600)
}

// Rand runs f with the rig's random source (seeded, shared by the test's goroutines).
func (r *Rig) Rand(f func(rng *mrand.Rand)) {
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	f(r.rng)
}

// IntN is a random int in [0, n).
func (r *Rig) IntN(n int) (v int) {
	r.Rand(func(rng *mrand.Rand) { v = rng.IntN(n) })
	return v
}

// Duration is a random duration in [lo, hi).
func (r *Rig) Duration(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	var v int64
	r.Rand(func(rng *mrand.Rand) { v = rng.Int64N(int64(hi - lo)) })
	return lo + time.Duration(v)
}

func (r *Rig) common() []string {
	return []string{
		"VALKEY_ADDR=" + r.Addr,
		"VALKEY_KEY_PREFIX=" + KeyPrefix,
		"VALKEY_TIMEOUT=2s",
		"CATALOG_FILE=" + r.Catalog,
		"LOG_LEVEL=debug",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
	}
}

// AddWriter starts a new writer process and returns it.
func (r *Rig) AddWriter() *Writer {
	r.T.Helper()
	port, err := harness.FreePort()
	if err != nil {
		r.T.Fatal(err)
	}
	r.mu.Lock()
	w := &Writer{Index: len(r.writers), Port: port, URL: "http://127.0.0.1:" + strconv.Itoa(port)}
	r.writers = append(r.writers, w)
	r.mu.Unlock()
	w.dir = r.sub(fmt.Sprintf("writer-%d", w.Index))
	w.CacheDir = r.sub(fmt.Sprintf("writer-%d/cache", w.Index))
	if err := r.startWriter(w); err != nil {
		r.T.Fatalf("start writer %d: %v", w.Index, err)
	}
	return w
}

func (r *Rig) startWriter(w *Writer) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.alive {
		return fmt.Errorf("writer %d is running", w.Index)
	}
	name := fmt.Sprintf("writer-%d", w.Index)
	w.logStart = appendMarker(filepath.Join(w.dir, name+".log"), fmt.Sprintf("=== faults: start %d of %s ===", w.starts+1, name))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := append(r.common(),
		"PORT="+strconv.Itoa(w.Port),
		"K_SINK="+w.URL,
		"CACHE_DIR="+w.CacheDir,
		"LEASE_TTL=1s",
		"BATCH_SIZE="+strconv.Itoa(r.Opts.BatchSize),
		"DRAIN_SLICE="+r.Opts.DrainSlice.String(),
		"GIT_TIMEOUT=10s",
		"MAX_DELIVERIES="+strconv.Itoa(r.Opts.MaxDeliveries),
	)
	p, err := harness.StartProcess(ctx, harness.ProcessOptions{
		Name: name, Path: filepath.Join(binDir, "writer"), Dir: w.dir, Env: env, ReadyURL: w.URL + "/readyz",
	})
	if err != nil {
		return err
	}
	w.proc, w.alive, w.paused = p, true, false
	w.starts++
	return nil
}

// AddIngest starts a new ingest process and returns it.
func (r *Rig) AddIngest() *Ingest {
	r.T.Helper()
	port, err := harness.FreePort()
	if err != nil {
		r.T.Fatal(err)
	}
	r.mu.Lock()
	in := &Ingest{Index: len(r.ingests), Port: port, URL: "http://127.0.0.1:" + strconv.Itoa(port)}
	r.ingests = append(r.ingests, in)
	r.mu.Unlock()
	in.dir = r.sub(fmt.Sprintf("ingest-%d", in.Index))
	if err := r.startIngest(in); err != nil {
		r.T.Fatalf("start ingest %d: %v", in.Index, err)
	}
	return in
}

func (r *Rig) startIngest(in *Ingest) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.alive {
		return fmt.Errorf("ingest %d is running", in.Index)
	}
	name := fmt.Sprintf("ingest-%d", in.Index)
	appendMarker(filepath.Join(in.dir, name+".log"), fmt.Sprintf("=== faults: start %d of %s ===", in.starts+1, name))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	env := append(r.common(), "PORT="+strconv.Itoa(in.Port), "K_SINK="+r.Writer(0).URL)
	p, err := harness.StartProcess(ctx, harness.ProcessOptions{
		Name: name, Path: filepath.Join(binDir, "ingest"), Dir: in.dir, Env: env, ReadyURL: in.URL + "/readyz",
	})
	if err != nil {
		return err
	}
	in.proc, in.alive = p, true
	in.starts++
	return nil
}

// Writer returns writer slot i.
func (r *Rig) Writer(i int) *Writer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writers[i]
}

// Writers returns every writer slot.
func (r *Rig) Writers() []*Writer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.writers)
}

// Ingest returns ingest slot i.
func (r *Rig) Ingest(i int) *Ingest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ingests[i]
}

// Ingests returns every ingest slot.
func (r *Rig) Ingests() []*Ingest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ingests)
}

// KillWriter ends writer i with SIGKILL, as a crash would.
func (r *Rig) KillWriter(i int) {
	r.T.Helper()
	w := r.Writer(i)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.alive {
		return
	}
	if err := w.proc.Kill(); err != nil {
		r.T.Errorf("kill writer %d: %v", i, err)
	}
	w.alive, w.paused = false, false
}

// RestartWriter starts writer i again on its port with its cache directory.
func (r *Rig) RestartWriter(i int) {
	r.T.Helper()
	if err := r.startWriter(r.Writer(i)); err != nil {
		r.T.Fatalf("restart writer %d: %v", i, err)
	}
}

// PauseWriter freezes writer i with SIGSTOP.
func (r *Rig) PauseWriter(i int) {
	r.T.Helper()
	w := r.Writer(i)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.alive || w.paused {
		return
	}
	if err := w.proc.Pause(); err != nil {
		r.T.Fatalf("pause writer %d: %v", i, err)
	}
	w.paused = true
}

// ResumeWriter continues writer i with SIGCONT.
func (r *Rig) ResumeWriter(i int) {
	r.T.Helper()
	w := r.Writer(i)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.alive || !w.paused {
		return
	}
	if err := w.proc.Resume(); err != nil {
		r.T.Fatalf("resume writer %d: %v", i, err)
	}
	w.paused = false
}

// Usable reports whether the writer runs and is not paused.
func (w *Writer) Usable() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.alive && !w.paused
}

// Alive reports whether the writer process runs (paused or not).
func (w *Writer) Alive() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.alive
}

// Starts is how often the writer was started.
func (w *Writer) Starts() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.starts
}

// Log returns what the writer's current incarnation logged so far.
func (w *Writer) Log() string {
	w.mu.Lock()
	path, start := filepath.Join(w.dir, fmt.Sprintf("writer-%d.log", w.Index)), w.logStart
	w.mu.Unlock()
	return readFrom(path, start)
}

// FullLog returns everything every incarnation of the writer logged.
func (w *Writer) FullLog() string {
	return readFrom(filepath.Join(w.dir, fmt.Sprintf("writer-%d.log", w.Index)), 0)
}

// KillIngest ends ingest i with SIGKILL.
func (r *Rig) KillIngest(i int) {
	r.T.Helper()
	in := r.Ingest(i)
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.alive {
		return
	}
	if err := in.proc.Kill(); err != nil {
		r.T.Errorf("kill ingest %d: %v", i, err)
	}
	in.alive = false
}

// RestartIngest starts ingest i again on its port.
func (r *Rig) RestartIngest(i int) {
	r.T.Helper()
	if err := r.startIngest(r.Ingest(i)); err != nil {
		r.T.Fatalf("restart ingest %d: %v", i, err)
	}
}

// Alive reports whether the ingest process runs.
func (in *Ingest) Alive() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.alive
}

// SignalValkey sends sig to the single Valkey server (SIGSTOP and SIGCONT freeze and thaw it).
func (r *Rig) SignalValkey(sig syscall.Signal) error {
	if r.Valkey == nil {
		return errors.New("no single Valkey server in a cluster rig")
	}
	return syscall.Kill(r.Valkey.Pid(), sig)
}

// KickResult is a writer's answer to a partition.ready event.
type KickResult struct {
	Writer int
	Status int // 0 when the request failed
	Body   string
	Err    error
	Took   time.Duration
}

// Drained, Busy and Retry classify the answer: 200, 202, anything else.
func (k KickResult) Drained() bool { return k.Status == http.StatusOK }
func (k KickResult) Busy() bool    { return k.Status == http.StatusAccepted }

func (k KickResult) String() string {
	if k.Err != nil {
		return fmt.Sprintf("writer %d: %v", k.Writer, k.Err)
	}
	return fmt.Sprintf("writer %d: %d %s (%v)", k.Writer, k.Status, strings.TrimSpace(k.Body), k.Took.Round(time.Millisecond))
}

// Kick sends writer i a binary-mode partition.ready CloudEvent, as Knative would, and waits
// for the answer: 200 drained, 202 busy (another writer holds the lease), 5xx retry. A 4xx
// fails the test: the event is well-formed and the partition configured.
func (r *Rig) Kick(ctx context.Context, i int) KickResult {
	w := r.Writer(i)
	w.inflight.Add(1)
	defer w.inflight.Add(-1)
	r.kicks.Add(1)
	res := KickResult{Writer: i}
	id := fmt.Sprintf("faults-kick-%d-%d", r.kickSeq.Add(1), time.Now().UnixNano())
	e, err := change.ReadyEvent(r.Partition, "/faults", id)
	if err != nil {
		res.Err = err
		return res
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL+"/", bytes.NewReader(e.Data()))
	if err != nil {
		res.Err = err
		return res
	}
	req.Header.Set("ce-specversion", "1.0")
	req.Header.Set("ce-id", id)
	req.Header.Set("ce-source", "/faults")
	req.Header.Set("ce-type", change.TypePartitionReady)
	req.Header.Set("ce-subject", r.Partition.ID)
	req.Header.Set("ce-time", time.Now().UTC().Format(time.RFC3339Nano))
	req.Header.Set("ce-"+change.ExtPartitionKey, r.Partition.ID)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := r.client.Do(req)
	res.Took = time.Since(start)
	if err != nil {
		res.Err = err
		return res
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	res.Status, res.Body = resp.StatusCode, string(body)
	if resp.StatusCode >= 400 && resp.StatusCode < 500 {
		r.T.Errorf("writer %d refused a well-formed partition.ready event: %d %s", i, resp.StatusCode, body)
	}
	return res
}

// KickAll kicks every usable writer at the same moment and returns their answers.
func (r *Rig) KickAll(ctx context.Context) []KickResult {
	var out []KickResult
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, w := range r.Writers() {
		if !w.Usable() {
			continue
		}
		wg.Go(func() {
			<-start
			k := r.Kick(ctx, w.Index)
			mu.Lock()
			out = append(out, k)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return out
}

// Kicker kicks writers in the background until stopped: each given writer (all when none
// are given) is kicked again shortly after each answer, as a stream of partition.ready events
// would. The answers are counted.
type Kicker struct {
	Drained, Busy, Retry, Failed atomic.Int64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartKicker starts kicking writers (by index; when none are given, every writer, including
// those added later).
func (r *Rig) StartKicker(writers ...int) *Kicker {
	ctx, cancel := context.WithCancel(context.Background())
	k := &Kicker{cancel: cancel}
	loop := func(i int) {
		for ctx.Err() == nil {
			if !r.Writer(i).Usable() {
				sleepCtx(ctx, 20*time.Millisecond)
				continue
			}
			res := r.Kick(ctx, i)
			switch {
			case ctx.Err() != nil:
			case res.Err != nil:
				k.Failed.Add(1)
			case res.Drained():
				k.Drained.Add(1)
			case res.Busy():
				k.Busy.Add(1)
			default:
				k.Retry.Add(1)
			}
			sleepCtx(ctx, r.Duration(5*time.Millisecond, 60*time.Millisecond))
		}
	}
	if len(writers) > 0 {
		for _, i := range writers {
			k.wg.Go(func() { loop(i) })
		}
		return k
	}
	k.wg.Go(func() {
		started := 0
		for ctx.Err() == nil {
			for ; started < len(r.Writers()); started++ {
				i := started
				k.wg.Go(func() { loop(i) })
			}
			sleepCtx(ctx, 20*time.Millisecond)
		}
	})
	return k
}

// Stop ends the kicks and waits for those in flight.
func (k *Kicker) Stop() {
	k.cancel()
	k.wg.Wait()
}

func (k *Kicker) String() string {
	return fmt.Sprintf("kicks: %d drained, %d busy, %d retry (5xx), %d failed (connection)", k.Drained.Load(), k.Busy.Load(), k.Retry.Load(), k.Failed.Load())
}

// State is the partition's queue state in Valkey.
type State struct {
	Stream  int64 // XLEN of the stream
	Pending int64 // entries delivered and not acknowledged
	Lease   bool  // a lease key exists
	Epoch   int64 // the partition's epoch counter
	DLQ     int64 // XLEN of the DLQ
}

func (s State) String() string {
	return fmt.Sprintf("stream=%d pending=%d lease=%v epoch=%d dlq=%d", s.Stream, s.Pending, s.Lease, s.Epoch, s.DLQ)
}

// State reads the partition's queue state.
func (r *Rig) State(ctx context.Context) (State, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	var s State
	var err error
	c := r.VK
	if s.Stream, err = c.Do(ctx, c.B().Xlen().Key(r.Keys.Stream).Build()).AsInt64(); err != nil {
		return s, fmt.Errorf("XLEN %s: %w", r.Keys.Stream, err)
	}
	n, err := c.Do(ctx, c.B().Exists().Key(r.Keys.Lease).Build()).AsInt64()
	if err != nil {
		return s, fmt.Errorf("EXISTS %s: %w", r.Keys.Lease, err)
	}
	s.Lease = n > 0
	s.Epoch, err = c.Do(ctx, c.B().Get().Key(r.Keys.Epoch).Build()).AsInt64()
	if err != nil && !valkey.IsValkeyNil(err) {
		return s, fmt.Errorf("GET %s: %w", r.Keys.Epoch, err)
	}
	if s.DLQ, err = c.Do(ctx, c.B().Xlen().Key(r.Keys.DLQ).Build()).AsInt64(); err != nil {
		return s, fmt.Errorf("XLEN %s: %w", r.Keys.DLQ, err)
	}
	if s.Stream > 0 {
		p, err := c.Do(ctx, c.B().Xpending().Key(r.Keys.Stream).Group("writer").Build()).ToArray()
		if err == nil && len(p) > 0 {
			s.Pending, _ = p[0].AsInt64()
		}
	}
	return s, nil
}

// Settle kicks writers until the partition's stream is empty, no lease is held and the
// branch stands still. It fails the test with what it saw after timeout, or sooner when
// nothing moved (stream, DLQ and branch unchanged) for stuckAfter: a stuck partition.
func (r *Rig) Settle(timeout time.Duration) {
	r.T.Helper()
	const stuckAfter = 30 * time.Second
	start := time.Now()
	deadline := start.Add(timeout)
	var last State
	var lastKick KickResult
	var lastErr error
	quiet := 0
	head, progressHead := "", ""
	var progressState State
	progressAt := time.Now()
	for i := 0; ; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s, err := r.State(ctx)
		cancel()
		lastErr = err
		h := r.RemoteHead()
		if err == nil {
			last = s
			if s.Stream != progressState.Stream || s.DLQ != progressState.DLQ || h != progressHead {
				progressState, progressHead, progressAt = s, h, time.Now()
			}
			if s.Stream == 0 && !s.Lease && (h == head || quiet == 0) {
				quiet++
				head = h
				// Twice in a row, 300ms apart, with the branch unchanged: nothing is in flight.
				if quiet >= 2 {
					r.T.Logf("settled in %v: %s", time.Since(start).Round(time.Millisecond), s)
					return
				}
				time.Sleep(300 * time.Millisecond)
				continue
			}
			quiet, head = 0, ""
		}
		if time.Now().After(deadline) {
			r.T.Fatalf("partition did not settle within %v: last state %s (last read error: %v), last kick %s; events are stuck: neither acknowledged nor parked",
				timeout, last, lastErr, lastKick)
		}
		if time.Since(progressAt) > stuckAfter {
			r.T.Fatalf("partition stuck: nothing moved for %v (stream, DLQ and branch unchanged): state %s (last read error: %v), last kick %s; events are neither written nor parked",
				stuckAfter, last, lastErr, lastKick)
		}
		usable := r.usableWriters()
		if len(usable) == 0 {
			r.T.Fatalf("settle: no usable writer (all killed or paused); state %s", last)
		}
		kctx, kcancel := context.WithDeadline(context.Background(), deadline)
		lastKick = r.Kick(kctx, usable[i%len(usable)])
		kcancel()
		if !lastKick.Drained() {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// WaitIdle waits, without kicking, until no lease is held and the stream is empty, or
// timeout passes (then it returns quietly: the caller races anyway).
func (r *Rig) WaitIdle(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s, err := r.State(ctx)
		cancel()
		if err == nil && !s.Lease && s.Stream == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CountLog counts the lines of every writer's log (all incarnations) that match re.
func (r *Rig) CountLog(re *regexp.Regexp) int {
	n := 0
	for _, w := range r.Writers() {
		n += len(re.FindAllStringIndex(w.FullLog(), -1))
	}
	return n
}

func (r *Rig) usableWriters() []int {
	var out []int
	for _, w := range r.Writers() {
		if w.Usable() {
			out = append(out, w.Index)
		}
	}
	return out
}

// epochRE finds the epoch a writer logs with its lease (zap JSON: "epoch":7).
var epochRE = regexp.MustCompile(`"epoch":\s*"?(\d+)`)

// Holder guesses which running (possibly paused) writer holds the lease of the given epoch
// from what each logged since its last start. It returns -1 when none logged it (yet).
func (r *Rig) Holder(epoch int64) int {
	want := strconv.FormatInt(epoch, 10)
	for _, w := range r.Writers() {
		if !w.Alive() {
			continue
		}
		for _, m := range epochRE.FindAllStringSubmatch(w.Log(), -1) {
			if m[1] == want {
				return w.Index
			}
		}
	}
	return -1
}

// AddOutside records a file outside the target folder that must be in the tree at the end.
func (r *Rig) AddOutside(path, content string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outside[path] = content
}

// AddHumanInside records a human file inside the target folder, for an object no event
// touches, that must survive unchanged.
func (r *Rig) AddHumanInside(path, content string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inside[path] = content
}

// Logs returns the end of every function's log.
func (r *Rig) Logs(n int) string {
	var b strings.Builder
	for _, w := range r.Writers() {
		fmt.Fprintf(&b, "--- writer-%d (%d starts) log, last %d lines ---\n%s\n", w.Index, w.Starts(), n, tailString(w.FullLog(), n))
	}
	for _, in := range r.Ingests() {
		fmt.Fprintf(&b, "--- ingest-%d log, last %d lines ---\n%s\n", in.Index, n, tailString(readFrom(filepath.Join(in.dir, fmt.Sprintf("ingest-%d.log", in.Index)), 0), n))
	}
	return b.String()
}

func (r *Rig) close() {
	failed := r.T.Failed()
	if failed {
		r.T.Logf("test failed (seed %d); logs kept in %s\n%s", r.Seed, r.Dir, r.Logs(60))
	}
	// SIGKILL everything: a graceful stop would wait for in-flight drains.
	for _, w := range r.Writers() {
		w.mu.Lock()
		if w.proc != nil {
			_ = w.proc.Kill()
			_ = w.proc.Close()
		}
		w.mu.Unlock()
	}
	for _, in := range r.Ingests() {
		in.mu.Lock()
		if in.proc != nil {
			_ = in.proc.Kill()
			_ = in.proc.Close()
		}
		in.mu.Unlock()
	}
	if r.VK != nil {
		r.VK.Close()
	}
	if r.Gate != nil {
		r.Gate.Release()
	}
	if r.Git != nil {
		_ = r.Git.Close()
	}
	if r.Valkey != nil {
		_ = r.SignalValkey(syscall.SIGCONT)
		_ = r.Valkey.Kill()
		_ = r.Valkey.Close()
	}
	if r.Cluster != nil {
		_ = r.Cluster.Close()
	}
	if !failed {
		_ = os.RemoveAll(r.Dir)
	}
}

func (r *Rig) sub(name string) string {
	d := filepath.Join(r.Dir, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		r.T.Fatal(err)
	}
	return d
}

// testSeed is FAULTS_SEED, or else the time. Each test logs its seed; running that test alone
// with FAULTS_SEED set to it replays its random choices.
func testSeed(t *testing.T) uint64 {
	if s := os.Getenv("FAULTS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("FAULTS_SEED=%q is not an unsigned integer", s)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

// appendMarker appends a line to a log file and returns the file's size after it.
func appendMarker(path, line string) int64 {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0
	}
	defer f.Close()
	_, _ = f.WriteString(line + "\n")
	info, err := f.Stat()
	if err != nil {
		return 0
	}
	return info.Size()
}

func readFrom(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func sanitizeName(s string) string { return unsafeName.ReplaceAllString(s, "_") }

// jsonString is a JSON value for error messages.
func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// RemoteHead reads the branch tip of the remote cheaply (the loose ref file; git rev-parse
// when the ref is packed), for tight polling.
func (r *Rig) RemoteHead() string {
	if b, err := os.ReadFile(filepath.Join(r.Git.BareDir, "refs", "heads", Branch)); err == nil {
		return strings.TrimSpace(string(b))
	}
	h, _ := r.Git.Head(Branch)
	return h
}

// WaitPush polls until the remote branch moves away from head, and reports whether it did
// within timeout.
func (r *Rig) WaitPush(head string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if r.RemoteHead() != head {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

// Gate holds a push on the remote after it landed: a post-receive hook in the bare
// repository, which runs once the branch has moved and before receive-pack answers the
// client. Armed, it makes the next push wait until released, so a test can act on the
// instant a writer's push is in Git but the writer does not know it yet (and so has not
// acknowledged its events). Unarmed, it does nothing.
type Gate struct{ dir string }

const postReceiveHook = `#!/bin/sh
# faults: hold the push that finds the gate armed until the test releases it.
cat >/dev/null
gate=%q
if mkdir "$gate/holding" 2>/dev/null; then
  if [ -f "$gate/armed" ]; then
    rm -f "$gate/armed"
    touch "$gate/landed"
    i=0
    while [ ! -f "$gate/release" ] && [ $i -lt 6000 ]; do sleep 0.01; i=$((i+1)); done
    rm -f "$gate/release"
  fi
  rmdir "$gate/holding"
fi
exit 0
`

// installGate writes the hook into the remote's bare repository.
func (r *Rig) installGate() {
	g := &Gate{dir: r.sub("gate")}
	hook := filepath.Join(r.Git.BareDir, "hooks", "post-receive")
	if err := os.MkdirAll(filepath.Dir(hook), 0o755); err != nil {
		r.T.Fatal(err)
	}
	if err := os.WriteFile(hook, []byte(fmt.Sprintf(postReceiveHook, g.dir)), 0o755); err != nil {
		r.T.Fatal(err)
	}
	r.Gate = g
}

// Arm makes the next push wait after it landed.
func (g *Gate) Arm() {
	_ = os.Remove(filepath.Join(g.dir, "landed"))
	_ = os.WriteFile(filepath.Join(g.dir, "armed"), nil, 0o644)
}

// WaitLanded waits until an armed push landed and is held, and reports whether it did.
func (g *Gate) WaitLanded(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(g.dir, "landed")); err == nil {
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

// Release lets a held push answer, and disarms the gate.
func (g *Gate) Release() {
	_ = os.Remove(filepath.Join(g.dir, "armed"))
	if _, err := os.Stat(filepath.Join(g.dir, "landed")); err == nil {
		_ = os.WriteFile(filepath.Join(g.dir, "release"), nil, 0o644)
		_ = os.Remove(filepath.Join(g.dir, "landed"))
	}
}
