// Package crds proves the CRDs' validation on a real kube-apiserver: the samples a user
// starts from are accepted, and each mistake a user can make is refused with a message that
// says what to do.
package crds

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

var kube *harness.Kube

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	code := func() int {
		defer cancel()
		root, err := harness.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		k, err := harness.StartKube(ctx, harness.KubeOptions{})
		if err != nil {
			fmt.Fprintf(os.Stderr, "crds: cannot start the apiserver: %v\n", err)
			return 1
		}
		defer k.Close()
		if err := k.ApplyFiles(ctx, harness.AdminUser, filepath.Join(root, "manifests", "crds")); err != nil {
			fmt.Fprintf(os.Stderr, "crds: install the CRDs: %v\n", err)
			return 1
		}
		kube = k
		return m.Run()
	}()
	os.Exit(code)
}

func apply(t *testing.T, manifest string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return kube.Apply(ctx, harness.AdminUser, []byte(manifest))
}

func TestSamplesAreAccepted(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kube.ApplyFiles(ctx, harness.AdminUser, filepath.Join(root, "manifests", "samples")); err != nil {
		t.Fatalf("the samples a user starts from are refused: %v", err)
	}
}

const (
	provider = `
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitProvider
metadata: {name: %s, namespace: team}
spec:
  url: %s
`
	target = `
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitTarget
metadata: {name: %s, namespace: team}
spec:
  providerRef: {name: repo}
  branch: %s
  %s
  sourceClusters: [prod]
`
	cluster = `
apiVersion: reverser.gitops.dev/v1alpha1
kind: SourceCluster
metadata: {name: %s}
spec:
  clusterID: %s
  tokenSecretRefs: [{namespace: team, name: tokens}]
`
)

// TestMistakesAreRefusedWithAFix applies a valid object, then the mistake, and expects the
// apiserver to refuse the mistake with a message naming what to do.
func TestMistakesAreRefusedWithAFix(t *testing.T) {
	tests := []struct {
		name     string
		valid    string // applied first, must be accepted ("" for none)
		mistake  string
		messages []string // each must appear in the error
	}{
		{
			name:     "repository URL changed",
			valid:    fmt.Sprintf(provider, "repo-a", "https://git.example.com/a.git"),
			mistake:  fmt.Sprintf(provider, "repo-a", "https://git.example.com/b.git"),
			messages: []string{"url is immutable", "create a new GitProvider"},
		},
		{
			name:     "branch changed",
			valid:    fmt.Sprintf(target, "t-branch", "main", "path: clusters/prod"),
			mistake:  fmt.Sprintf(target, "t-branch", "release", "path: clusters/prod"),
			messages: []string{"branch is immutable", "create a new GitTarget"},
		},
		{
			name:     "path changed",
			valid:    fmt.Sprintf(target, "t-path", "main", "path: clusters/prod"),
			mistake:  fmt.Sprintf(target, "t-path", "main", "path: clusters/staging"),
			messages: []string{"path is immutable"},
		},
		{
			name:     "path removed",
			valid:    fmt.Sprintf(target, "t-unset", "main", "path: clusters/prod"),
			mistake:  fmt.Sprintf(target, "t-unset", "main", ""),
			messages: []string{"path is immutable"},
		},
		{
			name:     "path absolute",
			mistake:  fmt.Sprintf(target, "t-abs", "main", "path: /clusters/prod"),
			messages: []string{"path must be relative to the repository root", "remove the leading '/'"},
		},
		{
			name:     "path escapes the repository",
			mistake:  fmt.Sprintf(target, "t-dots", "main", "path: clusters/../../etc"),
			messages: []string{"path may not contain '..'"},
		},
		{
			name:     "cluster id changed",
			valid:    fmt.Sprintf(cluster, "c-change", "prod-a"),
			mistake:  fmt.Sprintf(cluster, "c-change", "prod-b"),
			messages: []string{"clusterID is immutable", "create a new SourceCluster"},
		},
		{
			name:     "cluster id not a DNS label",
			mistake:  fmt.Sprintf(cluster, "c-bad", "Prod_1"),
			messages: []string{"spec.clusterID", "should match '^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$'"},
		},
		{
			name:     "cluster id too long",
			mistake:  fmt.Sprintf(cluster, "c-long", "a"+strings.Repeat("b", 63)),
			messages: []string{"spec.clusterID", "may not be more than 63"},
		},
		{
			name: "no repository URL",
			mistake: `
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitProvider
metadata: {name: no-url, namespace: team}
spec: {secretRef: {name: creds}}
`,
			messages: []string{"spec.url", "Required value"},
		},
		{
			name: "target without branch or clusters",
			mistake: `
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitTarget
metadata: {name: half, namespace: team}
spec: {providerRef: {name: repo}}
`,
			messages: []string{"spec.branch", "spec.sourceClusters", "Required value"},
		},
		{
			name: "three tokens",
			mistake: `
apiVersion: reverser.gitops.dev/v1alpha1
kind: SourceCluster
metadata: {name: c-tokens}
spec:
  clusterID: tokens
  tokenSecretRefs: [{namespace: a, name: a}, {namespace: b, name: b}, {namespace: c, name: c}]
`,
			messages: []string{"spec.tokenSecretRefs", "must have at most 2 items"},
		},
		{
			name: "a rate limit of zero",
			mistake: `
apiVersion: reverser.gitops.dev/v1alpha1
kind: SourceCluster
metadata: {name: c-rate}
spec:
  clusterID: rate
  tokenSecretRefs: [{namespace: a, name: a}]
  rateLimit: {eventsPerSecond: 0}
`,
			messages: []string{"spec.rateLimit.eventsPerSecond", "should be greater than or equal to 1"},
		},
		{
			name: "rule with an unknown operation",
			mistake: `
apiVersion: reverser.gitops.dev/v1alpha1
kind: WatchRule
metadata: {name: bad-op, namespace: team}
spec:
  targetRef: {name: t}
  rules: [{apiGroups: [""], resources: [configmaps], operations: [PATCH]}]
`,
			messages: []string{"operations", `Unsupported value: "PATCH"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.valid != "" {
				if err := apply(t, tt.valid); err != nil {
					t.Fatalf("the valid object is refused: %v", err)
				}
			}
			err := apply(t, tt.mistake)
			if err == nil {
				t.Fatal("the mistake was accepted")
			}
			for _, m := range tt.messages {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not say %q", err, m)
				}
			}
		})
	}
}
