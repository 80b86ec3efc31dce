package stack

import (
	"context"
	"fmt"
	"time"
)

// WaitFiles polls the branch until cond holds for its files (path -> content) and returns
// them. It fails with the last state seen when ctx ends first.
func (s *Stack) WaitFiles(ctx context.Context, cond func(files map[string]string) bool) (map[string]string, error) {
	var files map[string]string
	var err error
	for {
		files, err = s.Git.Files(s.Git.Branch)
		if err == nil && cond(files) {
			return files, nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return nil, fmt.Errorf("%w; last read failed: %v", ctx.Err(), err)
			}
			return files, fmt.Errorf("%w waiting for Git (files now: %d)", ctx.Err(), len(files))
		case <-time.After(25 * time.Millisecond):
		}
	}
}
