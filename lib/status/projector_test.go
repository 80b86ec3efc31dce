package status_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"knative.dev/pkg/apis"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/layout"
	"github.com/gitops-reverser/gitops-reverser/lib/status"
	"github.com/gitops-reverser/gitops-reverser/lib/writer"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/testenv"
)

var _ writer.Observer = (*status.Observer)(nil)

// config has a good provider and one whose Secret holds a wrong password for the same remote,
// three targets (written, refused, queued and never drained), and two source clusters, one of
// them without its token Secret.
const config = `
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: gitops}
stringData: {username: %[1]q, password: %[2]q}
---
apiVersion: v1
kind: Secret
metadata: {name: stale-creds, namespace: gitops}
stringData: {username: %[1]q, password: not-the-password}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitProvider
metadata: {name: repo, namespace: gitops}
spec: {url: %[3]q, secretRef: {name: creds}}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitProvider
metadata: {name: stale, namespace: gitops}
spec: {url: %[3]q, secretRef: {name: stale-creds}}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitTarget
metadata: {name: written, namespace: gitops}
spec: {providerRef: {name: repo}, branch: main, path: clusters/prod, sourceClusters: [prod]}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitTarget
metadata: {name: refused, namespace: gitops}
spec: {providerRef: {name: stale}, branch: refused, path: clusters/prod, sourceClusters: [prod]}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: GitTarget
metadata: {name: queued, namespace: gitops}
spec: {providerRef: {name: repo}, branch: queued, path: clusters/prod, sourceClusters: [prod]}
---
apiVersion: v1
kind: Secret
metadata: {name: tokens, namespace: gitops}
stringData: {token: secret-token}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: SourceCluster
metadata: {name: prod}
spec: {clusterID: prod, tokenSecretRefs: [{namespace: gitops, name: tokens}]}
---
apiVersion: reverser.gitops.dev/v1alpha1
kind: SourceCluster
metadata: {name: orphan}
spec: {clusterID: orphan, tokenSecretRefs: [{namespace: gitops, name: missing}]}
`

