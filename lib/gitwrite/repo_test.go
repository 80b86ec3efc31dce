package gitwrite

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
)

func TestCreateNestedFilesInEmptyRemote(t *testing.T) {
	bare := newBare(t)
	r := openFile(t, bare)
	if !r.Head().IsZero() || !r.Tip().IsZero() {
		t.Fatalf("empty remote: Head %s Tip %s, want zero", r.Head(), r.Tip())
	}
	if err := r.Push(ctx(t)); err != nil {
		t.Fatalf("Push with nothing to do: %v", err)
	}

	// Names chosen so that git's order ("ns" sorts as "ns/") differs from a
	// plain byte sort; git fsck --strict below rejects a misordered tree.
	h, ok := commit(t, r, "create",
		put("clusters/c1/ns/a.yaml", "a: 1\n"),
		put("clusters/c1/ns/b.yaml", "b: 1\n"),
		put("clusters/c1/ns.yaml", "ns\n"),
		put("clusters/c1/ns-a/x.yaml", "x\n"),
		put("clusters/c1/ns0", "0\n"),
		put("clusters/c1/other/c.yaml", "c: 1\n"),
		put("top.txt", "top\n"),
	)
	if !ok {
		t.Fatal("Commit reported no change")
	}
	if !r.Head().IsZero() {
		t.Fatal("Head moved before Push")
	}
	if err := r.Push(ctx(t)); err != nil {
		t.Fatalf("Push: %v", err)
	}
	if r.Head().String() != h || r.Tip().String() != h {
		t.Fatalf("after Push: Head %s Tip %s, want %s", r.Head(), r.Tip(), h)
	}
	if got := gitCLI(t, bare, "rev-parse", "main"); got != h {
		t.Fatalf("remote main = %s, want %s", got, h)
	}
	want := []string{ // tree order
		"clusters/c1/ns-a/x.yaml", "clusters/c1/ns.yaml", "clusters/c1/ns/a.yaml", "clusters/c1/ns/b.yaml",
		"clusters/c1/ns0", "clusters/c1/other/c.yaml", "top.txt",
	}
	if got := gitCLI(t, bare, "ls-tree", "-r", "--name-only", "main"); got != strings.Join(want, "\n") {
		t.Fatalf("ls-tree:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	for p, m := range lsTree(t, bare, "main") {
		if !strings.HasPrefix(m, "100644 blob ") {
			t.Errorf("%s: %s, want mode 100644 blob", p, m)
		}
	}
	if got := gitCLI(t, bare, "cat-file", "-p", "main:clusters/c1/ns/b.yaml"); got != "b: 1" {
		t.Fatalf("content = %q", got)
	}
	if got := gitCLI(t, bare, "rev-list", "--count", "main"); got != "1" {
		t.Fatalf("commits = %s, want 1 (root commit)", got)
	}
	fsck(t, bare)
}

func TestUpdateDeleteAndHumanFilesKept(t *testing.T) {
	bare := newBare(t)
	seed(t, bare)
	before := lsTree(t, bare, "main")
	r := openFile(t, bare)
	if got := gitCLI(t, bare, "rev-parse", "main"); r.Head().String() != got {
		t.Fatalf("Head %s, want %s", r.Head(), got)
	}

	commit(t, r, "create",
		put("clusters/c1/ns1/app.yaml", "v: 1\n"),
		put("clusters/c1/ns2/only.yaml", "only\n"),
		put("clusters/c1/ns2/deep/x.yaml", "x\n"),
		put("scripts/deploy.sh", "#!/bin/sh\necho changed\n"), // executable stays executable
	)
	commit(t, r, "update and delete",
		put("clusters/c1/ns1/app.yaml", "v: 2\n"),
		del("clusters/c1/ns2/only.yaml"),
		del("clusters/c1/ns2/deep/x.yaml"), // last files of ns2: folder goes
	)
	if err := r.Push(ctx(t)); err != nil {
		t.Fatalf("Push: %v", err)
	}
	if got := gitCLI(t, bare, "rev-list", "--count", "main"); got != "3" {
		t.Fatalf("commits = %s, want 3", got)
	}

	after := lsTree(t, bare, "main")
	if got := gitCLI(t, bare, "cat-file", "-p", "main:clusters/c1/ns1/app.yaml"); got != "v: 2" {
		t.Fatalf("app.yaml = %q", got)
	}
	if out := gitCLI(t, bare, "ls-tree", "main", "clusters/c1/"); strings.Contains(out, "ns2") {
		t.Fatalf("folder ns2 should be gone:\n%s", out)
	}
	if !strings.HasPrefix(after["scripts/deploy.sh"], "100755 ") {
		t.Fatalf("deploy.sh mode: %s, want 100755", after["scripts/deploy.sh"])
	}
	// Everything we did not touch is identical: same mode, type and object.
	for p, m := range before {
		if p == "scripts/deploy.sh" {
			continue
		}
		if after[p] != m {
			t.Errorf("%s changed: %q -> %q", p, m, after[p])
		}
	}
	for _, p := range []string{"scripts/readme-link", "vendor/lib"} {
		if before[p] == "" || !strings.HasPrefix(before[p], map[string]string{
			"scripts/readme-link": "120000 blob", "vendor/lib": "160000 commit"}[p]) {
			t.Fatalf("seed lacks %s: %q", p, before[p])
		}
	}
	if len(after) != len(before)+1 {
		t.Errorf("files: %d, want %d (human files + app.yaml)", len(after), len(before)+1)
	}
	fsck(t, bare)
}

func TestUnchangedContentMakesNoCommit(t *testing.T) {
	bare := newBare(t)
	r := openFile(t, bare)

	if h, ok := commit(t, r, "only deletes on an empty branch", del("a/b.yaml")); ok || h != plumbing.ZeroHash.String() {
		t.Fatalf("got (%s, %v), want no commit", h, ok)
	}
	first, _ := commit(t, r, "create", put("a/b.yaml", "same\n"), put("a/c.yaml", "c\n"))
	for _, tc := range []struct {
		name    string
		changes []Change
	}{
		{"identical content", []Change{put("a/b.yaml", "same\n")}},
		{"delete missing file", []Change{del("a/missing.yaml")}},
		{"delete below missing folder", []Change{del("nope/x/y.yaml")}},
		{"delete below a file", []Change{del("a/b.yaml/x")}},
		{"write then restore", []Change{put("a/b.yaml", "other\n"), put("a/b.yaml", "same\n")}},
		{"create then delete", []Change{put("n/new.yaml", "x"), del("n/new.yaml")}},
		{"no changes", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, ok, err := r.Commit(CommitRequest{Author: bot, Message: "noop", Changes: tc.changes})
			if err != nil {
				t.Fatal(err)
			}
			if ok || h.String() != first || r.Tip().String() != first {
				t.Fatalf("got (%s, %v), Tip %s; want (%s, false)", h, ok, r.Tip(), first)
			}
		})
	}
}

