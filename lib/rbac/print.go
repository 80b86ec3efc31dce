package rbac

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"

	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
)

// Environment of Print.
const (
	// PrintEnv set to "true" makes the reconcile binary print RBAC instead of reconciling.
	PrintEnv = "PRINT_RBAC"
	// NamespaceEnv names the namespace of the ServiceAccounts; default DefaultNamespace.
	NamespaceEnv = "RBAC_NAMESPACE"
	// catalogFileEnv is lib/config's CATALOG_FILE.
	catalogFileEnv = "CATALOG_FILE"
)

// Requested reports whether the environment asks for Print.
func Requested() bool { return os.Getenv(PrintEnv) == "true" }

// Print generates the RBAC of the current configuration and writes it to stdout as YAML,
// ready for kubectl apply -f -. The configuration is CATALOG_FILE when set, otherwise the
// objects on the API server of the in-cluster config or KUBECONFIG, whose discovery then
// expands "*" in rules. Problems go to stderr; the result is the process's exit code: 0, or 1
// when nothing or only part could be generated (the part is still printed).
func Print(ctx context.Context, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	opts := Options{Namespace: os.Getenv(NamespaceEnv)}
	var objs catalog.Objects
	var err error
	if file := os.Getenv(catalogFileEnv); file != "" {
		objs, err = catalog.ReadFile(file)
	} else {
		objs, opts.Discovery, err = readCluster(ctx)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	out, genErr := Generate(objs, opts)
	if err := WriteYAML(stdout, out); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if genErr != nil {
		fmt.Fprintf(stderr, "%v\nThe RBAC printed leaves out what the errors above name.\n", genErr)
		return 1
	}
	return 0
}

// readCluster lists the configuration on the API server of the in-cluster config or
// KUBECONFIG, and returns that server's discovery to expand "*" in rules.
func readCluster(ctx context.Context) (catalog.Objects, Discovery, error) {
	cfg, err := catalog.RESTConfig()
	if err != nil {
		return catalog.Objects{}, nil, err
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return catalog.Objects{}, nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return catalog.Objects{}, nil, err
	}
	objs, err := catalog.ListObjects(ctx, dyn)
	return objs, disc, err
}
