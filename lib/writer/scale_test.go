package writer

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/layout"
	"github.com/gitops-reverser/gitops-reverser/lib/render"
)

// deployment is a Deployment as ingest queues it (sanitized JSON).
const deployment = `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"apps","labels":{"app":"web"},"annotations":{"note":"1.0","when":"2026-01-01T00:00:00Z"}},` +
	`"spec":{"replicas":2,"progressDeadlineSeconds":600,"selector":{"matchLabels":{"app":"web"}},"strategy":{"rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"},"type":"RollingUpdate"},` +
	`"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"image":"nginx:1.27","name":"web","resources":{"limits":{"cpu":"0.5","memory":"64Mi"}}}],"terminationGracePeriodSeconds":30}}}}`

func rendered(t *testing.T, object string) []byte {
	t.Helper()
	b, err := render.YAML([]byte(object))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSetReplicasChangesOnlyTheReplicas(t *testing.T) {
	file := rendered(t, deployment)
	out, err := setReplicas(file, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(string(file), "  replicas: 2\n", "  replicas: 7\n", 1)
	if want == string(file) {
		t.Fatalf("fixture has no replicas line:\n%s", file)
	}
	if string(out) != want {
		t.Errorf("scaled file:\n%s\nwant:\n%s", out, want)
	}
	// Scaling to what the file already says gives the same bytes: no commit.
	if same, err := setReplicas(file, 2); err != nil || string(same) != string(file) {
		t.Errorf("scale to the same replicas changed the file (err %v):\n%s", err, same)
	}
	if zero, _ := setReplicas(file, 0); !strings.Contains(string(zero), "  replicas: 0\n") {
		t.Errorf("scale to zero:\n%s", zero)
	}
}

func TestScaleEditLeavesOtherFilesAlone(t *testing.T) {
	noReplicas := rendered(t, `{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"},"spec":{"size":3}}`)
	for name, file := range map[string][]byte{
		"no spec.replicas": noReplicas,
		"not YAML":         []byte("{ this is: [not yaml\n"),
		"not an object":    []byte("- a\n- b\n"),
		"empty":            {},
	} {
		t.Run(name, func(t *testing.T) {
			if got := scaleEdit(5)(file); string(got) != string(file) {
				t.Errorf("edit changed the file:\n%s", got)
			}
		})
	}
}

// scaleMsg builds a stream message for a scale of the Deployment apps/web.
func scaleMsg(t *testing.T, streamID, auditID, rv string, replicas int64) bus.Message {
	t.Helper()
	c := deploymentChange(auditID, rv)
	c.Op, c.Replicas, c.Verb = change.OpScale, &replicas, "patch"
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return bus.Message{StreamID: streamID, Payload: b}
}

func deploymentChange(auditID, rv string) *change.Change {
	key := identity.Key{Cluster: "prod", Group: "apps", Resource: "deployments", Namespace: "apps", Name: "web"}
	target := identity.TargetRef{Namespace: "gitops", Name: "main"}
	return &change.Change{
		ID: identity.EventID(auditID, key, target), Op: change.OpUpsert, Time: time.Unix(1700000000, 0),
		Actor: change.Actor{Username: "alice"}, AuditID: auditID, Verb: "create",
		Key: key, Target: target, Path: layout.Path("clusters/prod", key), ResourceVersion: rv,
		Object: json.RawMessage(deployment),
	}
}

func TestPlanBatchScalesTheFileAsTheCommitFindsIt(t *testing.T) {
	create := deploymentChange("a1", "10")
	b, err := create.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	msgs := []bus.Message{{StreamID: "1-0", Payload: b}, scaleMsg(t, "2-0", "a2", "11", 4)}
	p := planBatch(decode(msgs), state("clusters/prod"))
	if len(p.poison) != 0 || len(p.commits) != 1 || len(p.commits[0].Changes) != 2 {
		t.Fatalf("plan = %+v, want one commit with both changes", p)
	}
	if p.versions[versionKey(create)] != "11" {
		t.Errorf("recorded version %q, want the scale's 11", p.versions[versionKey(create)])
	}
	if msg := p.commits[0].Message; !strings.Contains(msg, "- scale deployments.apps apps/web to 4\n") {
		t.Errorf("message:\n%s", msg)
	}
	written, scale := p.commits[0].Changes[0], p.commits[0].Changes[1]
	if scale.Path != written.Path || scale.Edit == nil || scale.Content != nil {
		t.Fatalf("scale change = %+v, want an edit of %s", scale, written.Path)
	}
	if got := scale.Edit(written.Content); !strings.Contains(string(got), "  replicas: 4\n") {
		t.Errorf("edited file:\n%s", got)
	}

	// A scale older than what Git has is skipped like any other change.
	st := state("clusters/prod")
	st.versions[versionKey(create)] = "12"
	if p := planBatch(decode([]bus.Message{scaleMsg(t, "3-0", "a3", "11", 1)}), st); p.skipped != 1 || len(p.commits) != 0 {
		t.Errorf("stale scale: skipped %d, commits %d; want skipped", p.skipped, len(p.commits))
	}
}

func TestDrainScalesTheFileInGit(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	file := "clusters/prod/apps/apps/deployments/web.yaml"
	appendMsgs := func(msgs ...bus.Message) {
		t.Helper()
		var entries []bus.Entry
		for _, m := range msgs {
			c, err := change.Unmarshal(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			c.Partition = f.partition.ID
			b, err := c.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			entries = append(entries, bus.Entry{ID: c.ID, Payload: b})
		}
		if _, err := f.bus.Append(ctx, f.partition.ID, entries); err != nil {
			t.Fatal(err)
		}
	}
	content := func() string {
		t.Helper()
		files, err := f.git.Files("main")
		if err != nil {
			t.Fatal(err)
		}
		return files[file]
	}

	// A scale of an object Git does not have is acknowledged with no commit.
	head, _ := f.git.Head("main")
	appendMsgs(scaleMsg(t, "0-0", "a0", "9", 3))
	res, err := f.w.Drain(ctx, f.partition)
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := f.git.Head("main"); res.Events != 1 || res.Commits != 0 || after != head || f.backlog(t) != 0 {
		t.Fatalf("scale of a missing file: %+v, head %s -> %s; want acknowledged, no commit", res, head, after)
	}

	// A create and a scale in one batch: the scale edits what the create wrote.
	create := deploymentChange("a1", "10")
	b, err := create.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	appendMsgs(bus.Message{Payload: b}, scaleMsg(t, "0-0", "a2", "11", 4))
	if res, err = f.w.Drain(ctx, f.partition); err != nil || res.Commits != 1 {
		t.Fatalf("create and scale: %+v, %v; want one commit", res, err)
	}
	want := strings.Replace(string(rendered(t, deployment)), "  replicas: 2\n", "  replicas: 4\n", 1)
	if got := content(); got != want {
		t.Fatalf("file after create+scale:\n%s\nwant:\n%s", got, want)
	}

	// A later scale on its own edits the file in Git.
	appendMsgs(scaleMsg(t, "0-0", "a3", "12", 1))
	if res, err = f.w.Drain(ctx, f.partition); err != nil || res.Commits != 1 {
		t.Fatalf("scale: %+v, %v; want one commit", res, err)
	}
	if got := content(); got != strings.Replace(want, "  replicas: 4\n", "  replicas: 1\n", 1) {
		t.Fatalf("file after scale to 1:\n%s", got)
	}
	log, err := f.git.Log("main")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(log[0].Message, "scale deployments.apps apps/web to 1 (prod)\n") || log[0].AuthorName != "alice" {
		t.Errorf("scale commit by %s:\n%s", log[0].AuthorName, log[0].Message)
	}

	// Scaling to the replicas the file already has makes no commit.
	head, _ = f.git.Head("main")
	appendMsgs(scaleMsg(t, "0-0", "a4", "13", 1))
	if res, err = f.w.Drain(ctx, f.partition); err != nil || res.Commits != 0 {
		t.Fatalf("no-op scale: %+v, %v; want no commit", res, err)
	}
	if after, _ := f.git.Head("main"); after != head {
		t.Errorf("no-op scale moved the branch %s -> %s", head, after)
	}
}
