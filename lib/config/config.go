// Package config reads each binary's settings from the environment with envconfig. Every
// field documents its variable and default; Load fails with a message naming the variable to
// fix. Knative's runtime contract variables (PORT, K_SINK) keep their standard names.
package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
)

// Valkey is how to reach Valkey.
type Valkey struct {
	// VALKEY_ADDR: host:port. Default 127.0.0.1:6379.
	Addr string `envconfig:"VALKEY_ADDR" default:"127.0.0.1:6379"`
	// VALKEY_USERNAME and VALKEY_PASSWORD: ACL credentials; empty for none.
	Username string `envconfig:"VALKEY_USERNAME"`
	Password string `envconfig:"VALKEY_PASSWORD"`
	// VALKEY_KEY_PREFIX: prefix of every key. Default gr.
	KeyPrefix string `envconfig:"VALKEY_KEY_PREFIX" default:"gr"`
	// VALKEY_TIMEOUT: deadline of each call. Default 5s.
	Timeout time.Duration `envconfig:"VALKEY_TIMEOUT" default:"5s"`
}

// Catalog is where the configuration objects come from.
type Catalog struct {
	// CATALOG_FILE: a YAML file of configuration objects and Secrets (local mode). Empty means
	// watch them on the API server (in-cluster config, or KUBECONFIG).
	File string `envconfig:"CATALOG_FILE"`
	// CATALOG_RESYNC: how often the API server view is rebuilt, re-reading Secrets. Default 30s.
	Resync time.Duration `envconfig:"CATALOG_RESYNC" default:"30s"`
}

// Common are the settings every function shares.
type Common struct {
	Valkey
	Catalog
	// PORT: the HTTP port, set by Knative. Default 8080.
	Port int `envconfig:"PORT" default:"8080"`
	// LOG_LEVEL: debug, info, warn or error. Default info.
	LogLevel string `envconfig:"LOG_LEVEL" default:"info"`
	// TLS_CERT_FILE and TLS_KEY_FILE: serve HTTPS with this certificate (local runs; behind
	// Knative the platform terminates TLS). Both or neither.
	TLSCertFile string `envconfig:"TLS_CERT_FILE"`
	TLSKeyFile  string `envconfig:"TLS_KEY_FILE"`
	// PROFILING_PORT: serve Go's pprof profiles on this port (Knative uses 8008). Default 0:
	// off. Profiles show code and memory, so keep the port off the public route.
	ProfilingPort int `envconfig:"PROFILING_PORT"`
}

// Ingest configures functions/ingest.
type Ingest struct {
	Common
	// K_SINK: where "partition ready" events go (the writer). Set by a SinkBinding or by hand;
	// empty disables notifications (writers must then be kicked by the dlq-sweep job).
	Sink string `envconfig:"K_SINK"`
	// MAX_BODY_BYTES: largest audit batch accepted; larger ones get 413. Default 32 MiB, well
	// above the apiserver's default batch of 400 events.
	MaxBodyBytes int64 `envconfig:"MAX_BODY_BYTES" default:"33554432"`
	// SEEN_TTL: how long event ids are remembered to drop retried batches. Default 24h.
	SeenTTL time.Duration `envconfig:"SEEN_TTL" default:"24h"`
	// PARTITION_MAX_LEN: backlog cap per partition; past it ingest answers 429. Default 100000.
	PartitionMaxLen int64 `envconfig:"PARTITION_MAX_LEN" default:"100000"`
	// MAX_IN_FLIGHT: batches processed at once; past it ingest answers 503. Default 32.
	MaxInFlight int `envconfig:"MAX_IN_FLIGHT" default:"32"`
	// MAX_IN_FLIGHT_PER_CLUSTER: how many of those one source cluster may hold; past it that
	// cluster gets 429, so a noisy cluster cannot take every slot. Default 16.
	MaxInFlightPerCluster int `envconfig:"MAX_IN_FLIGHT_PER_CLUSTER" default:"16"`
}

// Writer configures functions/writer.
type Writer struct {
	Common
	// K_SINK: where the writer re-announces a partition it left with backlog (normally its
	// own address). Empty means no hand-off.
	Sink string `envconfig:"K_SINK"`
	// CACHE_DIR: where local mirrors of the repositories are kept. Default /tmp/gitops-reverser.
	CacheDir string `envconfig:"CACHE_DIR" default:"/tmp/gitops-reverser"`
	// LEASE_TTL: how long a partition lease lives without renewal. Default 15s.
	LeaseTTL time.Duration `envconfig:"LEASE_TTL" default:"15s"`
	// BATCH_SIZE: events read per round; each round is one push. Default 1000: fewer, larger
	// pushes drain faster (6,000 events/s against 4,400 at 500 in make bench).
	BatchSize int `envconfig:"BATCH_SIZE" default:"1000"`
	// DRAIN_SLICE: the longest a request drains before handing the rest on. Default 60s, well
	// under Knative's default request timeout of 300s.
	DrainSlice time.Duration `envconfig:"DRAIN_SLICE" default:"60s"`
	// GIT_TIMEOUT: deadline of each fetch or push. Default 60s.
	GitTimeout time.Duration `envconfig:"GIT_TIMEOUT" default:"60s"`
	// MAX_DELIVERIES: how often an event that cannot be written is tried before it is parked
	// in the partition's DLQ. Default 5.
	MaxDeliveries int64 `envconfig:"MAX_DELIVERIES" default:"5"`
}