func TestLaterChangeToSamePathWins(t *testing.T) {
	bare := newBare(t)
	r := openFile(t, bare)
	commit(t, r, "x", put("a.yaml", "1"), put("a.yaml", "2"), del("b.yaml"), put("b.yaml", "b"),
		put("c.yaml", "c"), del("c.yaml"))
	if err := r.Push(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := gitCLI(t, bare, "ls-tree", "-r", "--name-only", "main"); got != "a.yaml\nb.yaml" {
		t.Fatalf("ls-tree: %q", got)
	}
	if got := gitCLI(t, bare, "cat-file", "-p", "main:a.yaml"); got != "2" {
		t.Fatalf("a.yaml = %q", got)
	}
}

func TestEditSeesTheCurrentContent(t *testing.T) {
	bare := newBare(t)
	r := openFile(t, bare)
	upper := func(p string) Change {
		return Change{Path: p, Edit: func(cur []byte) []byte { return []byte(strings.ToUpper(string(cur))) }}
	}
	first, _ := commit(t, r, "create", put("a/b.yaml", "stored\n"))

	// Editing a missing file, even below a missing folder, does nothing.
	for _, p := range []string{"a/missing.yaml", "nope/x/y.yaml"} {
		if h, ok, err := r.Commit(CommitRequest{Author: bot, Message: "noop", Changes: []Change{upper(p)}}); err != nil || ok || h.String() != first {
			t.Fatalf("edit of missing %s: (%s, %v, %v), want no commit", p, h, ok, err)
		}
	}
	// An edit that returns the content as it is changes nothing.
	same := Change{Path: "a/b.yaml", Edit: func(cur []byte) []byte { return cur }}
	if _, ok, err := r.Commit(CommitRequest{Author: bot, Message: "noop", Changes: []Change{same}}); err != nil || ok {
		t.Fatalf("identity edit: changed %v, err %v", ok, err)
	}

	// An edit sees the stored file, and the content an earlier change of the same commit
	// wrote; a file written and then deleted stays deleted, and an edit below a missing
	// folder makes no folder.
	commit(t, r, "edit", upper("a/b.yaml"), put("c.yaml", "written\n"), upper("c.yaml"), put("d.yaml", "x"), del("d.yaml"), upper("d.yaml"), upper("a/new/x.yaml"))
	if err := r.Push(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := gitCLI(t, bare, "cat-file", "-p", "main:a/b.yaml"); got != "STORED" {
		t.Errorf("a/b.yaml = %q, want STORED", got)
	}
	if got := gitCLI(t, bare, "cat-file", "-p", "main:c.yaml"); got != "WRITTEN" {
		t.Errorf("c.yaml = %q, want WRITTEN", got)
	}
	if got := gitCLI(t, bare, "ls-tree", "-r", "--name-only", "main"); got != "a/b.yaml\nc.yaml" {
		t.Errorf("ls-tree: %q", got)
	}
	fsck(t, bare)
}

func TestAuthorAndCommitterRecordedAsGiven(t *testing.T) {
	bare := newBare(t)
	r := openFile(t, bare)
	committer := Signature{Name: "Reverser Bot", Email: "committer@example.com", When: bot.When.Add(90 * time.Second)}
	_, ok, err := r.Commit(CommitRequest{
		Author:    Signature{Name: "Jane Doe", Email: "jane@example.com", When: bot.When},
		Committer: committer,
		Message:   "Update ConfigMap ns1/app\n\nBy jane via kubectl.\n",
		Changes:   []Change{put("x.yaml", "x")},
	})
	if err != nil || !ok {
		t.Fatalf("Commit: %v %v", ok, err)
	}
	if err := r.Push(ctx(t)); err != nil {
		t.Fatal(err)
	}
	got := gitCLI(t, bare, "log", "-1", "--format=%an|%ae|%ai|%cn|%ce|%ci", "main")
	want := "Jane Doe|jane@example.com|2026-01-02 03:04:05 +0200|Reverser Bot|committer@example.com|2026-01-02 03:05:35 +0200"
	if got != want {
		t.Fatalf("log:\n got %s\nwant %s", got, want)
	}
	if got := gitCLI(t, bare, "log", "-1", "--format=%B", "main"); got != "Update ConfigMap ns1/app\n\nBy jane via kubectl." {
		t.Fatalf("message %q", got)
	}

	// Committer defaults to Author.
	commit(t, r, "second", put("y.yaml", "y"))
	if err := r.Push(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := gitCLI(t, bare, "log", "-1", "--format=%an|%cn|%ct", "main"); got != fmt.Sprintf("gitops-reverser|gitops-reverser|%d", bot.When.Unix()) {
		t.Fatalf("log: %s", got)
	}

	for _, bad := range []Signature{{}, {Name: "x"}, {Name: "a<b", Email: "e@x"}, {Name: "a", Email: "e@x\n"}} {
		if _, _, err := r.Commit(CommitRequest{Author: bad, Changes: []Change{put("z", "z")}}); !errors.Is(err, ErrInvalidCommit) {
			t.Errorf("author %+v: err %v, want ErrInvalidCommit", bad, err)
		}
	}
}

func TestCompareAndSwap(t *testing.T) {
	bare := newBare(t)
	seed(t, bare)
	r := openFile(t, bare)
	commit(t, r, "ours", put("clusters/c1/ns1/app.yaml", "ours\n"))

	other := pushFromClone(t, bare, map[string]string{"docs/other.md": "pushed meanwhile\n"})

	err := r.Push(ctx(t))
	if !errors.Is(err, ErrRemoteMoved) {
		t.Fatalf("Push after another writer: %v, want ErrRemoteMoved", err)
	}
	if !strings.Contains(err.Error(), "required to be") || !strings.Contains(err.Error(), other) {
		t.Errorf("error lacks detail: %v", err)
	}
	if got := gitCLI(t, bare, "rev-parse", "main"); got != other {
		t.Fatalf("remote main moved to %s by a rejected push", got)
	}

	if err := r.Fetch(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if r.Head().String() != other || r.Tip() != r.Head() {
		t.Fatalf("after Fetch: Head %s Tip %s, want both %s (unpushed commit dropped)", r.Head(), r.Tip(), other)
	}
	if _, ok, _ := r.ReadFile("clusters/c1/ns1/app.yaml"); ok {
		t.Fatal("unpushed change survived Fetch")
	}
	ours, _ := commit(t, r, "ours again", put("clusters/c1/ns1/app.yaml", "ours\n"))
	if err := r.Push(ctx(t)); err != nil {
		t.Fatalf("Push after Fetch: %v", err)
	}
	if got := gitCLI(t, bare, "log", "--format=%H %s", "-2", "main"); got != ours+" ours again\n"+other+" other writer" {
		t.Fatalf("log:\n%s", got)
	}
	if got := gitCLI(t, bare, "cat-file", "-p", "main:docs/other.md"); got != "pushed meanwhile" {
		t.Fatalf("other writer's file: %q", got)
	}
	fsck(t, bare)
}

func TestCompareAndSwapNewBranch(t *testing.T) {
	bare := newBare(t)
	r := openFile(t, bare) // no branch yet: Head is zero
	commit(t, r, "ours", put("a.yaml", "a"))
	seed(t, bare) // someone creates main meanwhile
	if err := r.Push(ctx(t)); !errors.Is(err, ErrRemoteMoved) {
		t.Fatalf("Push: %v, want ErrRemoteMoved", err)
	}
	if err := r.Fetch(ctx(t)); err != nil {
		t.Fatal(err)
	}
	commit(t, r, "ours", put("a.yaml", "a"))
	if err := r.Push(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := gitCLI(t, bare, "rev-list", "--count", "main"); got != "2" {
		t.Fatalf("commits %s, want 2", got)
	}
}

// TestCompareAndSwapAtServer moves the branch after the server advertised
// it (from a pre-receive hook), so only the server-side check can catch it.
func TestCompareAndSwapAtServer(t *testing.T) {
	bare := newBare(t)
	seed(t, bare)
	r := openFile(t, bare)
	other := pushFromClone(t, bare, map[string]string{"docs/other.md": "x\n"})
	gitCLI(t, bare, "update-ref", "refs/heads/main", r.Head().String(), other) // back to where we fetched
	gitCLI(t, bare, "update-ref", "refs/keep/other", other)
	hook := filepath.Join(bare, "hooks", "pre-receive")
	writeFile(t, hook, "#!/bin/sh\ncat >/dev/null\nenv -u GIT_QUARANTINE_PATH git update-ref refs/heads/main "+other+"\n", 0o755)

	commit(t, r, "ours", put("a.yaml", "a"))
	err := r.Push(ctx(t))
	if !errors.Is(err, ErrRemoteMoved) {
		t.Fatalf("Push: %v, want ErrRemoteMoved", err)
	}
	t.Logf("server-side rejection: %v", err)
	if got := gitCLI(t, bare, "rev-parse", "main"); got != other {
		t.Fatalf("main = %s, want %s", got, other)
	}
	if err := os.Remove(hook); err != nil {
		t.Fatal(err)
	}
	if err := r.Fetch(ctx(t)); err != nil {
		t.Fatal(err)
	}
	commit(t, r, "ours", put("a.yaml", "a"))
	if err := r.Push(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestPushRejectedByHook(t *testing.T) {
	bare := newBare(t)
	seed(t, bare)
	r := openFile(t, bare)
	writeFile(t, filepath.Join(bare, "hooks", "pre-receive"), "#!/bin/sh\necho 'branch is protected' >&2\nexit 1\n", 0o755)
	commit(t, r, "ours", put("a.yaml", "a"))
	err := r.Push(ctx(t))
	if !errors.Is(err, ErrPushRejected) || errors.Is(err, ErrRemoteMoved) {
		t.Fatalf("Push: %v, want ErrPushRejected", err)
	}
	if !strings.Contains(err.Error(), "branch is protected") {
		t.Errorf("remote message missing: %v", err)
	}
}

func TestPathConflicts(t *testing.T) {
	bare := newBare(t)
	seed(t, bare)
	r := openFile(t, bare)
	tip := r.Tip()
	for _, tc := range []struct {
		name    string
		changes []Change
	}{
		{"write below a file", []Change{put("README.md/x", "x")}},
		{"write over a folder", []Change{put("docs", "x")}},
		{"delete a folder", []Change{del("docs")}},
		{"write below a file written earlier", []Change{put("n/a", "x"), put("n/a/b", "y")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := r.Commit(CommitRequest{Author: bot, Changes: tc.changes})
			if !errors.Is(err, ErrPathConflict) {
				t.Fatalf("err %v, want ErrPathConflict", err)
			}
			if r.Tip() != tip {
				t.Fatal("Tip moved")
			}
		})
	}
	// A folder emptied earlier in the same request may become a file.
	h, ok := commit(t, r, "replace", del("docs/guide.md"), put("docs", "now a file"))
	if !ok || h == tip.String() {
		t.Fatal("no commit")
	}
	if b, ok, err := r.ReadFile("docs"); err != nil || !ok || string(b) != "now a file" {
		t.Fatalf("ReadFile(docs) = %q %v %v", b, ok, err)
	}
}

func TestInvalidPathsRejected(t *testing.T) {
	bare := newBare(t)
	r := openFile(t, bare)
	for _, p := range []string{"", "/abs", "a//b", "a/", "../x", "a/../b", "./a", "a/.", ".git/config", "a/.GIT/b", `a\b`, "a\x00b"} {
		if _, _, err := r.Commit(CommitRequest{Author: bot, Changes: []Change{put("ok.yaml", "x"), put(p, "x")}}); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("Commit(%q): %v, want ErrInvalidPath", p, err)
		}
		if _, _, err := r.ReadFile(p); !errors.Is(err, ErrInvalidPath) {
			t.Errorf("ReadFile(%q): %v, want ErrInvalidPath", p, err)
		}
	}
	if !r.Tip().IsZero() {
		t.Fatal("a rejected request committed")
	}
}

func TestReadFileAndWalk(t *testing.T) {
	bare := newBare(t)
	seed(t, bare)
	r := openFile(t, bare)
	commit(t, r, "x", put("clusters/c1/ns1/b.yaml", "b"), put("clusters/c1/ns1/a.yaml", "a"))

	if b, ok, err := r.ReadFile("clusters/c1/ns1/a.yaml"); err != nil || !ok || string(b) != "a" {
		t.Fatalf("ReadFile = %q %v %v", b, ok, err)
	}
	if b, ok, err := r.ReadFile("README.md"); err != nil || !ok || string(b) != humanFiles["README.md"] {
		t.Fatalf("ReadFile(README.md) = %q %v %v", b, ok, err)
	}
	for _, p := range []string{"clusters", "missing.yaml", "no/such/file", "README.md/x", "vendor/lib"} {
		if _, ok, err := r.ReadFile(p); err != nil || ok {
			t.Errorf("ReadFile(%q) = %v %v, want not found", p, ok, err)
		}
	}

	walk := func(dir string) []string {
		var got []string
		if err := r.Walk(dir, func(p string, h plumbing.Hash) error {
			if h.IsZero() {
				t.Errorf("%s: zero hash", p)
			}
			got = append(got, p)
			return nil
		}); err != nil {
			t.Fatalf("Walk(%q): %v", dir, err)
		}
		return got
	}
	if got, want := strings.Join(walk("clusters/c1"), ","), "clusters/c1/KEEP.md,clusters/c1/ns1/a.yaml,clusters/c1/ns1/b.yaml,clusters/c1/ns1/cm.yml"; got != want {
		t.Fatalf("Walk(clusters/c1) = %s\nwant %s", got, want)
	}
	if got := walk(""); len(got) != len(humanFiles)+4 { // + deploy.sh, readme-link, a.yaml, b.yaml (no submodule)
		t.Fatalf("Walk(root) = %v", got)
	}
	if got := walk("missing"); len(got) != 0 {
		t.Fatalf("Walk(missing) = %v", got)
	}
	stop := errors.New("stop")
	n := 0
	if err := r.Walk(".", func(string, plumbing.Hash) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("Walk stop: %v after %d", err, n)
	}
}

func TestReopenReusesDir(t *testing.T) {
	bare := newBare(t)
	seed(t, bare)
	dir := filepath.Join(t.TempDir(), "mirror")
	o := Options{URL: "file://" + bare, Branch: "main", Dir: dir}
	r1, err := Open(ctx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, r1, "pushed", put("a.yaml", "a"))
	if err := r1.Push(ctx(t)); err != nil {
		t.Fatal(err)
	}
	commit(t, r1, "not pushed", put("b.yaml", "b"))

	r2, err := Open(ctx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Head() != r1.Head() || r2.Tip() != r1.Head() {
		t.Fatalf("reopened: Head %s Tip %s, want %s", r2.Head(), r2.Tip(), r1.Head())
	}
	if got := gitCLI(t, dir, "rev-parse", "HEAD"); got != r2.Tip().String() {
		t.Fatalf("mirror HEAD %s", got)
	}
	if got := gitCLI(t, dir, "config", "remote.origin.url"); got != "file://"+bare {
		t.Fatalf("remote.origin.url = %s", got)
	}
}

func TestMissingBranchIsEmpty(t *testing.T) {
	bare := newBare(t)
	seed(t, bare)
	r, err := Open(ctx(t), Options{URL: "file://" + bare, Branch: "gitops/c1", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Head().IsZero() {
		t.Fatalf("Head %s, want zero", r.Head())
	}
	commit(t, r, "first", put("a.yaml", "a"))
	if err := r.Push(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if got := gitCLI(t, bare, "ls-tree", "-r", "--name-only", "gitops/c1"); got != "a.yaml" {
		t.Fatalf("new branch: %q", got)
	}
	if got := gitCLI(t, bare, "rev-list", "--count", "main"); got != "1" {
		t.Fatal("main changed")
	}
	// The branch disappears on the remote: Fetch treats it as new again.
	gitCLI(t, bare, "update-ref", "-d", "refs/heads/gitops/c1")
	if err := r.Fetch(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if !r.Head().IsZero() || !r.Tip().IsZero() {
		t.Fatalf("after delete: Head %s Tip %s", r.Head(), r.Tip())
	}
}

func TestInvalidOptions(t *testing.T) {
	ok := Options{URL: "https://example.com/r.git", Branch: "main", Dir: t.TempDir()}
	for _, tc := range []struct {
		name string
		edit func(*Options)
	}{
		{"no URL", func(o *Options) { o.URL = "" }},
		{"no branch", func(o *Options) { o.Branch = "" }},
		{"full ref as branch", func(o *Options) { o.Branch = "refs/heads/main" }},
		{"bad branch", func(o *Options) { o.Branch = "a..b" }},
		{"no dir", func(o *Options) { o.Dir = "" }},
		{"negative timeout", func(o *Options) { o.Timeout = -1 }},
		{"unsupported scheme", func(o *Options) { o.URL = "ftp://example.com/r.git" }},
		{"ssh without key", func(o *Options) { o.URL = "ssh://git@example.com/r.git"; o.Auth.KnownHosts = []byte("x") }},
		{"ssh without known_hosts", func(o *Options) { o.URL = "git@example.com:r.git"; o.Auth.SSHPrivateKey = []byte("k") }},
		{"ssh with bad key", func(o *Options) {
			o.URL = "git@example.com:r.git"
			o.Auth.SSHPrivateKey = []byte("not a key")
			o.Auth.KnownHosts = []byte("example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			_, err := Open(ctx(t), o)
			if !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("Open: %v, want ErrInvalidOptions", err)
			}
		})
	}
	o := ok
	if err := o.Validate(); err != nil || o.Timeout != DefaultTimeout {
		t.Fatalf("Validate: %v, Timeout %v", err, o.Timeout)
	}
}

func TestHistoryWalksFirstParentsFromHead(t *testing.T) {
	bare := newBare(t)
	seed(t, bare)
	r := openFile(t, bare)
	var want []string
	for i := 0; i < 3; i++ {
		h, _ := commit(t, r, fmt.Sprintf("change %d", i), Change{Path: "d/f.yaml", Content: []byte(fmt.Sprint(i))})
		want = append([]string{h}, want...)
	}
	if err := r.Push(ctx(t)); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := r.History(plumbing.ZeroHash, 3, func(h plumbing.Hash, msg string) bool {
		got = append(got, h.String())
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("History = %v, want %v (newest first, max 3)", got, want)
	}
	stop := plumbing.NewHash(want[1])
	got = nil
	_ = r.History(stop, 100, func(h plumbing.Hash, msg string) bool { got = append(got, msg); return true })
	if len(got) != 1 || !strings.HasPrefix(got[0], "change 2") {
		t.Errorf("History until %s = %q, want only the newest commit", stop, got)
	}
}

func TestResetDiscardsUnpushedCommitsWithoutTheRemote(t *testing.T) {
	bare := newBare(t)
	seed(t, bare)
	r := openFile(t, bare)
	head := r.Head()
	commit(t, r, "unpushed", put("d/f.yaml", "x"))
	if r.Tip() == head {
		t.Fatal("Commit did not move Tip")
	}
	if err := os.RemoveAll(bare); err != nil { // the remote is gone
		t.Fatal(err)
	}
	if err := r.Reset(); err != nil {
		t.Fatal(err)
	}
	if r.Tip() != head {
		t.Errorf("Tip = %s after Reset, want Head %s", r.Tip(), head)
	}
	if _, ok, _ := r.ReadFile("d/f.yaml"); ok {
		t.Error("the discarded commit's file is still in Tip's tree")
	}
	// Writing the same content again is a change again.
	if _, changed := commit(t, r, "again", put("d/f.yaml", "x")); !changed {
		t.Error("re-applying the discarded change made no commit")
	}
}

// TestPushSendsASubtreeChangedAndChangedBack pushes three commits in one go: a file is
// added, a second one beside it, and the second deleted again. The last commit's folder is
// the first one's, so the folder's objects must be sent even though the middle commit, also
// unknown to the remote, holds them at the same path.
func TestPushSendsASubtreeChangedAndChangedBack(t *testing.T) {
	bare := newBare(t)
	seed(t, bare)
	r := openFile(t, bare)
	commit(t, r, "add a", put("dir/a.yaml", "a"))
	commit(t, r, "add b", put("dir/b.yaml", "b"))
	commit(t, r, "remove b", del("dir/b.yaml"))
	if err := r.Push(ctx(t)); err != nil {
		t.Fatalf("Push: %v", err)
	}
	fsck(t, bare)
	got := lsTree(t, bare, "main")
	if _, ok := got["dir/b.yaml"]; ok || got["dir/a.yaml"] == "" {
		t.Errorf("remote tree = %v, want dir/a.yaml and no dir/b.yaml", got)
	}
}

// TestManyPushesKeepAValidMirror pushes more times than the mirror may hold packs: the small
// packs are merged, the mirror passes git fsck, and a reopened mirror (as after a restart)
// reads the pushed history. An unpushed commit leaves no ref naming a missing object.
func TestManyPushesKeepAValidMirror(t *testing.T) {
	bare := newBare(t)
	seed(t, bare)
	dir := filepath.Join(t.TempDir(), "mirror")
	o := Options{URL: "file://" + bare, Branch: "main", Dir: dir}
	r, err := Open(ctx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	pushes := 2*maxPacks + 3
	for i := range pushes {
		// all.yaml cycles through three contents, so later packs hold objects earlier ones
		// hold too, and merges meet the same object twice.
		commit(t, r, fmt.Sprint("push ", i), put(fmt.Sprintf("ns%d/cm.yaml", i%5), fmt.Sprint("v: ", i)), put("all.yaml", fmt.Sprint(i%3)))
		if err := r.Push(ctx(t)); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	packs, err := filepath.Glob(filepath.Join(dir, "objects", "pack", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) > maxPacks {
		t.Errorf("%d packs after %d pushes, want at most %d", len(packs), pushes, maxPacks)
	}
	commit(t, r, "not pushed", put("later.yaml", "x"))
	gitCLI(t, dir, "fsck", "--strict", "--no-dangling")
	fsck(t, bare)

	again, err := Open(ctx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if again.Tip() != r.Head() {
		t.Fatalf("reopened at %s, want the last push %s", again.Tip(), r.Head())
	}
	content, ok, err := again.ReadFile("all.yaml")
	if err != nil || !ok || string(content) != fmt.Sprint((pushes-1)%3) {
		t.Fatalf("all.yaml = %q %v %v", content, ok, err)
	}
	n := 0
	if err := again.History(plumbing.ZeroHash, 1000, func(plumbing.Hash, string) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	if n != pushes+1 {
		t.Errorf("history has %d commits, want %d", n, pushes+1)
	}
}
