// Command dlq-sweep is a Kubernetes CronJob: one pass of lib/sweep over every configured
// partition, re-driving parked events whose backoff has passed and announcing backlogs no
// writer is working on. It prints what it did (a table on a terminal, JSON log lines
// otherwise), pushes the counts to PUSHGATEWAY_URL when set, projects the CRDs' status, and
// exits 1 when anything failed, so the CronJob's history shows it. Configuration is
// environment only; see lib/config.Sweep.
package main

import (
	"context"
	"errors"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/term"

	"github.com/gitops-reverser/gitops-reverser/lib/boot"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/config"
	"github.com/gitops-reverser/gitops-reverser/lib/metrics"
	"github.com/gitops-reverser/gitops-reverser/lib/notify"
	"github.com/gitops-reverser/gitops-reverser/lib/status"
	"github.com/gitops-reverser/gitops-reverser/lib/sweep"
)

// job is the name of the run's metrics on the Pushgateway.
const job = "gitops-reverser-dlq-sweep"

// No Secret: the sweep only moves stream entries and wakes writers.
func main() { boot.Job("dlq-sweep", catalog.UsesNone, run) }

func run(ctx context.Context, cfg *config.Sweep, parts *boot.JobParts) error {
	notifier, err := notify.New(ctx, notify.Options{Sink: cfg.Sink, Source: "/dlq-sweep"})
	if err != nil {
		return err
	}
	b := bus.New(parts.Valkey, bus.Options{Prefix: cfg.KeyPrefix, MaxLen: cfg.PartitionMaxLen, Timeout: cfg.Timeout})
	report, sweepErr := sweep.Run(ctx, parts.Catalog, sweep.Options{
		Bus:         b,
		Notifier:    notifier,
		MaxRedrives: cfg.MaxRedrives,
		Backoff:     cfg.Backoff,
	})
	if term.IsTerminal(int(os.Stdout.Fd())) {
		_ = report.WriteTable(os.Stdout)
	} else {
		report.Log(parts.Log)
	}
	if err := status.Refresh(ctx, cfg.Catalog.File, b); err != nil {
		parts.Log.Warnw("Status not projected", "error", err)
	}
	if cfg.PushgatewayURL != "" {
		reg := prometheus.NewRegistry() // only the run's counts: the process is about to exit
		report.Record(metrics.NewSweep(reg))
		if err := metrics.Push(ctx, cfg.PushgatewayURL, job, reg); err != nil {
			return errors.Join(sweepErr, err)
		}
	}
	return sweepErr
}
