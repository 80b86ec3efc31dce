// Command writer is the Git writer function: each partition.ready CloudEvent makes it drain
// that repository branch's queued changes into pushed commits. Configuration is environment
// only; see lib/config.Writer.
package main

import (
	"context"
	"net/http"

	"github.com/gitops-reverser/gitops-reverser/lib/boot"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/config"
	"github.com/gitops-reverser/gitops-reverser/lib/metrics"
	"github.com/gitops-reverser/gitops-reverser/lib/notify"
	"github.com/gitops-reverser/gitops-reverser/lib/status"
	"github.com/gitops-reverser/gitops-reverser/lib/writer"
)

func main() {
	boot.Main("writer", catalog.UsesCredentials, func(ctx context.Context, cfg *config.Writer, parts *boot.Parts) (http.Handler, error) {
		notifier, err := notify.New(ctx, notify.Options{Sink: cfg.Sink, Source: "/writer"})
		if err != nil {
			return nil, err
		}
		b := bus.New(parts.Valkey, bus.Options{Prefix: cfg.KeyPrefix, Timeout: cfg.Valkey.Timeout})
		parts.Metrics.MustRegister(metrics.NewBacklog(func() []string { return parts.Catalog.Snapshot().PartitionIDs() }, b))
		// Statuses are projected only when the catalog is on an API server; results are
		// recorded either way.
		projector, err := status.Open(cfg.Catalog.File, b)
		if err != nil {
			return nil, err
		}
		return writer.New(writer.Options{
			Catalog:       parts.Catalog,
			Bus:           b,
			Notifier:      notifier,
			CacheDir:      cfg.CacheDir,
			LeaseTTL:      cfg.LeaseTTL,
			BatchSize:     cfg.BatchSize,
			DrainSlice:    cfg.DrainSlice,
			GitTimeout:    cfg.GitTimeout,
			MaxDeliveries: cfg.MaxDeliveries,
			Metrics:       metrics.NewWriter(parts.Metrics),
			Observer:      status.NewObserver(status.NewRecorder(b), projector, 0),
		}).Handler(), nil
	})
}
