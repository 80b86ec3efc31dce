// Package boot starts what every function needs before it can serve: the logger in the
// context, the configuration catalog, and the Valkey connection. Mains stay wiring only.
package boot

import (
	"context"
	"time"

	"github.com/valkey-io/valkey-go"
	"knative.dev/pkg/logging"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/config"
	"github.com/gitops-reverser/gitops-reverser/lib/serve"
)

// ValkeyWait is how long a starting function waits for Valkey before giving up.
const ValkeyWait = time.Minute

// Parts are the shared dependencies of a function.
type Parts struct {
	Catalog catalog.Source
	Valkey  valkey.Client
}

// Start builds the logger (named after the function), opens the catalog and connects to
// Valkey. The returned stop function releases them.
func Start(ctx context.Context, name string, c *config.Common) (context.Context, *Parts, func(), error) {
	log, err := serve.Logger(c.LogLevel)
	if err != nil {
		return ctx, nil, nil, err
	}
	ctx = logging.WithLogger(ctx, log.Named(name))
	src, err := catalog.Open(ctx, c.Catalog.File, c.Catalog.Resync)
	if err != nil {
		return ctx, nil, nil, err
	}
	dialCtx, cancel := context.WithTimeout(ctx, ValkeyWait)
	defer cancel()
	client, err := bus.Dial(dialCtx, c.Valkey.Addr, c.Valkey.Username, c.Valkey.Password)
	if err != nil {
		return ctx, nil, nil, err
	}
	stop := func() {
		client.Close()
		_ = log.Sync()
	}
	return ctx, &Parts{Catalog: src, Valkey: client}, stop, nil
}
