package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// GitRemoteOptions configures StartGitRemote.
type GitRemoteOptions struct {
	// Dir holds the bare repository and the server's log; default: a temporary directory
	// that Close removes.
	Dir string
	// Username and Password are the basic-auth credentials the remote requires;
	// default: "harness" and a random password.
	Username, Password string
	// Branch is the branch that HEAD names and the seed commit lands on; default "main".
	Branch string
	// Seed maps file paths to contents for an initial commit. nil seeds one README.md;
	// an empty, non-nil map leaves the repository without commits.
	Seed map[string]string
}

// GitRemote is a bare Git repository served over smart HTTP by git http-backend, behind
// basic auth, like a hosted Git provider.
type GitRemote struct {
	URL                string // http://127.0.0.1:PORT/repo.git
	Username, Password string
	Branch             string
	BareDir            string

	dir       string
	removeDir bool
	port      int
	handler   http.Handler
	mu        sync.Mutex
	srv       *http.Server
	logFile   *os.File
}

// Commit is one commit as Log reports it.
type Commit struct {
	Hash                          string
	AuthorName, AuthorEmail       string
	CommitterName, CommitterEmail string
	Message                       string   // without trailing newlines
	Files                         []string // paths changed against the first parent
}

// seedEnv fixes the seed commit's identity and dates, so its hash is the same every time.
var seedEnv = []string{
	"GIT_AUTHOR_NAME=Harness Seed", "GIT_AUTHOR_EMAIL=seed@harness.invalid",
	"GIT_COMMITTER_NAME=Harness Seed", "GIT_COMMITTER_EMAIL=seed@harness.invalid",
	"GIT_AUTHOR_DATE=2000-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2000-01-01T00:00:00Z",
}

