// Package deploy proves that what users deploy is valid: every Kubernetes object in kn/ and
// manifests/ is sent to a real kube-apiserver as a server-side dry run (kubectl apply
// --dry-run=server), with this project's CRDs and Knative Serving's CRDs (the release pinned
// in test/tools/knative) installed, so Knative Services are checked against Knative's own
// schema. Files that are not Kubernetes objects (the audit policy, the audit webhook
// kubeconfig template) are checked by parsing them, and by starting the apiserver with them.
//
// Not covered: Knative's admission webhook (it does not run here), so Knative's semantic
// checks beyond the CRD schema, such as its list of allowed PodSpec fields, are not applied.
package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"testing"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// namespace is where every gitops-reverser workload runs.
const namespace = "gitops-reverser"

var (
	kube        *harness.Kube
	root        string
	cacheDir    string // kubectl's discovery cache, private to this run
	kubectlPath string // the pinned kubectl (harness.BuildKubectl)
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var err error
	if root, err = harness.RepoRoot(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if kubectlPath, err = harness.BuildKubectl(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "deploy: these tests validate manifests with kubectl: %v\n", err)
		return 1
	}
	servingDir, err := knativeServingDir(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "deploy: %v\n", err)
		return 1
	}

	// The apiserver runs with the shipped audit policy and webhook kubeconfig template (the
	// harness renders the template as a user would), so both are parsed and accepted by a
	// real kube-apiserver, or it does not start. The webhook just accepts every batch.
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer sink.Close()
	k, err := harness.StartKube(ctx, harness.KubeOptions{
		Audit: &harness.AuditWebhook{URL: sink.URL + "/audit-webhook/deploy-test"},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "deploy: start the apiserver with manifests/audit/: %v\n", err)
		return 1
	}
	defer k.Close()
	kube = k
	if cacheDir, err = os.MkdirTemp("", "deploy-kubectl-cache-*"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(cacheDir)

	crdDirs := []string{
		filepath.Join(root, "manifests", "crds"),
		filepath.Join(servingDir, "config", "core", "300-resources"),
	}
	if err := k.ApplyFiles(ctx, harness.AdminUser, crdDirs...); err != nil {
		fmt.Fprintf(os.Stderr, "deploy: install the CRDs: %v\n", err)
		return 1
	}
	if out, err := kubectl(ctx, nil, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"); err != nil {
		fmt.Fprintf(os.Stderr, "deploy: CRDs not established: %v\n%s\n", err, out)
		return 1
	}
	// The namespace for real, so namespaced objects can be dry-run into it. The label makes
	// the apiserver warn about any pod template that does not meet the restricted Pod
	// Security Standard; the tests treat warnings as failures.
	if out, err := kubectl(ctx, nil, "create", "namespace", namespace, "--save-config"); err != nil {
		fmt.Fprintf(os.Stderr, "deploy: create namespace: %v\n%s\n", err, out)
		return 1
	}
	if out, err := kubectl(ctx, nil, "label", "namespace", namespace, "pod-security.kubernetes.io/warn=restricted"); err != nil {
		fmt.Fprintf(os.Stderr, "deploy: label namespace: %v\n%s\n", err, out)
		return 1
	}
	return m.Run()
}

// knativeServingDir returns the module directory of the knative.dev/serving release pinned
// in test/tools/knative, downloading it through the Go module proxy if needed.
func knativeServingDir(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", "knative.dev/serving")
	cmd.Dir = filepath.Join(root, "test", "tools", "knative")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download knative.dev/serving (in test/tools/knative; needs the Go module proxy or a filled module cache): %w\n%s", err, stderr.String())
	}
	var mod struct{ Dir, Version, Error string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", fmt.Errorf("go mod download -json: %w", err)
	}
	if mod.Error != "" || mod.Dir == "" {
		return "", fmt.Errorf("go mod download knative.dev/serving: %s", mod.Error)
	}
	return mod.Dir, nil
}

// kubectl runs kubectl as the harness's admin against the test apiserver, with stdin as its
// input, and returns its combined stdout and stderr.
func kubectl(ctx context.Context, stdin []byte, args ...string) (string, error) {
	stdout, stderr, err := kubectlSplit(ctx, stdin, args...)
	return stdout + stderr, err
}

func kubectlSplit(ctx context.Context, stdin []byte, args ...string) (stdout, stderr string, err error) {
	all := append([]string{"--kubeconfig", kube.Kubeconfig(harness.AdminUser), "--cache-dir", cacheDir}, args...)
	cmd := exec.CommandContext(ctx, kubectlPath, all...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		err = fmt.Errorf("kubectl %s: exit %d", strings.Join(args, " "), exit.ExitCode())
	}
	return o.String(), e.String(), err
}
