package reconcile

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"k8s.io/client-go/rest"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/gitwrite"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/layout"
	"github.com/gitops-reverser/gitops-reverser/lib/notify"
	"github.com/gitops-reverser/gitops-reverser/lib/rules"
)

// DefaultActor is the user reconcile changes are committed as: the drift it repairs has no
// known author.
const DefaultActor = "system:gitops-reverser:reconcile"

// Defaults of Options.
const (
	DefaultPageSize   = 500
	DefaultBatch      = 500
	DefaultFullWait   = 10 * time.Minute
	DefaultGitTimeout = 60 * time.Second
)

// Options are what a run reads from and publishes to. Zero values mean the defaults.
type Options struct {
	Catalog *catalog.Snapshot
	Bus     *bus.Bus
	// Notifier tells the writer a partition has work; nil leaves that to the dlq-sweep job.
	Notifier *notify.Notifier
	// Ambient reads SourceClusters that have no kubeconfig Secret; nil means they fail.
	Ambient *rest.Config
	// CacheDir holds a bare mirror per partition, reused across runs.
	CacheDir string
	// Targets limits the run to these GitTargets; empty means all of them.
	Targets []identity.TargetRef
	// Actor is the user the changes are attributed to. Default DefaultActor.
	Actor string
	// PageSize is the limit of each list call. Default 500.
	PageSize int64
	// Batch is how many events one append carries. Default 500.
	Batch int
	// FullWait is how long a publish waits for a partition at its backlog cap to drain
	// before giving up. Default 10m.
	FullWait time.Duration
	// GitTimeout bounds each fetch. Default 60s.
	GitTimeout time.Duration
	// Listed, Planned and Published hear of objects listed, events about to be published
	// and events published, for progress displays; nil hears nothing.
	Listed, Planned, Published func(n int)
	// Recorder keeps each target's outcome, for status; nil keeps nothing.
	Recorder Recorder
}

// Recorder keeps the outcome of a target's reconcile: when, how many changes it found, and
// the error that stopped it, if any.
type Recorder interface {
	RecordReconcile(ctx context.Context, target identity.TargetRef, partitionID string, when time.Time, drift int, err error) error
}

func (o *Options) defaults() {
	if o.Actor == "" {
		o.Actor = DefaultActor
	}
	if o.PageSize <= 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.FullWait <= 0 {
		o.FullWait = DefaultFullWait
	}
	if o.GitTimeout <= 0 {
		o.GitTimeout = DefaultGitTimeout
	}
	if o.Listed == nil {
		o.Listed = func(int) {}
	}
	if o.Planned == nil {
		o.Planned = func(int) {}
	}
	if o.Published == nil {
		o.Published = func(int) {}
	}
}

// Report is what a run did.
type Report struct {
	Targets []TargetReport `json:"targets"`
	// Took is the run's duration.
	Took time.Duration `json:"took"`
}

// TargetReport is what a run did for one GitTarget.
type TargetReport struct {
	Target    identity.TargetRef `json:"target"`
	Partition string             `json:"partition"`
	// Objects is how many objects the target's rules want.
	Objects int `json:"objects"`
	// Upserts and Deletes are the drift found: files missing or different, and orphans.
	Upserts int `json:"upserts"`
	Deletes int `json:"deletes"`
	// Published counts the events appended; an event an earlier run already appended at the
	// same resourceVersion is not appended twice.
	Published int `json:"published"`
	// Err is why the target was not reconciled, if it was not.
	Err error `json:"-"`
	// Error is Err as text, for JSON.
	Error string `json:"error,omitempty"`
}

// count records the objects wanted and the changes found.
func (r *TargetReport) count(objects int, changes []*change.Change) {
	r.Objects = objects
	for _, c := range changes {
		if c.Op == change.OpDelete {
			r.Deletes++
		} else {
			r.Upserts++
		}
	}
}

// Drift is the number of changes found.
func (r TargetReport) Drift() int { return r.Upserts + r.Deletes }

// Err joins the errors of every target.
func (r *Report) Err() error {
	var errs []error
	for _, t := range r.Targets {
		if t.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Target, t.Err))
		}
	}
	return errors.Join(errs...)
}

