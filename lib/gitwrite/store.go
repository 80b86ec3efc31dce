package gitwrite

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// maxPacks is how many packfiles the mirror may hold before the small ones are merged.
// Every push adds one; object lookups try each pack's index in turn.
const maxPacks = 32

// store is the mirror's object storage with the objects of unpushed commits held in
// memory. A commit then costs no file per object (creating files is what made commits slow:
// ~0.4 ms each on an overlay filesystem, for a few objects per changed file); the objects
// reach the disk after a successful push, as one packfile made of the very bytes pushed.
// The refs on disk therefore only ever name objects on disk, whatever the process does.
type store struct {
	*filesystem.Storage
	dir    string
	staged map[plumbing.Hash]plumbing.EncodedObject
}

func newStore(fs *filesystem.Storage, dir string) *store {
	return &store{Storage: fs, dir: dir, staged: map[plumbing.Hash]plumbing.EncodedObject{}}
}

// SetEncodedObject stages o.
func (s *store) SetEncodedObject(o plumbing.EncodedObject) (plumbing.Hash, error) {
	s.staged[o.Hash()] = o
	return o.Hash(), nil
}

// EncodedObject finds h among the staged objects, then on disk.
func (s *store) EncodedObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if o, ok := s.staged[h]; ok {
		if t != plumbing.AnyObject && o.Type() != t {
			return nil, plumbing.ErrObjectNotFound
		}
		return o, nil
	}
	return s.Storage.EncodedObject(t, h)
}

// DeltaObject is EncodedObject for the pack encoder, which asks for objects this way to
// reuse the deltas of stored packs.
func (s *store) DeltaObject(t plumbing.ObjectType, h plumbing.Hash) (plumbing.EncodedObject, error) {
	if o, ok := s.staged[h]; ok {
		return s.EncodedObject(t, o.Hash())
	}
	return s.Storage.DeltaObject(t, h)
}

// HasEncodedObject reports nil when h is staged or on disk.
func (s *store) HasEncodedObject(h plumbing.Hash) error {
	if _, ok := s.staged[h]; ok {
		return nil
	}
	return s.Storage.HasEncodedObject(h)
}

// EncodedObjectSize is the size of h, staged or on disk.
func (s *store) EncodedObjectSize(h plumbing.Hash) (int64, error) {
	if o, ok := s.staged[h]; ok {
		return o.Size(), nil
	}
	return s.Storage.EncodedObjectSize(h)
}

// discard drops the staged objects: their commits will not be pushed.
func (s *store) discard() { clear(s.staged) }

// keep saves a pushed pack, which holds every staged object, and forgets the staged
// objects. Then, past maxPacks, it merges the small packs.
func (s *store) keep(p *pack) error {
	if err := p.save(s.dir); err != nil {
		return fmt.Errorf("keep the pushed objects: %w", err)
	}
	s.Storage.Reindex() // find the new pack
	s.discard()
	return s.compact()
}

// compact merges the smaller half of the packs into one when there are more than maxPacks,
// so lookups stay fast. Each merge reads only small packs, so its cost follows what was
// pushed or fetched lately, never the size of the repository.
func (s *store) compact() error {
	packs, err := s.Storage.ObjectPacks()
	if err != nil || len(packs) <= maxPacks {
		return err
	}
	size := func(h plumbing.Hash) int64 {
		fi, err := os.Stat(filepath.Join(s.dir, "objects", "pack", "pack-"+h.String()+".pack"))
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	slices.SortFunc(packs, func(a, b plumbing.Hash) int { return cmp.Compare(size(a), size(b)) })
	small := packs[:len(packs)/2]
	var hashes []plumbing.Hash
	seen := map[plumbing.Hash]bool{} // an object pushed twice (a folder changed back) is in two packs
	for _, p := range small {
		hs, err := s.packHashes(p)
		if err != nil {
			return err
		}
		for _, h := range hs {
			if !seen[h] {
				seen[h] = true
				hashes = append(hashes, h)
			}
		}
	}
	merged, err := encodePack(s, hashes)
	if err != nil {
		return fmt.Errorf("merge %d packs: %w", len(small), err)
	}
	if err := merged.save(s.dir); err != nil {
		return fmt.Errorf("merge %d packs: %w", len(small), err)
	}
	for _, p := range small {
		if err := s.Storage.DeleteOldObjectPackAndIndex(p, time.Time{}); err != nil {
			return err
		}
	}
	s.Storage.Reindex()
	return nil
}

// packHashes lists the objects of one pack, from its index.
func (s *store) packHashes(pack plumbing.Hash) ([]plumbing.Hash, error) {
	f, err := os.Open(filepath.Join(s.dir, "objects", "pack", "pack-"+pack.String()+".idx"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	idx := idxfile.NewMemoryIndex()
	if err := idxfile.NewDecoder(f).Decode(idx); err != nil {
		return nil, fmt.Errorf("read index of pack %s: %w", pack, err)
	}
	entries, err := idx.Entries()
	if err != nil {
		return nil, err
	}
	defer entries.Close()
	var out []plumbing.Hash
	for {
		e, err := entries.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e.Hash)
	}
}
