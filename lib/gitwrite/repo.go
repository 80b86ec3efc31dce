package gitwrite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/client"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// objectCacheSize bounds go-git's cache of decoded objects (its default is 96 MiB). Commits
// start from the trees the last commit kept (see treeBuilder), so a small cache loses
// little, and a writer on a large repository stays well under its memory budget.
const objectCacheSize = 8 * cache.MiByte

// remoteName is the only remote the mirror has.
const remoteName = "origin"

// Repo is a bare mirror of one branch of a remote. Create it with Open.
type Repo struct {
	mu sync.Mutex

	opts Options // validated; URL without credentials
	auth transport.AuthMethod
	red  redactor

	repo *git.Repository
	st   *store

	branch    plumbing.ReferenceName // refs/heads/<branch>: Tip
	remoteRef plumbing.ReferenceName // refs/remotes/origin/<branch>: Head

	head, tip plumbing.Hash

	// trees holds the entries of the trees the last commit read or wrote (see treeBuilder).
	trees map[plumbing.Hash][]object.TreeEntry
}

// Open validates o, creates or reuses the bare repository in o.Dir, points its
// "origin" remote at o.URL and fetches the branch (see Fetch). The returned
// Repo's Tip equals its Head.
func Open(ctx context.Context, o Options) (*Repo, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	auth, err := o.authMethod()
	if err != nil {
		return nil, err
	}
	r, err := openDir(o.Dir, o.Branch)
	if err != nil {
		return nil, err
	}
	r.opts, r.auth, r.red = o, auth, newRedactor(o.Auth)

	cfg, err := r.repo.Config()
	if err != nil {
		return nil, fmt.Errorf("gitwrite: read config in %s: %w", o.Dir, err)
	}
	cfg.Remotes[remoteName] = &config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{o.URL},
		Fetch: []config.RefSpec{r.fetchSpec()},
	}
	if err := r.repo.SetConfig(cfg); err != nil {
		return nil, fmt.Errorf("gitwrite: write config in %s: %w", o.Dir, err)
	}
	if err := r.Fetch(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// openDir opens (or initializes) the bare repository in dir without touching
// any remote. Head and Tip are read from the refs stored there.
func openDir(dir, branch string) (*Repo, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("gitwrite: create %s: %w", dir, err)
	}
	st := newStore(filesystem.NewStorage(osfs.New(dir), cache.NewObjectLRU(objectCacheSize)), dir)
	repo, err := git.Init(st, nil)
	if errors.Is(err, git.ErrRepositoryAlreadyExists) {
		repo, err = git.Open(st, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("gitwrite: open bare repository in %s: %w", dir, err)
	}
	r := &Repo{
		repo:      repo,
		st:        st,
		branch:    plumbing.NewBranchReferenceName(branch),
		remoteRef: plumbing.NewRemoteReferenceName(remoteName, branch),
	}
	// HEAD names our branch so that `git -C dir log` shows the Tip.
	if err := st.SetReference(plumbing.NewSymbolicReference(plumbing.HEAD, r.branch)); err != nil {
		return nil, fmt.Errorf("gitwrite: set HEAD in %s: %w", dir, err)
	}
	if r.head, err = r.readRef(r.remoteRef); err != nil {
		return nil, err
	}
	if r.tip, err = r.readRef(r.branch); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Repo) fetchSpec() config.RefSpec {
	return config.RefSpec(fmt.Sprintf("+%s:%s", r.branch, r.remoteRef))
}

// readRef returns the hash name points to, or ZeroHash if it does not exist.
func (r *Repo) readRef(name plumbing.ReferenceName) (plumbing.Hash, error) {
	ref, err := r.st.Reference(name)
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return plumbing.ZeroHash, nil
	}
	if err != nil {
		return plumbing.ZeroHash, fmt.Errorf("gitwrite: read %s: %w", name, err)
	}
	return ref.Hash(), nil
}

// setRef points name at h, or removes name when h is ZeroHash.
func (r *Repo) setRef(name plumbing.ReferenceName, h plumbing.Hash) error {
	var err error
	if h.IsZero() {
		err = r.st.RemoveReference(name)
	} else {
		err = r.st.SetReference(plumbing.NewHashReference(name, h))
	}
	if err != nil {
		return fmt.Errorf("gitwrite: update %s: %w", name, err)
	}
	return nil
}

// Head returns the remote branch tip as last fetched or pushed, or ZeroHash
// if the branch does not exist on the remote.
func (r *Repo) Head() plumbing.Hash {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.head
}

