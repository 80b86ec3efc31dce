package writer

import (
	"bufio"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/gitops-reverser/gitops-reverser/lib/gitwrite"
)

// Bounds of the applied-event memory of one partition.
const (
	// historyDepth is how many new commits a refresh reads at most. Only events pushed but not
	// acknowledged can come back, and those are in the last few commits; the rest is margin.
	historyDepth = 256
	// appliedCap is how many event ids are remembered; the oldest are forgotten first.
	appliedCap = 50_000
)

// applied remembers the event ids in the branch's recent commits (their Event-Id trailers),
// so an event redelivered after a push whose acknowledgement was lost is not written twice.
// It is derived from Git alone, so it survives any crash of a writer or of Valkey.
type applied struct {
	scanned plumbing.Hash // the newest commit already read
	ids     map[string]struct{}
	order   []string
}

func newApplied() *applied { return &applied{ids: map[string]struct{}{}} }

// refresh reads the commits pushed since the last refresh.
func (a *applied) refresh(repo *gitwrite.Repo) error {
	head := repo.Head()
	if head == a.scanned {
		return nil
	}
	err := repo.History(a.scanned, historyDepth, func(_ plumbing.Hash, message string) bool {
		for _, id := range trailers(message, TrailerEventID) {
			a.add(id)
		}
		return true
	})
	if err != nil {
		return err
	}
	a.scanned = head
	return nil
}

func (a *applied) add(id string) {
	if _, ok := a.ids[id]; ok {
		return
	}
	a.ids[id] = struct{}{}
	a.order = append(a.order, id)
	if len(a.order) > appliedCap {
		delete(a.ids, a.order[0])
		a.order = a.order[1:]
	}
}

func (a *applied) has(id string) bool {
	_, ok := a.ids[id]
	return ok
}

// trailers returns the values of one trailer in a commit message.
func trailers(message, key string) []string {
	var out []string
	prefix := key + ": "
	sc := bufio.NewScanner(strings.NewReader(message))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}
