package gitwrite

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitEnv isolates the git CLI from the developer's configuration.
func gitEnv() []string {
	return append(os.Environ(),
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Human",
		"GIT_AUTHOR_EMAIL=human@example.com",
		"GIT_COMMITTER_NAME=Human",
		"GIT_COMMITTER_EMAIL=human@example.com",
	)
}

// gitCLI runs the git CLI in dir and returns its trimmed stdout.
func gitCLI(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = gitEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimRight(string(out), "\n")
}

// newBare creates an empty bare repository whose default branch is main.
func newBare(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "remote.git")
	gitCLI(t, ".", "init", "--quiet", "--bare", "--initial-branch=main", dir)
	return dir
}

// humanFiles is what a person keeps on the branch next to our folder.
var humanFiles = map[string]string{
	"README.md":              "# Our cluster repo\n",
	"docs/guide.md":          "Written by a human.\n",
	"clusters/notes.txt":     "Keep me.\n",
	"clusters/c1/KEEP.md":    "Human file inside the target area.\n",
	"clusters/c1/ns1/cm.yml": "human: true\n",
}

// seed pushes one human commit to bare's main branch: humanFiles plus an
// executable script, a symlink and a submodule entry, so tests can check that
// entries of other modes survive untouched.
func seed(t testing.TB, bare string) {
	t.Helper()
	work := filepath.Join(t.TempDir(), "seed")
	gitCLI(t, ".", "clone", "--quiet", bare, work)
	gitCLI(t, work, "checkout", "--quiet", "-B", "main")
	for p, c := range humanFiles {
		writeFile(t, filepath.Join(work, p), c, 0o644)
	}
	writeFile(t, filepath.Join(work, "scripts/deploy.sh"), "#!/bin/sh\necho hi\n", 0o755)
	if err := os.Symlink("../README.md", filepath.Join(work, "scripts/readme-link")); err != nil {
		t.Fatal(err)
	}
	gitCLI(t, work, "add", "-A")
	gitCLI(t, work, "update-index", "--add", "--cacheinfo",
		"160000,1111111111111111111111111111111111111111,vendor/lib")
	gitCLI(t, work, "commit", "--quiet", "-m", "human seed")
	gitCLI(t, work, "push", "--quiet", "origin", "main")
}

// pushFromClone commits files (path -> content) from a fresh clone of bare's
// main and pushes, standing in for another writer.
func pushFromClone(t testing.TB, bare string, files map[string]string) string {
	t.Helper()
	work := filepath.Join(t.TempDir(), "other")
	gitCLI(t, ".", "clone", "--quiet", "--branch", "main", bare, work)
	for p, c := range files {
		writeFile(t, filepath.Join(work, p), c, 0o644)
	}
	gitCLI(t, work, "add", "-A")
	gitCLI(t, work, "commit", "--quiet", "-m", "other writer")
	gitCLI(t, work, "push", "--quiet", "origin", "main")
	return gitCLI(t, work, "rev-parse", "HEAD")
}

func writeFile(t testing.TB, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// lsTree returns `git ls-tree -r` of rev as path -> "mode type hash".
func lsTree(t testing.TB, bare, rev string) map[string]string {
	t.Helper()
	out := gitCLI(t, bare, "ls-tree", "-r", rev)
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		meta, p, _ := strings.Cut(line, "\t")
		m[p] = meta
	}
	return m
}

func fsck(t testing.TB, bare string) {
	t.Helper()
	gitCLI(t, bare, "fsck", "--strict", "--no-dangling")
}

func openFile(t testing.TB, bare string) *Repo {
	t.Helper()
	r, err := Open(ctx(t), Options{URL: "file://" + bare, Branch: "main", Dir: filepath.Join(t.TempDir(), "mirror")})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return r
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

var (
	bot = Signature{Name: "gitops-reverser", Email: "bot@example.com",
		When: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("", 2*3600))}
)

func commit(t testing.TB, r *Repo, msg string, changes ...Change) (string, bool) {
	t.Helper()
	h, ok, err := r.Commit(CommitRequest{Author: bot, Message: msg, Changes: changes})
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return h.String(), ok
}

func put(p, content string) Change { return Change{Path: p, Content: []byte(content)} }
func del(p string) Change          { return Change{Path: p, Delete: true} }
