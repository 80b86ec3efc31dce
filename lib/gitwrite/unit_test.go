package gitwrite

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

func TestSplitPath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // segments joined by "|", or "" for ErrInvalidPath
	}{
		{"a", "a"},
		{"a/b/c.yaml", "a|b|c.yaml"},
		{".gitignore", ".gitignore"},
		{"a/.github/x", "a|.github|x"},
		{"a..b/c", "a..b|c"},
		{"", ""}, {"/a", ""}, {"a/", ""}, {"a//b", ""}, {".", ""}, {"..", ""},
		{"a/./b", ""}, {"a/../b", ""}, {".git", ""}, {"x/.Git/y", ""}, {`a\b`, ""}, {"a\x00", ""},
	} {
		segs, err := splitPath(tc.in)
		if tc.want == "" {
			if !errors.Is(err, ErrInvalidPath) {
				t.Errorf("splitPath(%q) = %v, %v; want ErrInvalidPath", tc.in, segs, err)
			}
			continue
		}
		if err != nil || strings.Join(segs, "|") != tc.want {
			t.Errorf("splitPath(%q) = %v, %v; want %s", tc.in, segs, err, tc.want)
		}
	}
	if segs, err := splitDir(""); err != nil || segs != nil {
		t.Errorf("splitDir(\"\") = %v, %v", segs, err)
	}
	if segs, err := splitDir("a/b/"); err != nil || strings.Join(segs, "|") != "a|b" {
		t.Errorf("splitDir(a/b/) = %v, %v", segs, err)
	}
}

func TestSortEntriesGitOrder(t *testing.T) {
	dir := func(n string) object.TreeEntry { return object.TreeEntry{Name: n, Mode: filemode.Dir} }
	file := func(n string) object.TreeEntry { return object.TreeEntry{Name: n, Mode: filemode.Regular} }
	entries := []object.TreeEntry{file("foo0"), dir("foo"), file("foo.txt"), dir("foo.d"), file("foo-bar"), file("a.b"), file("a"), dir("ab"), dir("a-")}
	sortEntries(entries)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name)
	}
	// "foo" is compared as "foo/": after "foo.txt" ('.' < '/'), before "foo0".
	want := "a,a-,a.b,ab,foo-bar,foo.d,foo.txt,foo,foo0"
	if strings.Join(got, ",") != want {
		t.Fatalf("order %s\nwant  %s", strings.Join(got, ","), want)
	}

	// Random names over an alphabet around '/': agree with go-git's sorter.
	rng := rand.New(rand.NewSource(1))
	alphabet := "-./0aA_~"
	for i := 0; i < 200; i++ {
		seen := map[string]bool{}
		var es []object.TreeEntry
		for j := 0; j < 20; j++ {
			var b strings.Builder
			for k := 0; k < 1+rng.Intn(4); k++ {
				c := alphabet[rng.Intn(len(alphabet))]
				if c == '/' {
					c = 'z'
				}
				b.WriteByte(c)
			}
			n := b.String()
			if seen[n] {
				continue
			}
			seen[n] = true
			if rng.Intn(2) == 0 {
				es = append(es, dir(n))
			} else {
				es = append(es, file(n))
			}
		}
		sortEntries(es)
		if !sort.IsSorted(object.TreeEntrySorter(es)) {
			t.Fatalf("not in git order: %v", es)
		}
	}
}

func TestRedactor(t *testing.T) {
	red := newRedactor(Auth{Username: "bob", Password: "p@ss/w0rd!", SSHPassphrase: "phrase-123"})
	in := strings.Join([]string{
		"Get https://bob:p%40ss%2Fw0rd%21@git.example.com/r.git/info/refs?service=git-upload-pack&token=abc:",
		"authentication required: bad password p@ss/w0rd! (Basic Ym9iOnBAc3MvdzByZCE=)",
		"key phrase-123",
		"https://ghp_TOKEN@github.com/o/r.git",
	}, " ")
	out := red.clean(in)
	for _, secret := range []string{"p@ss/w0rd!", "p%40ss%2Fw0rd%21", "Ym9iOnBAc3MvdzByZCE=", "phrase-123", "ghp_TOKEN", "token=abc"} {
		if strings.Contains(out, secret) {
			t.Errorf("%q survives in %q", secret, out)
		}
	}
	if !strings.Contains(out, "git.example.com/r.git/info/refs") {
		t.Errorf("detail lost: %q", out)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("x: %w", transport.ErrAuthenticationRequired), ErrAuthentication},
		{transport.ErrAuthorizationFailed, ErrAuthentication},
		{errors.New("ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey]"), ErrAuthentication},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, ErrRemoteUnavailable},
		{context.DeadlineExceeded, ErrRemoteUnavailable},
		{errors.New("remote ref refs/heads/main required to be a but is b"), ErrRemoteMoved},
		{errors.New("non-fast-forward update: refs/heads/main"), ErrRemoteMoved},
		{errors.New("command error on refs/heads/main: failed to update ref"), ErrRemoteMoved},
		{transport.ErrRepositoryNotFound, nil},
		{context.Canceled, nil},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	// The raw cause stays reachable for errors.Is, not for Unwrap.
	err := newRedactor(Auth{}).wrap("fetch", fmt.Errorf("dial: %w", context.Canceled))
	if !errors.Is(err, context.Canceled) || errors.Unwrap(err) != nil {
		t.Errorf("wrapped error: Is(Canceled)=%v Unwrap=%v", errors.Is(err, context.Canceled), errors.Unwrap(err))
	}
}
