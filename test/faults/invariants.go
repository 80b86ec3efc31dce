package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// Trailers the writer puts on its commits.
var (
	eventIDTrailer = regexp.MustCompile(`(?m)^Event-Id: (\S+)\s*$`)
	epochTrailer   = regexp.MustCompile(`(?m)^Writer-Epoch: (\d+)\s*$`)
)

// Report is what the invariant check saw.
type Report struct {
	Files         int // files under the target folder
	Live          int // objects the model expects
	WriterCommits int
	HumanCommits  int
	Events        int // events the model generated
	Written       int // distinct event ids found in commits
	// NetEmpty counts events in no commit because they sit in a run of one user's changes
	// that changes nothing overall (a create and a delete of one object): the commit such a
	// run becomes is empty, and Git has no empty commits.
	NetEmpty    int
	DLQ         int
	MaxAttempts int64
	// Epochs are the Writer-Epoch trailers of the writer's commits, oldest first; empty when
	// the writer does not write the trailer.
	Epochs []int64
	// EpochOf maps a commit hash to its Writer-Epoch (0 when absent).
	EpochOf map[string]int64
	// Commits are the branch's commits, oldest first.
	Commits []harness.Commit
}

func (rep *Report) String() string {
	epochs := "no Writer-Epoch trailer"
	if len(rep.Epochs) > 0 {
		epochs = fmt.Sprintf("epochs %d..%d", rep.Epochs[0], rep.Epochs[len(rep.Epochs)-1])
	}
	return fmt.Sprintf("%d events -> %d written once each (+%d in net-empty runs, no commit), %d writer commits (%s), %d human/seed commits, %d files for %d live objects, DLQ %d (max attempts %d)",
		rep.Events, rep.Written, rep.NetEmpty, rep.WriterCommits, epochs, rep.HumanCommits, rep.Files, rep.Live, rep.DLQ, rep.MaxAttempts)
}

// violations collects failures per invariant, to report a few of each, not thousands.
type violations struct {
	byKind map[string][]string
	order  []string
}

func (v *violations) add(kind, format string, args ...any) {
	if v.byKind == nil {
		v.byKind = map[string][]string{}
	}
	if _, ok := v.byKind[kind]; !ok {
		v.order = append(v.order, kind)
	}
	v.byKind[kind] = append(v.byKind[kind], fmt.Sprintf(format, args...))
}

func (v *violations) String() string {
	var b strings.Builder
	for _, k := range v.order {
		list := v.byKind[k]
		fmt.Fprintf(&b, "\n[%s] %d violation(s):", k, len(list))
		for i, s := range list {
			if i == 12 {
				fmt.Fprintf(&b, "\n    ... and %d more", len(list)-i)
				break
			}
			b.WriteString("\n  - " + s)
		}
	}
	return b.String()
}

// configMap is what is read back from an object's file.
type configMap struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
}

