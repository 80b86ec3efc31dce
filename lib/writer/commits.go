package writer

import (
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/gitwrite"
	"github.com/gitops-reverser/gitops-reverser/lib/layout"
	"github.com/gitops-reverser/gitops-reverser/lib/render"
)

// Commit trailers. Every commit can be traced back to its cluster, audit ids and events from
// Git alone; Event-Id is also how a writer recognises events it already pushed.
const (
	TrailerCluster        = "Cluster-Id"
	TrailerAuditID        = "Audit-Id"
	TrailerEventID        = "Event-Id"
	TrailerImpersonatedBy = "Impersonated-By"
	TrailerWriterEpoch    = "Writer-Epoch"
	TrailerSnapshotID     = "Snapshot-Id"
)

// decoded is a stream message and the change it holds (nil when it does not decode).
type decoded struct {
	msg    bus.Message
	change *change.Change
	err    error
}

func decode(msgs []bus.Message) []decoded {
	out := make([]decoded, len(msgs))
	for i, m := range msgs {
		out[i].msg = m
		if m.Payload != nil {
			out[i].change, out[i].err = change.Unmarshal(m.Payload)
		}
	}
	return out
}

// versionKey names an object within a target, for the versions already written.
func versionKey(c *change.Change) string { return c.Target.String() + "|" + c.Key.String() }

// batchState is what planning a batch needs besides its messages.
type batchState struct {
	roots         []string // folders the partition's targets own
	committer     v1alpha1.Identity
	epoch         int64 // the lease epoch, recorded in each commit
	now           time.Time
	maxDeliveries int64
	applied       func(eventID string) bool // already in a commit on the branch
	versions      map[string]string         // versionKey -> newest resourceVersion in Git
	// snapshot names a batch given to Apply: its commit is made even when it changes
	// nothing, and says what it is instead of listing every object.
	snapshot string
}

// plan is what one batch becomes.
type plan struct {
	commits []gitwrite.CommitRequest
	// poison are messages that failed maxDeliveries times: parked in the DLQ.
	poison []poisoned
	// ack are the stream ids to acknowledge once the commits are pushed: everything but the
	// failures still under their delivery limit, which are left to be read again.
	ack []string
	// versions are the newest resourceVersions this batch writes, to record with the ack.
	versions map[string]string
	// skipped counts changes already in Git or older than what is.
	skipped int
	// outcomes says, per message of the batch, what became of it (for metrics).
	outcomes []string
}

// Outcomes of a message, as counted by the writer's events metric.
const (
	outcomeWritten      = "written"
	outcomeSkipped      = "skipped"
	outcomeDeadLettered = "dead_lettered"
	outcomeRetried      = "retried"
)

type poisoned struct {
	msg     bus.Message
	reason  string
	cluster string
}

// group is a run of consecutive changes by one user from one cluster.
type group struct {
	actor   change.Actor
	cluster string
	changes []*change.Change
	files   []gitwrite.Change
}