// StartGitRemote creates and seeds the bare repository and serves it on a free loopback
// port. ctx bounds only the start.
func StartGitRemote(ctx context.Context, opts GitRemoteOptions) (*GitRemote, error) {
	if _, err := exec.LookPath("git"); err != nil {
		return nil, errors.New("git not found: apt-get install -y git")
	}
	execPath, err := gitOutput(ctx, "", nil, "--exec-path")
	if err != nil {
		return nil, err
	}
	backend := filepath.Join(strings.TrimSpace(execPath), "git-http-backend")
	if _, err := os.Stat(backend); err != nil {
		return nil, fmt.Errorf("git http-backend not found at %s: apt-get install -y git (it ships the smart-HTTP backend)", backend)
	}

	r := &GitRemote{Username: opts.Username, Password: opts.Password, Branch: opts.Branch, dir: opts.Dir}
	if r.Username == "" {
		r.Username = "harness"
	}
	if r.Password == "" {
		r.Password = randomHex(16)
	}
	if r.Branch == "" {
		r.Branch = "main"
	}
	if r.dir == "" {
		if r.dir, err = os.MkdirTemp("", "harness-git-*"); err != nil {
			return nil, err
		}
		r.removeDir = true
	}
	r.BareDir = filepath.Join(r.dir, "repo.git")
	if err := r.create(ctx, opts.Seed); err != nil {
		r.Close()
		return nil, err
	}

	if r.logFile, err = os.OpenFile(filepath.Join(r.dir, "http-backend.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		r.Close()
		return nil, err
	}
	r.handler = &basicAuth{
		username: r.Username,
		password: r.Password,
		next: &cgi.Handler{
			Path: backend,
			Env: []string{
				"GIT_PROJECT_ROOT=" + r.dir,
				"GIT_HTTP_EXPORT_ALL=1",
				"REMOTE_USER=" + r.Username,
				"GIT_CONFIG_GLOBAL=/dev/null",
				"GIT_CONFIG_NOSYSTEM=1",
			},
			Stderr: r.logFile,
			Logger: log.New(r.logFile, "cgi: ", log.LstdFlags),
		},
	}
	if r.port, err = FreePort(); err != nil {
		r.Close()
		return nil, err
	}
	r.URL = fmt.Sprintf("http://127.0.0.1:%d/repo.git", r.port)
	if err := r.Start(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// create initialises the bare repository and commits the seed into it.
func (r *GitRemote) create(ctx context.Context, seed map[string]string) error {
	if _, err := gitOutput(ctx, "", nil, "init", "--quiet", "--bare", "--initial-branch="+r.Branch, r.BareDir); err != nil {
		return err
	}
	if _, err := r.git(ctx, nil, "config", "http.receivepack", "true"); err != nil {
		return err
	}
	if seed == nil {
		seed = map[string]string{"README.md": "# Seeded by the gitops-reverser test harness\n"}
	}
	if len(seed) == 0 {
		return nil
	}
	tmp, err := os.MkdirTemp("", "harness-seed-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	tree := filepath.Join(tmp, "tree")
	for name, content := range seed {
		if !filepath.IsLocal(name) {
			return fmt.Errorf("GitRemoteOptions.Seed: %q is not a relative path inside the repository", name)
		}
		path := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	// Commit straight into the bare repository, using the seed folder as a borrowed work
	// tree and an index outside both, which saves a clone and a push.
	env := append([]string{"GIT_INDEX_FILE=" + filepath.Join(tmp, "index")}, seedEnv...)
	if _, err := r.git(ctx, env, "--work-tree="+tree, "add", "--all"); err != nil {
		return err
	}
	_, err = r.git(ctx, env, "--work-tree="+tree, "commit", "--quiet", "--message=Initial commit")
	return err
}

// Start serves the repository on its port, again after Stop. It returns once the port
// accepts connections.
func (r *GitRemote) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv != nil {
		return nil
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)))
	if err != nil {
		return fmt.Errorf("git remote: listen on port %d: %w", r.port, err)
	}
	r.srv = &http.Server{Handler: r.handler, ErrorLog: log.New(r.logFile, "http: ", log.LstdFlags)}
	// Serve only ever returns ErrServerClosed here, after Stop.
	go r.srv.Serve(l)
	return nil
}

// Stop closes the listener and every open connection, so clients get "connection
// refused" until Start, as when a Git provider is down.
func (r *GitRemote) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srv == nil {
		return nil
	}
	err := r.srv.Close()
	r.srv = nil
	return err
}

// Close stops serving and removes the directory the harness created. It may be called
// more than once.
func (r *GitRemote) Close() error {
	err := r.Stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logFile != nil {
		err = errors.Join(err, r.logFile.Close())
		r.logFile = nil
	}
	if r.removeDir {
		r.removeDir = false
		err = errors.Join(err, os.RemoveAll(r.dir))
	}
	return err
}

// ProviderManifests returns the configuration documents for this remote: a Secret
// gitops/git-credentials with its credentials and a GitProvider gitops/repo on its URL, which
// GitTargets name with providerRef {name: repo}. Test catalogs start with them.
func (r *GitRemote) ProviderManifests() string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: git-credentials, namespace: gitops}
stringData: {username: %q, password: %q}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitProvider
metadata: {name: repo, namespace: gitops}
spec:
  url: %s
  secretRef: {name: git-credentials}
  committer: {name: GitOps Reverser, email: bot@gitops-reverser.dev}
