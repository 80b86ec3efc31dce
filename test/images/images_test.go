// Package images proves `make images`: every function and job gets an image that runs as
// non-root, starts its binary, can verify HTTPS peers, has no shell, and comes out with the
// same digest when built twice.
package images

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"debug/buildinfo"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// images are the product's images, named after their main packages.
var images = []string{"ingest", "writer", "reconcile", "resnapshot", "dlq-sweep"}

// nonroot is the uid and gid the images run as.
const nonroot = "65532"

func TestImages(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	first, second := t.TempDir(), t.TempDir()
	makeImages(t, root, first)
	makeImages(t, root, second)

	for _, name := range images {
		t.Run(name, func(t *testing.T) {
			digest := checkImage(t, filepath.Join(first, name+".tar"), name)
			again := imageDigest(t, filepath.Join(second, name+".tar"))
			if again != digest {
				t.Errorf("not reproducible: the first build gave %s, the second %s", digest, again)
			} else {
				t.Logf("%s: %s (both builds)", name, digest)
			}
		})
	}
}

// makeImages runs `make images` into dir. The first run on a machine also builds the pinned
// ko and crane into .cache/bin and compiles every binary cold, which takes minutes; later
// runs take seconds.
func makeImages(t *testing.T, root, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", root, "images", "IMAGES_DIR="+dir)
	// Not the settings of a `make test` this runs under (its job server, its flags).
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "MAKEFLAGS=") || strings.HasPrefix(kv, "MFLAGS=") || strings.HasPrefix(kv, "MAKELEVEL=")
	})
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make images: %v\n%s\n"+
			"ko and crane are built from the versions pinned in test/tools/images/go.mod and "+
			"test/tools/images/crane/go.mod, which needs the Go module proxy (or `go mod download` "+
			"run in those folders beforehand); the base image needs Debian's CA bundle "+
			"(`sudo apt-get install ca-certificates`).", err, out)
	}
	t.Logf("make images into %s took %s:\n%s", dir, time.Since(start).Round(100*time.Millisecond), out)
}

func imageDigest(t *testing.T, tarPath string) string {
	t.Helper()
	img, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatalf("read %s: %v", tarPath, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("digest of %s: %v", tarPath, err)
	}
	return d.String()
}

// checkImage checks the configuration and the files of the image in tarPath and returns its
// digest.
func checkImage(t *testing.T, tarPath, name string) string {
	img, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatalf("read %s: %v", tarPath, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != nonroot {
		t.Errorf("user %q, want %s (nonroot)", cfg.Config.User, nonroot)
	}
	entrypoint := "/ko-app/" + name
	if !slices.Equal(cfg.Config.Entrypoint, []string{entrypoint}) {
		t.Errorf("entrypoint %q, want [%s]", cfg.Config.Entrypoint, entrypoint)
	}
	if cfg.OS != "linux" {
		t.Errorf("os %q, want linux", cfg.OS)
	}

	files := flatten(t, img)
	for _, shell := range []string{"bin/sh", "usr/bin/sh", "bin/bash", "bin/busybox"} {
		if _, ok := files[shell]; ok {
			t.Errorf("/%s is in the image; the image must have no shell", shell)
		}
	}
	if !hasLine(files["etc/passwd"], "nonroot:x:65532:65532:") {
		t.Errorf("/etc/passwd has no nonroot user with uid and gid 65532:\n%s", files["etc/passwd"].data)
	}
	if !hasLine(files["etc/group"], "nonroot:x:65532:") {
		t.Errorf("/etc/group has no nonroot group 65532:\n%s", files["etc/group"].data)
	}
	if ca := files["etc/ssl/certs/ca-certificates.crt"]; ca == nil {
		t.Error("no /etc/ssl/certs/ca-certificates.crt: the writer could not verify HTTPS Git remotes")
	} else if !x509.NewCertPool().AppendCertsFromPEM(ca.data) {
		t.Error("/etc/ssl/certs/ca-certificates.crt holds no PEM certificate")
	}
	if tmp := files["tmp"]; tmp == nil {
		t.Error("no /tmp: the writer's cache is under it")
	} else if tmp.hdr.Typeflag != tar.TypeDir || tmp.hdr.Mode&0o7777 != 0o1777 {
		t.Errorf("/tmp has type %q and mode %o, want a directory with mode 1777 (the writer's cache is under it)", tmp.hdr.Typeflag, tmp.hdr.Mode&0o7777)
	}

	bin := files[strings.TrimPrefix(entrypoint, "/")]
	switch {
	case bin == nil:
		t.Errorf("the entrypoint %s is not in the image", entrypoint)
	case bin.hdr.Mode&0o111 == 0:
		t.Errorf("the entrypoint %s is not executable (mode %o)", entrypoint, bin.hdr.Mode)
	default:
		info, err := buildinfo.Read(bytes.NewReader(bin.data))
		if err != nil {
			t.Fatalf("%s is not a Go binary: %v", entrypoint, err)
		}
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		if settings["CGO_ENABLED"] != "0" || settings["-trimpath"] != "true" {
			t.Errorf("%s was built with CGO_ENABLED=%q -trimpath=%q, want 0 and true (a static, path-free binary)",
				entrypoint, settings["CGO_ENABLED"], settings["-trimpath"])
		}
		if !strings.HasSuffix(info.Path, "/"+name) {
			t.Errorf("%s is the binary of %s, want the main package .../%s", entrypoint, info.Path, name)
		}
	}

	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

type file struct {
	hdr  *tar.Header
	data []byte // regular files under /etc and /ko-app only
}

// flatten returns the image's file system as a container sees it (upper layers over lower
// ones), by path without the leading slash.
func flatten(t *testing.T, img v1.Image) map[string]*file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]*file{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("read the image's files: %v", err)
		}
		p := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		f := &file{hdr: hdr}
		if hdr.Typeflag == tar.TypeReg && (strings.HasPrefix(p, "etc/") || strings.HasPrefix(p, "ko-app/")) {
			if f.data, err = io.ReadAll(tr); err != nil {
				t.Fatalf("read /%s: %v", p, err)
			}
		}
		files[p] = f
	}
}

func hasLine(f *file, prefix string) bool {
	if f == nil {
		return false
	}
	for _, line := range strings.Split(string(f.data), "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}
