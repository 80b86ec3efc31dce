package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// document is one YAML document of a file in kn/ or manifests/.
type document struct {
	File  string // relative to the repository root
	Index int    // 1-based position in the file
	Raw   []byte
	Obj   map[string]any
}

func (d document) String() string {
	return d.File + " #" + strconv.Itoa(d.Index) + " (" + d.kind() + " " + d.name() + ")"
}

func (d document) kind() string { s, _ := d.Obj["kind"].(string); return s }

func (d document) apiVersion() string { s, _ := d.Obj["apiVersion"].(string); return s }

func (d document) meta(field string) string {
	m, _ := d.Obj["metadata"].(map[string]any)
	s, _ := m[field].(string)
	return s
}

func (d document) name() string {
	if n := d.meta("name"); n != "" {
		return n
	}
	return d.meta("generateName") + "*"
}

// templates are files with ${NAME} placeholders a user fills before applying (as the file's
// header says), with the values used here. Only these exact placeholders are replaced, as
// `envsubst '${NAME}'` would: other $ signs (shell scripts in commands) stay as they are.
var templates = map[string]map[string]string{
	"manifests/jobs/resnapshot-job.yaml": {"TARGETS": "gitops/prod"},
}

// folders holds every deployable file; manifests/crds is installed for real by TestMain.
var (
	folders   = []string{"kn", "manifests"}
	installed = []string{"manifests/crds"}
)

// documents reads every YAML document under kn/ and manifests/ (except the CRDs), so files
// added later, such as manifests/rbac/, are checked without changing this test.
func documents(t *testing.T) []document {
	t.Helper()
	var docs []document
	for _, folder := range folders {
		err := filepath.WalkDir(filepath.Join(root, folder), func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			rel = filepath.ToSlash(rel)
			if e.IsDir() {
				if slices.Contains(installed, rel) {
					return filepath.SkipDir
				}
				return nil
			}
			if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for name, value := range templates[rel] {
				placeholder := "${" + name + "}"
				if !bytes.Contains(data, []byte(placeholder)) {
					t.Errorf("%s: the template no longer has the placeholder %s this test fills", rel, placeholder)
				}
				data = bytes.ReplaceAll(data, []byte(placeholder), []byte(value))
			}
			r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
			for i := 1; ; i++ {
				raw, err := r.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Errorf("%s: document %d is not YAML: %v", rel, i, err)
					break
				}
				var obj map[string]any
				if err := yaml.Unmarshal(raw, &obj); err != nil {
					t.Errorf("%s: document %d is not YAML: %v", rel, i, err)
					continue
				}
				if len(obj) == 0 { // comments only
					continue
				}
				docs = append(docs, document{File: rel, Index: i, Raw: raw, Obj: obj})
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", folder, err)
		}
	}
	return docs
}

// isAuditPolicy and isKubeconfig tell the documents that are not Kubernetes objects: they
// configure a kube-apiserver (--audit-policy-file, --audit-webhook-config-file).
func (d document) isAuditPolicy() bool {
	return strings.HasPrefix(d.apiVersion(), "audit.k8s.io/") && d.kind() == "Policy"
}

func (d document) isKubeconfig() bool { return d.apiVersion() == "v1" && d.kind() == "Config" }

// TestEveryManifestIsAcceptedByTheAPIServer dry-runs every Kubernetes object in kn/ and
// manifests/ on the apiserver, as `kubectl apply --dry-run=server` (strict field
// validation: unknown and duplicate fields are errors), and fails on any warning too
// (restricted Pod Security, deprecated APIs).
func TestEveryManifestIsAcceptedByTheAPIServer(t *testing.T) {
	docs := documents(t)
	checked := map[string]bool{}
	for _, d := range docs {
		if d.isAuditPolicy() || d.isKubeconfig() {
			continue
		}
		checked[d.File] = true
		t.Run(d.File+"#"+strconv.Itoa(d.Index), func(t *testing.T) {
			dryRun(t, d)
		})
	}
	// The walk must have found what this project ships; an empty walk proves nothing.
	for _, want := range []string{
		"kn/ingest.yaml", "kn/writer.yaml",
		"manifests/jobs/reconcile-cronjob.yaml", "manifests/jobs/dlq-sweep-cronjob.yaml", "manifests/jobs/resnapshot-job.yaml",
		"manifests/valkey/statefulset.yaml", "manifests/valkey/service.yaml", "manifests/valkey/secret.yaml",
	} {
		if !checked[want] {
			t.Errorf("%s was not checked: moved or renamed? Update this list", want)
		}
	}
	t.Logf("dry-run on the apiserver: %d documents in %d files", countKube(docs), len(checked))
}

func countKube(docs []document) int {
	n := 0
	for _, d := range docs {
		if !d.isAuditPolicy() && !d.isKubeconfig() {
			n++
		}
	}
	return n
}

// dryRun sends one document to the apiserver and fails with the apiserver's message.
func dryRun(t *testing.T, d document) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if ns := d.meta("namespace"); ns != "" && ns != namespace {
		// Another namespace (a sample, say): create it for real, as a user would first.
		if out, err := kubectl(ctx, nil, "create", "namespace", ns, "--save-config"); err != nil && !strings.Contains(out, "AlreadyExists") {
			t.Fatalf("create namespace %s: %v\n%s", ns, err, out)
		}
	}
	// A generated name cannot be applied, only created (the resnapshot Job: one per run).
	verb := "apply"
	if d.meta("name") == "" && d.meta("generateName") != "" {
		verb = "create"
	}
	stdout, stderr, err := kubectlSplit(ctx, d.Raw, verb, "--dry-run=server", "--validate=strict", "-f", "-")
	if err != nil {
		t.Fatalf("%s: the apiserver refused it (kubectl %s --dry-run=server):\n%s%s", d, verb, stderr, stdout)
	}
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, "Warning:") {
			t.Errorf("%s: the apiserver warned: %s", d, line)
		}
	}
}

