package gitwrite_test

import (
	"context"
	"errors"
	"log"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/gitwrite"
)

// A writer's loop: commit a batch, push, and on ErrRemoteMoved fetch and
// rebuild the same batch on the new remote tip.
func Example() {
	ctx := context.Background()
	repo, err := gitwrite.Open(ctx, gitwrite.Options{
		URL:    "https://git.example.com/org/clusters.git",
		Branch: "main",
		Auth:   gitwrite.Auth{Password: "token-from-the-secret"},
		Dir:    "/var/cache/gitwrite/clusters",
	})
	if err != nil {
		log.Fatal(err) // errors.Is(err, gitwrite.ErrAuthentication), ...
	}
	req := gitwrite.CommitRequest{
		Author:  gitwrite.Signature{Name: "jane", Email: "jane@example.com", When: time.Now()},
		Message: "Update ConfigMap ns1/app",
		Changes: []gitwrite.Change{
			{Path: "clusters/c1/ns1/configmaps/app.yaml", Content: []byte("apiVersion: v1\n")},
			{Path: "clusters/c1/ns1/configmaps/old.yaml", Delete: true},
		},
	}
	for attempt := 0; attempt < 3; attempt++ {
		if _, changed, err := repo.Commit(req); err != nil || !changed {
			return // invalid request, or nothing to do
		}
		err = repo.Push(ctx)
		if !errors.Is(err, gitwrite.ErrRemoteMoved) {
			break // pushed, or a failure to report (ErrRemoteUnavailable: retry later)
		}
		if err := repo.Fetch(ctx); err != nil {
			break
		}
	}
}