`, r.Username, r.Password, r.URL)
}

// ErrNoBranch is returned by Head for a branch the repository does not have.
var ErrNoBranch = errors.New("no such branch")

// Head returns the commit a branch points to. It reads the ref from the repository's files
// (loose, or in packed-refs) without running git, so tests can poll it every millisecond.
func (r *GitRemote) Head(branch string) (string, error) {
	name := "refs/heads/" + branch
	b, err := os.ReadFile(filepath.Join(r.BareDir, filepath.FromSlash(name)))
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	packed, err := os.ReadFile(filepath.Join(r.BareDir, "packed-refs"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	for _, line := range strings.Split(string(packed), "\n") {
		if hash, ref, ok := strings.Cut(line, " "); ok && ref == name {
			return hash, nil
		}
	}
	return "", fmt.Errorf("%w: %q in %s", ErrNoBranch, branch, r.BareDir)
}

// Files returns every file in the tree at the tip of branch: path to content.
func (r *GitRemote) Files(branch string) (map[string]string, error) {
	ctx := context.Background()
	listing, err := r.git(ctx, nil, "ls-tree", "-r", "-z", "--full-tree", "refs/heads/"+branch)
	if err != nil {
		return nil, err
	}
	var paths, hashes []string
	for _, entry := range strings.Split(strings.TrimSuffix(listing, "\x00"), "\x00") {
		// "<mode> <type> <hash>\t<path>"
		meta, path, ok := strings.Cut(entry, "\t")
		fields := strings.Fields(meta)
		if !ok || len(fields) != 3 || fields[1] != "blob" {
			continue // a submodule (commit entry) has no content here
		}
		paths = append(paths, path)
		hashes = append(hashes, fields[2])
	}
	files := make(map[string]string, len(paths))
	if len(paths) == 0 {
		return files, nil
	}
	// One cat-file process for all blobs rather than one per file.
	cmd := exec.CommandContext(ctx, "git", "--git-dir="+r.BareDir, "cat-file", "--batch")
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	cmd.Stdin = strings.NewReader(strings.Join(hashes, "\n") + "\n")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git cat-file --batch in %s: %w", r.BareDir, err)
	}
	rd := bufio.NewReader(bytes.NewReader(out))
	for _, path := range paths {
		// "<hash> blob <size>\n<content>\n"
		header, err := rd.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("git cat-file --batch: %w", err)
		}
		fields := strings.Fields(header)
		if len(fields) != 3 {
			return nil, fmt.Errorf("git cat-file --batch: unexpected header %q", header)
		}
		size, err := strconv.Atoi(fields[2])
		if err != nil {
			return nil, fmt.Errorf("git cat-file --batch: unexpected header %q", header)
		}
		content := make([]byte, size+1) // the content and its trailing newline
		if _, err := io.ReadFull(rd, content); err != nil {
			return nil, fmt.Errorf("git cat-file --batch: %w", err)
		}
		files[path] = string(content[:size])
	}
	return files, nil
}

// Log returns the commits reachable from branch, newest first.
func (r *GitRemote) Log(branch string) ([]Commit, error) {
	// Control characters separate commits (RS) and fields (US): neither occurs in names,
	// emails or hashes, and commit messages practically never contain them.
	out, err := r.git(context.Background(), nil,
		"-c", "core.quotePath=false", "log", "--name-only", "--diff-merges=first-parent",
		"--format=%x1e%H%x1f%an%x1f%ae%x1f%cn%x1f%ce%x1f%B%x1f", "refs/heads/"+branch, "--")
	if err != nil {
		return nil, err
	}
	var commits []Commit
	for _, record := range strings.Split(out, "\x1e")[1:] {
		f := strings.SplitN(record, "\x1f", 7)
		if len(f) != 7 {
			return nil, fmt.Errorf("git log: unexpected record %q", record)
		}
		c := Commit{
			Hash: f[0], AuthorName: f[1], AuthorEmail: f[2], CommitterName: f[3], CommitterEmail: f[4],
			Message: strings.TrimRight(f[5], "\n"),
		}
		for _, path := range strings.Split(f[6], "\n") {
			if path != "" {
				c.Files = append(c.Files, path)
			}
		}
		commits = append(commits, c)
	}
	return commits, nil
}

// git runs git on the bare repository.
func (r *GitRemote) git(ctx context.Context, env []string, args ...string) (string, error) {
	return gitOutput(ctx, r.BareDir, env, args...)
}

// gitOutput runs git, on gitDir when set, isolated from the user's and the system's Git
// configuration so that neither can change what the harness sees.
func gitOutput(ctx context.Context, gitDir string, env []string, args ...string) (string, error) {
	if gitDir != "" {
		args = append([]string{"--git-dir=" + gitDir}, args...)
	}
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Env = append(append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// basicAuth lets a request through only with the right credentials, as a Git host does.
type basicAuth struct {
	username, password string
	next               http.Handler
}

func (a *basicAuth) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	user, pass, ok := req.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(a.username)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(a.password)) != 1 {
		// The challenge makes git (and go-git) retry with, or ask for, credentials.
		w.Header().Set("WWW-Authenticate", `Basic realm="gitops-reverser harness"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
		return
	}
	// net/http/cgi refuses chunked request bodies, and git sends a push larger than its
	// http.postBuffer (1 MiB) chunked. Spool such a body to disk so it has a length.
	if req.ContentLength < 0 || len(req.TransferEncoding) > 0 {
		spooled, err := spool(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer spooled.Close()
		info, err := spooled.Stat()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		req.Body, req.ContentLength, req.TransferEncoding = spooled, info.Size(), nil
	}
	a.next.ServeHTTP(w, req)
}