// TestAuditFilesParse checks the two audit files by parsing them: the policy is an
// audit.k8s.io/v1 Policy (TestMain's apiserver was started with it, which is the real
// check), and the webhook kubeconfig template, once its placeholders are filled, is a
// kubeconfig whose current context names a server, a CA and a token.
func TestAuditFilesParse(t *testing.T) {
	var policies, kubeconfigs int
	for _, d := range documents(t) {
		switch {
		case d.isAuditPolicy():
			policies++
			if d.apiVersion() != "audit.k8s.io/v1" {
				t.Errorf("%s: apiVersion %s; the apiserver reads audit.k8s.io/v1", d, d.apiVersion())
			}
			if rules, _ := d.Obj["rules"].([]any); len(rules) == 0 {
				t.Errorf("%s: no rules", d)
			}
		case d.isKubeconfig():
			kubeconfigs++
			vars := map[string]string{
				"AUDIT_WEBHOOK_URL": "https://ingest.example.com/audit-webhook/prod",
				"CA_DATA":           "Y2E=", // base64 of "ca"
				"TOKEN":             "token-1",
			}
			rendered := os.Expand(string(d.Raw), func(name string) string {
				v, ok := vars[name]
				if !ok {
					t.Errorf("%s: placeholder ${%s} is not documented in the template's header", d, name)
				}
				return v
			})
			cfg, err := clientcmd.Load([]byte(rendered))
			if err != nil {
				t.Errorf("%s: not a kubeconfig: %v", d, err)
				continue
			}
			ctx := cfg.Contexts[cfg.CurrentContext]
			if ctx == nil || cfg.Clusters[ctx.Cluster] == nil || cfg.AuthInfos[ctx.AuthInfo] == nil {
				t.Errorf("%s: current-context %q does not name a cluster and a user", d, cfg.CurrentContext)
				continue
			}
			cluster, user := cfg.Clusters[ctx.Cluster], cfg.AuthInfos[ctx.AuthInfo]
			if cluster.Server != vars["AUDIT_WEBHOOK_URL"] || string(cluster.CertificateAuthorityData) != "ca" || user.Token != vars["TOKEN"] {
				t.Errorf("%s: the placeholders do not land in server, certificate-authority-data and token", d)
			}
		}
	}
	if policies != 1 || kubeconfigs != 1 {
		t.Errorf("found %d audit policies and %d kubeconfigs, want one each (manifests/audit/)", policies, kubeconfigs)
	}
}

// TestMistakesAreRefused proves the dry run can fail: Knative's schema, as installed from
// the pinned release, refuses a wrong type and an unknown field, with a message that names
// the field.
func TestMistakesAreRefused(t *testing.T) {
	const service = `
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: broken, namespace: gitops-reverser}
spec:
  template:
    spec:
      %s
      containers:
        - image: ko://github.com/gitops-reverser/gitops-reverser/functions/writer
`
	for _, tc := range []struct{ name, field, want string }{
		{"wrong type", `containerConcurrency: "many"`, "spec.template.spec.containerConcurrency"},
		{"unknown field", `maxConcurrency: 4`, `unknown field "spec.template.spec.maxConcurrency"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := document{File: "(inline)", Index: 1, Raw: []byte(strings.Replace(service, "%s", tc.field, 1))}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			stdout, stderr, err := kubectlSplit(ctx, d.Raw, "apply", "--dry-run=server", "--validate=strict", "-f", "-")
			if err == nil {
				t.Fatalf("a Knative Service with %s was accepted:\n%s", tc.field, stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("refused, but the message does not name %q:\n%s", tc.want, stderr)
			}
			t.Logf("refused as expected: %s", strings.TrimSpace(stderr))
		})
	}
}

// TestInsecurePodTemplateIsFlagged proves the warning check is live: a pod template that
// does not meet the restricted Pod Security Standard is accepted, but with a warning that
// dryRun turns into a failure.
func TestInsecurePodTemplateIsFlagged(t *testing.T) {
	const job = `
apiVersion: batch/v1
kind: CronJob
metadata: {name: insecure, namespace: gitops-reverser}
spec:
  schedule: "*/5 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: c
              image: ko://github.com/gitops-reverser/gitops-reverser/jobs/dlq-sweep
`
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, stderr, err := kubectlSplit(ctx, []byte(job), "apply", "--dry-run=server", "--validate=strict", "-f", "-")
	if err != nil {
		t.Fatalf("refused outright, want accepted with a warning: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "Warning:") || !strings.Contains(stderr, `violate PodSecurity "restricted`) {
		t.Fatalf("no restricted Pod Security warning for a pod template without securityContext:\n%s", stderr)
	}
}

// TestKnativeWebhookValidation runs test/tools/knative's test, which applies Knative
// Serving's own defaulting and validation (what its admission webhook does, with the default
// configuration) to kn/*.yaml. It lives in that module so the main module does not depend
// on knative.dev/serving.
func TestKnativeWebhookValidation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", ".")
	cmd.Dir = filepath.Join(root, "test", "tools", "knative")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("Knative's validation refuses kn/ (cd test/tools/knative && go test .): %v\n%s", err, out)
	}
}
