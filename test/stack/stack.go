// Package stack starts the whole product on loopback, the way the end-to-end tests, the
// benchmarks and `make demo` need it: Valkey, a Git remote, the writer and ingest functions
// as real processes, and a kube-apiserver whose audit webhook points at ingest over HTTPS.
package stack

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"text/template"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

//go:embed catalog.yaml.tmpl
var catalogTemplate string

// Users besides the admin: alice acts directly; bob is impersonated by alice.
const (
	Alice = "alice"
	Bob   = "bob"
)

// Namespaces are created at start; the rules watch team-a and team-b only.
var Namespaces = []string{"team-a", "team-b", "unwatched"}

// Options configure Start.
type Options struct {
	// Dir holds every server's files and logs; default a temporary directory.
	Dir string
	// ClusterID of the apiserver; default "e2e".
	ClusterID string
	// Env is added to both functions' environment.
	Env []string
}

// Stack is the running product.
type Stack struct {
	Dir          string
	ClusterID    string
	ClusterToken string
	Target       string // the folder the target owns, clusters/<ClusterID>
	CatalogFile  string

	CA     *harness.CA
	Valkey *harness.Valkey
	Git    *harness.GitRemote
	Writer *harness.Process
	Ingest *harness.Process
	Kube   *harness.Kube

	IngestURL string // https://127.0.0.1:PORT
	WriterURL string // http://127.0.0.1:PORT

	closers []func() error
}

// Start builds the functions and starts everything. On error, what was started is stopped.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	s = &Stack{Dir: o.Dir, ClusterID: o.ClusterID}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.ClusterID == "" {
		s.ClusterID = "e2e"
	}
	if s.Dir == "" {
		if s.Dir, err = os.MkdirTemp("", "gitops-reverser-stack-*"); err != nil {
			return nil, err
		}
		dir := s.Dir
		s.closers = append(s.closers, func() error { return os.RemoveAll(dir) })
	}
	s.Target = "clusters/" + s.ClusterID
	s.ClusterToken = random()
	if s.CA, err = harness.NewCA(); err != nil {
		return nil, err
	}

	bin := filepath.Join(s.Dir, "bin")
	for _, fn := range []string{"ingest", "writer"} {
		if err := harness.BuildGo(ctx, "./functions/"+fn, filepath.Join(bin, fn)); err != nil {
			return nil, err
		}
	}
	if s.Valkey, err = harness.StartValkey(ctx, harness.ValkeyOptions{Dir: s.sub("valkey"), AppendOnly: true}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Valkey.Close)
	if s.Git, err = harness.StartGitRemote(ctx, harness.GitRemoteOptions{Dir: s.sub("git"), Username: "reverser", Password: random()}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Git.Close)
	if err := s.writeCatalog(); err != nil {
		return nil, err
	}
	if err := s.startFunctions(ctx, bin, o.Env); err != nil {
		return nil, err
	}
	if s.Kube, err = harness.StartKube(ctx, harness.KubeOptions{
		Dir:   s.sub("kube"),
		Users: []harness.User{{Name: Alice}, {Name: Bob}},
		Audit: &harness.AuditWebhook{
			URL:          s.IngestURL + "/audit-webhook/" + s.ClusterID,
			Token:        s.ClusterToken,
			CAPEM:        s.CA.CertPEM,
			BatchMaxWait: time.Second,
		},
	}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Kube.Close)
	return s, s.prepareCluster(ctx)
}

func (s *Stack) startFunctions(ctx context.Context, bin string, extra []string) error {
	writerPort, err := harness.FreePort()
	if err != nil {
		return err
	}
	ingestPort, err := harness.FreePort()
	if err != nil {
		return err
	}
	s.WriterURL = "http://127.0.0.1:" + strconv.Itoa(writerPort)
	s.IngestURL = "https://127.0.0.1:" + strconv.Itoa(ingestPort)
	common := []string{"VALKEY_ADDR=" + s.Valkey.Addr, "CATALOG_FILE=" + s.CatalogFile, "LOG_LEVEL=debug"}

	s.Writer, err = harness.StartProcess(ctx, harness.ProcessOptions{
		Name: "writer", Path: filepath.Join(bin, "writer"), Dir: s.sub("writer"),
		Env: append(append(common,
			"PORT="+strconv.Itoa(writerPort),
			"K_SINK="+s.WriterURL,
			"CACHE_DIR="+s.sub("writer/cache"),
		), extra...),
		ReadyURL: s.WriterURL + "/readyz",
	})
	if err != nil {
		return err
	}
	s.closers = append(s.closers, s.Writer.Close)

	cert, key, err := s.CA.WriteFiles(s.sub("ingest"), "ingest", "127.0.0.1", "localhost")
	if err != nil {
		return err
	}
	s.Ingest, err = harness.StartProcess(ctx, harness.ProcessOptions{
		Name: "ingest", Path: filepath.Join(bin, "ingest"), Dir: s.sub("ingest"),
		Env: append(append(common,
			"PORT="+strconv.Itoa(ingestPort),
			"K_SINK="+s.WriterURL,
			"TLS_CERT_FILE="+cert, "TLS_KEY_FILE="+key,
		), extra...),
		ReadyURL: s.IngestURL + "/readyz",
		TLSCA:    s.CA.CertPEM,
	})
	if err != nil {
		return err
	}
	s.closers = append(s.closers, s.Ingest.Close)
	return nil
}