// Sweep configures jobs/dlq-sweep, a CronJob that runs one pass and exits.
type Sweep struct {
	Job
	// K_SINK: the writer's URL, where "partition ready" events go. Required: recovering
	// backlogs that no writer is working on is half of the job.
	Sink string `envconfig:"K_SINK"`
	// SWEEP_MAX_REDRIVES: how often one event is moved back from the DLQ to its partition's
	// stream; after that it stays parked for a human. Default 3; 0 only reports and notifies.
	MaxRedrives int64 `envconfig:"SWEEP_MAX_REDRIVES" default:"3"`
	// SWEEP_BACKOFF: how long after being parked an event is first re-driven; the wait doubles
	// with each earlier re-drive of the same event. Default 1m.
	Backoff time.Duration `envconfig:"SWEEP_BACKOFF" default:"1m"`
	// PARTITION_MAX_LEN: the backlog cap ingest enforces; an event is not re-driven onto a
	// stream at the cap. Default 100000, as for ingest.
	PartitionMaxLen int64 `envconfig:"PARTITION_MAX_LEN" default:"100000"`
	// PUSHGATEWAY_URL: a Prometheus Pushgateway to push the run's counts to, as job
	// gitops-reverser-dlq-sweep. Empty means no push.
	PushgatewayURL string `envconfig:"PUSHGATEWAY_URL"`
}

// Spec is a function's configuration: it validates itself and shares the Common settings.
type Spec interface {
	Validate() error
	Shared() *Common
}

// Shared returns the settings every function has.
func (c *Common) Shared() *Common { return c }

// Load fills spec (a pointer to one of this package's structs) from the environment and
// validates it.
func Load(spec interface{ Validate() error }) error {
	if err := envconfig.Process("", spec); err != nil {
		var perr *envconfig.ParseError
		if errors.As(err, &perr) {
			return fmt.Errorf("config: environment variable %s=%q is not a valid %s: %v", perr.KeyName, perr.Value, perr.TypeName, perr.Err)
		}
		return fmt.Errorf("config: %w", err)
	}
	if err := spec.Validate(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Validate checks the shared settings.
func (c *Common) Validate() error {
	var errs []error
	if c.Port <= 0 || c.Port > 65535 {
		errs = append(errs, fmt.Errorf("PORT=%d is not a port number", c.Port))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("set both TLS_CERT_FILE and TLS_KEY_FILE, or neither"))
	}
	errs = append(errs, c.Valkey.validate(), validLogLevel(c.LogLevel))
	return errors.Join(errs...)
}

// Validate checks the ingest settings.
func (c *Ingest) Validate() error {
	errs := []error{c.Common.Validate()}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, errors.New("MAX_BODY_BYTES must be positive"))
	}
	if c.MaxInFlight <= 0 {
		errs = append(errs, errors.New("MAX_IN_FLIGHT must be positive"))
	}
	if c.MaxInFlightPerCluster <= 0 || c.MaxInFlightPerCluster > c.MaxInFlight {
		errs = append(errs, fmt.Errorf("MAX_IN_FLIGHT_PER_CLUSTER=%d: want 1 to MAX_IN_FLIGHT (%d)", c.MaxInFlightPerCluster, c.MaxInFlight))
	}
	if c.SeenTTL < time.Minute {
		errs = append(errs, fmt.Errorf("SEEN_TTL=%s is shorter than the apiserver's retries; use at least 1m", c.SeenTTL))
	}
	return errors.Join(errs...)
}

// Validate checks the writer settings.
func (c *Writer) Validate() error {
	errs := []error{c.Common.Validate()}
	if c.LeaseTTL < time.Second {
		errs = append(errs, fmt.Errorf("LEASE_TTL=%s: use at least 1s", c.LeaseTTL))
	}
	if c.BatchSize <= 0 {
		errs = append(errs, errors.New("BATCH_SIZE must be positive"))
	}
	if c.MaxDeliveries <= 0 {
		errs = append(errs, errors.New("MAX_DELIVERIES must be positive"))
	}
	if c.DrainSlice <= 0 || c.GitTimeout <= 0 {
		errs = append(errs, errors.New("DRAIN_SLICE and GIT_TIMEOUT must be positive"))
	}
	if c.CacheDir == "" {
		errs = append(errs, errors.New("CACHE_DIR must not be empty"))
	}
	return errors.Join(errs...)
}