// TestStatusOnARealAPIServer drains through a real writer into a real Git remote, with the
// catalog and the statuses on a real kube-apiserver and the queues in a real Valkey, and reads
// the conditions back from the apiserver.
func TestStatusOnARealAPIServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kube := testenv.KubeWithCRDs(t, harness.KubeOptions{})
	_, client := testenv.Valkey(t, harness.ValkeyOptions{})
	git := testenv.GitRemote(t, harness.GitRemoteOptions{})
	if err := kube.Apply(ctx, harness.AdminUser, []byte(fmt.Sprintf(config, git.Username, git.Password, git.URL))); err != nil {
		t.Fatal(err)
	}

	cfg := kube.RESTConfig(harness.AdminUser)
	cat, err := catalog.Watch(ctx, cfg, time.Second, catalog.UsesAll)
	if err != nil {
		t.Fatal(err)
	}
	b := bus.New(client, bus.Options{})
	projector, err := status.NewProjector(cfg, b)
	if err != nil {
		t.Fatal(err)
	}
	rec := status.NewRecorder(b)
	w := writer.New(writer.Options{
		Catalog: cat, Bus: b, CacheDir: t.TempDir(), LeaseTTL: 2 * time.Second, GitTimeout: 10 * time.Second,
		Observer: status.NewObserver(rec, projector, 0),
	})
	dyn := dynamic.NewForConfigOrDie(cfg)

	// (a) A drain that pushes: the writer's hook records and projects the partition at once.
	mainPart := identity.PartitionOf(git.URL, "main")
	queue(t, b, mainPart, "written", "one", "two")
	if res, err := w.Drain(ctx, mainPart); err != nil || res.Commits == 0 {
		t.Fatalf("drain main: %+v, %v", res, err)
	}
	tip, err := git.Head("main")
	if err != nil {
		t.Fatal(err)
	}
	written := get[v1alpha1.GitTarget](t, dyn, "gittargets", "gitops", "written")
	expect(t, "GitTarget written", written.Status.GetCondition(apis.ConditionReady), corev1.ConditionTrue, v1alpha1.ReasonPushed, tip[:7])
	if written.Status.LastCommit != tip || written.Status.Backlog != 0 || written.Status.ObservedGeneration != written.Generation {
		t.Errorf("GitTarget written: lastCommit %q (remote tip %q), backlog %d, observedGeneration %d of %d",
			written.Status.LastCommit, tip, written.Status.Backlog, written.Status.ObservedGeneration, written.Generation)
	}
	repo := get[v1alpha1.GitProvider](t, dyn, "gitproviders", "gitops", "repo")
	expect(t, "GitProvider repo", repo.Status.GetCondition(apis.ConditionReady), corev1.ConditionTrue, "", "")
	if repo.Status.LastPushTime == nil || time.Since(repo.Status.LastPushTime.Time) > time.Minute {
		t.Errorf("GitProvider repo: lastPushTime = %v, want about now", repo.Status.LastPushTime)
	}

	// (b) A drain refused for the credentials: the provider says which Secret to fix, and its
	// target is not ready.
	refusedPart := identity.PartitionOf(git.URL, "refused")
	queue(t, b, refusedPart, "refused", "three")
	if _, err := w.Drain(ctx, refusedPart); err == nil {
		t.Fatal("drain with a wrong password: no error")
	}
	stale := get[v1alpha1.GitProvider](t, dyn, "gitproviders", "gitops", "stale")
	expect(t, "GitProvider stale", stale.Status.GetCondition(apis.ConditionReady), corev1.ConditionFalse,
		v1alpha1.ReasonAuthenticationFailed, `Secret gitops/stale-creds: put a valid credential in its key "username" and "password"`)
	refused := get[v1alpha1.GitTarget](t, dyn, "gittargets", "gitops", "refused")
	expect(t, "GitTarget refused", refused.Status.GetCondition(apis.ConditionReady), corev1.ConditionFalse,
		v1alpha1.ReasonProviderNotReady, `GitProvider "stale" is not ready: AuthenticationFailed`)
	if strings.Contains(stale.Status.GetCondition(apis.ConditionReady).Message, "not-the-password") {
		t.Error("the password reached the status")
	}

	// (c) Changes queued and never drained: the jobs' ProjectAll shows the backlog.
	queuedPart := identity.PartitionOf(git.URL, "queued")
	queue(t, b, queuedPart, "queued", "a", "b", "c")
	if err := projector.ProjectAll(ctx); err != nil {
		t.Fatal(err)
	}
	queued := get[v1alpha1.GitTarget](t, dyn, "gittargets", "gitops", "queued")
	expect(t, "GitTarget queued", queued.Status.GetCondition(apis.ConditionReady), corev1.ConditionUnknown,
		v1alpha1.ReasonBacklogged, "3 changes queued for the branch, not in Git yet (dead letters 0); no writer is draining it")
	if queued.Status.Backlog != 3 {
		t.Errorf("GitTarget queued: backlog = %d, want 3", queued.Status.Backlog)
	}

	// (d) Source clusters: Ready with their token, SecretNotFound without.
	prod := get[v1alpha1.SourceCluster](t, dyn, "sourceclusters", "", "prod")
	expect(t, "SourceCluster prod", prod.Status.GetCondition(apis.ConditionReady), corev1.ConditionTrue, "", "")
	orphan := get[v1alpha1.SourceCluster](t, dyn, "sourceclusters", "", "orphan")
	expect(t, "SourceCluster orphan", orphan.Status.GetCondition(apis.ConditionReady), corev1.ConditionFalse,
		v1alpha1.ReasonSecretNotFound, `token Secret gitops/missing not found: create it with the key "token"`)

	// (e) A reconcile result, recorded as the reconcile job does, shows on the next projection.
	if err := rec.RecordReconcile(ctx, identity.TargetRef{Namespace: "gitops", Name: "written"}, mainPart.ID, time.Now(), 2, nil); err != nil {
		t.Fatal(err)
	}
	if err := projector.ProjectAll(ctx); err != nil {
		t.Fatal(err)
	}
	written = get[v1alpha1.GitTarget](t, dyn, "gittargets", "gitops", "written")
	if written.Status.Drift == nil || *written.Status.Drift != 2 || written.Status.LastReconcileTime == nil {
		t.Errorf("GitTarget written after a reconcile: drift %v, lastReconcileTime %v", written.Status.Drift, written.Status.LastReconcileTime)
	}

	// (f) No churn: projecting the same facts again writes nothing.
	before := versions(t, dyn)
	time.Sleep(1100 * time.Millisecond) // a fresh timestamp would now differ
	if err := projector.ProjectAll(ctx); err != nil {
		t.Fatal(err)
	}
	if after := versions(t, dyn); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a second projection of the same facts wrote:\nbefore %v\nafter  %v", before, after)
	}

	// (g) The printer columns of the generated CRDs, as the apiserver serves them to kubectl.
	cols, rows := table(t, cfg, "/apis/reverser.gitops.dev/v1alpha1/namespaces/gitops/gittargets")
	for _, c := range []string{"Ready", "Reason", "Backlog", "DLQ", "Commit", "Reconciled", "Drift"} {
		if _, ok := cols[c]; !ok {
			t.Errorf("GitTarget printer columns %v lack %q", cols, c)
		}
	}
	if got := rows["queued"][cols["Backlog"]]; fmt.Sprint(got) != "3" {
		t.Errorf("kubectl get gittargets: queued Backlog = %v, want 3", got)
	}
	if got := rows["written"][cols["Commit"]]; got != tip {
		t.Errorf("kubectl get gittargets: written Commit = %v, want %s", got, tip)
	}
	cols, rows = table(t, cfg, "/apis/reverser.gitops.dev/v1alpha1/namespaces/gitops/gitproviders")
	if _, ok := cols["Last Push"]; !ok {
		t.Errorf("GitProvider printer columns %v lack %q", cols, "Last Push")
	}
	if got := rows["stale"][cols["Reason"]]; got != v1alpha1.ReasonAuthenticationFailed {
		t.Errorf("kubectl get gitproviders: stale Reason = %v", got)
	}
}

