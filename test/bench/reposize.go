package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/gitwrite"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/layout"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// filesPerNamespace is how many ConfigMaps the fixture puts in one namespace folder.
const filesPerNamespace = 100

// fixtureTime is the author and committer date of the fixture commit and of every timed
// commit, so the same run writes the same objects.
var fixtureTime = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

// gitEnv is added to every git command the measure runs: no user or system configuration,
// and a fixed identity for the commits of the git CLI baseline.
var gitEnv = []string{
	"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
	"GIT_AUTHOR_NAME=Bench", "GIT_AUTHOR_EMAIL=bench@gitops-reverser.invalid",
	"GIT_COMMITTER_NAME=Bench", "GIT_COMMITTER_EMAIL=bench@gitops-reverser.invalid",
}

// repoSize measures the cost of a one-file commit as the repository grows: gitwrite's Commit
// (no push) against write + git add + git commit in a clone, both on the same fixture in the
// same run, at each size.
func repoSize(ctx context.Context, s *Suite) error {
	sizes := []int{100, 1000, 10_000, 100_000}[:s.Size(4, 2)]
	k := s.Size(200, 50)
	var ours, cli []sizeResult
	for _, files := range sizes {
		o, c, err := repoSizeAt(ctx, s, files, k)
		if err != nil {
			return fmt.Errorf("%d files: %w", files, err)
		}
		ours, cli = append(ours, o), append(cli, c)
		fmt.Fprintf(os.Stderr, "bench: reposize: %d files: gitwrite %s ms, git CLI %s ms per commit; push of %d commits %s ms\n",
			files, format(o.median), format(c.median), k, format(o.push))
	}

	first, last := 0, len(sizes)-1
	files := make([]float64, len(sizes))
	ourCurve, cliCurve := make([]float64, len(sizes)), make([]float64, len(sizes))
	for i, n := range sizes {
		files[i], ourCurve[i], cliCurve[i] = float64(n), ours[i].median, cli[i].median
	}
	s.Add(
		Row{
			Measure: "One-file commit, " + countLabel(sizes[first]) + " files",
			Value:   ours[first].median, Unit: "ms",
			Baseline: cli[first].median, BaselineOf: "git CLI, this run",
			Ratio:  ours[first].median / cli[first].median,
			Target: Target{OnRatio: true, Max: true, Limit: 1},
			Note: fmt.Sprintf("median of %d commits without push; git CLI: write + git add + git commit in a clone, as processes",
				k),
		},
		Row{
			Measure: "One-file commit, " + countLabel(sizes[last]) + " files vs " + countLabel(sizes[first]),
			Value:   ours[last].median, Unit: "ms",
			Baseline: ours[first].median, BaselineOf: "ours at " + countLabel(sizes[first]) + " files",
			Ratio:  ours[last].median / ours[first].median,
			Target: Target{OnRatio: true, Max: true, Limit: 2},
			Note: fmt.Sprintf("git CLI: %s ms vs %s ms (%sx); gitwrite push of %d commits: %s ms at %s files, %s ms at %s",
				format(cli[last].median), format(cli[first].median), format(cli[last].median/cli[first].median),
				k, format(ours[first].push), countLabel(sizes[first]), format(ours[last].push), countLabel(sizes[last])),
		},
	)
	s.AddCurve(Curve{Name: "One-file commit (gitwrite)", Unit: "ms", Files: files, Value: ourCurve})
	s.AddCurve(Curve{Name: "One-file commit (git CLI)", Unit: "ms", Files: files, Value: cliCurve})
	return nil
}

// sizeResult is one side of repoSize at one repository size.
type sizeResult struct {
	median float64 // ms per one-file commit
	push   float64 // ms to push all the commits, gitwrite only
}

