package gitwrite

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const gitHTTPBackend = "/usr/lib/git-core/git-http-backend"

// gitHTTP is a real smart-HTTP Git server: git-http-backend behind a basic
// auth check. status, when set, is answered instead (503, ...); hang makes
// every request wait for the client to give up.
type gitHTTP struct {
	*httptest.Server
	bare   string
	status atomic.Int32
	hang   atomic.Bool
}

func newGitHTTP(t *testing.T, user, pass string) *gitHTTP {
	t.Helper()
	if _, err := os.Stat(gitHTTPBackend); err != nil {
		t.Fatalf("no %s: %v (it comes with git: apt-get install -y git)", gitHTTPBackend, err)
	}
	root := t.TempDir()
	s := &gitHTTP{bare: filepath.Join(root, "repo.git")}
	gitCLI(t, ".", "init", "--quiet", "--bare", "--initial-branch=main", s.bare)
	gitCLI(t, s.bare, "config", "http.receivepack", "true")
	backend := &cgi.Handler{
		Path: gitHTTPBackend,
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER=" + user,
			"GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_CONFIG_NOSYSTEM=1",
		},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := s.status.Load(); code != 0 {
			http.Error(w, "try later", int(code))
			return
		}
		if s.hang.Load() {
			<-r.Context().Done()
			return
		}
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			// A careless server that echoes what it got: the client must
			// still keep the password out of its errors.
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "bad credentials: "+r.Header.Get("Authorization")+" password="+p, http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestSmartHTTPBasicAuth(t *testing.T) {
	const user, pass = "alice", "s3cr3t-Pa55"
	srv := newGitHTTP(t, user, pass)
	url := srv.URL + "/repo.git"

	dir := filepath.Join(t.TempDir(), "mirror")
	r, err := Open(ctx(t), Options{URL: url, Branch: "main", Dir: dir, Auth: Auth{Username: user, Password: pass}})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	commit(t, r, "over http", put("clusters/c1/a.yaml", "a\n"))
	if err := r.Push(ctx(t)); err != nil {
		t.Fatalf("Push: %v", err)
	}
	if got := gitCLI(t, srv.bare, "ls-tree", "-r", "--name-only", "main"); got != "clusters/c1/a.yaml" {
		t.Fatalf("ls-tree: %q", got)
	}
	fsck(t, srv.bare)

	// Credentials in the URL work too, and are not written to the mirror.
	withUserinfo := strings.Replace(url, "http://", "http://"+user+":"+pass+"@", 1)
	r2, err := Open(ctx(t), Options{URL: withUserinfo, Branch: "main", Dir: dir})
	if err != nil {
		t.Fatalf("Open with userinfo: %v", err)
	}
	if r2.Head() != r.Head() {
		t.Fatalf("Head %s, want %s", r2.Head(), r.Head())
	}
	commit(t, r2, "second", put("clusters/c1/b.yaml", "b\n"))
	if err := r2.Push(ctx(t)); err != nil {
		t.Fatalf("Push: %v", err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "config"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), pass) {
		t.Fatalf("password written to the mirror's config:\n%s", cfg)
	}

	const wrong = "wr0ng-Secret-99"
	for name, o := range map[string]Options{
		"auth":     {URL: url, Auth: Auth{Username: user, Password: wrong}},
		"userinfo": {URL: strings.Replace(url, "http://", "http://"+user+":"+wrong+"@", 1)},
		"token":    {URL: url, Auth: Auth{Password: wrong}},
		"none":     {URL: url},
	} {
		t.Run("wrong "+name, func(t *testing.T) {
			o.Branch, o.Dir = "main", filepath.Join(t.TempDir(), "m")
			_, err := Open(ctx(t), o)
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("Open: %v, want ErrAuthentication", err)
			}
			msg := err.Error()
			t.Logf("error text: %s", msg)
			for _, secret := range []string{wrong,
				base64.StdEncoding.EncodeToString([]byte(user + ":" + wrong)),
				base64.StdEncoding.EncodeToString([]byte("git:" + wrong))} {
				if strings.Contains(msg, secret) {
					t.Fatalf("secret %q in error: %s", secret, msg)
				}
			}
			if !strings.Contains(msg, "authentication required") {
				t.Errorf("detail lost: %s", msg)
			}
		})
	}
}

func TestRemoteUnavailable(t *testing.T) {
	srv := newGitHTTP(t, "u", "pass-word")
	r, err := Open(ctx(t), Options{
		URL: srv.URL + "/repo.git", Branch: "main", Dir: t.TempDir(),
		Auth: Auth{Username: "u", Password: "pass-word"}, Timeout: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	commit(t, r, "x", put("a.yaml", "a"))

	srv.status.Store(http.StatusServiceUnavailable)
	if err := r.Fetch(ctx(t)); !errors.Is(err, ErrRemoteUnavailable) {
		t.Fatalf("Fetch on 503: %v, want ErrRemoteUnavailable", err)
	}
	srv.status.Store(0)

	srv.hang.Store(true)
	start := time.Now()
	if err := r.Push(ctx(t)); !errors.Is(err, ErrRemoteUnavailable) {
		t.Fatalf("Push to a hanging server: %v, want ErrRemoteUnavailable", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Timeout not applied: %v", d)
	}
	srv.hang.Store(false)

	srv.Close()
	err = r.Push(ctx(t))
	if !errors.Is(err, ErrRemoteUnavailable) {
		t.Fatalf("Push to a closed server: %v, want ErrRemoteUnavailable", err)
	}
	t.Logf("error text: %v", err)
	if err := r.Fetch(ctx(t)); !errors.Is(err, ErrRemoteUnavailable) {
		t.Fatalf("Fetch from a closed server: %v, want ErrRemoteUnavailable", err)
	}
}
