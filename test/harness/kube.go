package harness

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	clientcmdv1 "k8s.io/client-go/tools/clientcmd/api/v1"
	"sigs.k8s.io/yaml"
)

// AdminUser is the user that StartKube always creates, in group system:masters.
const AdminUser = "admin"

// KubeOptions configures StartKube.
type KubeOptions struct {
	// Dir holds etcd's data, certificates, kubeconfigs and logs; default: a temporary
	// directory that Close removes.
	Dir string
	// Users get static bearer tokens, besides AdminUser.
	Users []User
	// Audit, if set, makes the apiserver send audit events to a webhook.
	Audit *AuditWebhook
	// ExtraArgs are appended to the kube-apiserver command line.
	ExtraArgs []string
}

// User is a user known to the apiserver by a static bearer token.
type User struct {
	Name string
	// Token defaults to a random one.
	Token  string
	Groups []string
}

// Kube is a kube-apiserver with its etcd, both on loopback. Nothing else of a cluster
// runs: no controllers, scheduler or nodes, so objects are stored but nothing acts on
// them (no pods start, namespaces are not cleaned up on delete). A test that needs a
// controller, such as the garbage collector, starts it with StartControllerManager.
type Kube struct {
	URL        string // https://127.0.0.1:PORT
	CAFile     string // the CA that signed the apiserver's serving certificate
	CAPEM      []byte
	AdminToken string
	Dir        string

	users       map[string]User
	kubeconfigs map[string]string
	removeDir   bool
	mu          sync.Mutex
	etcd        *child
	apiserver   *child
	// What Restart needs to start the apiserver again the same way.
	root, apiserverPath string
	baseArgs, extraArgs []string
}

// StartKube builds kube-apiserver and etcd if needed (see BuildKubeBinaries), starts them
// and waits until the apiserver serves requests and the "default" namespace exists.
// ctx bounds the build and the start.
func StartKube(ctx context.Context, opts KubeOptions) (*Kube, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	apiserverPath, etcdPath, err := BuildKubeBinaries(ctx)
	if err != nil {
		return nil, err
	}
	k := &Kube{Dir: opts.Dir, users: map[string]User{}, kubeconfigs: map[string]string{}}
	if err := k.addUsers(opts.Users); err != nil {
		return nil, err
	}
	if k.Dir == "" {
		if k.Dir, err = os.MkdirTemp("", "harness-kube-*"); err != nil {
			return nil, err
		}
		k.removeDir = true
	}
	if err := k.start(ctx, root, apiserverPath, etcdPath, opts); err != nil {
		k.Close()
		return nil, err
	}
	return k, nil
}

func (k *Kube) addUsers(users []User) error {
	k.AdminToken = randomHex(16)
	k.users[AdminUser] = User{Name: AdminUser, Token: k.AdminToken, Groups: []string{"system:masters"}}
	for _, u := range users {
		switch _, dup := k.users[u.Name]; {
		case u.Name == "":
			return errors.New("KubeOptions.Users: a user has no Name")
		case u.Name == AdminUser:
			return fmt.Errorf("KubeOptions.Users: %q is the built-in system:masters user; use Kube.AdminToken or another name", AdminUser)
		case dup:
			return fmt.Errorf("KubeOptions.Users: %q is listed twice", u.Name)
		}
		if u.Token == "" {
			u.Token = randomHex(16)
		}
		k.users[u.Name] = u
	}
	return nil
}

func (k *Kube) start(ctx context.Context, root, apiserverPath, etcdPath string, opts KubeOptions) error {
	pki := filepath.Join(k.Dir, "pki")
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	ca, err := NewCA()
	if err != nil {
		return err
	}
	k.CAPEM = ca.CertPEM
	k.CAFile = filepath.Join(pki, "ca.crt")
	if err := os.WriteFile(k.CAFile, ca.CertPEM, 0o644); err != nil {
		return err
	}
	servingCert, servingKey, err := ca.WriteFiles(pki, "apiserver", "127.0.0.1", "localhost", "kubernetes.default.svc")
	if err != nil {
		return err
	}
	saKey, err := writeServiceAccountKey(filepath.Join(pki, "sa.key"))
	if err != nil {
		return err
	}
	tokenFile, err := k.writeTokenFile(filepath.Join(pki, "tokens.csv"))
	if err != nil {
		return err
	}

	etcdURL, err := k.startEtcd(ctx, etcdPath)
	if err != nil {
		return err
	}

	port, err := FreePort()
	if err != nil {
		return err
	}
	k.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	args := []string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1",
		// Advertise loopback so nothing depends on the machine's network. The endpoint
		// reconciler refuses a loopback address, and nothing here needs the endpoints of
		// the "kubernetes" Service it maintains, so it is off.
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + servingCert,
		"--tls-private-key-file=" + servingKey,
		// Only used for files the apiserver would otherwise write to /var/run/kubernetes.
		"--cert-dir=" + pki,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + saKey,
		"--service-account-signing-key-file=" + saKey,
		"--token-auth-file=" + tokenFile,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		// Without the token controller no namespace ever gets a default service account,
		// and this plugin would then refuse every pod.
		"--disable-admission-plugins=ServiceAccount",
	}
	k.root, k.apiserverPath, k.baseArgs, k.extraArgs = root, apiserverPath, args, opts.ExtraArgs
	if err := k.startAPIServer(ctx, opts.Audit); err != nil {
		return err
	}
	if err := k.ensureNamespace(ctx, "default"); err != nil {
		return err
	}
	return k.writeKubeconfigs()
}