func (s *Stack) writeCatalog() error {
	var buf bytes.Buffer
	err := template.Must(template.New("catalog").Parse(catalogTemplate)).Execute(&buf, map[string]string{
		"ClusterID": s.ClusterID, "ClusterToken": s.ClusterToken,
		"Provider": s.Git.ProviderManifests(),
	})
	if err != nil {
		return err
	}
	s.CatalogFile = filepath.Join(s.Dir, "catalog.yaml")
	return os.WriteFile(s.CatalogFile, buf.Bytes(), 0o600)
}

// prepareCluster creates the namespaces and lets alice and bob write, and alice impersonate.
func (s *Stack) prepareCluster(ctx context.Context) error {
	admin, err := s.Client(harness.AdminUser)
	if err != nil {
		return err
	}
	for _, ns := range Namespaces {
		_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-users"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: Alice},
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: Bob},
		},
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("bind users: %w", err)
	}
	// The authorizer learns of the binding from its informer a moment later; a test that
	// acts as alice at once would be forbidden.
	for _, user := range []string{Alice, Bob} {
		if err := waitAllowed(ctx, admin, user); err != nil {
			return err
		}
	}
	return nil
}

// waitAllowed waits until the apiserver lets user create ConfigMaps.
func waitAllowed(ctx context.Context, admin *kubernetes.Clientset, user string) error {
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:               user,
		ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "create", Resource: "configmaps", Namespace: Namespaces[0]},
	}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, review, metav1.CreateOptions{})
		if err == nil && res.Status.Allowed {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is still not allowed to create ConfigMaps 30s after the binding (%v)", user, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CatalogWatching writes a copy of the catalog that also routes the ConfigMaps of namespace
// to the stack's target, and returns the environment entry that points a job at it: the
// state of a cluster just before a rule for objects that already exist is added.
func (s *Stack) CatalogWatching(namespace string) (string, error) {
	base, err := os.ReadFile(s.CatalogFile)
	if err != nil {
		return "", err
	}
	extra := fmt.Sprintf(`
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: ClusterWatchRule
metadata: {name: late-%[2]s}
spec:
  targetRef: {namespace: gitops, name: %[1]s}
  rules:
  - apiGroups: [""]
    resources: [configmaps]
    namespaces: [%[2]s]
`, s.ClusterID, namespace)
	p := filepath.Join(s.Dir, "catalog-watching-"+namespace+".yaml")
	if err := os.WriteFile(p, append(base, extra...), 0o600); err != nil {
		return "", err
	}
	return "CATALOG_FILE=" + p, nil
}

// Client returns a clientset acting as user.
func (s *Stack) Client(user string) (*kubernetes.Clientset, error) {
	return kubernetes.NewForConfig(s.Kube.RESTConfig(user))
}

// ClientAs returns a clientset of user impersonating another user.
func (s *Stack) ClientAs(user, impersonate string) (*kubernetes.Clientset, error) {
	cfg := s.Kube.RESTConfig(user)
	cfg.Impersonate.UserName = impersonate
	return kubernetes.NewForConfig(cfg)
}

// Close stops everything, newest first.
func (s *Stack) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// Logs returns the tails of the functions' logs, for failure messages.
func (s *Stack) Logs(n int) string {
	var b bytes.Buffer
	for _, p := range []*harness.Process{s.Ingest, s.Writer} {
		if p != nil {
			fmt.Fprintf(&b, "--- %s log (last %d lines) ---\n%s\n", p.Name, n, p.LogTail(n))
		}
	}
	return b.String()
}

func (s *Stack) sub(name string) string {
	d := filepath.Join(s.Dir, name)
	_ = os.MkdirAll(d, 0o755)
	return d
}

func random() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