// repoSizeAt seeds a served bare repository with files files, then times k one-file commits
// with the git CLI in a clone of it and k with gitwrite in a mirror of it, and one push of
// gitwrite's commits. The git CLI goes first, while the repository still holds the fixture.
func repoSizeAt(ctx context.Context, s *Suite, files, k int) (ours, cli sizeResult, err error) {
	dir := s.Scratch("reposize-remote")
	defer os.RemoveAll(dir)
	remote, err := harness.StartGitRemote(ctx, harness.GitRemoteOptions{Dir: dir, Seed: map[string]string{}})
	if err != nil {
		return ours, cli, fmt.Errorf("start git remote: %w", err)
	}
	defer remote.Close()
	if err := seedBare(ctx, remote.BareDir, remote.Branch, files); err != nil {
		return ours, cli, err
	}
	if cli, err = gitCLICommits(ctx, s, remote.BareDir, remote.Branch, files, k); err != nil {
		return ours, cli, fmt.Errorf("git CLI: %w", err)
	}
	if ours, err = gitwriteCommits(ctx, s, remote, files, k); err != nil {
		return ours, cli, fmt.Errorf("gitwrite: %w", err)
	}
	return ours, cli, nil
}

// gitCLICommits clones bareDir (untimed) and times k one-file commits there: write the file,
// git add, git commit. The clone is removed before returning.
func gitCLICommits(ctx context.Context, s *Suite, bareDir, branch string, files, k int) (sizeResult, error) {
	work := s.Scratch("reposize-clone")
	defer os.RemoveAll(work)
	if err := runGit(ctx, "", nil, "clone", "--quiet", "--branch", branch, bareDir, work); err != nil {
		return sizeResult{}, err
	}
	took := make([]time.Duration, 0, k)
	for j := range k {
		p, content := fixtureEdit(j, files)
		start := time.Now()
		if err := os.WriteFile(filepath.Join(work, filepath.FromSlash(p)), content, 0o644); err != nil {
			return sizeResult{}, err
		}
		if err := runGit(ctx, work, nil, "add", "--", p); err != nil {
			return sizeResult{}, err
		}
		if err := runGit(ctx, work, nil, "commit", "--quiet", "-m", "Update "+p); err != nil {
			return sizeResult{}, err
		}
		took = append(took, time.Since(start))
	}
	return sizeResult{median: Quantile(Millis(took), 0.5)}, nil
}

// gitwriteCommits opens a gitwrite mirror of remote (untimed), times k one-file commits and
// then one push of them all, and checks that the remote got the last one.
func gitwriteCommits(ctx context.Context, s *Suite, remote *harness.GitRemote, files, k int) (sizeResult, error) {
	mirror := s.Scratch("mirror")
	defer os.RemoveAll(mirror)
	repo, err := gitwrite.Open(ctx, gitwrite.Options{
		URL:     remote.URL,
		Branch:  remote.Branch,
		Auth:    gitwrite.Auth{Username: remote.Username, Password: remote.Password},
		Dir:     mirror,
		Timeout: time.Minute,
	})
	if err != nil {
		return sizeResult{}, err
	}
	took := make([]time.Duration, 0, k)
	for j := range k {
		p, content := fixtureEdit(j, files)
		start := time.Now()
		_, changed, err := repo.Commit(gitwrite.CommitRequest{
			Author:  gitwrite.Signature{Name: "Bench", Email: "bench@gitops-reverser.invalid", When: fixtureTime.Add(time.Duration(j+1) * time.Second)},
			Message: "Update " + p,
			Changes: []gitwrite.Change{{Path: p, Content: content}},
		})
		took = append(took, time.Since(start))
		if err != nil {
			return sizeResult{}, err
		}
		if !changed {
			return sizeResult{}, fmt.Errorf("commit %d to %s changed nothing", j, p)
		}
	}
	start := time.Now()
	if err := repo.Push(ctx); err != nil {
		return sizeResult{}, err
	}
	push := time.Since(start)
	head, err := remote.Head(remote.Branch)
	if err != nil {
		return sizeResult{}, fmt.Errorf("read remote head after push: %w", err)
	}
	if head != repo.Tip().String() {
		return sizeResult{}, fmt.Errorf("after push the remote is at %s, want %s", head, repo.Tip())
	}
	return sizeResult{median: Quantile(Millis(took), 0.5), push: float64(push.Microseconds()) / 1000}, nil
}

// fixtureEdit is the j-th timed change to a repository of files fixture files: a new revision
// of an existing file, stepping through the files so that successive commits touch different
// namespace folders.
func fixtureEdit(j, files int) (path string, content []byte) {
	const stride = 7919 // a prime: the first files edits are all different files
	return fixtureFile(j*stride%files, j+1)
}