// queue appends ConfigMap upserts for a target, as ingest would.
func queue(t *testing.T, b *bus.Bus, p identity.Partition, target string, names ...string) {
	t.Helper()
	var entries []bus.Entry
	for _, name := range names {
		key := identity.Key{Cluster: "prod", Resource: "configmaps", Namespace: "apps", Name: name}
		ref := identity.TargetRef{Namespace: "gitops", Name: target}
		c := &change.Change{
			ID: identity.EventID("audit-"+name, key, ref), Op: change.OpUpsert, Time: time.Now(), Partition: p.ID,
			Actor: change.Actor{Username: "alice"}, AuditID: "audit-" + name, Verb: "create",
			Key: key, Target: ref, Path: layout.Path("clusters/prod", key),
			Object: json.RawMessage(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"` + name + `","namespace":"apps"}}`),
		}
		payload, err := c.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, bus.Entry{ID: c.ID, Payload: payload})
	}
	if _, err := b.Append(context.Background(), p.ID, entries); err != nil {
		t.Fatal(err)
	}
}

// get reads an object back from the apiserver.
func get[T any](t *testing.T, dyn dynamic.Interface, resource, namespace, name string) *T {
	t.Helper()
	u, err := dyn.Resource(catalog.GVR(resource)).Namespace(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	obj := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, obj); err != nil {
		t.Fatal(err)
	}
	return obj
}

func expect(t *testing.T, what string, c *apis.Condition, status corev1.ConditionStatus, reason, message string) {
	t.Helper()
	if c == nil {
		t.Errorf("%s: no Ready condition", what)
		return
	}
	if c.Status != status || c.Reason != reason || !strings.Contains(c.Message, message) {
		t.Errorf("%s: Ready = %s/%s %q; want %s/%s containing %q", what, c.Status, c.Reason, c.Message, status, reason, message)
	}
}

// versions returns the resourceVersion of every object whose status is projected.
func versions(t *testing.T, dyn dynamic.Interface) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range []string{"gitproviders", "gittargets", "sourceclusters"} {
		l, err := dyn.Resource(catalog.GVR(r)).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range l.Items {
			out[r+"/"+u.GetName()] = u.GetResourceVersion()
		}
	}
	return out
}

// table lists path as kubectl get does (the server-side Table with the CRD's printer columns)
// and returns the column indexes by name and the cells by object name.
func table(t *testing.T, cfg *rest.Config, path string) (map[string]int, map[string][]any) {
	t.Helper()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodGet, cfg.Host+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var tab metav1.Table
	if err := json.Unmarshal(body, &tab); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s as Table: %s: %v: %s", path, resp.Status, err, body)
	}
	cols := map[string]int{}
	for i, c := range tab.ColumnDefinitions {
		cols[c.Name] = i
	}
	rows := map[string][]any{}
	for _, r := range tab.Rows {
		rows[fmt.Sprint(r.Cells[cols["Name"]])] = r.Cells
	}
	return cols, rows
}
