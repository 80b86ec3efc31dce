package multicluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// Namespaces created in both clusters; the rules watch ConfigMaps in both.
var namespaces = []string{"team-a", "team-b"}

// cluster is one source cluster: an apiserver with its etcd, its user and its token.
type cluster struct {
	ID    string
	User  string // the non-admin user the tests write as
	Token string // the audit webhook's bearer token now
	// TokenSecret is the Secret in gitops that holds Token.
	TokenSecret string
	Kube        *harness.Kube
	// Client acts as User; Admin as the apiserver's system:masters user.
	Client, Admin *kubernetes.Clientset
	Audit         harness.AuditWebhook
}

// Target is the folder the cluster's GitTarget owns.
func (c *cluster) Target() string { return "clusters/" + c.ID }

// File is where a core-group object of the cluster lands in Git.
func (c *cluster) File(namespace, resource, name string) string {
	return c.Target() + "/" + namespace + "/core/" + resource + "/" + name + ".yaml"
}

// rig is the running product with two source clusters; east is also the home cluster.
type rig struct {
	Dir        string
	CA         *harness.CA
	Valkey     *harness.Valkey
	Git        *harness.GitRemote
	Ingest     *harness.Process
	Writer     *harness.Process
	IngestURL  string
	WriterURL  string
	East, West *cluster
	// Home reads and writes the catalog objects on east.
	Home dynamic.Interface
	bin  string
	http *http.Client

	closers []func() error
}

// catalogTemplate is the configuration applied to the home cluster: one provider, one
// target per cluster on the same branch, a SourceCluster per cluster and one rule per
// target for ConfigMaps in the team namespaces. SourceClusters are applied separately
// (sourceCluster), since tests change them.
const catalogTemplate = `
apiVersion: v1
kind: Namespace
metadata: {name: gitops}
---
{{.Provider}}{{range .Clusters}}
---
apiVersion: v1
kind: Secret
metadata: {name: {{.TokenSecret}}, namespace: gitops}
stringData: {token: "{{.Token}}"}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitTarget
metadata: {name: {{.ID}}, namespace: gitops}
spec:
  providerRef: {name: repo}
  branch: main
  path: clusters/{{.ID}}
  sourceClusters: [{{.ID}}]
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: ClusterWatchRule
metadata: {name: {{.ID}}-teams}
spec:
  targetRef: {namespace: gitops, name: {{.ID}}}
  rules:
  - apiGroups: [""]
    resources: [configmaps]
    namespaces: [team-a, team-b]
{{end}}
`

// startRig starts Valkey, the Git remote, both apiservers, the catalog on east, then the
// writer and ingest reading it. On error, what was started is stopped.
func startRig(ctx context.Context, dir string) (r *rig, err error) {
	r = &rig{Dir: dir}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.CA, err = harness.NewCA(); err != nil {
		return nil, err
	}
	r.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool(r.CA.CertPEM)}}}
	r.bin = r.sub("bin")

	// Builds and the apiservers take the longest: run them side by side.
	ingestPort, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	r.IngestURL = "https://127.0.0.1:" + strconv.Itoa(ingestPort)
	r.East = &cluster{ID: "east", User: "alice", Token: random(), TokenSecret: "east-token"}
	r.West = &cluster{ID: "west", User: "wendy", Token: random(), TokenSecret: "west-token"}
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i, fn := range []string{"functions/ingest", "functions/writer", "jobs/reconcile"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = harness.BuildGo(ctx, "./"+fn, filepath.Join(r.bin, filepath.Base(fn)))
		}()
	}
	for i, c := range []*cluster{r.East, r.West} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[3+i] = r.startCluster(ctx, c)
		}()
	}
	wg.Wait()
	for _, c := range []*cluster{r.East, r.West} {
		if c.Kube != nil {
			r.closers = append(r.closers, c.Kube.Close)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	if r.Valkey, err = harness.StartValkey(ctx, harness.ValkeyOptions{Dir: r.sub("valkey"), AppendOnly: true}); err != nil {
		return nil, err
	}
	r.closers = append(r.closers, r.Valkey.Close)
	if r.Git, err = harness.StartGitRemote(ctx, harness.GitRemoteOptions{Dir: r.sub("git"), Username: "reverser", Password: random()}); err != nil {
		return nil, err
	}
	r.closers = append(r.closers, r.Git.Close)
	if err := r.installCatalog(ctx); err != nil {
		return nil, err
	}
	if err := r.startFunctions(ctx, ingestPort); err != nil {
		return nil, err
	}
	return r, nil
}

// startCluster starts c's apiserver with its audit webhook on c's ingest route, creates the
// team namespaces and lets c.User write.
func (r *rig) startCluster(ctx context.Context, c *cluster) error {
	c.Audit = harness.AuditWebhook{
		URL:          r.IngestURL + "/audit-webhook/" + c.ID,
		Token:        c.Token,
		CAPEM:        r.CA.CertPEM,
		BatchMaxWait: time.Second,
	}
	audit := c.Audit
	var err error
	if c.Kube, err = harness.StartKube(ctx, harness.KubeOptions{
		Dir:   r.sub("kube-" + c.ID),
		Users: []harness.User{{Name: c.User}},
		Audit: &audit,
	}); err != nil {
		return fmt.Errorf("%s: %w", c.ID, err)
	}
	if c.Admin, err = kubernetes.NewForConfig(c.Kube.RESTConfig(harness.AdminUser)); err != nil {
		return err
	}
	if c.Client, err = kubernetes.NewForConfig(c.Kube.RESTConfig(c.User)); err != nil {
		return err
	}
	for _, ns := range namespaces {
		if _, err := c.Admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("%s: create namespace %s: %w", c.ID, ns, err)
		}
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "writers"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: c.User}},
	}
	if _, err := c.Admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("%s: bind %s: %w", c.ID, c.User, err)
	}
	return nil
}