// Check verifies every invariant of the suite on a settled rig and fails the test with each
// violation found:
//
//	(a) the tree under the target folder is exactly the model: one file per live object with
//	    its data, none for a deleted object, none extra (except human files for objects no
//	    event touched);
//	(b) every accepted event id is in the Event-Id trailers of exactly one commit (no
//	    duplicate commit, nothing silently dropped), per object in increasing resourceVersion
//	    (no regression to an older version), and when the writer writes Writer-Epoch
//	    trailers, they never decrease along the branch (no fenced-off writer pushed after its
//	    successor);
//	(c) the DLQ holds exactly the injected poison events, each once, with a reason;
//	(d) every file outside the target folder is as the seed and the humans left it.
func Check(r *Rig) *Report {
	r.T.Helper()
	var v violations
	rep := &Report{EpochOf: map[string]int64{}}
	m := r.Model

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if s, err := r.State(ctx); err != nil {
		v.add("state", "read Valkey state: %v", err)
	} else if s.Stream != 0 {
		v.add("state", "the stream still holds %d entries (%s): check runs on a settled partition", s.Stream, s)
	}

	for _, b := range m.Batches() {
		if !b.Accepted() {
			v.add("driver", "batch %d (%d events) was never accepted by ingest", b.N, len(b.Events))
		}
	}

	// (a) and (d): the tree.
	files, err := r.Git.Files(Branch)
	if err != nil {
		r.T.Fatalf("read the branch: %v", err)
	}
	expected := m.Expected()
	rep.Live = len(expected)
	r.mu.Lock()
	outside, inside := maps.Clone(r.outside), maps.Clone(r.inside)
	r.mu.Unlock()
	seen := map[Obj]bool{}
	for _, path := range slices.Sorted(maps.Keys(files)) {
		content := files[path]
		if !strings.HasPrefix(path, TargetPath+"/") {
			want, ok := outside[path]
			switch {
			case !ok:
				v.add("d outside files", "%s appeared outside %s: the writer must not write there", path, TargetPath)
			case want != content:
				v.add("d outside files", "%s changed: want %q, have %q", path, want, content)
			}
			continue
		}
		rep.Files++
		if want, ok := inside[path]; ok {
			if want != content {
				v.add("a tree", "human file %s (an object no event touches) was changed: want %q, have %q", path, want, content)
			}
			continue
		}
		o, ok := objOfPath(path)
		if !ok {
			v.add("a tree", "unexpected file %s under %s", path, TargetPath)
			continue
		}
		data, ok := expected[o]
		if !ok {
			if m.Known(o) {
				v.add("a tree", "%s is in Git but the object %s was deleted (or never rendered) last", path, o)
			} else {
				v.add("a tree", "%s is in Git for object %s no event touched", path, o)
			}
			continue
		}
		seen[o] = true
		var cm configMap
		if err := yaml.Unmarshal([]byte(content), &cm); err != nil {
			v.add("a tree", "%s is not YAML: %v\n%s", path, err, content)
			continue
		}
		if cm.Kind != "ConfigMap" || cm.APIVersion != "v1" || cm.Metadata.Name != o.Name || cm.Metadata.Namespace != o.Namespace {
			v.add("a tree", "%s holds %s %s %s/%s", path, cm.APIVersion, cm.Kind, cm.Metadata.Namespace, cm.Metadata.Name)
		}
		if !maps.Equal(cm.Data, data) {
			v.add("a tree", "%s: data %s, want %s (seq %s is the last accepted change)", path, jsonString(cm.Data), jsonString(data), data["seq"])
		}
	}
	for o := range expected {
		if !seen[o] {
			v.add("a tree", "%s missing: object %s is live, last change seq %s", o.Path(), o, expected[o]["seq"])
		}
	}
	for path := range outside {
		if _, ok := files[path]; !ok {
			v.add("d outside files", "%s was removed", path)
		}
	}
	for path := range inside {
		if _, ok := files[path]; !ok {
			v.add("a tree", "human file %s (an object no event touches) was removed", path)
		}
	}

	// (b): commits and trailers.
	log, err := r.Git.Log(Branch)
	if err != nil {
		r.T.Fatalf("git log: %v", err)
	}
	slices.Reverse(log)
	rep.Commits = log
	written := map[string][]where{}
	lastSeq := map[Obj]int64{}
	lastAt := map[Obj]string{}
	withEpoch, withoutEpoch := 0, 0
	var lastEpoch int64
	lastEpochAt := ""
	for i, c := range log {
		ids := eventIDTrailer.FindAllStringSubmatch(c.Message, -1)
		if c.CommitterName != CommitterBot {
			rep.HumanCommits++
			if len(ids) > 0 {
				v.add("b commits", "commit %s by %s carries Event-Id trailers", short(c.Hash), c.CommitterName)
			}
			continue
		}
		rep.WriterCommits++
		if len(ids) == 0 {
			v.add("b commits", "writer commit %s has no Event-Id trailer: %q", short(c.Hash), subject(c.Message))
		}
		if e := epochTrailer.FindStringSubmatch(c.Message); e != nil {
			withEpoch++
			n, _ := strconv.ParseInt(e[1], 10, 64)
			rep.Epochs = append(rep.Epochs, n)
			rep.EpochOf[c.Hash] = n
			if n < lastEpoch {
				v.add("b epochs", "commit %s (Writer-Epoch %d) follows commit %s (Writer-Epoch %d): a writer whose lease had passed on pushed after its successor", short(c.Hash), n, lastEpochAt, lastEpoch)
			}
			lastEpoch, lastEpochAt = n, short(c.Hash)
		} else {
			withoutEpoch++
		}
		for _, id := range ids {
			id := id[1]
			written[id] = append(written[id], where{i, c.Hash})
			e, ok := m.EventByID(id)
			if !ok {
				v.add("b commits", "commit %s names event %s the driver never sent", short(c.Hash), id)
				continue
			}
			if e.Poison {
				v.add("b commits", "commit %s names poison event %s (%s)", short(c.Hash), id, e.Obj)
			}
			if len(written[id]) > 1 {
				continue // reported below as a duplicate
			}
			if prev, ok := lastSeq[e.Obj]; ok && e.Seq <= prev {
				v.add("b order", "object %s: event seq %d (%s %s) committed in %s after seq %d in %s: an older version came back", e.Obj, e.Seq, e.Verb, id, short(c.Hash), prev, lastAt[e.Obj])
			}
			lastSeq[e.Obj], lastAt[e.Obj] = e.Seq, short(c.Hash)
		}
	}
	if withEpoch > 0 && withoutEpoch > 0 {
		v.add("b epochs", "%d writer commits carry Writer-Epoch and %d do not", withEpoch, withoutEpoch)
	}
	for _, id := range slices.Sorted(maps.Keys(written)) {
		if ws := written[id]; len(ws) > 1 {
			e, _ := m.EventByID(id)
			desc := "unknown event"
			if e != nil {
				desc = fmt.Sprintf("%s %s seq %d by %s", e.Verb, e.Obj, e.Seq, e.User)
			}
			var cs []string
			for _, w := range ws {
				cs = append(cs, fmt.Sprintf("%s %q epoch %d", short(w.hash), subject(log[w.commit].Message), rep.EpochOf[w.hash]))
			}
			v.add("b duplicates", "Event-Id %s (%s) is in %d commits: %s", id, desc, len(ws), strings.Join(cs, "; "))
		}
	}
	poison := map[string]*Event{}
	events := m.Events()
	netEmpty := netEmptyEvents(events)
	for _, e := range events {
		rep.Events++
		if e.Poison {
			poison[e.EventID] = e
			continue
		}
		if _, ok := written[e.EventID]; !ok {
			if netEmpty[e.EventID] {
				rep.NetEmpty++
				continue
			}
			v.add("b dropped", "event %s (%s %s seq %d by %s, batch %d) was accepted but is in no commit; the object's events: %s",
				e.EventID, e.Verb, e.Obj, e.Seq, e.User, e.Batch, history(events, e.Obj, written, rep.EpochOf))
		}
	}
	rep.Written = len(written)

	// (c): the DLQ.
	dlq, err := r.VK.Do(ctx, r.VK.B().Xrange().Key(r.Keys.DLQ).Start("-").End("+").Build()).AsXRange()
	if err != nil {
		v.add("c dlq", "XRANGE %s: %v", r.Keys.DLQ, err)
	}
	parked := map[string]int{}
	for _, d := range dlq {
		rep.DLQ++
		var ce struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(d.FieldValues["ce"]), &ce); err != nil || ce.ID == "" {
			v.add("c dlq", "DLQ entry %s holds no CloudEvent: %v (fields %v)", d.ID, err, slices.Sorted(maps.Keys(d.FieldValues)))
			continue
		}
		parked[ce.ID]++
		if d.FieldValues["reason"] == "" {
			v.add("c dlq", "DLQ entry %s (event %s) has no reason", d.ID, ce.ID)
		}
		if d.FieldValues["id"] == "" {
			v.add("c dlq", "DLQ entry %s (event %s) has no stream id", d.ID, ce.ID)
		}
		if a, err := strconv.ParseInt(d.FieldValues["attempts"], 10, 64); err == nil {
			rep.MaxAttempts = max(rep.MaxAttempts, a)
			if a > int64(r.Opts.MaxDeliveries) {
				v.add("c dlq", "event %s was parked after %d attempts, more than MAX_DELIVERIES=%d", ce.ID, a, r.Opts.MaxDeliveries)
			}
		}
		e, isPoison := poison[ce.ID]
		switch {
		case isPoison && parked[ce.ID] > 1:
			v.add("c dlq", "poison event %s (%s) is in the DLQ %d times", ce.ID, e.Obj, parked[ce.ID])
		case !isPoison:
			desc := "unknown to the driver"
			if e, ok := m.EventByID(ce.ID); ok {
				desc = fmt.Sprintf("%s %s seq %d, a good event", e.Verb, e.Obj, e.Seq)
			}
			v.add("c dlq", "event %s (%s) was parked: %s", ce.ID, desc, d.FieldValues["reason"])
		}
	}
	for id, e := range poison {
		if parked[id] == 0 {
			v.add("c dlq", "poison event %s (%s) is not in the DLQ", id, e.Obj)
		}
	}

	if len(v.order) > 0 {
		r.T.Errorf("invariants violated (seed %d):%s\nwhat the check saw: %s", r.Seed, v.String(), rep)
	} else {
		r.T.Logf("invariants hold: %s", rep)
	}
	return rep
}