// seedBare fills the bare repository bareDir (created with git init --bare if missing) with one
// commit on branch holding files ConfigMaps laid out as the product writes them:
// clusters/bench/<namespace>/core/configmaps/<name>.yaml, 100 per namespace folder, about
// 1 KiB each. The commit has no parent and replaces the branch if it exists; its content and
// dates are fixed, so the same files give the same commit. The objects are written by
// git fast-import, a few seconds for 100k files.
func seedBare(ctx context.Context, bareDir, branch string, files int) error {
	if files < 1 {
		return fmt.Errorf("seed %s: %d files, want at least one", bareDir, files)
	}
	if _, err := os.Stat(filepath.Join(bareDir, "HEAD")); errors.Is(err, fs.ErrNotExist) {
		if err := runGit(ctx, "", nil, "init", "--quiet", "--bare", "--initial-branch="+branch, bareDir); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("seed %s: %w", bareDir, err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeFixture(pw, branch, files)) }()
	err := runGit(ctx, "", pr, "--git-dir="+bareDir, "fast-import", "--quiet", "--force", "--done")
	pr.CloseWithError(err) // unblocks the writer if fast-import stopped reading
	return err
}

// writeFixture writes the git fast-import stream of seedBare's commit to w.
func writeFixture(w io.Writer, branch string, files int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	who := fmt.Sprintf("Bench Fixture <fixture@gitops-reverser.invalid> %d +0000", fixtureTime.Unix())
	msg := fmt.Sprintf("Seed %d ConfigMaps\n", files)
	fmt.Fprintf(bw, "commit refs/heads/%s\nauthor %s\ncommitter %s\ndata %d\n%s", branch, who, who, len(msg), msg)
	for i := range files {
		p, content := fixtureFile(i, 0)
		fmt.Fprintf(bw, "M 100644 inline %s\ndata %d\n", p, len(content))
		bw.Write(content)
		bw.WriteByte('\n')
	}
	bw.WriteString("done\n")
	return bw.Flush() // a bufio.Writer keeps its first error, so this reports any
}

// fixtureSettings pads each fixture ConfigMap to about 1 KiB, as a settings file would.
var fixtureSettings = strings.Repeat("    feature.flag: enabled # with a comment\n", 16)

// fixtureFile returns the path and content of fixture file i at revision rev (0 is the seed).
func fixtureFile(i, rev int) (path string, content []byte) {
	ns := fmt.Sprintf("app-%04d", i/filesPerNamespace)
	name := fmt.Sprintf("cm-%06d", i)
	path = layout.Path("clusters/"+clusterID, identity.Key{Resource: "configmaps", Namespace: ns, Name: name})
	content = fmt.Appendf(nil, `apiVersion: v1
kind: ConfigMap
metadata:
  name: %[2]s
  namespace: %[1]s
  labels:
    app.kubernetes.io/name: shop
    app.kubernetes.io/instance: %[2]s
    app.kubernetes.io/part-of: bench
    tier: backend
  annotations:
    description: settings of the shop backend, edited by hand
    owner: team-%[1]s
data:
  endpoint: https://%[2]s.%[1]s.svc.cluster.local:8443/api
  replicas: "%[3]d"
  revision: "%[4]d"
  settings.yaml: |
%[5]s`, ns, name, 1+i%7, rev, fixtureSettings)
	return path, content
}

// countLabel writes a file count the way the rows name it: 100, 1000, 10k, 100k.
func countLabel(n int) string {
	if n >= 10_000 && n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// runGit runs git with gitEnv in dir (the current folder if empty), feeding it stdin if not
// nil. A failure quotes the command and the end of its standard error.
func runGit(ctx context.Context, dir string, stdin io.Reader, args ...string) error {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir, cmd.Stdin = dir, stdin
	cmd.Env = append(os.Environ(), gitEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return errors.New("git not found: apt-get install -y git")
		}
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:]
		}
		name := "git " + args[0]
		if strings.HasPrefix(args[0], "--git-dir") && len(args) > 1 {
			name = "git " + args[1]
		}
		return fmt.Errorf("%s: %w: %s", name, err, msg)
	}
	return nil
}
