// Package testenv gives a test the real servers of package harness, started for that test
// and stopped when it ends. A server that cannot start fails the test with the harness's
// message, which says how to fix it; nothing is ever skipped.
package testenv

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// StartTimeout bounds how long a server may take to start.
const StartTimeout = 30 * time.Second

// Valkey starts a valkey-server and returns it with a client connected to it.
func Valkey(t testing.TB, opts harness.ValkeyOptions) (*harness.Valkey, valkey.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	v, err := harness.StartValkey(ctx, opts)
	if err != nil {
		t.Fatalf("start Valkey: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	c, err := bus.Dial(ctx, v.Addr, "", "")
	if err != nil {
		t.Fatalf("connect to Valkey: %v", err)
	}
	t.Cleanup(c.Close)
	return v, c
}

// GitRemote starts a Git remote served over smart HTTP with basic auth.
func GitRemote(t testing.TB, opts harness.GitRemoteOptions) *harness.GitRemote {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	g, err := harness.StartGitRemote(ctx, opts)
	if err != nil {
		t.Fatalf("start Git remote: %v", err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// KubeWithCRDs starts a kube-apiserver with its etcd and installs the product's CRDs from
// manifests/crds. The first start on a machine builds the pinned binaries (see
// harness.BuildKubeBinaries), which takes minutes, so its deadline is generous.
func KubeWithCRDs(t testing.TB, opts harness.KubeOptions) *harness.Kube {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	kube, err := harness.StartKube(ctx, opts)
	if err != nil {
		t.Fatalf("start kube-apiserver: %v", err)
	}
	t.Cleanup(func() { _ = kube.Close() })
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if err := kube.ApplyFiles(ctx, harness.AdminUser, filepath.Join(root, "manifests", "crds")); err != nil {
		t.Fatalf("install the CRDs: %v", err)
	}
	return kube
}
