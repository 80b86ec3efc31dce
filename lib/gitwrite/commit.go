package gitwrite

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// Signature names the author or committer of a commit.
type Signature struct {
	Name, Email string
	// When is the timestamp recorded, with its time zone. Default: now.
	When time.Time
}

// Change writes or deletes one file.
type Change struct {
	// Path is slash-separated, relative and clean ("a/b.yaml"); see
	// ErrInvalidPath.
	Path string
	// Content is the new file content (mode 0100644, or 0100755 if the path
	// already holds an executable). Ignored when Delete is set.
	Content []byte
	// Delete removes the file. Deleting a missing file does nothing;
	// deleting the last file of a directory removes the directory.
	Delete bool
	// Edit, when set, replaces Content: it gets the file's current content,
	// as left by the earlier changes of the request, and returns the new
	// content. It is called only when the file exists; editing a missing file
	// does nothing. It cannot fail: return current to leave the file as it is.
	Edit func(current []byte) []byte
}

// CommitRequest describes one commit.
type CommitRequest struct {
	// Author is required (Name and Email).
	Author Signature
	// Committer defaults to Author when its Name is empty.
	Committer Signature
	// Message is recorded as given.
	Message string
	// Changes are applied in order; a later change to the same path wins.
	Changes []Change
	// AllowEmpty records the commit even when it changes nothing, as a marker in the
	// history (a snapshot that found no drift). An empty repository still gets no commit.
	AllowEmpty bool
}

// Commit applies req.Changes to Tip's tree and, if the tree changed, stores the
// new blobs, the rewritten trees (those on the changed paths; objects already
// stored are skipped) and a commit whose parent is Tip, then advances Tip. It
// returns the new commit and true. When the resulting tree equals Tip's tree
// (identical content, deletes of missing files) nothing is stored and it
// returns Tip and false, unless req.AllowEmpty. Nothing is pushed: see Push.
//
// Entries outside the changed paths are kept as they are, whatever their mode.
func (r *Repo) Commit(req CommitRequest) (plumbing.Hash, bool, error) {
	author, committer, err := signatures(req)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	var parentTree plumbing.Hash
	if !r.tip.IsZero() {
		c, err := r.repo.CommitObject(r.tip)
		if err != nil {
			return plumbing.ZeroHash, false, fmt.Errorf("gitwrite: read tip %s: %w", r.tip, err)
		}
		parentTree = c.TreeHash
	}

	b := &treeBuilder{s: r.st, blobs: map[plumbing.Hash][]byte{}, used: map[plumbing.Hash]bool{},
		cached: r.trees, seen: map[plumbing.Hash][]object.TreeEntry{}}
	root, err := b.load(parentTree)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	for _, ch := range req.Changes {
		if err := b.apply(root, ch); err != nil {
			return plumbing.ZeroHash, false, err
		}
	}
	treeHash, err := b.build(root)
	if err != nil {
		return plumbing.ZeroHash, false, err
	}
	r.trees = b.seen // the next commit most likely rewrites the same folders
	if (treeHash == parentTree && !req.AllowEmpty) || (parentTree.IsZero() && len(root.entries) == 0) {
		return r.tip, false, nil
	}

	// Store children before parents: blobs, trees (built bottom-up), commit.
	for h := range b.used {
		if err := storeBlob(r.st, b.blobs[h]); err != nil {
			return plumbing.ZeroHash, false, err
		}
	}
	for _, t := range b.trees {
		if err := storeObject(r.st, t); err != nil {
			return plumbing.ZeroHash, false, err
		}
	}
	c := &object.Commit{
		Author:    author,
		Committer: committer,
		Message:   req.Message,
		TreeHash:  treeHash,
	}
	if !r.tip.IsZero() {
		c.ParentHashes = []plumbing.Hash{r.tip}
	}
	obj := r.st.NewEncodedObject()
	if err := c.Encode(obj); err != nil {
		return plumbing.ZeroHash, false, fmt.Errorf("gitwrite: encode commit: %w", err)
	}
	if err := storeObject(r.st, obj); err != nil {
		return plumbing.ZeroHash, false, err
	}
	// The branch moves in memory only: its objects are staged, and refs on disk name
	// objects on disk. Push writes both.
	r.tip = obj.Hash()
	return r.tip, true, nil
}

func signatures(req CommitRequest) (author, committer object.Signature, err error) {
	now := time.Now()
	conv := func(role string, s Signature) (object.Signature, error) {
		if s.Name == "" || s.Email == "" {
			return object.Signature{}, fmt.Errorf("gitwrite: %w: %s name and email are required", ErrInvalidCommit, role)
		}
		if strings.ContainsAny(s.Name+s.Email, "<>\n\x00") {
			return object.Signature{}, fmt.Errorf("gitwrite: %w: %s contains '<', '>', a newline or NUL", ErrInvalidCommit, role)
		}
		if s.When.IsZero() {
			s.When = now
		}
		return object.Signature{Name: s.Name, Email: s.Email, When: s.When}, nil
	}
	if author, err = conv("author", req.Author); err != nil {
		return
	}
	c := req.Committer
	if c.Name == "" {
		c = req.Author
	}
	committer, err = conv("committer", c)
	return
}

