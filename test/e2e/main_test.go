// Package e2e proves the spine end to end: a real kube-apiserver's audit webhook reaches the
// ingest function over HTTPS, changes are queued in a real Valkey, and the writer function
// pushes them as commits to a real Git remote over smart HTTP.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gitops-reverser/gitops-reverser/test/stack"
)

// env is shared by every test of the package: starting an apiserver costs seconds, and each
// test works in its own objects, so they do not interfere.
var env *stack.Stack

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	s, err := stack.Start(ctx, stack.Options{})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot start the stack: %v\n", err)
		if s != nil {
			fmt.Fprintln(os.Stderr, s.Logs(40))
		}
		os.Exit(1)
	}
	env = s
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, env.Logs(60))
	}
	env.Close()
	os.Exit(code)
}
