package catalog

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Open returns the Source a function runs with: the file when one is given (local mode),
// otherwise a Watcher on the API server the process runs in (or the one KUBECONFIG names).
func Open(ctx context.Context, file string, resync time.Duration, uses Uses) (Source, error) {
	if file != "" {
		return LoadFile(file)
	}
	cfg, err := RESTConfig()
	if err != nil {
		return nil, err
	}
	return Watch(ctx, cfg, resync, uses)
}

// RESTConfig is the in-cluster config, or the KUBECONFIG/~/.kube/config one outside a cluster.
func RESTConfig() (*rest.Config, error) {
	if cfg, err := rest.InClusterConfig(); err == nil {
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("catalog: no CATALOG_FILE, not in a cluster, and no usable kubeconfig: %w", err)
	}
	return cfg, nil
}

// Load reads the configuration once, for a job that runs one pass: from the file when one is
// given, otherwise from the API server (a Watcher that is stopped once it has listed
// everything, so nothing keeps watching after the snapshot is taken).
func Load(ctx context.Context, file string, uses Uses) (*Snapshot, error) {
	if file != "" {
		s, err := LoadFile(file)
		if err != nil {
			return nil, err
		}
		return s.Snapshot(), nil
	}
	cfg, err := RESTConfig()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := Watch(ctx, cfg, 0, uses)
	if err != nil {
		return nil, err
	}
	return w.Snapshot(), nil
}
