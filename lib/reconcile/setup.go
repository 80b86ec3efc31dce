package reconcile

import (
	"strings"

	"github.com/gitops-reverser/gitops-reverser/lib/boot"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/config"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/status"
)

// Setup builds a run's Options from a job's configuration and parts, with the ambient
// credentials for clusters that have no kubeconfig Secret.
func Setup(cfg *config.Reconcile, parts *boot.JobParts) Options {
	b := bus.New(parts.Valkey, bus.Options{Prefix: cfg.KeyPrefix, MaxLen: cfg.PartitionMaxLen, Timeout: cfg.Timeout})
	o := Options{
		Catalog:    parts.Catalog,
		Bus:        b,
		CacheDir:   cfg.CacheDir,
		PageSize:   cfg.PageSize,
		FullWait:   cfg.FullWait,
		GitTimeout: cfg.GitTimeout,
		Recorder:   status.NewRecorder(b),
	}
	// Without in-cluster credentials or a kubeconfig, only clusters with a kubeconfig Secret
	// can be read; Connect names the fix for the others.
	o.Ambient, _ = catalog.RESTConfig()
	for _, t := range cfg.Targets {
		ns, name, _ := strings.Cut(t, "/") // validated by config
		o.Targets = append(o.Targets, identity.TargetRef{Namespace: ns, Name: name})
	}
	return o
}