// planBatch turns a batch into commits, in stream order. A change is skipped when its event
// id is already in Git (redelivered after a push whose ack was lost), when its object is
// already in Git at a newer resourceVersion (events of one object queued out of order), or
// when a later event of its object in the batch is already in Git.
func planBatch(batch []decoded, st batchState) plan {
	p := plan{versions: map[string]string{}, outcomes: make([]string, len(batch))}
	superseded := supersededByApplied(batch, st.applied)
	var groups []*group
	newest := func(k string) string {
		if v, ok := p.versions[k]; ok {
			return v
		}
		return st.versions[k]
	}
	for i, d := range batch {
		c := d.change
		if d.msg.Payload == nil {
			p.ack = append(p.ack, d.msg.StreamID) // trimmed before it was acknowledged: written
			p.outcomes[i] = outcomeSkipped
			continue
		}
		var file gitwrite.Change
		err := d.err
		if err == nil {
			k := versionKey(c)
			if st.applied(c.ID) || older(c.ResourceVersion, newest(k)) {
				// An applied event is in Git even though its acknowledgement was lost, so its
				// version counts: an older change queued after it must not roll it back.
				if st.applied(c.ID) && c.ResourceVersion != "" && !older(c.ResourceVersion, newest(k)) {
					p.versions[k] = c.ResourceVersion
				}
				p.ack = append(p.ack, d.msg.StreamID)
				p.skipped++
				p.outcomes[i] = outcomeSkipped
				continue
			}
			file, err = fileChange(c, st.roots)
		}
		if err == nil && superseded[i] {
			p.ack = append(p.ack, d.msg.StreamID)
			p.skipped++
			p.outcomes[i] = outcomeSkipped
			continue
		}
		if err != nil {
			p.outcomes[i] = outcomeRetried // under the limit: not acknowledged, so read again
			if d.msg.Deliveries >= st.maxDeliveries {
				p.poison = append(p.poison, poisoned{msg: d.msg, reason: err.Error(), cluster: clusterOf(d)})
				p.outcomes[i] = outcomeDeadLettered
			}
			continue
		}
		p.ack = append(p.ack, d.msg.StreamID)
		p.outcomes[i] = outcomeWritten
		if c.ResourceVersion != "" {
			p.versions[versionKey(c)] = c.ResourceVersion
		}
		last := len(groups) - 1
		if last < 0 || groups[last].actor != c.Actor || groups[last].cluster != c.Key.Cluster {
			groups = append(groups, &group{actor: c.Actor, cluster: c.Key.Cluster})
			last++
		}
		groups[last].changes = append(groups[last].changes, c)
		groups[last].files = append(groups[last].files, file)
	}
	for _, g := range groups {
		p.commits = append(p.commits, g.request(st))
	}
	return p
}

// supersededByApplied marks the events that come before, in the batch, an event of the same
// object already in Git. They were planned before it the first time, yet their ids may be in
// no commit: a run of them that changed nothing in the end (create then delete) makes no
// commit. Written again after the later event, they would undo it. Events that cannot be
// written are not marked: they still go the way of failures, to the DLQ.
func supersededByApplied(batch []decoded, applied func(string) bool) map[int]bool {
	var out map[int]bool
	last := map[string]int{} // versionKey -> index of the last applied event
	for i, d := range batch {
		if d.change != nil && applied(d.change.ID) {
			last[versionKey(d.change)] = i
		}
	}
	for i, d := range batch {
		if d.change == nil {
			continue
		}
		if j, ok := last[versionKey(d.change)]; ok && i < j && !applied(d.change.ID) {
			if out == nil {
				out = map[int]bool{}
			}
			out[i] = true
		}
	}
	return out
}

// older reports whether resourceVersion v is older than w. resourceVersions are opaque to
// clients, but in every apiserver backed by etcd they are increasing integers; anything else
// is never judged older, so it is written in stream order.
func older(v, w string) bool {
	a, errA := strconv.ParseUint(v, 10, 64)
	b, errB := strconv.ParseUint(w, 10, 64)
	return errA == nil && errB == nil && a < b
}

// clusterOf is the cluster a message came from, as far as it can be told.
func clusterOf(d decoded) string {
	if d.change != nil {
		return d.change.Key.Cluster
	}
	var head struct {
		Source string `json:"source"`
	}
	_ = json.Unmarshal(d.msg.Payload, &head)
	return strings.TrimPrefix(head.Source, "/clusters/")
}

// fileChange renders a change into the file it writes or deletes.
func fileChange(c *change.Change, roots []string) (gitwrite.Change, error) {
	if !inside(c.Path, roots) {
		return gitwrite.Change{}, fmt.Errorf("path %q is outside the folders of this branch's targets", c.Path)
	}
	switch c.Op {
	case change.OpDelete:
		return gitwrite.Change{Path: c.Path, Delete: true}, nil
	case change.OpScale:
		// Applied to the file as the commit finds it; a missing file stays missing.
		return gitwrite.Change{Path: c.Path, Edit: scaleEdit(*c.Replicas)}, nil
	}
	content, err := render.YAML(c.Object)
	if err != nil {
		return gitwrite.Change{}, fmt.Errorf("render %s: %w", c.Key, err)
	}
	return gitwrite.Change{Path: c.Path, Content: content}, nil
}

