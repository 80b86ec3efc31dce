package faults

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// HumanName is the committer of human commits.
const HumanName = "Human Operator"

// Human is a person with a git CLI clone of the remote, pushing their own commits to the
// branch the writers push to.
type Human struct {
	r   *Rig
	Dir string
	env []string

	Pushes     int
	Rejections int // pushes refused because the branch had moved (by a writer)
}

// NewHuman clones the remote with the git CLI, credentials in the URL.
func (r *Rig) NewHuman() *Human {
	r.T.Helper()
	u, err := url.Parse(r.Git.URL)
	if err != nil {
		r.T.Fatal(err)
	}
	u.User = url.UserPassword(r.Git.Username, r.Git.Password)
	h := &Human{r: r, Dir: filepath.Join(r.Dir, "human"), env: []string{
		"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=" + HumanName, "GIT_AUTHOR_EMAIL=human@example.com",
		"GIT_COMMITTER_NAME=" + HumanName, "GIT_COMMITTER_EMAIL=human@example.com",
	}}
	if _, err := h.git(context.Background(), r.Dir, "clone", "--quiet", "--branch", Branch, u.String(), h.Dir); err != nil {
		r.T.Fatalf("human clone: %v", err)
	}
	return h
}

func (h *Human) git(ctx context.Context, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), h.env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

// Commit makes one commit on top of the remote branch with edit (run in the work tree) and
// pushes it. A push refused because the branch moved is rebased onto the new tip and pushed
// again (git pull --rebase, as a person would); when the rebase conflicts, the edit starts
// over from the new tip. It gives up after two minutes of refusals. It returns the pushed
// commit.
func (h *Human) Commit(message string, edit func(dir string) error) (string, error) {
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	fresh := true
	for {
		if fresh {
			if _, err := h.git(ctx, h.Dir, "fetch", "--quiet", "origin", Branch); err != nil {
				return "", err
			}
			if _, err := h.git(ctx, h.Dir, "reset", "--quiet", "--hard", "origin/"+Branch); err != nil {
				return "", err
			}
			if err := edit(h.Dir); err != nil {
				return "", err
			}
			if _, err := h.git(ctx, h.Dir, "add", "--all"); err != nil {
				return "", err
			}
			// --allow-empty: an edit may find nothing to do (deleting a file a writer already
			// deleted), and a person would still push their commit.
			if _, err := h.git(ctx, h.Dir, "commit", "--quiet", "--allow-empty", "--message", message); err != nil {
				return "", err
			}
			fresh = false
		}
		out, err := h.git(ctx, h.Dir, "push", "--porcelain", "origin", "HEAD:refs/heads/"+Branch)
		if err == nil {
			h.Pushes++
			head, err := h.git(ctx, h.Dir, "rev-parse", "HEAD")
			return strings.TrimSpace(head), err
		}
		if !strings.Contains(out, "rejected") && !strings.Contains(out, "fetch first") && !strings.Contains(out, "non-fast-forward") {
			return "", err
		}
		h.Rejections++
		if time.Now().After(deadline) {
			return "", fmt.Errorf("human push refused %d times over two minutes: the writers never left a gap", h.Rejections)
		}
		if _, err := h.git(ctx, h.Dir, "pull", "--quiet", "--rebase", "origin", Branch); err != nil {
			_, _ = h.git(ctx, h.Dir, "rebase", "--abort")
			fresh = true // a conflict with a writer's commit: redo the edit on the new tip
		}
	}
}

// Read returns a file of the human's work tree (as of the last commit).
func (h *Human) Read(path string) (string, error) {
	b, err := os.ReadFile(filepath.Join(h.Dir, path))
	return string(b), err
}

// writeFile writes a file under dir, creating folders.
func writeFile(dir, path, content string) error {
	full := filepath.Join(dir, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, []byte(content), 0o644)
}