// installCatalog installs the CRDs and the configuration on the home cluster (east).
func (r *rig) installCatalog(ctx context.Context) error {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	home := r.East.Kube
	if err := home.ApplyFiles(ctx, harness.AdminUser, filepath.Join(root, "manifests/crds")); err != nil {
		return fmt.Errorf("install CRDs: %w", err)
	}
	var buf bytes.Buffer
	err = template.Must(template.New("catalog").Parse(catalogTemplate)).Execute(&buf, map[string]any{
		"Provider": r.Git.ProviderManifests(),
		"Clusters": []*cluster{r.East, r.West},
	})
	if err != nil {
		return err
	}
	if err := home.Apply(ctx, harness.AdminUser, buf.Bytes()); err != nil {
		return fmt.Errorf("apply catalog: %w", err)
	}
	// The reconcile job reads west through this kubeconfig; east is the cluster it runs in.
	westKubeconfig, err := os.ReadFile(r.West.Kube.Kubeconfig(harness.AdminUser))
	if err != nil {
		return err
	}
	if _, err := r.East.Admin.CoreV1().Secrets("gitops").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "west-kubeconfig", Namespace: "gitops"},
		Data:       map[string][]byte{"kubeconfig": westKubeconfig},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if r.Home, err = dynamic.NewForConfig(home.RESTConfig(harness.AdminUser)); err != nil {
		return err
	}
	if err := r.applySourceCluster(ctx, r.East, sourceClusterSpec{Tokens: []string{"east-token"}}); err != nil {
		return err
	}
	return r.applySourceCluster(ctx, r.West, sourceClusterSpec{Tokens: []string{"west-token"}, Kubeconfig: "west-kubeconfig"})
}

// sourceClusterSpec is the part of a SourceCluster the tests change.
type sourceClusterSpec struct {
	Tokens     []string // names of Secrets in gitops with the key "token"
	Kubeconfig string   // name of a Secret in gitops with the key "kubeconfig"
	// EventsPerSecond and Burst set spec.rateLimit when EventsPerSecond > 0.
	EventsPerSecond, Burst int
}

// applySourceCluster creates or replaces c's SourceCluster on the home cluster (server-side
// apply by one manager, so fields left out are removed).
func (r *rig) applySourceCluster(ctx context.Context, c *cluster, spec sourceClusterSpec) error {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: reverser.gitops.dev/v1alpha1\nkind: SourceCluster\nmetadata: {name: %s}\nspec:\n  clusterID: %s\n  tokenSecretRefs:\n", c.ID, c.ID)
	for _, name := range spec.Tokens {
		fmt.Fprintf(&b, "  - {namespace: gitops, name: %s}\n", name)
	}
	if spec.Kubeconfig != "" {
		fmt.Fprintf(&b, "  kubeconfigSecretRef: {namespace: gitops, name: %s}\n", spec.Kubeconfig)
	}
	if spec.EventsPerSecond > 0 {
		fmt.Fprintf(&b, "  rateLimit: {eventsPerSecond: %d, burst: %d}\n", spec.EventsPerSecond, spec.Burst)
	}
	return r.East.Kube.Apply(ctx, harness.AdminUser, []byte(b.String()))
}

// deleteSourceCluster removes c's SourceCluster from the home cluster.
func (r *rig) deleteSourceCluster(ctx context.Context, c *cluster) error {
	return r.Home.Resource(catalog.GVR("sourceclusters")).Delete(ctx, c.ID, metav1.DeleteOptions{})
}

