package harness

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The audit files that ship to users. The harness configures its apiserver from these very
// files, so the tests exercise what users deploy.
const (
	auditPolicyFile          = "manifests/audit/policy.yaml"
	auditWebhookTemplateFile = "manifests/audit/webhook-kubeconfig.yaml"
)

// AuditWebhook makes the apiserver send its audit events to a webhook, as a cluster
// onboarded to gitops-reverser does.
type AuditWebhook struct {
	// URL is where the apiserver POSTs event batches, e.g.
	// https://127.0.0.1:PORT/audit-webhook/<clusterID>. With a Token it must be https:
	// kube-apiserver sends the bearer token only over TLS.
	URL string
	// Token is sent as "Authorization: Bearer <Token>".
	Token string
	// CAPEM is the PEM CA that signed the webhook server's certificate (see CA).
	CAPEM []byte
	// PolicyFile is the audit policy; default: the shipped manifests/audit/policy.yaml.
	PolicyFile string
	// BatchMaxWait is how long the apiserver holds events before sending a batch;
	// default 1s.
	BatchMaxWait time.Duration
}

// auditFlags checks a, writes the webhook kubeconfig into dir and returns the
// kube-apiserver flags that enable the webhook.
func (a *AuditWebhook) auditFlags(root, dir string) ([]string, error) {
	u, err := url.Parse(a.URL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("AuditWebhook.URL %q is not an absolute URL", a.URL)
	}
	if u.Scheme != "https" && a.Token != "" {
		return nil, fmt.Errorf("AuditWebhook.URL %q is not https: kube-apiserver sends the bearer token only over TLS; serve the webhook with a certificate from harness.NewCA and pass the CA as CAPEM", a.URL)
	}
	if u.Scheme == "https" && len(a.CAPEM) == 0 {
		return nil, fmt.Errorf("AuditWebhook.CAPEM is empty: the apiserver must trust the CA that signed %s's certificate", u.Host)
	}
	policy := a.PolicyFile
	if policy == "" {
		policy = filepath.Join(root, auditPolicyFile)
	}
	if _, err := os.Stat(policy); err != nil {
		return nil, fmt.Errorf("audit policy: %w (restore %s from git, or set AuditWebhook.PolicyFile)", err, auditPolicyFile)
	}
	kubeconfig, err := renderTemplate(filepath.Join(root, auditWebhookTemplateFile), map[string]string{
		"AUDIT_WEBHOOK_URL": a.URL,
		"CA_DATA":           base64.StdEncoding.EncodeToString(a.CAPEM),
		"TOKEN":             a.Token,
	})
	if err != nil {
		return nil, err
	}
	kubeconfigFile := filepath.Join(dir, "audit-webhook.kubeconfig")
	if err := os.WriteFile(kubeconfigFile, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	wait := a.BatchMaxWait
	if wait == 0 {
		wait = time.Second
	}
	return []string{
		"--audit-policy-file=" + policy,
		"--audit-webhook-config-file=" + kubeconfigFile,
		"--audit-webhook-mode=batch",
		"--audit-webhook-batch-max-wait=" + wait.String(),
	}, nil
}

// renderTemplate replaces each ${NAME} in the file with vars[NAME], as envsubst would for
// a user. A placeholder without a value is an error, so the template and the harness
// cannot drift apart silently.
func renderTemplate(path string, vars map[string]string) ([]byte, error) {
	tmpl, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read template: %w (restore it from git)", err)
	}
	unknown := map[string]bool{}
	out := os.Expand(string(tmpl), func(name string) string {
		v, ok := vars[name]
		if !ok {
			unknown[name] = true
		}
		return v
	})
	if len(unknown) > 0 {
		names := slices.Sorted(maps.Keys(unknown))
		return nil, fmt.Errorf("%s uses placeholders the harness does not fill: %s", path, strings.Join(names, ", "))
	}
	return []byte(out), nil
}
