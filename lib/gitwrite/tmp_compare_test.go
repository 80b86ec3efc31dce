package gitwrite

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
)

func BenchmarkTmpPushCompare(b *testing.B) {
	dir := buildFixture(b, 100_000)
	remote := filepath.Join(b.TempDir(), "r.git")
	if out, err := exec.Command("git", "clone", "--quiet", "--bare", dir, remote).CombinedOutput(); err != nil {
		b.Fatal(string(out))
	}
	r, err := Open(ctx(b), Options{URL: "file://" + remote, Branch: "main", Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		commit(b, r, "h", put(fmt.Sprintf("other/d%04d/f%06d.txt", i*3, i*300), fmt.Sprint(i)))
	}
	if err := r.Push(ctx(b)); err != nil {
		b.Fatal(err)
	}
	commit(b, r, "a", put("clusters/c1/ns1/app.yaml", "x1"))
	t0 := time.Now()
	if err := r.Push(ctx(b)); err != nil {
		b.Fatal(err)
	}
	b.Logf("gitwrite Push: %v", time.Since(t0))
	head := r.Head()
	commit(b, r, "b", put("clusters/c1/ns1/app.yaml", "x2"))
	t0 = time.Now()
	err = r.repo.PushContext(ctx(b), &gogit.PushOptions{RemoteName: "origin",
		RefSpecs:          []config.RefSpec{"refs/heads/main:refs/heads/main"},
		RequireRemoteRefs: []config.RefSpec{config.RefSpec(head.String() + ":refs/heads/main")}})
	b.Logf("go-git Remote.Push: %v err=%v", time.Since(t0), err)
}
