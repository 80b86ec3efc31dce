// Command build makes the product's container images with ko and no Docker daemon.
//
// It builds a small base image locally, byte for byte the same on every run: a non-root
// user (uid/gid 65532, "nonroot"), the machine's CA bundle at
// /etc/ssl/certs/ca-certificates.crt and a world-writable /tmp, in one layer with fixed
// owners and times. Nothing is pulled. ko needs its base from a registry, so the base is
// served by a registry inside this process on loopback for as long as the build runs.
//
// Then, by default, it has ko build every main of the product onto that base into
// <out>/<name>.tar (docker-save tarballs; `crane push`, `docker load` and
// `kind load image-archive` take them). With -resolve it instead pushes the base to
// $KO_DOCKER_REPO/base and runs `ko resolve` on the given YAML, which builds and pushes
// every ko:// image the YAML names and prints it with those replaced by digests.
//
// ko's settings (CGO_ENABLED=0, stripped binaries) are in ../.ko.yaml, passed as
// KO_CONFIG_PATH; ko adds -trimpath and a fixed creation time itself.
package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// modulePath is the product's module; its go.mod marks the repository root.
const modulePath = "github.com/gitops-reverser/gitops-reverser"

// mains are the product's binaries, one image each, named after the last path element.
var mains = []string{
	"functions/ingest",
	"functions/writer",
	"jobs/reconcile",
	"jobs/resnapshot",
	"jobs/dlq-sweep",
}

const (
	nonrootID = 65532
	caPath    = "etc/ssl/certs/ca-certificates.crt"
)

type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(s string) error { *f = append(*f, s); return nil }

func main() {
	log.SetFlags(0)
	log.SetPrefix("images: ")
	var (
		ko       = flag.String("ko", "", "the ko binary (make builds it into .cache/bin/ko-<version>)")
		root     = flag.String("root", "", "the repository root (default: found from the working directory upwards)")
		out      = flag.String("out", "", "where the tarballs go (default <root>/out/images)")
		ca       = flag.String("ca", "/etc/ssl/certs/ca-certificates.crt", "the CA bundle copied into the base image")
		platform = flag.String("platform", "linux/amd64", "the platform of the images (os/arch[/variant])")
		resolve  = flag.Bool("resolve", false, "push to $KO_DOCKER_REPO and print the -f YAML with ko:// images resolved, instead of writing tarballs")
		files    fileList
	)
	flag.Var(&files, "f", "with -resolve: a YAML file or directory for `ko resolve` (repeatable; default kn and manifests)")
	flag.Parse()
	if err := run(*ko, *root, *out, *ca, *platform, *resolve, files); err != nil {
		log.Fatal(err)
	}
}

func run(ko, root, out, ca, platform string, resolve bool, files []string) error {
	if ko == "" {
		return errors.New("-ko is required: run `make images`, which builds ko into .cache/bin first")
	}
	ko, err := filepath.Abs(ko)
	if err != nil {
		return err
	}
	if root == "" {
		if root, err = repoRoot(); err != nil {
			return err
		}
	}
	plat, err := v1.ParsePlatform(platform)
	if err != nil {
		return fmt.Errorf("-platform %q: %w", platform, err)
	}
	base, err := baseImage(ca, *plat)
	if err != nil {
		return err
	}
	koConfig := filepath.Join(root, "test", "tools", "images", ".ko.yaml")
	if _, err := os.Stat(koConfig); err != nil {
		return fmt.Errorf("ko's configuration: %w (restore test/tools/images/.ko.yaml from git)", err)
	}
	env := append(os.Environ(), "KO_CONFIG_PATH="+koConfig)

	if resolve {
		if len(files) == 0 {
			files = []string{"kn", "manifests"}
		}
		return resolveAndPush(ko, root, env, base, files)
	}
	if out == "" {
		out = filepath.Join(root, "out", "images")
	}
	return buildTarballs(ko, root, out, env, base)
}

// buildTarballs serves base on a loopback registry and has ko build each main onto it.
func buildTarballs(ko, root, out string, env []string, base v1.Image) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on loopback for the base image registry: %w", err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(l)
	defer srv.Close()

	baseRef, err := push(base, l.Addr().String()+"/base:local")
	if err != nil {
		return err
	}
	env = append(env, "KO_DEFAULTBASEIMAGE="+baseRef)

	// One ko per image, all at once: most of a warm build is ko's and go's own start-up
	// (package loading, linking), which overlaps well.
	start := time.Now()
	lines := make([]string, len(mains))
	errs := make([]error, len(mains))
	var wg sync.WaitGroup
	for i, m := range mains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lines[i], errs[i] = koTarball(ko, root, m, filepath.Join(out, filepath.Base(m)+".tar"), env)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, line := range lines {
		fmt.Println(line)
	}
	fmt.Printf("%d images in %s (%.1fs)\n", len(mains), out, time.Since(start).Seconds())
	return nil
}

