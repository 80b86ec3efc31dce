package gitwrite

import (
	"bytes"
	"compress/zlib"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/idxfile"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// pack is an encoded packfile and the index of its objects.
type pack struct {
	data []byte
	idx  *idxfile.Writer
}

// encodePack writes the objects as a version 2 packfile, whole (no deltas) and compressed
// for speed, indexing it in the same pass: the pack a push sends is the pack the mirror
// keeps, and keeping it needs no second pass over its objects. go-git's encoder compresses
// at the default level and its index builder inflates every object again.
func encodePack(s storer.EncodedObjectStorer, hashes []plumbing.Hash) (*pack, error) {
	var buf bytes.Buffer
	buf.WriteString("PACK")
	_ = binary.Write(&buf, binary.BigEndian, [2]uint32{2, uint32(len(hashes))})
	p := &pack{idx: new(idxfile.Writer)}
	_ = p.idx.OnHeader(uint32(len(hashes)))
	zw, _ := zlib.NewWriterLevel(io.Discard, zlib.BestSpeed)
	var hdr [binary.MaxVarintLen64 + 1]byte
	for _, h := range hashes {
		o, err := s.EncodedObject(plumbing.AnyObject, h)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", h, err)
		}
		start := buf.Len()
		buf.Write(entryHeader(hdr[:0], o.Type(), o.Size()))
		r, err := o.Reader()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", h, err)
		}
		zw.Reset(&buf)
		_, err = io.Copy(zw, r)
		r.Close()
		if err != nil {
			return nil, fmt.Errorf("compress %s: %w", h, err)
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		p.idx.Add(h, uint64(start), crc32.ChecksumIEEE(buf.Bytes()[start:]))
	}
	sum := sha1.Sum(buf.Bytes())
	buf.Write(sum[:])
	if err := p.idx.OnFooter(plumbing.Hash(sum)); err != nil {
		return nil, err
	}
	p.data = buf.Bytes()
	return p, nil
}

// entryHeader appends a pack entry's header: the type, then the size in little-endian 7-bit
// groups, 4 bits in the first byte.
func entryHeader(b []byte, t plumbing.ObjectType, size int64) []byte {
	c := byte(t)<<4 | byte(size&0x0f)
	size >>= 4
	for size > 0 {
		b = append(b, c|0x80)
		c = byte(size & 0x7f)
		size >>= 7
	}
	return append(b, c)
}

// save writes the pack and its index into dir's objects/pack, index first: a pack is only
// looked for once its .pack file exists.
func (p *pack) save(dir string) error {
	idx, err := p.idx.Index()
	if err != nil {
		return err
	}
	var ib bytes.Buffer
	if _, err := idxfile.NewEncoder(&ib).Encode(idx); err != nil {
		return err
	}
	base := filepath.Join(dir, "objects", "pack", "pack-"+plumbing.Hash(idx.PackfileChecksum).String())
	if err := os.MkdirAll(filepath.Dir(base), 0o755); err != nil {
		return err
	}
	for _, f := range []struct {
		ext  string
		data []byte
	}{{".idx", ib.Bytes()}, {".pack", p.data}} {
		if err := writeFileAtomic(base+f.ext, f.data); err != nil {
			return err
		}
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o444); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
