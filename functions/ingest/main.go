// Command ingest is the audit webhook function: kube-apiservers POST audit batches to
// /audit-webhook/<clusterID>, and the changes they prove are queued in Valkey for the writer.
// Configuration is environment only; see lib/config.Ingest.
package main

import (
	"context"
	"fmt"
	"os"

	"knative.dev/pkg/signals"

	"github.com/gitops-reverser/gitops-reverser/lib/boot"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/config"
	"github.com/gitops-reverser/gitops-reverser/lib/ingest"
	"github.com/gitops-reverser/gitops-reverser/lib/notify"
	"github.com/gitops-reverser/gitops-reverser/lib/serve"
)

func main() {
	if err := run(signals.NewContext()); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var cfg config.Ingest
	if err := config.Load(&cfg); err != nil {
		return err
	}
	ctx, parts, stop, err := boot.Start(ctx, "ingest", &cfg.Common)
	if err != nil {
		return err
	}
	defer stop()
	notifier, err := notify.New(ctx, notify.Options{Sink: cfg.Sink, Source: "/ingest"})
	if err != nil {
		return err
	}
	h := ingest.New(ingest.Options{
		Catalog:      parts.Catalog,
		Bus:          bus.New(parts.Valkey, bus.Options{Prefix: cfg.KeyPrefix, SeenTTL: cfg.SeenTTL, MaxLen: cfg.PartitionMaxLen, Timeout: cfg.Valkey.Timeout}),
		Notifier:     notifier,
		MaxBodyBytes: cfg.MaxBodyBytes,
	})
	return serve.Run(ctx, cfg.Common, h)
}
