package gitwrite

import (
	"fmt"
	"sort"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// splitPath validates p (see ErrInvalidPath) and returns its segments.
func splitPath(p string) ([]string, error) {
	if p == "" {
		return nil, fmt.Errorf("%w: empty path", ErrInvalidPath)
	}
	if strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("%w: %q is absolute", ErrInvalidPath, p)
	}
	if strings.ContainsAny(p, "\\\x00") {
		return nil, fmt.Errorf("%w: %q contains a backslash or NUL", ErrInvalidPath, p)
	}
	segs := strings.Split(p, "/")
	for _, s := range segs {
		switch {
		case s == "":
			return nil, fmt.Errorf("%w: %q has an empty segment", ErrInvalidPath, p)
		case s == "." || s == "..":
			return nil, fmt.Errorf("%w: %q is not clean (%q segment)", ErrInvalidPath, p, s)
		case strings.EqualFold(s, ".git"):
			return nil, fmt.Errorf("%w: %q has a .git segment", ErrInvalidPath, p)
		}
	}
	return segs, nil
}

// splitDir is splitPath for directories, where "" and "." mean the root.
func splitDir(dir string) ([]string, error) {
	if dir == "" || dir == "." {
		return nil, nil
	}
	return splitPath(strings.TrimSuffix(dir, "/"))
}

// entryLess orders tree entries the way git does: names compare byte-wise,
// with a directory's name compared as if it ended in "/".
func entryLess(a, b *object.TreeEntry) bool {
	return compareNames(a.Name, a.Mode == filemode.Dir, b.Name, b.Mode == filemode.Dir) < 0
}

// compareNames is git's base_name_compare.
func compareNames(a string, aDir bool, b string, bDir bool) int {
	n := min(len(a), len(b))
	if c := strings.Compare(a[:n], b[:n]); c != 0 {
		return c
	}
	ca, cb := nameEnd(a, n, aDir), nameEnd(b, n, bDir)
	switch {
	case ca < cb:
		return -1
	case ca > cb:
		return 1
	}
	return 0
}

func nameEnd(s string, n int, dir bool) byte {
	if n < len(s) {
		return s[n]
	}
	if dir {
		return '/'
	}
	return 0
}

// sortEntries sorts entries in git tree order.
func sortEntries(entries []object.TreeEntry) {
	sort.Slice(entries, func(i, j int) bool { return entryLess(&entries[i], &entries[j]) })
}