// startAPIServer starts kube-apiserver with the recorded flags and the audit webhook, and
// waits until it is ready.
func (k *Kube) startAPIServer(ctx context.Context, audit *AuditWebhook) error {
	args := append([]string(nil), k.baseArgs...)
	if audit != nil {
		auditArgs, err := audit.auditFlags(k.root, k.Dir)
		if err != nil {
			return err
		}
		args = append(args, auditArgs...)
	}
	args = append(args, k.extraArgs...)
	var err error
	if k.apiserver, err = startChild("kube-apiserver", k.apiserverPath, args, nil, k.Dir, filepath.Join(k.Dir, "kube-apiserver.log")); err != nil {
		return err
	}
	return k.apiserver.waitReady(ctx, 60*time.Second, k.readyCheck())
}

// RestartAPIServer stops kube-apiserver gracefully (it flushes its buffered audit events
// first) and starts it again on the same port, certificates, users and etcd data, with
// audit as its audit webhook (nil: none). This is how an operator changes the webhook's
// token: a new webhook kubeconfig takes effect only when the apiserver restarts. etcd keeps
// running, so every object survives.
func (k *Kube) RestartAPIServer(ctx context.Context, audit *AuditWebhook) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.apiserver == nil {
		return errors.New("RestartAPIServer: the apiserver was never started")
	}
	if err := k.apiserver.stop(30 * time.Second); err != nil {
		return fmt.Errorf("RestartAPIServer: stop: %w", err)
	}
	return k.startAPIServer(ctx, audit)
}

// startEtcd runs a single-member etcd on two free loopback ports and returns its client URL.
func (k *Kube) startEtcd(ctx context.Context, etcdPath string) (string, error) {
	clientPort, err := FreePort()
	if err != nil {
		return "", err
	}
	peerPort, err := FreePort()
	if err != nil {
		return "", err
	}
	clientURL := "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	args := []string{
		"--name=harness",
		"--data-dir=" + filepath.Join(k.Dir, "etcd"),
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=harness=" + peerURL,
		// The data is thrown away after the test; fsync would only slow every write.
		"--unsafe-no-fsync",
		"--log-level=warn",
	}
	if k.etcd, err = startChild("etcd", etcdPath, args, nil, k.Dir, filepath.Join(k.Dir, "etcd.log")); err != nil {
		return "", err
	}
	check, err := httpOKCheck(clientURL+"/health", nil, "")
	if err != nil {
		return "", err
	}
	return clientURL, k.etcd.waitReady(ctx, 30*time.Second, check)
}

// readyCheck reports whether the apiserver can serve the harness's users.
//
// /readyz as a whole may never turn ok here: some post-start hooks wait for controllers
// that do not run. So the verbose list is read instead, and the apiserver counts as ready
// when every check is ok except post-start hooks, of which only the ones that set up what
// requests need (RBAC's default roles, the system namespaces) must have finished.
func (k *Kube) readyCheck() func(context.Context) error {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: x509.NewCertPool()}
	transport.TLSClientConfig.RootCAs.AppendCertsFromPEM(k.CAPEM)
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	needed := map[string]bool{
		"poststarthook/rbac/bootstrap-roles":          true,
		"poststarthook/bootstrap-controller":          true,
		"poststarthook/start-apiextensions-informers": true,
		"poststarthook/crd-informer-synced":           true,
	}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.URL+"/readyz?verbose", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+k.AdminToken)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusOK {
			return nil
		}
		if resp.StatusCode != http.StatusInternalServerError {
			return fmt.Errorf("GET /readyz: %s", resp.Status)
		}
		// Lines look like "[+]etcd ok" and "[-]poststarthook/x failed: reason withheld".
		var failing []string
		for _, line := range strings.Split(string(body), "\n") {
			name, ok := strings.CutPrefix(line, "[-]")
			if !ok {
				continue
			}
			name, _, _ = strings.Cut(name, " ")
			if !strings.HasPrefix(name, "poststarthook/") || needed[name] {
				failing = append(failing, name)
			}
		}
		if len(failing) > 0 {
			return fmt.Errorf("/readyz: not ready: %s", strings.Join(failing, ", "))
		}
		return nil
	}
}

