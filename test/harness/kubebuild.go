package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// kubeTool is a server binary built from a pinning module under test/tools, so the
// product's own go.mod never depends on k8s.io/kubernetes or the etcd server.
type kubeTool struct {
	name      string // binary name
	moduleDir string // relative to the repository root
	dep       string // the module whose required version names the cached binary
	pkg       string // the main package to build
	coldBuild string // how long a build without a warm Go build cache takes here
}

var (
	apiserverTool = kubeTool{"kube-apiserver", "test/tools/kube", "k8s.io/kubernetes", "k8s.io/kubernetes/cmd/kube-apiserver", "about 6 minutes on 2 cores"}
	etcdTool      = kubeTool{"etcd", "test/tools/etcd", "go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/server/v3", "about 30 seconds"}
	// The controller manager shares most packages with the apiserver, so after the
	// apiserver's build it takes a fraction of a cold build.
	// kubectl, at the apiserver's version, for tests that check manifests the way a user
	// applies them.
	kubectlTool           = kubeTool{"kubectl", "test/tools/kube", "k8s.io/kubernetes", "k8s.io/kubernetes/cmd/kubectl", "about a minute after kube-apiserver"}
	controllerManagerTool = kubeTool{"kube-controller-manager", "test/tools/kube", "k8s.io/kubernetes", "k8s.io/kubernetes/cmd/kube-controller-manager", "about 6 minutes on 2 cores, 2 after kube-apiserver"}
)

// BuildKubeBinaries returns the paths of kube-apiserver and etcd, built from the versions
// pinned in test/tools/kube/go.mod and test/tools/etcd/go.mod into
// <repo>/.cache/bin/<name>-<version>. A binary that is already there is used as is, so
// only the first call after a version change builds anything; bumping the pin in go.mod
// is all it takes to move to another version. Builds are serialised across processes.
func BuildKubeBinaries(ctx context.Context) (apiserverPath, etcdPath string, err error) {
	root, err := RepoRoot()
	if err != nil {
		return "", "", err
	}
	if apiserverPath, err = buildTool(ctx, root, apiserverTool); err != nil {
		return "", "", err
	}
	if etcdPath, err = buildTool(ctx, root, etcdTool); err != nil {
		return "", "", err
	}
	return apiserverPath, etcdPath, nil
}

// BuildControllerManager returns the path of kube-controller-manager, built like
// kube-apiserver (see BuildKubeBinaries) from the same pinned k8s.io/kubernetes.
func BuildControllerManager(ctx context.Context) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return buildTool(ctx, root, controllerManagerTool)
}

// BuildKubectl returns the path of kubectl, built like kube-apiserver (see
// BuildKubeBinaries) from the same pinned k8s.io/kubernetes.
func BuildKubectl(ctx context.Context) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return buildTool(ctx, root, kubectlTool)
}

func buildTool(ctx context.Context, root string, t kubeTool) (string, error) {
	moduleDir := filepath.Join(root, t.moduleDir)
	version, err := goModField(filepath.Join(moduleDir, "go.mod"), "require", t.dep)
	if err != nil {
		return "", fmt.Errorf("read the pinned %s version: %w (restore %s/go.mod from git)", t.name, err, t.moduleDir)
	}
	binDir := filepath.Join(root, ".cache", "bin")
	out := filepath.Join(binDir, t.name+"-"+version)
	if isFile(out) {
		return out, nil
	}
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	unlock, err := lockFile(ctx, filepath.Join(binDir, ".build.lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	if isFile(out) { // built by another process while this one waited for the lock
		return out, nil
	}
	// Said up front, because a cold build is long enough to look like a hang.
	fmt.Fprintf(os.Stderr, "harness: building %s %s into %s (a cold build takes %s)\n", t.name, version, out, t.coldBuild)
	if err := goBuild(ctx, moduleDir, t.pkg, out); err != nil {
		return "", fmt.Errorf("build %s %s (it needs the Go module proxy, or a module cache filled by `cd %s && go mod download`): %w",
			t.name, version, t.moduleDir, err)
	}
	return out, nil
}

func isFile(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Size() > 0
}