// koTarball has ko build the main package m into the tarball tarPath and describes the
// result in one line.
func koTarball(ko, root, m, tarPath string, env []string) (string, error) {
	name := filepath.Base(m)
	tmp := filepath.Join(filepath.Dir(tarPath), "."+name+".tar.tmp")
	start := time.Now()
	cmd := exec.Command(ko, "build", "./"+m, "--bare", "--push=false", "--sbom=none", "--tarball="+tmp)
	cmd.Dir = root
	cmd.Env = append(slices.Clip(env), "KO_DOCKER_REPO=gitops-reverser/"+name) // env is shared by the goroutines
	if output, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("ko build ./%s: %w\n%s", m, err, output)
	}
	if err := os.Rename(tmp, tarPath); err != nil {
		return "", err
	}
	digest, size, err := describe(tarPath)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%-11s %5.1f MB  %s  %s  (%.1fs)", name, float64(size)/1e6, digest, tarPath, time.Since(start).Seconds()), nil
}

// resolveAndPush pushes base to $KO_DOCKER_REPO/base and runs `ko resolve` on files, which
// builds and pushes every ko:// image they name as $KO_DOCKER_REPO/<name> and prints the
// YAML with digests.
func resolveAndPush(ko, root string, env []string, base v1.Image, files []string) error {
	repo := os.Getenv("KO_DOCKER_REPO")
	if repo == "" {
		return errors.New("-resolve pushes images: set KO_DOCKER_REPO to the registry repository, e.g. KO_DOCKER_REPO=registry.example.com/gitops-reverser")
	}
	d, err := base.Digest()
	if err != nil {
		return err
	}
	// Tagged by content, so a changed base never overwrites what running images name.
	baseRef, err := push(base, repo+"/base:"+strings.TrimPrefix(d.String(), "sha256:")[:16])
	if err != nil {
		return err
	}
	log.Printf("base image %s", baseRef)
	args := []string{"resolve", "--base-import-paths", "--recursive"}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	cmd := exec.Command(ko, args...)
	cmd.Dir = root
	cmd.Env = append(env, "KO_DEFAULTBASEIMAGE="+baseRef)
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ko %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// push writes img to ref and returns the reference by digest.
func push(img v1.Image, ref string) (string, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", fmt.Errorf("base image reference %q: %w", ref, err)
	}
	if err := remote.Write(tag, img, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return "", fmt.Errorf("push the base image to %s: %w", tag, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	return tag.Context().Digest(d.String()).String(), nil
}

// describe returns the digest of the image in a tarball (the digest it has once pushed)
// and the tarball's size.
func describe(path string) (string, int64, error) {
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return "", 0, fmt.Errorf("read %s: %w", path, err)
	}
	d, err := img.Digest()
	if err != nil {
		return "", 0, fmt.Errorf("digest of %s: %w", path, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	return d.String(), info.Size(), nil
}

// baseImage is the distroless-style base: one layer, no shell, no package manager.
func baseImage(ca string, plat v1.Platform) (v1.Image, error) {
	bundle, err := os.ReadFile(ca)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no CA bundle at %s, which the base image needs (the writer pushes to HTTPS Git remotes): install it with `sudo apt-get install ca-certificates`, or pass -ca FILE", ca)
	}
	if err != nil {
		return nil, fmt.Errorf("read the CA bundle: %w", err)
	}
	layerTar, err := baseLayer(bundle)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, err
	}
	epoch := v1.Time{Time: time.Unix(0, 0).UTC()}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: epoch, CreatedBy: "gitops-reverser base: nonroot user 65532, CA certificates, /tmp"},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created = epoch
	cfg.OS, cfg.Architecture, cfg.Variant = plat.OS, plat.Architecture, plat.Variant
	cfg.Config.User = fmt.Sprint(nonrootID)
	cfg.Config.WorkingDir = "/"
	cfg.Config.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"SSL_CERT_FILE=/" + caPath,
	}
	return mutate.ConfigFile(img, cfg)
}

// baseLayer is the base's only layer as an uncompressed tar. Every header is fixed (owner,
// mode, time, format), so the same CA bundle always gives the same bytes.
func baseLayer(bundle []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	epoch := time.Unix(0, 0)
	entries := []struct {
		name string
		mode int64
		id   int // uid and gid
		data []byte
	}{
		{"etc/", 0o755, 0, nil},
		{"etc/group", 0o644, 0, []byte("root:x:0:\nnonroot:x:65532:\n")},
		{"etc/nsswitch.conf", 0o644, 0, []byte("hosts: files dns\n")},
		{"etc/passwd", 0o644, 0, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{"etc/ssl/", 0o755, 0, nil},
		{"etc/ssl/certs/", 0o755, 0, nil},
		{caPath, 0o644, 0, bundle},
		{"home/", 0o755, 0, nil},
		{"home/nonroot/", 0o700, nonrootID, nil},
		{"tmp/", 0o1777, 0, nil}, // sticky and world-writable: the writer's CACHE_DIR is under it
	}
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.id,
			Gid:     e.id,
			ModTime: epoch,
			Format:  tar.FormatUSTAR,
		}
		if strings.HasSuffix(e.name, "/") {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("base layer %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// repoRoot is the nearest directory upwards whose go.mod declares the product's module.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if moduleOf(filepath.Join(dir, "go.mod")) == modulePath {
			return dir, nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("no go.mod of %s above %s: pass -root or run inside the checkout", modulePath, wd)
		}
	}
}

func moduleOf(goMod string) string {
	f, err := os.Open(goMod)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`)
		}
	}
	return ""
}