// ensureNamespace creates namespace name unless it exists.
func (k *Kube) ensureNamespace(ctx context.Context, name string) error {
	client, err := kubernetes.NewForConfig(k.RESTConfig(AdminUser))
	if err != nil {
		return err
	}
	_, err = client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// writeTokenFile writes the users in the format of --token-auth-file:
// token,user,uid,"group1,group2".
func (k *Kube) writeTokenFile(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	w := csv.NewWriter(f)
	for _, u := range k.users {
		record := []string{u.Token, u.Name, u.Name}
		// An empty fourth column would put the user in a group named "".
		if len(u.Groups) > 0 {
			record = append(record, strings.Join(u.Groups, ","))
		}
		if err := w.Write(record); err != nil {
			f.Close()
			return "", err
		}
	}
	w.Flush()
	return path, errors.Join(w.Error(), f.Close())
}

// writeServiceAccountKey writes a new RSA key that both signs and verifies service
// account tokens; the apiserver derives the public half from it.
func writeServiceAccountKey(path string) (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", err
	}
	return path, os.WriteFile(path, pemBlock("PRIVATE KEY", der), 0o600)
}

// writeKubeconfigs writes one kubectl-ready kubeconfig per user.
func (k *Kube) writeKubeconfigs() error {
	for name, u := range k.users {
		cfg := clientcmdv1.Config{
			APIVersion:     "v1",
			Kind:           "Config",
			Clusters:       []clientcmdv1.NamedCluster{{Name: "harness", Cluster: clientcmdv1.Cluster{Server: k.URL, CertificateAuthorityData: k.CAPEM}}},
			AuthInfos:      []clientcmdv1.NamedAuthInfo{{Name: name, AuthInfo: clientcmdv1.AuthInfo{Token: u.Token}}},
			Contexts:       []clientcmdv1.NamedContext{{Name: name, Context: clientcmdv1.Context{Cluster: "harness", AuthInfo: name, Namespace: "default"}}},
			CurrentContext: name,
		}
		data, err := yaml.Marshal(cfg)
		if err != nil {
			return err
		}
		path := filepath.Join(k.Dir, "kubeconfig-"+name+".yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return fmt.Errorf("write kubeconfig for %s: %w", name, err)
		}
		k.kubeconfigs[name] = path
	}
	return nil
}

// user returns a known user. An unknown name is a mistake in the calling code, not a
// condition to handle, hence the panic.
func (k *Kube) user(name string) User {
	u, ok := k.users[name]
	if !ok {
		panic(fmt.Sprintf("harness: kube user %q does not exist: add it to KubeOptions.Users", name))
	}
	return u
}

// Token returns the bearer token of user.
func (k *Kube) Token(user string) string { return k.user(user).Token }

// RESTConfig returns a client-go configuration that authenticates as user (AdminUser or
// one of KubeOptions.Users) and trusts the apiserver's CA. Each call returns a new config
// that the caller may change.
func (k *Kube) RESTConfig(user string) *rest.Config {
	return &rest.Config{
		Host:            k.URL,
		BearerToken:     k.user(user).Token,
		TLSClientConfig: rest.TLSClientConfig{CAData: k.CAPEM},
		// client-go's default of 5 requests per second would make tests crawl.
		QPS:   200,
		Burst: 400,
	}
}

// Kubeconfig returns the path of a kubeconfig file for user, for kubectl --kubeconfig.
func (k *Kube) Kubeconfig(user string) string {
	k.user(user) // the same panic as RESTConfig for an unknown user
	return k.kubeconfigs[user]
}

// LogTail returns the last n lines of the kube-apiserver log.
func (k *Kube) LogTail(n int) string { return tailFile(filepath.Join(k.Dir, "kube-apiserver.log"), n) }

// Close stops the apiserver, then etcd, and removes the directory the harness created.
// It may be called more than once.
func (k *Kube) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	var err error
	if k.apiserver != nil {
		err = k.apiserver.stop(10 * time.Second)
	}
	if k.etcd != nil {
		err = errors.Join(err, k.etcd.stop(10*time.Second))
	}
	if k.removeDir {
		k.removeDir = false
		err = errors.Join(err, os.RemoveAll(k.Dir))
	}
	return err
}
