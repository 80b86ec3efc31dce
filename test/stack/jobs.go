package stack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// JobResult is how a job run ended.
type JobResult struct {
	Stdout, Stderr string
	ExitCode       int
}

// RunJob builds ./jobs/<name> (once per stack) and runs it once to the end against the stack: its Valkey,
// catalog, writer (K_SINK) and apiserver (KUBECONFIG, as the admin). env is added last, so
// it can override any of these (CATALOG_FILE, say). An exit status other than 0 is reported
// in the result, not as an error.
func (s *Stack) RunJob(ctx context.Context, name string, env ...string) (JobResult, error) {
	bin := filepath.Join(s.Dir, "bin", name)
	if _, err := os.Stat(bin); err != nil {
		if err := harness.BuildGo(ctx, "./jobs/"+name, bin); err != nil {
			return JobResult{}, err
		}
	}
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(append(os.Environ(),
		"VALKEY_ADDR="+s.Valkey.Addr,
		"CATALOG_FILE="+s.CatalogFile,
		"K_SINK="+s.WriterURL,
		"KUBECONFIG="+s.Kube.Kubeconfig(harness.AdminUser),
		"CACHE_DIR="+s.sub("jobs/"+name),
	), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := JobResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if exit, ok := err.(*exec.ExitError); ok {
		res.ExitCode = exit.ExitCode()
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("run job %s: %w", name, err)
	}
	return res, nil
}
