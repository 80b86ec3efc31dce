package boot

import (
	"context"
	"fmt"
	"os"

	"github.com/valkey-io/valkey-go"
	"go.uber.org/zap"
	"knative.dev/pkg/logging"
	"knative.dev/pkg/signals"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/config"
	"github.com/gitops-reverser/gitops-reverser/lib/serve"
)

// JobParts are the shared dependencies of a job.
type JobParts struct {
	Log *zap.SugaredLogger
	// Catalog is the configuration, read once: a job's pass works on one view of it.
	Catalog *catalog.Snapshot
	Valkey  valkey.Client
}

// Pass is a job's one run. ctx carries the logger and ends at the job's DEADLINE.
type Pass[C any] func(ctx context.Context, cfg *C, parts *JobParts) error

// Job runs the job called name once and exits the process: 0 when the pass succeeded, 1 with
// the error on stderr otherwise, so a CronJob's history shows every failed run. uses names the
// Secrets the job reads.
func Job[C any, PC interface {
	*C
	config.JobSpec
}](name string, uses catalog.Uses, pass Pass[C]) {
	if err := runJob[C, PC](signals.NewContext(), name, uses, pass); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func runJob[C any, PC interface {
	*C
	config.JobSpec
}](ctx context.Context, name string, uses catalog.Uses, pass Pass[C]) error {
	cfg := PC(new(C))
	if err := config.Load(cfg); err != nil {
		return err
	}
	shared := cfg.JobShared()
	log, err := serve.Logger(shared.LogLevel)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	log = log.Named(name)
	ctx = logging.WithLogger(ctx, log)
	ctx, cancel := context.WithTimeout(ctx, shared.Deadline)
	defer cancel()

	snap, err := catalog.Load(ctx, shared.Catalog.File, uses)
	if err != nil {
		return err
	}
	dialCtx, cancelDial := context.WithTimeout(ctx, ValkeyWait)
	defer cancelDial()
	client, err := bus.Dial(dialCtx, shared.Valkey.Addr, shared.Valkey.Username, shared.Valkey.Password)
	if err != nil {
		return err
	}
	defer client.Close()
	return pass(ctx, (*C)(cfg), &JobParts{Log: log, Catalog: snap, Valkey: client})
}
