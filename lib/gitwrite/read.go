package gitwrite

import (
	"fmt"
	"io"
	"path"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// ReadFile returns the content of the file at p in Tip's tree. It returns
// false (and no error) when p does not exist or is not a file (a directory or
// a submodule). Symlinks are files here: their content is the link target.
func (r *Repo) ReadFile(p string) ([]byte, bool, error) {
	segs, err := splitPath(p)
	if err != nil {
		return nil, false, fmt.Errorf("gitwrite: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	tree, err := r.tipTree()
	if err != nil || tree == nil {
		return nil, false, err
	}
	for _, s := range segs[:len(segs)-1] {
		if tree, err = r.subtree(tree, s); err != nil || tree == nil {
			return nil, false, err
		}
	}
	e, ok := findEntry(tree, segs[len(segs)-1])
	if !ok || !isBlob(e.Mode) {
		return nil, false, nil
	}
	blob, err := object.GetBlob(r.st, e.Hash)
	if err != nil {
		return nil, false, fmt.Errorf("gitwrite: read blob %s (%s): %w", e.Hash, p, err)
	}
	rd, err := blob.Reader()
	if err != nil {
		return nil, false, fmt.Errorf("gitwrite: read blob %s (%s): %w", e.Hash, p, err)
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, false, fmt.Errorf("gitwrite: read blob %s (%s): %w", e.Hash, p, err)
	}
	return b, true, nil
}

// Walk calls fn for every file (blob entry: regular, executable or symlink)
// under dir in Tip's tree, in git's tree order, with its slash-separated path
// from the repository root. dir "" or "." is the root. A missing dir, or one
// that is a file, visits nothing. An error from fn stops the walk and is
// returned unchanged. Only the trees under dir are read.
func (r *Repo) Walk(dir string, fn func(path string, blob plumbing.Hash) error) error {
	segs, err := splitDir(dir)
	if err != nil {
		return fmt.Errorf("gitwrite: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	tree, err := r.tipTree()
	if err != nil || tree == nil {
		return err
	}
	for _, s := range segs {
		if tree, err = r.subtree(tree, s); err != nil || tree == nil {
			return err
		}
	}
	return r.walk(tree, path.Join(segs...), fn)
}

func (r *Repo) walk(t *object.Tree, prefix string, fn func(string, plumbing.Hash) error) error {
	for _, e := range t.Entries {
		p := e.Name
		if prefix != "" {
			p = prefix + "/" + e.Name
		}
		switch {
		case e.Mode == filemode.Dir:
			sub, err := object.GetTree(r.st, e.Hash)
			if err != nil {
				return fmt.Errorf("gitwrite: read tree %s (%s): %w", e.Hash, p, err)
			}
			if err := r.walk(sub, p, fn); err != nil {
				return err
			}
		case isBlob(e.Mode):
			if err := fn(p, e.Hash); err != nil {
				return err
			}
		}
	}
	return nil
}

// tipTree returns Tip's root tree, or nil when there is no Tip yet.
func (r *Repo) tipTree() (*object.Tree, error) {
	if r.tip.IsZero() {
		return nil, nil
	}
	c, err := r.repo.CommitObject(r.tip)
	if err != nil {
		return nil, fmt.Errorf("gitwrite: read tip %s: %w", r.tip, err)
	}
	t, err := object.GetTree(r.st, c.TreeHash)
	if err != nil {
		return nil, fmt.Errorf("gitwrite: read tree %s: %w", c.TreeHash, err)
	}
	return t, nil
}

// subtree returns the directory name in t, or nil if it is missing or not a
// directory.
func (r *Repo) subtree(t *object.Tree, name string) (*object.Tree, error) {
	e, ok := findEntry(t, name)
	if !ok || e.Mode != filemode.Dir {
		return nil, nil
	}
	sub, err := object.GetTree(r.st, e.Hash)
	if err != nil {
		return nil, fmt.Errorf("gitwrite: read tree %s: %w", e.Hash, err)
	}
	return sub, nil
}

func findEntry(t *object.Tree, name string) (object.TreeEntry, bool) {
	for _, e := range t.Entries {
		if e.Name == name {
			return e, true
		}
	}
	return object.TreeEntry{}, false
}

func isBlob(m filemode.FileMode) bool {
	return m == filemode.Regular || m == filemode.Executable || m == filemode.Symlink || m == filemode.Deprecated
}

// History calls fn with the hash and message of the commits reachable from Head, newest
// first, following first parents, until fn returns false, stop is reached, or max commits
// were visited. It reads commit objects only, never trees.
func (r *Repo) History(stop plumbing.Hash, max int, fn func(h plumbing.Hash, message string) bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for h, n := r.head, 0; !h.IsZero() && h != stop && n < max; n++ {
		c, err := object.GetCommit(r.st, h)
		if err != nil {
			return fmt.Errorf("gitwrite: read commit %s: %w", h, err)
		}
		if !fn(h, c.Message) {
			return nil
		}
		if len(c.ParentHashes) == 0 {
			return nil
		}
		h = c.ParentHashes[0]
	}
	return nil
}
