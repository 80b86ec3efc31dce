// Command ingest is the audit webhook function: kube-apiservers POST audit batches to
// /audit-webhook/<clusterID>, and the changes they prove are queued in Valkey for the writer.
// Configuration is environment only; see lib/config.Ingest.
package main

import (
	"context"
	"net/http"

	"github.com/gitops-reverser/gitops-reverser/lib/boot"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/config"
	"github.com/gitops-reverser/gitops-reverser/lib/ingest"
	"github.com/gitops-reverser/gitops-reverser/lib/metrics"
	"github.com/gitops-reverser/gitops-reverser/lib/notify"
	"github.com/gitops-reverser/gitops-reverser/lib/quota"
)

func main() {
	boot.Main("ingest", catalog.UsesTokens, func(ctx context.Context, cfg *config.Ingest, parts *boot.Parts) (http.Handler, error) {
		notifier, err := notify.New(ctx, notify.Options{Sink: cfg.Sink, Source: "/ingest"})
		if err != nil {
			return nil, err
		}
		return ingest.New(ingest.Options{
			Catalog:      parts.Catalog,
			Bus:          bus.New(parts.Valkey, bus.Options{Prefix: cfg.KeyPrefix, SeenTTL: cfg.SeenTTL, MaxLen: cfg.PartitionMaxLen, Timeout: cfg.Valkey.Timeout}),
			Notifier:     notifier,
			MaxBodyBytes: cfg.MaxBodyBytes,
			MaxInFlight:  cfg.MaxInFlight,
			// The SourceClusters' rate limits, shared by every replica through Valkey.
			MaxInFlightPerCluster: cfg.MaxInFlightPerCluster,
			Quota:                 quota.New(parts.Valkey, cfg.KeyPrefix),
			Metrics:               metrics.NewIngest(parts.Metrics),
		}), nil
	})
}
