package reconcile

import (
	"fmt"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
)

// Cluster is a source cluster the jobs can read.
type Cluster struct {
	ID        string
	Dynamic   dynamic.Interface
	Discovery discovery.DiscoveryInterface
}

// Connect returns clients for a SourceCluster: through its kubeconfig Secret when it has
// one, otherwise through ambient, the cluster the job runs in.
func Connect(c *catalog.Cluster, ambient *rest.Config) (*Cluster, error) {
	cfg := ambient
	if len(c.Kubeconfig) > 0 {
		var err error
		if cfg, err = clientcmd.RESTConfigFromKubeConfig(c.Kubeconfig); err != nil {
			return nil, fmt.Errorf("cluster %s: kubeconfig Secret is not a usable kubeconfig: %w", c.ID, err)
		}
	}
	if cfg == nil {
		return nil, fmt.Errorf("cluster %s: no kubeconfigSecretRef and no in-cluster or KUBECONFIG credentials to read it with", c.ID)
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.QPS == 0 {
		// Paged lists are cheap for the apiserver; client-go's default of 5/s would make a
		// large cluster's reconcile crawl.
		cfg.QPS, cfg.Burst = 50, 100
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.ID, err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.ID, err)
	}
	return &Cluster{ID: c.ID, Dynamic: dyn, Discovery: disc}, nil
}
