// Package boot runs a function: it reads the configuration, puts the logger in the context,
// opens the configuration catalog, connects to Valkey, and serves the handler the function
// builds from them, with GET /metrics beside it, until SIGTERM. Mains stay wiring only.
package boot

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valkey-io/valkey-go"
	"knative.dev/pkg/logging"
	"knative.dev/pkg/signals"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/config"
	"github.com/gitops-reverser/gitops-reverser/lib/metrics"
	"github.com/gitops-reverser/gitops-reverser/lib/serve"
)

// ValkeyWait is how long a starting function waits for Valkey before giving up.
const ValkeyWait = time.Minute

// Parts are the shared dependencies of a function.
type Parts struct {
	Catalog catalog.Source
	Valkey  valkey.Client
	// Metrics is served on GET /metrics; functions register their metrics in it.
	Metrics *prometheus.Registry
}

// Build makes a function's handler from its configuration and the shared parts.
type Build[C any] func(ctx context.Context, cfg *C, parts *Parts) (http.Handler, error)

// Main runs the function called name and exits the process: 0 after a clean shutdown,
// 1 with the error on stderr otherwise. uses names the Secrets the function reads.
func Main[C any, PC interface {
	*C
	config.Spec
}](name string, uses catalog.Uses, build Build[C]) {
	if err := run[C, PC](signals.NewContext(), name, uses, build); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func run[C any, PC interface {
	*C
	config.Spec
}](ctx context.Context, name string, uses catalog.Uses, build Build[C]) error {
	cfg := PC(new(C))
	if err := config.Load(cfg); err != nil {
		return err
	}
	common := cfg.Shared()
	log, err := serve.Logger(common.LogLevel)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx = logging.WithLogger(ctx, log.Named(name))

	src, err := catalog.Open(ctx, common.Catalog.File, common.Catalog.Resync, uses)
	if err != nil {
		return err
	}
	dialCtx, cancel := context.WithTimeout(ctx, ValkeyWait)
	defer cancel()
	client, err := bus.Dial(dialCtx, common.Valkey.Addr, common.Valkey.Username, common.Valkey.Password)
	if err != nil {
		return err
	}
	defer client.Close()

	reg := metrics.NewRegistry()
	h, err := build(ctx, (*C)(cfg), &Parts{Catalog: src, Valkey: client, Metrics: reg})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metrics.Handler(reg))
	mux.Handle("/", h)
	return serve.Run(ctx, *common, mux)
}
