// Command resnapshot is a Job a user creates by hand (kubectl create job --from=cronjob/...
// with TARGETS set, or in a terminal): it writes every object one GitTarget wants, and the
// removal of files whose object is gone, as one commit, even when nothing drifted. It takes
// the partition's lease like a writer, so it is safe while live events flow. It exits 1 on
// failure. Configuration is environment only; see lib/config.Reconcile (TARGETS names the
// one GitTarget).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/boot"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/config"
	"github.com/gitops-reverser/gitops-reverser/lib/progress"
	"github.com/gitops-reverser/gitops-reverser/lib/reconcile"
	"github.com/gitops-reverser/gitops-reverser/lib/status"
	"github.com/gitops-reverser/gitops-reverser/lib/writer"
)

// Credentials to write the branch; kubeconfigs to read the source clusters.
func main() { boot.Job("resnapshot", catalog.UsesCredentials|catalog.UsesKubeconfigs, run) }

func run(ctx context.Context, cfg *config.Reconcile, parts *boot.JobParts) error {
	if len(cfg.Targets) != 1 {
		return errors.New("TARGETS must name exactly one GitTarget (namespace/name) to snapshot")
	}
	opts := reconcile.Setup(cfg, parts)
	w := writer.New(writer.Options{
		Catalog:    catalog.Fixed(opts.Catalog),
		Bus:        opts.Bus,
		CacheDir:   cfg.CacheDir,
		GitTimeout: cfg.GitTimeout,
	})
	bar := progress.Start(os.Stderr, parts.Log, 5*time.Second, "listed", "written")
	opts.Listed, opts.Planned, opts.Published = bar.Counter(0), bar.AddTotal, bar.Counter(1)
	report, err := reconcile.Snapshot(ctx, opts, opts.Targets[0], w)
	bar.Stop()
	if err := status.Refresh(ctx, cfg.Catalog.File, opts.Bus); err != nil {
		parts.Log.Warnw("Status not projected", "error", err)
	}
	parts.Log.Infow("Snapshot written", "target", report.Target.String(), "partition", report.Partition,
		"objects", report.Objects, "deletes", report.Deletes, "error", report.Error)
	_ = json.NewEncoder(os.Stdout).Encode(report)
	return err
}