// Run reconciles the selected targets once: list, compare, publish the drift.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	start := time.Now()
	targets, err := selectTargets(o.Catalog.Plan, o.Targets)
	if err != nil {
		return nil, err
	}
	obs := observeAll(ctx, &o, targets)
	rep := &Report{}
	for _, t := range targets {
		tr := TargetReport{Target: t.Ref, Partition: t.Partition.ID}
		tr.Err = reconcileTarget(ctx, &o, t, obs, &tr)
		if tr.Err != nil {
			tr.Error = tr.Err.Error()
		}
		if o.Recorder != nil {
			if err := o.Recorder.RecordReconcile(ctx, t.Ref, t.Partition.ID, time.Now(), tr.Drift(), tr.Err); err != nil {
				tr.Err = errors.Join(tr.Err, err)
			}
		}
		rep.Targets = append(rep.Targets, tr)
	}
	rep.Took = time.Since(start)
	return rep, nil
}

func reconcileTarget(ctx context.Context, o *Options, t *rules.Target, all map[string]observed, tr *TargetReport) error {
	obs, err := observationsOf(t, all)
	if err != nil {
		return err
	}
	files, err := readTree(ctx, o, t)
	if err != nil {
		return err
	}
	changes, n, err := diff(o.Catalog.Plan, t, obs, files, false, change.Actor{Username: o.Actor})
	if err != nil {
		return err
	}
	tr.count(n, changes)
	o.Planned(len(changes))
	tr.Published, err = publish(ctx, o, t.Partition, changes)
	return err
}

// observed is a cluster's observation, or why there is none.
type observed struct {
	obs *observation
	err error
}

// observeAll lists every cluster the targets read from, once each.
func observeAll(ctx context.Context, o *Options, targets []*rules.Target) map[string]observed {
	out := map[string]observed{}
	for _, t := range targets {
		for _, id := range t.Clusters() {
			if _, done := out[id]; done {
				continue
			}
			c, ok := o.Catalog.Cluster(id)
			if !ok {
				out[id] = observed{err: fmt.Errorf("no SourceCluster with clusterID %q: create one or remove it from the GitTarget's sourceClusters", id)}
				continue
			}
			cl, err := Connect(c, o.Ambient)
			if err != nil {
				out[id] = observed{err: err}
				continue
			}
			obs, err := observe(ctx, cl, o.Catalog.Plan, o.PageSize, o.Listed)
			out[id] = observed{obs: obs, err: err}
		}
	}
	return out
}

// observationsOf returns the observations of every cluster a target reads from; a target
// with one cluster unread is not reconciled at all, since its orphans cannot be told.
func observationsOf(t *rules.Target, all map[string]observed) ([]*observation, error) {
	var out []*observation
	for _, id := range t.Clusters() {
		o := all[id]
		if o.err != nil {
			return nil, o.err
		}
		out = append(out, o.obs)
	}
	return out, nil
}

// readTree fetches the target's branch and lists the files under its root.
func readTree(ctx context.Context, o *Options, t *rules.Target) (tree, error) {
	info, ok := o.Catalog.Partition(t.Partition.ID)
	if !ok {
		return nil, fmt.Errorf("partition %s not configured", t.Partition.ID)
	}
	repo, err := gitwrite.Open(ctx, gitwrite.Options{
		URL: info.RepoURL, Branch: info.Branch, Auth: info.Auth,
		Dir: filepath.Join(o.CacheDir, info.ID), Timeout: o.GitTimeout,
	})
	if err != nil {
		return nil, err
	}
	files := tree{}
	err = repo.Walk(layout.Root(t.Path), func(p string, blob plumbing.Hash) error {
		files[p] = blob
		return nil
	})
	return files, err
}

// selectTargets returns the plan's targets, or the named ones (all must exist).
func selectTargets(plan *rules.Plan, names []identity.TargetRef) ([]*rules.Target, error) {
	if len(names) == 0 {
		return plan.Targets(), nil
	}
	byRef := map[identity.TargetRef]*rules.Target{}
	for _, t := range plan.Targets() {
		byRef[t.Ref] = t
	}
	var out []*rules.Target
	for _, n := range names {
		t, ok := byRef[n]
		if !ok {
			return nil, fmt.Errorf("GitTarget %s not found or not usable (see the catalog's problems)", n)
		}
		out = append(out, t)
	}
	return out, nil
}
