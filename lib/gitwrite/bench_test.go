package gitwrite

import (
	"bufio"
	"fmt"
	"testing"
	"time"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/storage/filesystem"
	"github.com/go-git/go-git/v5/storage/memory"
)

// BenchmarkCommitOneFile commits one changed file per iteration (no push) to
// mirrors holding 100 and 100k other files, 100 per namespace folder. The touched
// file (clusters/c1/ns1/app.yaml) has 10 siblings in both; its cluster folder has
// 1 and 1,000 namespaces, which is the part of the cost that grows.
func BenchmarkCommitOneFile(b *testing.B) {
	for _, n := range []int{100, 100_000} {
		dir := buildFixture(b, n)
		seq := 0 // the function below runs more than once on the same mirror
		b.Run(fmt.Sprintf("files=%d", n), func(b *testing.B) {
			r, err := openDir(dir, "main")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				seq++
				_, ok, err := r.Commit(CommitRequest{
					Author:  bot,
					Message: "bench",
					Changes: []Change{put("clusters/c1/ns1/app.yaml", fmt.Sprintf("n: %d\ni: %d\n", n, seq))},
				})
				if err != nil || !ok {
					b.Fatalf("Commit: %v %v", ok, err)
				}
			}
		})
	}
}

// buildFixture writes a bare mirror in b.TempDir() whose main branch has one
// commit with files "clusters/c1/dNNNN/fNNNNNN.txt" (100 per directory) plus
// clusters/c1/ns1/*.yaml, as a single packfile built in memory: no worktree,
// no loose objects, a few seconds for 100k files.
func buildFixture(b *testing.B, files int) string {
	b.Helper()
	start := time.Now()
	mem := memory.NewStorage()
	var all []plumbing.Hash
	put := func(o plumbing.EncodedObject) plumbing.Hash {
		h, err := mem.SetEncodedObject(o)
		if err != nil {
			b.Fatal(err)
		}
		all = append(all, h)
		return h
	}
	blob := func(content string) plumbing.Hash {
		o := mem.NewEncodedObject()
		o.SetType(plumbing.BlobObject)
		w, _ := o.Writer()
		_, _ = w.Write([]byte(content))
		_ = w.Close()
		return put(o)
	}
	tree := func(entries []object.TreeEntry) plumbing.Hash {
		sortEntries(entries)
		o := mem.NewEncodedObject()
		if err := (&object.Tree{Entries: entries}).Encode(o); err != nil {
			b.Fatal(err)
		}
		return put(o)
	}

	var dirs []object.TreeEntry
	for d := 0; d*100 < files; d++ {
		var es []object.TreeEntry
		for f := d * 100; f < min(files, (d+1)*100); f++ {
			es = append(es, object.TreeEntry{Name: fmt.Sprintf("f%06d.txt", f), Mode: filemode.Regular,
				Hash: blob(fmt.Sprintf("file %d\n", f))})
		}
		dirs = append(dirs, object.TreeEntry{Name: fmt.Sprintf("d%04d", d), Mode: filemode.Dir, Hash: tree(es)})
	}
	var ns1 []object.TreeEntry
	for i := 0; i < 10; i++ {
		name := fmt.Sprintf("cm%d.yaml", i)
		if i == 0 {
			name = "app.yaml"
		}
		ns1 = append(ns1, object.TreeEntry{Name: name, Mode: filemode.Regular, Hash: blob(name + "\n")})
	}
	// The namespaces sit beside ns1, as a cluster's do: the changed path crosses a folder
	// as wide as the repository is large, which every commit rewrites.
	c1 := tree(append(dirs, object.TreeEntry{Name: "ns1", Mode: filemode.Dir, Hash: tree(ns1)}))
	clusters := tree([]object.TreeEntry{{Name: "c1", Mode: filemode.Dir, Hash: c1}})
	root := tree([]object.TreeEntry{{Name: "clusters", Mode: filemode.Dir, Hash: clusters}})
	co := mem.NewEncodedObject()
	sig := object.Signature{Name: "fixture", Email: "f@example.com", When: bot.When}
	if err := (&object.Commit{Author: sig, Committer: sig, Message: "fixture", TreeHash: root}).Encode(co); err != nil {
		b.Fatal(err)
	}
	commit := put(co)

	dir := b.TempDir()
	r, err := openDir(dir, "main")
	if err != nil {
		b.Fatal(err)
	}
	pw, ok := storer.EncodedObjectStorer(r.st).(storer.PackfileWriter)
	if !ok {
		b.Fatal("storage cannot write packfiles")
	}
	w, err := pw.PackfileWriter()
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := packfile.NewEncoder(bw, mem, false).Encode(all, 0); err != nil {
		b.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	// A fresh storage sees the new pack.
	st := filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRUDefault())
	for _, ref := range []plumbing.ReferenceName{"refs/heads/main", "refs/remotes/origin/main"} {
		if err := st.SetReference(plumbing.NewHashReference(ref, commit)); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("fixture: %d files, %d objects, built in %v", files, len(all), time.Since(start).Round(time.Millisecond))
	return dir
}
