package writer

import (
	"fmt"
	"path"
	"regexp"
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
// Git alone.
const (
	TrailerCluster        = "Cluster-Id"
	TrailerAuditID        = "Audit-Id"
	TrailerEventID        = "Event-Id"
	TrailerImpersonatedBy = "Impersonated-By"
)

// plan is what one batch becomes: commits to make, and messages to park.
type plan struct {
	commits []gitwrite.CommitRequest
	poison  []poisoned
	ids     []string // every stream id of the batch, in order
}

type poisoned struct {
	msg    bus.Message
	reason string
}

// group is a run of consecutive changes by one user from one cluster.
type group struct {
	actor   change.Actor
	cluster string
	changes []*change.Change
	files   []gitwrite.Change
}

// planBatch turns a batch of stream messages into commits. roots are the folders the
// partition's targets own; committer is the GitProvider's identity.
func planBatch(msgs []bus.Message, roots []string, committer v1alpha1.Identity, now time.Time) plan {
	var p plan
	var groups []*group
	for _, m := range msgs {
		p.ids = append(p.ids, m.StreamID)
		if m.Payload == nil {
			continue // trimmed before it was acknowledged: already written
		}
		c, err := change.Unmarshal(m.Payload)
		if err != nil {
			p.poison = append(p.poison, poisoned{m, err.Error()})
			continue
		}
		file, err := fileChange(c, roots)
		if err != nil {
			p.poison = append(p.poison, poisoned{m, err.Error()})
			continue
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
		p.commits = append(p.commits, g.request(committer, now))
	}
	return p
}

// fileChange renders a change into the file it writes or deletes.
func fileChange(c *change.Change, roots []string) (gitwrite.Change, error) {
	if !inside(c.Path, roots) {
		return gitwrite.Change{}, fmt.Errorf("path %q is outside the folders of this branch's targets", c.Path)
	}
	if c.Op == change.OpDelete {
		return gitwrite.Change{Path: c.Path, Delete: true}, nil
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

func (g *group) request(committer v1alpha1.Identity, now time.Time) gitwrite.CommitRequest {
	when := g.changes[len(g.changes)-1].Time
	if when.IsZero() {
		when = now
	}
	return gitwrite.CommitRequest{
		Author:    gitwrite.Signature{Name: g.actor.Username, Email: Email(g.actor.Username, g.cluster), When: when},
		Committer: gitwrite.Signature{Name: committer.Name, Email: committer.Email, When: now},
		Message:   g.message(),
		Changes:   g.files,
	}
}

// message is a summary line, a list of the changes when there are several, and trailers.
func (g *group) message() string {
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
	return b.String()
}

// describe is one change in words: "patch deployments.apps web/front".
func describe(c *change.Change) string {
	resource := c.Key.Resource
	if c.Key.Group != "" {
		resource += "." + c.Key.Group
	}
	name := c.Key.Name
	if c.Key.Namespace != "" {
		name = c.Key.Namespace + "/" + name
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
