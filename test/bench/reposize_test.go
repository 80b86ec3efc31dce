package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSeedBare checks the fixture: the number of files, the layout, the size of a file, and
// that the same size gives the same commit.
func TestSeedBare(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git not found: apt-get install -y git")
	}
	ctx := context.Background()
	dirs := []string{filepath.Join(t.TempDir(), "a.git"), filepath.Join(t.TempDir(), "b.git")}
	var heads []string
	for _, dir := range dirs {
		if err := seedBare(ctx, dir, "main", 250); err != nil {
			t.Fatal(err)
		}
		heads = append(heads, gitOut(t, dir, "rev-parse", "main"))
		names := strings.Fields(gitOut(t, dir, "ls-tree", "-r", "--name-only", "main"))
		if len(names) != 250 {
			t.Fatalf("%d files, want 250", len(names))
		}
		if want := "clusters/bench/app-0002/core/configmaps/cm-000249.yaml"; names[249] != want {
			t.Errorf("last file %s, want %s", names[249], want)
		}
		if nss := strings.Fields(gitOut(t, dir, "ls-tree", "--name-only", "main:clusters/bench")); len(nss) != 3 {
			t.Errorf("namespace folders %v, want 3", nss)
		}
		content := gitOut(t, dir, "show", "main:"+names[0])
		if n := len(content); n < 900 || n > 1300 || !strings.Contains(content, "kind: ConfigMap\n") {
			t.Errorf("%s: %d bytes, want about 1 KiB of ConfigMap:\n%s", names[0], n, content)
		}
	}
	if heads[0] != heads[1] {
		t.Errorf("two seeds gave %s and %s, want the same commit", heads[0], heads[1])
	}
	// Seeding an existing repository again replaces the branch.
	if err := seedBare(ctx, dirs[0], "main", 10); err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(gitOut(t, dirs[0], "ls-tree", "-r", "--name-only", "main"))); n != 10 {
		t.Errorf("after a second seed: %d files, want 10", n)
	}
}

// gitOut runs git against the bare repository dir and returns its output.
func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"--git-dir=" + dir}, args...)...)
	cmd.Env = append(cmd.Environ(), gitEnv...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v", strings.Join(args, " "), err)
	}
	return string(out)
}