// dirNode is a directory being edited. entries starts as a copy of the stored
// tree's entries and stays in Git's order, so writing it back needs no sort;
// subs holds the subdirectories loaded for editing.
type dirNode struct {
	orig    plumbing.Hash // stored tree, ZeroHash for a new directory
	entries []object.TreeEntry
	subs    map[string]*dirNode
	dirty   bool
}

// find returns the index of the entry called name. Where an entry sorts depends on
// whether it is a directory, so both places are looked at.
func (n *dirNode) find(name string) (int, bool) {
	for _, dir := range [2]bool{false, true} {
		i := n.search(name, dir)
		if i < len(n.entries) && n.entries[i].Name == name {
			return i, true
		}
	}
	return 0, false
}

// search returns where an entry called name would go.
func (n *dirNode) search(name string, dir bool) int {
	return sort.Search(len(n.entries), func(i int) bool {
		e := &n.entries[i]
		return compareNames(e.Name, e.Mode == filemode.Dir, name, dir) >= 0
	})
}

func (n *dirNode) get(name string) (object.TreeEntry, bool) {
	if i, ok := n.find(name); ok {
		return n.entries[i], true
	}
	return object.TreeEntry{}, false
}

func (n *dirNode) remove(name string) {
	if i, ok := n.find(name); ok {
		n.entries = slices.Delete(n.entries, i, i+1)
	}
}

// set adds or replaces the entry called e.Name.
func (n *dirNode) set(e object.TreeEntry) {
	if i, ok := n.find(e.Name); ok {
		if (n.entries[i].Mode == filemode.Dir) == (e.Mode == filemode.Dir) {
			n.entries[i] = e
			return
		}
		n.entries = slices.Delete(n.entries, i, i+1) // a file became a directory: it moves
	}
	n.entries = slices.Insert(n.entries, n.search(e.Name, e.Mode == filemode.Dir), e)
}

// treeBuilder applies changes to a tree, loading only the directories on the
// changed paths, and collects the objects a commit needs.
type treeBuilder struct {
	s     storer.EncodedObjectStorer
	blobs map[plumbing.Hash][]byte // contents written by the changes, by hash
	used  map[plumbing.Hash]bool   // blobs still referenced by the final trees
	trees []plumbing.EncodedObject // rewritten trees, children first
	// cached holds the entries of the trees the previous commit read or wrote, which are
	// the ones the next commit most likely reads: decoding a wide folder costs more than
	// the rest of a commit. seen collects this commit's for the next.
	cached, seen map[plumbing.Hash][]object.TreeEntry
}

func (b *treeBuilder) load(h plumbing.Hash) (*dirNode, error) {
	n := &dirNode{orig: h, subs: map[string]*dirNode{}}
	if h.IsZero() {
		return n, nil
	}
	entries, ok := b.cached[h]
	if !ok {
		t, err := object.GetTree(b.s, h)
		if err != nil {
			return nil, fmt.Errorf("gitwrite: read tree %s: %w", h, err)
		}
		entries = t.Entries
	}
	b.seen[h] = entries
	n.entries = slices.Clone(entries) // the cached slice is shared; edits go to a copy
	return n, nil
}

// child returns the subdirectory name of n, loading it if needed. With create
// it makes a missing directory and fails with ErrPathConflict if name is not a
// directory; without create it returns nil in both cases.
func (b *treeBuilder) child(n *dirNode, name string, create bool, p string) (*dirNode, error) {
	if sub, ok := n.subs[name]; ok {
		return sub, nil
	}
	e, ok := n.get(name)
	switch {
	case ok && e.Mode != filemode.Dir:
		if !create {
			return nil, nil
		}
		return nil, fmt.Errorf("gitwrite: %w: %q: %q is a file, not a directory", ErrPathConflict, p, name)
	case !ok && !create:
		return nil, nil
	case !ok:
		sub := &dirNode{subs: map[string]*dirNode{}}
		n.set(object.TreeEntry{Name: name, Mode: filemode.Dir})
		n.subs[name] = sub
		return sub, nil
	}
	sub, err := b.load(e.Hash)
	if err != nil {
		return nil, err
	}
	n.subs[name] = sub
	return sub, nil
}