// Tip returns the local branch tip: Head plus the commits not pushed yet.
func (r *Repo) Tip() plumbing.Hash {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tip
}

// Fetch updates Head from the remote branch. An empty remote repository or a
// missing branch is not an error: Head is then ZeroHash and the first Push
// creates the branch. Afterwards Tip is reset to Head: unpushed local commits
// are discarded.
func (r *Repo) Fetch(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()

	op := "fetch " + redactURL(r.opts.URL) + " " + r.branch.String()
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	err := r.repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RefSpecs:   []config.RefSpec{r.fetchSpec()},
		Auth:       r.auth,
		Tags:       git.NoTags,
		Force:      true,
	})
	switch {
	case err == nil, errors.Is(err, git.NoErrAlreadyUpToDate):
	case errors.Is(err, transport.ErrEmptyRemoteRepository),
		errors.Is(err, git.NoMatchingRefSpecError{}):
		// No branch (yet) on the remote.
		if err := r.setRef(r.remoteRef, plumbing.ZeroHash); err != nil {
			return err
		}
	default:
		return r.red.wrap(op, err)
	}

	head, err := r.readRef(r.remoteRef)
	if err != nil {
		return err
	}
	if err := r.setRef(r.branch, head); err != nil {
		return err
	}
	r.st.discard()
	r.head, r.tip = head, head
	return nil
}

// Reset discards the unpushed local commits: Tip goes back to Head. It needs no network, so
// it works while the remote is down.
func (r *Repo) Reset() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tip == r.head {
		return nil
	}
	r.st.discard()
	r.tip = r.head
	return nil
}

// Push sends the commits between Head and Tip and moves the remote branch
// from Head to Tip, creating it when Head is ZeroHash. The move is a
// compare-and-swap: if the remote branch is not at Head (checked against the
// server's advertisement, and again by the server when it updates the ref),
// Push fails with ErrRemoteMoved and changes nothing. On success Head = Tip.
// Push with Tip == Head does nothing and returns nil.
//
// Only the objects introduced by the unpushed commits are sent, found by a
// tree diff against each parent that skips unchanged subtrees; go-git's
// Remote.Push is not used because it walks every object reachable from the
// remote refs (O(history x files)).
func (r *Repo) Push(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tip == r.head {
		return nil
	}
	op := "push " + redactURL(r.opts.URL) + " " + r.branch.String()

	hashes, err := r.objectsToPush()
	if err != nil {
		return fmt.Errorf("gitwrite: %s: %w", op, err)
	}

	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()

	ep, err := transport.NewEndpoint(r.opts.URL)
	if err != nil {
		return r.red.wrap(op, err)
	}
	cl, err := client.NewClient(ep)
	if err != nil {
		return r.red.wrap(op, err)
	}
	sess, err := cl.NewReceivePackSession(ep, r.auth)
	if err != nil {
		return r.red.wrap(op, err)
	}
	defer sess.Close()

	ar, err := sess.AdvertisedReferencesContext(ctx)
	if err != nil {
		return r.red.wrap(op, err)
	}
	remote := ar.References[r.branch.String()]
	if remote != r.head {
		want, got := r.head.String(), remote.String()
		if r.head.IsZero() {
			want = "absent"
		}
		if remote.IsZero() {
			got = "absent"
		}
		return r.red.wrapKind(op, ErrRemoteMoved,
			fmt.Errorf("remote ref %s required to be %s but is %s", r.branch, want, got))
	}

	pack, err := encodePack(r.st, hashes)
	if err != nil {
		return fmt.Errorf("gitwrite: %s: encode pack: %w", op, err)
	}

	req := packp.NewReferenceUpdateRequestFromCapabilities(ar.Capabilities)
	req.Commands = []*packp.Command{{Name: r.branch, Old: r.head, New: r.tip}}
	req.Packfile = io.NopCloser(bytes.NewReader(pack.data))
	msgs := &tailBuffer{max: 2048}
	if ar.Capabilities.Supports(capability.Sideband64k) {
		_ = req.Capabilities.Set(capability.Sideband64k)
		req.Progress = msgs
	} else if ar.Capabilities.Supports(capability.Sideband) {
		_ = req.Capabilities.Set(capability.Sideband)
		req.Progress = msgs
	}

	rs, err := sess.ReceivePack(ctx, req)
	if rs != nil {
		if rerr := rs.Error(); rerr != nil {
			kind := classify(rerr)
			if kind == nil {
				kind = ErrPushRejected
			}
			if m := msgs.String(); m != "" {
				rerr = fmt.Errorf("%w (remote said: %s)", rerr, m)
			}
			return r.red.wrapKind(op, kind, rerr)
		}
	}
	if err != nil {
		return r.red.wrap(op, err)
	}

	// The remote has the commits: keep their objects on disk, then let the refs name them.
	if err := r.st.keep(pack); err != nil {
		r.st.discard() // the next Fetch brings them back
		return fmt.Errorf("gitwrite: %s: pushed, but %w", op, err)
	}
	for _, ref := range []plumbing.ReferenceName{r.remoteRef, r.branch} {
		if err := r.setRef(ref, r.tip); err != nil {
			return err
		}
	}
	r.head = r.tip
	return nil
}

