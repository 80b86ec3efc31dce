package harness

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// processGone reports whether pid has exited and been reaped.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestValkeyKeepsAppendOnlyDataAcrossKillAndRestart(t *testing.T) {
	ctx := t.Context()
	v, err := StartValkey(ctx, ValkeyOptions{Dir: t.TempDir(), AppendOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })

	client := newValkeyClient(t, v.Addr)
	if err := client.Do(ctx, client.B().Set().Key("k").Value("kept").Build()).Error(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	client.Close()

	pid := v.Pid()
	if err := v.Kill(); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) {
		t.Fatalf("valkey-server pid %d still exists after Kill", pid)
	}
	if err := v.ping(ctx); err == nil {
		t.Fatal("PING answered after Kill")
	}
	if err := v.Restart(ctx); err != nil {
		t.Fatal(err)
	}

	client = newValkeyClient(t, v.Addr)
	defer client.Close()
	got, err := client.Do(ctx, client.B().Get().Key("k").Build()).ToString()
	if err != nil || got != "kept" {
		t.Fatalf("GET after kill and restart = %q, %v; want \"kept\" from the append-only file", got, err)
	}

	pid = v.Pid()
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if !processGone(pid) {
		t.Fatalf("valkey-server pid %d still exists after Close", pid)
	}
}

func newValkeyClient(t *testing.T, addr string) valkey.Client {
	t.Helper()
	client, err := valkey.NewClient(valkey.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Fatalf("connect to valkey at %s: %v", addr, err)
	}
	return client
}

