// Command writer is the Git writer function: each partition.ready CloudEvent makes it drain
// that repository branch's queued changes into pushed commits. Configuration is environment
// only; see lib/config.Writer.
package main

import (
	"context"
	"fmt"
	"os"

	"knative.dev/pkg/signals"

	"github.com/gitops-reverser/gitops-reverser/lib/boot"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/config"
	"github.com/gitops-reverser/gitops-reverser/lib/notify"
	"github.com/gitops-reverser/gitops-reverser/lib/serve"
	"github.com/gitops-reverser/gitops-reverser/lib/writer"
)

func main() {
	if err := run(signals.NewContext()); err != nil {
		fmt.Fprintln(os.Stderr, "writer:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	var cfg config.Writer
	if err := config.Load(&cfg); err != nil {
		return err
	}
	ctx, parts, stop, err := boot.Start(ctx, "writer", &cfg.Common)
	if err != nil {
		return err
	}
	defer stop()
	notifier, err := notify.New(ctx, notify.Options{Sink: cfg.Sink, Source: "/writer"})
	if err != nil {
		return err
	}
	w := writer.New(writer.Options{
		Catalog:    parts.Catalog,
		Bus:        bus.New(parts.Valkey, bus.Options{Prefix: cfg.KeyPrefix, Timeout: cfg.Valkey.Timeout}),
		Notifier:   notifier,
		CacheDir:   cfg.CacheDir,
		LeaseTTL:   cfg.LeaseTTL,
		BatchSize:  cfg.BatchSize,
		DrainSlice: cfg.DrainSlice,
		GitTimeout: cfg.GitTimeout,
	})
	return serve.Run(ctx, cfg.Common, w.Handler())
}
