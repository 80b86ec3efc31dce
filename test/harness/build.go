package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// modulePath is the product's module; its go.mod marks the repository root.
const modulePath = "github.com/gitops-reverser/gitops-reverser"

// RepoRoot returns the repository root: the nearest directory, from the working directory
// upwards, whose go.mod declares the product's module. When the working directory is
// elsewhere (a demo binary started from another folder), the directory of this source file
// is tried as well.
func RepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if mod, err := goModField(filepath.Join(dir, "go.mod"), "module", ""); err == nil && mod == modulePath {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("cannot find the repository root (a go.mod declaring module %s) above %v: run from inside the gitops-reverser checkout", modulePath, starts)
}

// goModField reads one line of a go.mod file. With directive "module" it returns the
// module path; with "require" it returns the version required for module dep, whether
// the requirement stands alone or in a require block.
func goModField(path, directive, dep string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	inBlock := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			continue
		case inBlock && fields[0] == ")":
			inBlock = false
			continue
		case fields[0] == directive && len(fields) == 2 && fields[1] == "(":
			inBlock = true
			continue
		case fields[0] == directive:
			fields = fields[1:]
		case !inBlock:
			continue
		}
		if directive == "module" && len(fields) == 1 {
			return strings.Trim(fields[0], `"`), nil
		}
		if directive == "require" && len(fields) >= 2 && fields[0] == dep {
			return fields[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s: no %s %s", path, directive, dep)
}

// BuildGo runs `go build -o out pkg` in the repository root, so pkg may be a path
// relative to it (./cmd/ingest) or an import path. It builds into a temporary name and
// renames, so a build that fails or is interrupted never leaves a broken out behind.
func BuildGo(ctx context.Context, pkg, out string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	return goBuild(ctx, root, pkg, out)
}

// goBuild runs `go build -o out pkg` in dir (which selects the module), atomically.
func goBuild(ctx context.Context, dir, pkg, out string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	// A fresh directory rather than a fresh file: go build refuses to overwrite a file
	// that is not already a Go binary.
	tmpDir, err := os.MkdirTemp(filepath.Dir(out), ".build-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, filepath.Base(out))

	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, pkg)
	cmd.Dir = dir
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s (in %s): %w\n%s", pkg, dir, err, lastLines(string(output), 40))
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("move built %s into place: %w", pkg, err)
	}
	return nil
}

// lockFile takes an exclusive lock on path, so that test binaries running in parallel
// (go test ./... runs packages at once) build a cached tool once, not once each. It
// waits for the lock until ctx ends.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the file releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for another build holding %s: %w", path, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