// startFunctions starts the writer and ingest with their catalog on the home cluster.
func (r *rig) startFunctions(ctx context.Context, ingestPort int) error {
	writerPort, err := harness.FreePort()
	if err != nil {
		return err
	}
	r.WriterURL = "http://127.0.0.1:" + strconv.Itoa(writerPort)
	common := []string{
		"VALKEY_ADDR=" + r.Valkey.Addr,
		"KUBECONFIG=" + r.East.Kube.Kubeconfig(harness.AdminUser),
		"CATALOG_RESYNC=1s",
		"LOG_LEVEL=debug",
		"K_SINK=" + r.WriterURL,
	}
	r.Writer, err = harness.StartProcess(ctx, harness.ProcessOptions{
		Name: "writer", Path: filepath.Join(r.bin, "writer"), Dir: r.sub("writer"),
		Env:      append(common, "PORT="+strconv.Itoa(writerPort), "CACHE_DIR="+r.sub("writer/cache")),
		ReadyURL: r.WriterURL + "/readyz",
	})
	if err != nil {
		return err
	}
	r.closers = append(r.closers, r.Writer.Close)
	cert, key, err := r.CA.WriteFiles(r.sub("ingest"), "ingest", "127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	r.Ingest, err = harness.StartProcess(ctx, harness.ProcessOptions{
		Name: "ingest", Path: filepath.Join(r.bin, "ingest"), Dir: r.sub("ingest"),
		Env:      append(common, "PORT="+strconv.Itoa(ingestPort), "TLS_CERT_FILE="+cert, "TLS_KEY_FILE="+key),
		ReadyURL: r.IngestURL + "/readyz",
		TLSCA:    r.CA.CertPEM,
	})
	if err != nil {
		return err
	}
	r.closers = append(r.closers, r.Ingest.Close)
	return nil
}

// post sends body to ingest's route for clusterID with token, and returns the status code.
func (r *rig) post(ctx context.Context, clusterID, token string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.IngestURL+"/audit-webhook/"+clusterID, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// emptyBatch is a valid audit batch without events: a probe that changes nothing.
var emptyBatch = []byte(`{"apiVersion":"audit.k8s.io/v1","kind":"EventList","items":[]}`)

// metric sums the samples of an ingest metric whose labels include every given pair. A
// series that does not exist counts as 0.
func (r *rig) metric(ctx context.Context, name string, labels map[string]string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.IngestURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return sumSamples(resp.Body, name, labels)
}

// sumSamples reads the Prometheus text format.
func sumSamples(body io.Reader, name string, labels map[string]string) (float64, error) {
	var sum float64
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (!strings.HasPrefix(rest, "{") && !strings.HasPrefix(rest, " ")) {
			continue
		}
		series, value, ok := strings.Cut(rest, " ")
		if strings.HasPrefix(rest, "{") {
			end := strings.Index(rest, "} ")
			if end < 0 {
				continue
			}
			series, value, ok = rest[:end+1], rest[end+2:], true
		}
		if !ok {
			continue
		}
		match := true
		for k, v := range labels {
			if !strings.Contains(series, k+`="`+v+`"`) {
				match = false
			}
		}
		if !match {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return 0, fmt.Errorf("metric line %q: %w", line, err)
		}
		sum += f
	}
	return sum, sc.Err()
}

// runReconcile runs jobs/reconcile once to the end, the way a CronJob in the home cluster
// would: catalog from the home apiserver, ambient credentials for the home cluster.
func (r *rig) runReconcile(ctx context.Context, env ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, filepath.Join(r.bin, "reconcile"))
	cmd.Env = append(append(os.Environ(),
		"VALKEY_ADDR="+r.Valkey.Addr,
		"K_SINK="+r.WriterURL,
		"KUBECONFIG="+r.East.Kube.Kubeconfig(harness.AdminUser),
		"CACHE_DIR="+r.sub("jobs/reconcile"),
	), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// Logs returns the tails of the functions' logs, for failure messages.
func (r *rig) Logs(n int) string {
	var b bytes.Buffer
	for _, p := range []*harness.Process{r.Ingest, r.Writer} {
		if p != nil {
			fmt.Fprintf(&b, "--- %s log (last %d lines) ---\n%s\n", p.Name, n, p.LogTail(n))
		}
	}
	return b.String()
}

// Close stops everything, newest first.
func (r *rig) Close() error {
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		errs = append(errs, r.closers[i]())
	}
	r.closers = nil
	return errors.Join(errs...)
}

func (r *rig) sub(name string) string {
	d := filepath.Join(r.Dir, name)
	_ = os.MkdirAll(d, 0o755)
	return d
}

func pool(pem []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pem)
	return p
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