func (b *treeBuilder) apply(root *dirNode, ch Change) error {
	segs, err := splitPath(ch.Path)
	if err != nil {
		return fmt.Errorf("gitwrite: %w", err)
	}
	chain := []*dirNode{root}
	n := root
	create := !ch.Delete && ch.Edit == nil // only a write makes missing directories
	for _, s := range segs[:len(segs)-1] {
		sub, err := b.child(n, s, create, ch.Path)
		if err != nil {
			return err
		}
		if sub == nil {
			return nil // deleting or editing below a missing directory: nothing to do
		}
		chain = append(chain, sub)
		n = sub
	}
	name := segs[len(segs)-1]
	e, exists := n.get(name)
	if exists && e.Mode == filemode.Dir {
		sub, err := b.child(n, name, false, ch.Path)
		if err != nil {
			return err
		}
		if len(sub.entries) != 0 {
			return fmt.Errorf("gitwrite: %w: %q is a directory", ErrPathConflict, ch.Path)
		}
		// An empty directory (emptied by earlier changes) is as good as absent.
		delete(n.subs, name)
		n.remove(name)
		exists = false
	}

	content := ch.Content
	if ch.Edit != nil && !ch.Delete {
		if !exists {
			return nil
		}
		current, err := b.read(e.Hash)
		if err != nil {
			return fmt.Errorf("gitwrite: edit %q: %w", ch.Path, err)
		}
		content = ch.Edit(current)
	}

	if ch.Delete {
		if !exists {
			return nil
		}
		n.remove(name)
	} else {
		h := plumbing.ComputeHash(plumbing.BlobObject, content)
		mode := filemode.Regular
		if exists && e.Mode == filemode.Executable {
			mode = filemode.Executable
		}
		if exists && e.Hash == h && e.Mode == mode {
			return nil
		}
		b.blobs[h] = content
		n.set(object.TreeEntry{Name: name, Mode: mode, Hash: h})
	}
	for _, d := range chain {
		d.dirty = true
	}
	return nil
}

// read returns the content of blob h: written by an earlier change of this
// commit, or stored.
func (b *treeBuilder) read(h plumbing.Hash) ([]byte, error) {
	if content, ok := b.blobs[h]; ok {
		return content, nil
	}
	blob, err := object.GetBlob(b.s, h)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	rd, err := blob.Reader()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", h, err)
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// build returns the hash of n's tree, encoding rewritten trees into b.trees
// (children first). Directories left empty are dropped from their parent.
func (b *treeBuilder) build(n *dirNode) (plumbing.Hash, error) {
	if !n.dirty {
		return n.orig, nil
	}
	for name, sub := range n.subs {
		if !sub.dirty {
			continue
		}
		h, err := b.build(sub)
		if err != nil {
			return plumbing.ZeroHash, err
		}
		if len(sub.entries) == 0 {
			n.remove(name)
			continue
		}
		n.set(object.TreeEntry{Name: name, Mode: filemode.Dir, Hash: h})
	}
	for _, e := range n.entries {
		if _, ok := b.blobs[e.Hash]; ok && e.Mode != filemode.Dir {
			b.used[e.Hash] = true
		}
	}
	obj := encodeTree(n.entries)
	b.trees = append(b.trees, obj)
	b.seen[obj.Hash()] = n.entries
	return obj.Hash(), nil
}

// encodeTree writes entries, already in Git's order, as a tree object: what
// object.Tree.Encode writes, without a formatted print per entry.
func encodeTree(entries []object.TreeEntry) plumbing.EncodedObject {
	size := 0
	for _, e := range entries {
		size += 7 + 1 + len(e.Name) + 1 + len(e.Hash)
	}
	buf := make([]byte, 0, size)
	for _, e := range entries {
		switch e.Mode {
		case filemode.Regular:
			buf = append(buf, "100644 "...)
		case filemode.Dir:
			buf = append(buf, "40000 "...)
		default:
			buf = strconv.AppendUint(buf, uint64(e.Mode), 8)
			buf = append(buf, ' ')
		}
		buf = append(buf, e.Name...)
		buf = append(buf, 0)
		buf = append(buf, e.Hash[:]...)
	}
	obj := &plumbing.MemoryObject{}
	obj.SetType(plumbing.TreeObject)
	_, _ = obj.Write(buf) // a MemoryObject's Write cannot fail
	return obj
}

// storeObject stages o. Whether the mirror already holds it is not asked: that costs a file
// lookup per object, and a staged duplicate costs nothing (the push sends what the commits
// changed, whatever is staged).
func storeObject(s storer.EncodedObjectStorer, o plumbing.EncodedObject) error {
	if _, err := s.SetEncodedObject(o); err != nil {
		return fmt.Errorf("gitwrite: store %s %s: %w", o.Type(), o.Hash(), err)
	}
	return nil
}

// storeBlob stages a blob of content.
func storeBlob(s storer.EncodedObjectStorer, content []byte) error {
	o := &plumbing.MemoryObject{}
	o.SetType(plumbing.BlobObject)
	_, _ = o.Write(content) // a MemoryObject's Write cannot fail
	return storeObject(s, o)
}