// spool copies body into an unlinked temporary file and rewinds it.
func spool(body io.Reader) (*os.File, error) {
	f, err := os.CreateTemp("", "harness-git-body-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name()) // the open descriptor keeps the data until Close
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on Linux
	return hex.EncodeToString(b)
}

// FileAt returns the content of path at rev (a commit hash or ref), and false when the
// commit has no such file.
func (r *GitRemote) FileAt(rev, path string) (string, bool, error) {
	if _, err := r.git(context.Background(), nil, "cat-file", "-e", rev+":"+path); err != nil {
		return "", false, nil
	}
	out, err := r.git(context.Background(), nil, "cat-file", "blob", rev+":"+path)
	return out, err == nil, err
}

// CommitFiles commits files (path -> content) on top of the branch directly in the bare
// repository, as someone pushing by hand would, with author as author and committer. The
// ref moves with a compare-and-swap, so a writer pushing at the same moment is not lost:
// the call fails instead.
func (r *GitRemote) CommitFiles(files map[string]string, author string) error {
	ctx := context.Background()
	head, err := r.Head(r.Branch)
	if err != nil {
		return err
	}
	index := filepath.Join(r.BareDir, "harness-index")
	defer os.Remove(index)
	env := []string{"GIT_INDEX_FILE=" + index,
		"GIT_AUTHOR_NAME=" + author, "GIT_AUTHOR_EMAIL=human@harness.invalid",
		"GIT_COMMITTER_NAME=" + author, "GIT_COMMITTER_EMAIL=human@harness.invalid"}
	if _, err := r.git(ctx, env, "read-tree", head); err != nil {
		return err
	}
	for p, content := range files {
		f, err := os.CreateTemp("", "harness-blob-*")
		if err != nil {
			return err
		}
		_, werr := f.WriteString(content)
		f.Close()
		defer os.Remove(f.Name())
		if werr != nil {
			return werr
		}
		blob, err := r.git(ctx, env, "hash-object", "-w", f.Name())
		if err != nil {
			return err
		}
		if _, err := r.git(ctx, env, "update-index", "--add", "--cacheinfo", "100644,"+strings.TrimSpace(blob)+","+p); err != nil {
			return err
		}
	}
	tree, err := r.git(ctx, env, "write-tree")
	if err != nil {
		return err
	}
	commit, err := r.git(ctx, env, "commit-tree", strings.TrimSpace(tree), "-p", head, "-m", "edit by "+author)
	if err != nil {
		return err
	}
	_, err = r.git(ctx, env, "update-ref", "refs/heads/"+r.Branch, strings.TrimSpace(commit), head)
	return err
}
