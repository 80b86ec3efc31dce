// Command reconcile is a Kubernetes CronJob (also run by hand in a terminal): one pass of
// lib/reconcile over the configured GitTargets. It lists what the rules name in each source
// cluster, compares it with Git and publishes the drift (missing or different files, and
// files whose object is gone) to the partition streams the writer drains. It shows progress
// (a live line in a terminal, log lines otherwise), prints what it found per target, and
// exits 1 when any target failed, so the CronJob's history shows it. Configuration is
// environment only; see lib/config.Reconcile.
//
// With PRINT_RBAC=true it reconciles nothing: it prints the Roles and ClusterRole the current
// configuration needs beyond manifests/rbac (see lib/rbac.Print) and exits.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/gitops-reverser/gitops-reverser/lib/boot"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/config"
	"github.com/gitops-reverser/gitops-reverser/lib/notify"
	"github.com/gitops-reverser/gitops-reverser/lib/progress"
	"github.com/gitops-reverser/gitops-reverser/lib/rbac"
	"github.com/gitops-reverser/gitops-reverser/lib/reconcile"
	"github.com/gitops-reverser/gitops-reverser/lib/status"
)

func main() {
	if rbac.Requested() {
		os.Exit(rbac.Print(context.Background(), os.Stdout, os.Stderr))
	}
	// Credentials to read the branch; kubeconfigs to read the source clusters.
	boot.Job("reconcile", catalog.UsesCredentials|catalog.UsesKubeconfigs, run)
}

func run(ctx context.Context, cfg *config.Reconcile, parts *boot.JobParts) error {
	opts := reconcile.Setup(cfg, parts)
	if cfg.Sink != "" {
		n, err := notify.New(ctx, notify.Options{Sink: cfg.Sink, Source: "/reconcile"})
		if err != nil {
			return err
		}
		defer n.Wait()
		opts.Notifier = n
	}
	bar := progress.Start(os.Stderr, parts.Log, 5*time.Second, "listed", "published")
	opts.Listed, opts.Planned, opts.Published = bar.Counter(0), bar.AddTotal, bar.Counter(1)
	report, err := reconcile.Run(ctx, opts)
	bar.Stop()
	if err != nil {
		return err
	}
	// Projected after the run, so the targets show this reconcile's time and drift.
	if err := status.Refresh(ctx, cfg.Catalog.File, opts.Bus); err != nil {
		parts.Log.Warnw("Status not projected", "error", err)
	}
	if term.IsTerminal(int(os.Stdout.Fd())) {
		writeTable(report)
	} else {
		for _, t := range report.Targets {
			parts.Log.Infow("Reconciled", "target", t.Target.String(), "partition", t.Partition, "objects", t.Objects,
				"upserts", t.Upserts, "deletes", t.Deletes, "published", t.Published, "error", t.Error)
		}
		_ = json.NewEncoder(os.Stdout).Encode(report)
	}
	return report.Err()
}

func writeTable(r *reconcile.Report) {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TARGET\tOBJECTS\tUPSERTS\tDELETES\tPUBLISHED\tERROR")
	for _, t := range r.Targets {
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%s\n", t.Target, t.Objects, t.Upserts, t.Deletes, t.Published, t.Error)
	}
	fmt.Fprintf(w, "took %v\n", r.Took.Round(time.Millisecond))
	_ = w.Flush()
}