func TestGitRemoteCloneAuthPushAndOutage(t *testing.T) {
	ctx := t.Context()
	seed := map[string]string{"README.md": "hello\n", "clusters/c1/ns.yaml": "kind: Namespace\n"}
	r, err := StartGitRemote(ctx, GitRemoteOptions{Dir: t.TempDir(), Username: "bot", Password: "right", Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })

	files, err := r.Files("main")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(files, seed) {
		t.Fatalf("Files(main) = %v, want the seed %v", files, seed)
	}

	work := t.TempDir()
	withPassword := func(password string) string {
		return strings.Replace(r.URL, "http://", "http://bot:"+password+"@", 1)
	}
	if out, err := runGit(work, "clone", withPassword("wrong"), "denied"); err == nil {
		t.Fatalf("clone with a wrong password succeeded:\n%s", out)
	} else if !strings.Contains(out, "Authentication failed") {
		t.Fatalf("clone with a wrong password failed for another reason than authentication:\n%s", out)
	}
	clone := filepath.Join(work, "clone")
	mustGit(t, work, "clone", withPassword("right"), clone)
	if data, err := os.ReadFile(filepath.Join(clone, "clusters/c1/ns.yaml")); err != nil || string(data) != seed["clusters/c1/ns.yaml"] {
		t.Fatalf("cloned clusters/c1/ns.yaml = %q, %v", data, err)
	}

	// 2 MiB of random data makes a pack larger than git's 1 MiB http.postBuffer, so the
	// push arrives chunked, which net/http/cgi alone would refuse.
	big := make([]byte, 2<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(clone, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(clone, "clusters/c1/cm.yaml"), []byte("kind: ConfigMap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustGit(t, clone, "add", "--all")
	mustGit(t, clone, "-c", "user.name=Tester", "-c", "user.email=tester@example.com", "commit", "--quiet", "--message=Add a ConfigMap\n\nWith a body.")
	mustGit(t, clone, "push", "--quiet", "origin", "main")

	files, err = r.Files("main")
	if err != nil {
		t.Fatal(err)
	}
	if files["clusters/c1/cm.yaml"] != "kind: ConfigMap\n" || files["big.bin"] != string(big) || len(files) != 4 {
		t.Fatalf("Files(main) after push has %d files, cm.yaml = %q, big.bin ok = %v", len(files), files["clusters/c1/cm.yaml"], files["big.bin"] == string(big))
	}
	log, err := r.Log("main")
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 2 {
		t.Fatalf("Log(main) has %d commits, want 2: %+v", len(log), log)
	}
	pushed, seeded := log[0], log[1]
	wantPushed := Commit{Hash: pushed.Hash, AuthorName: "Tester", AuthorEmail: "tester@example.com",
		CommitterName: "Tester", CommitterEmail: "tester@example.com",
		Message: "Add a ConfigMap\n\nWith a body.", Files: []string{"big.bin", "clusters/c1/cm.yaml"}}
	if !reflect.DeepEqual(pushed, wantPushed) {
		t.Fatalf("newest commit = %+v\nwant %+v", pushed, wantPushed)
	}
	if seeded.AuthorName != "Harness Seed" || !slices.Equal(seeded.Files, []string{"README.md", "clusters/c1/ns.yaml"}) {
		t.Fatalf("seed commit = %+v", seeded)
	}
	if head, err := r.Head("main"); err != nil || head != pushed.Hash {
		t.Fatalf("Head(main) = %q, %v; want %s", head, err, pushed.Hash)
	}
	if _, err := r.Head("nope"); err == nil {
		t.Fatal("Head of a missing branch did not fail")
	}

	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if out, err := runGit(work, "ls-remote", withPassword("right")); err == nil {
		t.Fatalf("ls-remote while stopped succeeded:\n%s", out)
	}
	host := strings.TrimPrefix(strings.TrimSuffix(r.URL, "/repo.git"), "http://")
	if conn, err := net.Dial("tcp", host); !errors.Is(err, syscall.ECONNREFUSED) {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("dial %s while stopped: err = %v, want connection refused", host, err)
	}
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if out := mustGit(t, work, "ls-remote", withPassword("right"), "main"); !strings.HasPrefix(out, pushed.Hash) {
		t.Fatalf("ls-remote after Start = %q, want %s", out, pushed.Hash)
	}
}

// runGit runs the git CLI as a user would, but never prompting and ignoring the user's
// configuration; it returns the combined output.
func runGit(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := runGit(dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func TestCAIssuesCertificatesForLoopback(t *testing.T) {
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	pair, err := ca.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "::1", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: host}); err != nil {
			t.Errorf("certificate not valid for %s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: "example.com"}); err == nil {
		t.Error("certificate valid for example.com")
	}
	other, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: other.Pool(), DNSName: "127.0.0.1"}); err == nil {
		t.Error("certificate verified against another CA")
	}
}

func TestProcessReadyPauseResumeStop(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	bin := filepath.Join(dir, "readyserver")
	if err := BuildGo(ctx, "./test/harness/testdata/readyserver", bin); err != nil {
		t.Fatal(err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := StartProcess(ctx, ProcessOptions{
		Path: bin, Dir: dir, Env: []string{"ADDR=" + addr}, ReadyURL: "http://" + addr + "/readyz",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if p.ReadyAfter <= 0 || p.ReadyAfter > 10*time.Second {
		t.Errorf("ReadyAfter = %v for a server that is ready at once", p.ReadyAfter)
	}

	if tail := p.LogTail(5); !strings.Contains(tail, "listening on "+addr) {
		t.Fatalf("LogTail = %q, want the server's start line", tail)
	}
	client := &http.Client{Timeout: 500 * time.Millisecond}
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
		resp.Body.Close()
		t.Fatal("a paused process answered")
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("no answer after Resume: %v", err)
	}
	resp.Body.Close()

	// Stopping a paused process must still be graceful, not a kill after the grace period.
	if err := p.Pause(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Stop took %v", took)
	}
	select {
	case <-p.Exited():
	default:
		t.Fatal("Exited not closed after Stop")
	}
	if tail := p.LogTail(5); !strings.Contains(tail, "readyserver: stopped") {
		t.Fatalf("the process did not shut down gracefully; log:\n%s", tail)
	}
	if !processGone(p.Pid()) {
		t.Fatalf("pid %d still exists after Stop", p.Pid())
	}
}

func TestProcessExitDuringStartReportsLog(t *testing.T) {
	_, err := StartProcess(t.Context(), ProcessOptions{
		Path: "/bin/sh", Args: []string{"-c", "echo config is broken; exit 3"}, Dir: t.TempDir(),
		ReadyURL: "http://127.0.0.1:1/readyz",
	})
	if err == nil || !strings.Contains(err.Error(), "config is broken") {
		t.Fatalf("err = %v, want one quoting the process's output", err)
	}
}

// auditEventList is the part of an audit.k8s.io/v1 EventList the test looks at.
type auditEventList struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Items      []struct {
		Verb      string `json:"verb"`
		Stage     string `json:"stage"`
		ObjectRef struct {
			Resource, Namespace, Name string
		} `json:"objectRef"`
		ResponseObject *corev1.ConfigMap `json:"responseObject"`
	} `json:"items"`
}

func TestKubeUsersImpersonationConfigMapsAndAuditWebhook(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 9*time.Minute)
	defer cancel()

	// The audit webhook: a TLS server whose certificate comes from our CA, as the
	// ingest's would from the cluster operator's.
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	type post struct {
		authorization string
		body          []byte
	}
	posts := make(chan post, 1000)
	webhook := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if req.Method == http.MethodPost && req.URL.Path == "/audit-webhook/test-cluster" {
			posts <- post{req.Header.Get("Authorization"), body}
		}
	}))
	cert, err := ca.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	webhook.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	webhook.StartTLS()
	t.Cleanup(webhook.Close)

	start := time.Now()
	kube, err := StartKube(ctx, KubeOptions{
		Dir:   t.TempDir(),
		Users: []User{{Name: "alice", Groups: []string{"developers"}}},
		Audit: &AuditWebhook{URL: webhook.URL + "/audit-webhook/test-cluster", Token: "audit-token", CAPEM: ca.CertPEM},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kube.Close() })
	t.Logf("StartKube took %v", time.Since(start).Round(10*time.Millisecond))

	admin := kubernetes.NewForConfigOrDie(kube.RESTConfig(AdminUser))
	if _, err := admin.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
		t.Fatalf("namespace default: %v", err)
	}

	// alice as herself: authenticated by her static token, and RBAC grants her nothing.
	alice := kubernetes.NewForConfigOrDie(kube.RESTConfig("alice"))
	review, err := alice.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := review.Status.UserInfo; got.Username != "alice" || !slices.Contains(got.Groups, "developers") {
		t.Fatalf("alice's token authenticates as %+v", got)
	}
	if _, err := alice.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("alice listing configmaps: err = %v, want Forbidden", err)
	}

	// admin impersonating alice.
	impersonating := kube.RESTConfig(AdminUser)
	impersonating.Impersonate = rest.ImpersonationConfig{UserName: "alice"}
	review, err = kubernetes.NewForConfigOrDie(impersonating).AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("admin impersonating alice: %v", err)
	}
	if review.Status.UserInfo.Username != "alice" {
		t.Fatalf("admin impersonating alice is seen as %+v", review.Status.UserInfo)
	}

	want := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "harness-check"}, Data: map[string]string{"color": "blue"}}
	if _, err := admin.CoreV1().ConfigMaps("default").Create(ctx, want, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := admin.CoreV1().ConfigMaps("default").Get(ctx, "harness-check", metav1.GetOptions{})
	if err != nil || !reflect.DeepEqual(got.Data, want.Data) {
		t.Fatalf("ConfigMap read back: %+v, %v", got, err)
	}

	// kubectl with the written kubeconfig sees the same object.
	out, err := exec.CommandContext(ctx, "kubectl", "--kubeconfig", kube.Kubeconfig(AdminUser), "get", "configmap", "harness-check", "-o", "jsonpath={.data.color}").CombinedOutput()
	if err != nil || string(out) != "blue" {
		t.Fatalf("kubectl get configmap: %v\n%s", err, out)
	}

	// The audit webhook receives the create, with the full object, from our policy.
	deadline := time.After(30 * time.Second)
	for {
		select {
		case p := <-posts:
			if p.authorization != "Bearer audit-token" {
				t.Fatalf("audit POST Authorization = %q, want \"Bearer audit-token\"", p.authorization)
			}
			var list auditEventList
			if err := json.Unmarshal(p.body, &list); err != nil {
				t.Fatalf("audit POST body is not JSON: %v\n%s", err, p.body)
			}
			if list.APIVersion != "audit.k8s.io/v1" || list.Kind != "EventList" {
				t.Fatalf("audit POST is %s %s, want audit.k8s.io/v1 EventList", list.APIVersion, list.Kind)
			}
			for _, e := range list.Items {
				if e.Stage == "RequestReceived" || e.Verb == "get" || e.Verb == "list" {
					t.Fatalf("the policy let through a %s %s event", e.Stage, e.Verb)
				}
				if e.Verb == "create" && e.ObjectRef.Resource == "configmaps" && e.ObjectRef.Name == "harness-check" {
					if e.ResponseObject == nil || e.ResponseObject.Data["color"] != "blue" || len(e.ResponseObject.ManagedFields) != 0 {
						t.Fatalf("audit event for the create has responseObject %+v, want the ConfigMap without managedFields", e.ResponseObject)
					}
					return
				}
			}
		case <-deadline:
			t.Fatalf("no audit event for the ConfigMap create within 30s; apiserver log:\n%s", kube.LogTail(30))
		}
	}
}

func TestRenderTemplateRejectsUnknownPlaceholders(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(path, []byte("a: ${A}\nb: ${B}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := renderTemplate(path, map[string]string{"A": "1"}); err == nil || !strings.Contains(err.Error(), "B") {
		t.Fatalf("err = %v, want one naming B", err)
	}
	out, err := renderTemplate(path, map[string]string{"A": "1", "B": "2"})
	if err != nil || string(out) != "a: 1\nb: 2\n" {
		t.Fatalf("renderTemplate = %q, %v", out, err)
	}
}
