package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeKn stands in for the kn CLI, which cannot be built here: it records each call, keeps
// a copy of the file given to --filename, remembers which Services exist, and answers
// `describe --output url` for the ingest. It checks nothing of kn's own.
const fakeKn = `#!/usr/bin/env bash
set -eu
state="$FAKE_STATE"
echo "$*" >>"$state/calls"
echo >>"$state/count"
n=$(wc -l <"$state/count")
case "$1 $2" in
"service describe")
  if [[ " $* " == *" --output url "* ]]; then
    echo "https://ingest.gitops-reverser.example.com"
    exit 0
  fi
  [[ -e "$state/exists-$3" ]]
  ;;
"service create")
  file="" prev=""
  for a in "$@"; do
    if [[ "$prev" == "--filename" ]]; then file="$a"; fi
    prev="$a"
  done
  cp "$file" "$state/call-$n-$3.yaml"
  if [[ " $* " != *" --target "* ]]; then touch "$state/exists-$3"; fi
  ;;
*)
  echo "fake kn: unexpected call: $*" >&2
  exit 2
  ;;
esac
`

// fakeKubectl answers the SourceCluster listing of deploy.sh with two cluster ids.
const fakeKubectl = `#!/usr/bin/env bash
set -eu
echo "$*" >>"$FAKE_STATE/kubectl-calls"
printf 'prod\nstaging\n'
`

const (
	ingestImage = "registry.example.com/gitops-reverser/ingest@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	writerImage = "registry.example.com/gitops-reverser/writer@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// TestDeployScript runs kn/deploy.sh against a fake kn: the first run creates both
// Services (writer first), the second updates them (create --force), --target writes
// offline, the routes of every SourceCluster are printed, and the files handed to kn,
// with their images resolved, are still accepted by the apiserver.
func TestDeployScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("kn/deploy.sh is a bash script and bash is not on PATH")
	}
	bin, state := t.TempDir(), t.TempDir()
	for name, body := range map[string]string{"kn": fakeKn, "kubectl": fakeKubectl} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := filepath.Join(root, "kn", "deploy.sh")
	deploy := func(t *testing.T, images bool, args ...string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
		cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "FAKE_STATE=" + state, "HOME=" + state}
		if images {
			cmd.Env = append(cmd.Env, "INGEST_IMAGE="+ingestImage, "WRITER_IMAGE="+writerImage)
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	calls := func(t *testing.T) []string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(state, "calls"))
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(state, "calls"))
		var creates []string
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if strings.HasPrefix(line, "service create") {
				// Drop the temporary file name, which changes with every run.
				fields := strings.Fields(line)
				for i := range fields {
					if i > 0 && fields[i-1] == "--filename" {
						fields[i] = "FILE"
					}
				}
				creates = append(creates, strings.Join(fields, " "))
			}
		}
		return creates
	}
	expect := func(t *testing.T, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("kn was called with\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
	}

	t.Run("without images it stops and says why", func(t *testing.T) {
		out, err := deploy(t, false)
		if err == nil || !strings.Contains(out, "no image for writer") {
			t.Fatalf("want a refusal naming the missing image, got err=%v:\n%s", err, out)
		}
	})
	t.Run("first run creates", func(t *testing.T) {
		out, err := deploy(t, true)
		if err != nil {
			t.Fatalf("deploy.sh: %v\n%s", err, out)
		}
		expect(t, calls(t),
			"service create writer --namespace gitops-reverser --filename FILE",
			"service create ingest --namespace gitops-reverser --filename FILE")
		for _, id := range []string{"prod", "staging"} {
			route := "https://ingest.gitops-reverser.example.com/audit-webhook/" + id
			if !strings.Contains(out, route) {
				t.Errorf("the output does not print the route %s:\n%s", route, out)
			}
		}
	})
	t.Run("second run updates", func(t *testing.T) {
		out, err := deploy(t, true)
		if err != nil {
			t.Fatalf("deploy.sh: %v\n%s", err, out)
		}
		expect(t, calls(t),
			"service create writer --namespace gitops-reverser --filename FILE --force",
			"service create ingest --namespace gitops-reverser --filename FILE --force")
	})
	t.Run("offline", func(t *testing.T) {
		out, err := deploy(t, true, "--target", "out/kn", "-n", "other")
		if err != nil {
			t.Fatalf("deploy.sh: %v\n%s", err, out)
		}
		expect(t, calls(t),
			"service create writer --namespace other --filename FILE --target out/kn --force",
			"service create ingest --namespace other --filename FILE --target out/kn --force")
	})
	t.Run("the files given to kn are valid", func(t *testing.T) {
		files, _ := filepath.Glob(filepath.Join(state, "call-*.yaml"))
		if len(files) != 6 {
			t.Fatalf("kn received %d files, want 6", len(files))
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s := string(data)
			if strings.Contains(s, "ko://") || (!strings.Contains(s, ingestImage) && !strings.Contains(s, writerImage)) {
				t.Fatalf("%s: the image was not resolved:\n%s", f, s)
			}
			dryRun(t, document{File: filepath.Base(f), Index: 1, Raw: data, Obj: map[string]any{}})
		}
	})
}

// TestShellcheck runs shellcheck on kn/deploy.sh.
func TestShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Fatal("shellcheck is not installed: apt-get install -y shellcheck (.ci/run does)")
	}
	out, err := exec.Command("shellcheck", filepath.Join(root, "kn", "deploy.sh")).CombinedOutput()
	if err != nil {
		t.Fatalf("shellcheck kn/deploy.sh: %v\n%s", err, out)
	}
}