// objectsToPush lists the commits from Tip back to Head and the trees and
// blobs each introduced relative to its parent. Subtrees equal to the
// parent's are skipped, so the cost follows the size of the changes.
func (r *Repo) objectsToPush() ([]plumbing.Hash, error) {
	seen := make(map[plumbing.Hash]bool)
	var out []plumbing.Hash
	add := func(h plumbing.Hash) {
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	w := treeWalk{r: r, add: add, compared: map[[2]plumbing.Hash]bool{}}
	for h := r.tip; h != r.head; {
		c, err := r.repo.CommitObject(h)
		if err != nil {
			return nil, fmt.Errorf("read commit %s: %w", h, err)
		}
		add(h)
		var parent, parentTree plumbing.Hash
		if len(c.ParentHashes) > 0 {
			parent = c.ParentHashes[0]
			pc, err := r.repo.CommitObject(parent)
			if err != nil {
				return nil, fmt.Errorf("read commit %s: %w", parent, err)
			}
			parentTree = pc.TreeHash
		} else if !r.head.IsZero() {
			return nil, fmt.Errorf("tip %s does not descend from head %s", r.tip, r.head)
		}
		if err := w.newObjects(c.TreeHash, parentTree); err != nil {
			return nil, err
		}
		h = parent
		if h.IsZero() && !r.head.IsZero() {
			return nil, fmt.Errorf("tip %s does not descend from head %s", r.tip, r.head)
		}
	}
	return out, nil
}

// treeWalk collects the objects of new trees that their base trees lack.
type treeWalk struct {
	r   *Repo
	add func(plumbing.Hash)
	// compared holds the (new, base) tree pairs already walked. A tree seen before against
	// another base must be walked again: an object it shares with that base may be one the
	// remote lacks (a subtree that an unpushed commit changed and a later one changed back).
	compared map[[2]plumbing.Hash]bool
}

// newObjects adds tree newH and everything below it that differs from the entry at the
// same path under oldH (ZeroHash: nothing to compare with).
func (w *treeWalk) newObjects(newH, oldH plumbing.Hash) error {
	pair := [2]plumbing.Hash{newH, oldH}
	if newH == oldH || w.compared[pair] {
		return nil
	}
	w.compared[pair] = true
	w.add(newH)
	nt, err := w.r.repo.TreeObject(newH)
	if err != nil {
		return fmt.Errorf("read tree %s: %w", newH, err)
	}
	old := map[string]plumbing.Hash{}
	oldDir := map[string]bool{}
	if !oldH.IsZero() {
		ot, err := w.r.repo.TreeObject(oldH)
		if err != nil {
			return fmt.Errorf("read tree %s: %w", oldH, err)
		}
		for _, e := range ot.Entries {
			old[e.Name] = e.Hash
			oldDir[e.Name] = e.Mode == filemode.Dir
		}
	}
	for _, e := range nt.Entries {
		oh, ok := old[e.Name]
		if ok && oh == e.Hash {
			continue
		}
		switch e.Mode {
		case filemode.Dir:
			base := plumbing.ZeroHash
			if ok && oldDir[e.Name] {
				base = oh
			}
			if err := w.newObjects(e.Hash, base); err != nil {
				return err
			}
		case filemode.Submodule:
			// A commit in another repository: nothing to send.
		default:
			w.add(e.Hash)
		}
	}
	return nil
}

// tailBuffer keeps the last max bytes written: the remote's sideband
// messages, quoted when a push is rejected.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	s := strings.TrimSpace(string(t.b))
	s = strings.ReplaceAll(s, "\r", "\n")
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
}