// Validate checks the sweep settings.
func (c *Sweep) Validate() error {
	errs := []error{c.Job.Validate()}
	if c.Sink == "" {
		errs = append(errs, errors.New("K_SINK is empty: set it to the writer's URL (a SinkBinding does this)"))
	}
	if c.MaxRedrives < 0 {
		errs = append(errs, fmt.Errorf("SWEEP_MAX_REDRIVES=%d must not be negative", c.MaxRedrives))
	}
	if c.Backoff <= 0 {
		errs = append(errs, errors.New("SWEEP_BACKOFF must be positive"))
	}
	if c.PartitionMaxLen <= 0 {
		errs = append(errs, errors.New("PARTITION_MAX_LEN must be positive"))
	}
	return errors.Join(errs...)
}

// Reconcile configures jobs/reconcile (a CronJob) and jobs/resnapshot (a Job made by hand).
// Both read the source clusters through each SourceCluster's kubeconfig Secret, or the
// cluster they run in (in-cluster credentials, or KUBECONFIG in a terminal).
type Reconcile struct {
	Job
	// K_SINK: the writer's URL, told when a partition has work. Empty leaves that to the
	// dlq-sweep job (reconcile only; resnapshot writes itself).
	Sink string `envconfig:"K_SINK"`
	// TARGETS: the GitTargets to work on, as namespace/name separated by commas. Empty means
	// every target (reconcile); resnapshot needs exactly one.
	Targets []string `envconfig:"TARGETS"`
	// CACHE_DIR: where local mirrors of the repositories are kept. Default /tmp/gitops-reverser.
	CacheDir string `envconfig:"CACHE_DIR" default:"/tmp/gitops-reverser"`
	// PAGE_SIZE: objects per list call. Default 500.
	PageSize int64 `envconfig:"PAGE_SIZE" default:"500"`
	// PARTITION_MAX_LEN: the backlog cap ingest enforces. Default 100000, as for ingest.
	PartitionMaxLen int64 `envconfig:"PARTITION_MAX_LEN" default:"100000"`
	// FULL_WAIT: how long to wait for a partition at its cap (or a held lease, for resnapshot)
	// before failing. Default 10m.
	FullWait time.Duration `envconfig:"FULL_WAIT" default:"10m"`
	// GIT_TIMEOUT: deadline of each fetch or push. Default 60s.
	GitTimeout time.Duration `envconfig:"GIT_TIMEOUT" default:"60s"`
}

// Validate checks the reconcile settings.
func (c *Reconcile) Validate() error {
	errs := []error{c.Job.Validate()}
	for _, t := range c.Targets {
		if ns, name, ok := strings.Cut(t, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			errs = append(errs, fmt.Errorf("TARGETS entry %q: want namespace/name of a GitTarget", t))
		}
	}
	if c.CacheDir == "" {
		errs = append(errs, errors.New("CACHE_DIR must not be empty"))
	}
	if c.PageSize <= 0 || c.PartitionMaxLen <= 0 {
		errs = append(errs, errors.New("PAGE_SIZE and PARTITION_MAX_LEN must be positive"))
	}
	if c.FullWait <= 0 || c.GitTimeout <= 0 {
		errs = append(errs, errors.New("FULL_WAIT and GIT_TIMEOUT must be positive"))
	}
	return errors.Join(errs...)
}

// Job are the settings every job shares. A job runs one pass and exits.
type Job struct {
	Valkey
	// CATALOG_FILE: as for the functions; empty means list the configuration on the API server.
	Catalog
	// LOG_LEVEL: debug, info, warn or error. Default info.
	LogLevel string `envconfig:"LOG_LEVEL" default:"info"`
	// DEADLINE: the longest one run may take, waiting on writers included. Default 30m.
	Deadline time.Duration `envconfig:"DEADLINE" default:"30m"`
}

// JobShared returns the settings every job shares.
func (c *Job) JobShared() *Job { return c }

// Validate checks the shared job settings.
func (c *Job) Validate() error {
	var errs []error
	errs = append(errs, c.Valkey.validate(), validLogLevel(c.LogLevel))
	if c.Deadline <= 0 {
		errs = append(errs, errors.New("DEADLINE must be positive"))
	}
	return errors.Join(errs...)
}

// JobSpec is a job's configuration: it validates itself and shares the Job settings.
type JobSpec interface {
	Validate() error
	JobShared() *Job
}

func (c *Valkey) validate() error {
	if c.Timeout <= 0 {
		return errors.New("VALKEY_TIMEOUT must be positive")
	}
	return nil
}

func validLogLevel(level string) error {
	switch level {
	case "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("LOG_LEVEL=%q: want debug, info, warn or error", level)
}