// history describes every event of one object and the commit it landed in.
func history(events []*Event, o Obj, written map[string][]where, epochOf map[string]int64) string {
	var parts []string
	for _, e := range events {
		if e.Obj != o {
			continue
		}
		at := "in no commit"
		if ws := written[e.EventID]; len(ws) > 0 {
			at = fmt.Sprintf("in %s (epoch %d)", short(ws[0].hash), epochOf[ws[0].hash])
		}
		parts = append(parts, fmt.Sprintf("seq %d %s by %s %s", e.Seq, e.Verb, e.User, at))
	}
	return strings.Join(parts, ", ")
}

// where is a commit an event id was found in: its place in the log (oldest first) and hash.
type where struct {
	commit int
	hash   string
}

// netEmptyEvents returns the events that may rightly be in no commit: those inside a run of
// consecutive changes (in stream order) by one user whose net effect on every object it
// touches is nil. The writer commits such a run, or any stretch of it its batch boundaries
// cut out, as one commit of an unchanged tree, which is no commit at all. Poison events in
// between are ignored: the writer sets them aside without ending the run.
func netEmptyEvents(events []*Event) map[string]bool {
	type state struct {
		live bool
		data map[string]string
	}
	before := make([]state, len(events)) // each event's object, just before it
	after := make([]state, len(events))
	cur := map[Obj]state{}
	for i, e := range events {
		before[i] = cur[e.Obj]
		if !e.Poison {
			cur[e.Obj] = state{live: e.Op != OpDelete, data: e.Data}
		}
		after[i] = cur[e.Obj]
	}
	same := func(a, b state) bool { return a.live == b.live && (!a.live || maps.Equal(a.data, b.data)) }
	actor := func(e *Event) string { return e.User + "\x00" + e.ImpersonatedBy }
	out := map[string]bool{}
	for k, e := range events {
		if e.Poison {
			continue
		}
		lo, hi := k, k
		for lo > 0 && (events[lo-1].Poison || actor(events[lo-1]) == actor(e)) {
			lo--
		}
		for hi < len(events)-1 && (events[hi+1].Poison || actor(events[hi+1]) == actor(e)) {
			hi++
		}
	windows:
		for i := lo; i <= k; i++ {
			for j := k; j <= hi; j++ {
				first, last := map[Obj]int{}, map[Obj]int{}
				for x := i; x <= j; x++ {
					if events[x].Poison {
						continue
					}
					if _, ok := first[events[x].Obj]; !ok {
						first[events[x].Obj] = x
					}
					last[events[x].Obj] = x
				}
				empty := true
				for o, f := range first {
					if !same(before[f], after[last[o]]) {
						empty = false
						break
					}
				}
				if empty {
					out[e.EventID] = true
					break windows
				}
			}
		}
	}
	return out
}

// objOfPath reads the object of a file path clusters/faults/<ns>/core/configmaps/<name>.yaml.
func objOfPath(path string) (Obj, bool) {
	parts := strings.Split(strings.TrimPrefix(path, TargetPath+"/"), "/")
	if len(parts) != 4 || parts[1] != "core" || parts[2] != "configmaps" || !strings.HasSuffix(parts[3], ".yaml") {
		return Obj{}, false
	}
	return Obj{parts[0], strings.TrimSuffix(parts[3], ".yaml")}, true
}

// EpochsInOrder returns the writer's commits that carry a Writer-Epoch, oldest first.
func (rep *Report) EpochsInOrder() []struct {
	Hash  string
	Epoch int64
} {
	var out []struct {
		Hash  string
		Epoch int64
	}
	for _, c := range rep.Commits {
		if e, ok := rep.EpochOf[c.Hash]; ok {
			out = append(out, struct {
				Hash  string
				Epoch int64
			}{c.Hash, e})
		}
	}
	return out
}

func short(h string) string {
	if len(h) > 10 {
		return h[:10]
	}
	return h
}

func subject(msg string) string {
	s, _, _ := strings.Cut(msg, "\n")
	return s
}