// inside reports whether p lies in one of the roots ("" is the whole repository).
func inside(p string, roots []string) bool {
	if p != path.Clean(p) || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") {
		return false
	}
	for _, r := range roots {
		r = layout.Root(r)
		if r == "" || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

func (g *group) request(st batchState) gitwrite.CommitRequest {
	when := g.changes[len(g.changes)-1].Time
	if when.IsZero() {
		when = st.now
	}
	req := gitwrite.CommitRequest{
		Author:     gitwrite.Signature{Name: g.actor.Username, Email: Email(g.actor.Username, g.cluster), When: when},
		Committer:  gitwrite.Signature{Name: st.committer.Name, Email: st.committer.Email, When: st.now},
		Message:    g.message(st.epoch),
		Changes:    g.files,
		AllowEmpty: st.snapshot != "",
	}
	if st.snapshot != "" {
		req.Message = g.snapshotMessage(st)
	}
	return req
}

// snapshotMessage sums up a snapshot written by Apply. Its objects are not listed one by one:
// a snapshot holds every object of a target, and Apply's changes never come from the stream,
// so no Event-Id trailer is needed to recognise them.
func (g *group) snapshotMessage(st batchState) string {
	deletes := 0
	for _, c := range g.changes {
		if c.Op == change.OpDelete {
			deletes++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Snapshot of %s: %d objects, %d removed (%s)\n\n", g.changes[0].Target, len(g.changes)-deletes, deletes, g.cluster)
	fmt.Fprintf(&b, "%s: %s\n%s: %s\n%s: %d\n", TrailerCluster, g.cluster, TrailerSnapshotID, st.snapshot, TrailerWriterEpoch, st.epoch)
	return b.String()
}

// message is a summary line, a list of the changes when there are several, and trailers.
func (g *group) message(epoch int64) string {
	var b strings.Builder
	if len(g.changes) == 1 {
		fmt.Fprintf(&b, "%s (%s)\n", describe(g.changes[0]), g.cluster)
	} else {
		fmt.Fprintf(&b, "%d changes by %s (%s)\n\n", len(g.changes), g.actor.Username, g.cluster)
		for _, c := range g.changes {
			fmt.Fprintf(&b, "- %s\n", describe(c))
		}
	}
	fmt.Fprintf(&b, "\n%s: %s\n", TrailerCluster, g.cluster)
	if g.actor.ImpersonatedBy != "" {
		fmt.Fprintf(&b, "%s: %s\n", TrailerImpersonatedBy, g.actor.ImpersonatedBy)
	}
	seen := map[string]bool{}
	for _, c := range g.changes {
		if c.AuditID != "" && !seen[c.AuditID] {
			seen[c.AuditID] = true
			fmt.Fprintf(&b, "%s: %s\n", TrailerAuditID, c.AuditID)
		}
	}
	for _, c := range g.changes {
		fmt.Fprintf(&b, "%s: %s\n", TrailerEventID, c.ID)
	}
	fmt.Fprintf(&b, "%s: %d\n", TrailerWriterEpoch, epoch)
	return b.String()
}

// describe is one change in words: "patch deployments.apps web/front", or
// "scale deployments.apps web/front to 3".
func describe(c *change.Change) string {
	resource := c.Key.Resource
	if c.Key.Group != "" {
		resource += "." + c.Key.Group
	}
	name := c.Key.Name
	if c.Key.Namespace != "" {
		name = c.Key.Namespace + "/" + name
	}
	if c.Op == change.OpScale {
		return fmt.Sprintf("scale %s %s to %d", resource, name, *c.Replicas)
	}
	verb := c.Verb
	if verb == "" {
		verb = string(c.Op)
	}
	return verb + " " + resource + " " + name
}

var notEmailSafe = regexp.MustCompile(`[^A-Za-z0-9._+-]+`)

// Email is the author address of a Kubernetes user, which has none: the user name itself
// when it already is an address, otherwise the user name made address-safe at the cluster id
// ("system:serviceaccount:ns:sa" in cluster prod -> "system-serviceaccount-ns-sa@prod").
func Email(username, cluster string) string {
	if local, domain, ok := strings.Cut(username, "@"); ok && local != "" && domain != "" && !strings.ContainsAny(username, ": <>") {
		return username
	}
	local := strings.Trim(notEmailSafe.ReplaceAllString(username, "-"), "-")
	if local == "" {
		local = "unknown"
	}
	return local + "@" + cluster
}
