// Package reconcile proves the convergence jobs against the real parts: a kube-apiserver
// with etcd, Valkey, a Git remote over smart HTTP, and the ingest and writer functions as
// processes. The jobs run as the binaries a CronJob would start.
package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gitops-reverser/gitops-reverser/lib/reconcile"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/stack"
)

// start runs the whole product for one test.
func start(t *testing.T) *stack.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, stack.Options{Dir: t.TempDir()})
	if err != nil {
		if s != nil {
			t.Log(s.Logs(40))
		}
		t.Fatalf("start the stack: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(s.Logs(60))
		}
		s.Close()
	})
	return s
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func admin(t *testing.T, s *stack.Stack) *kubernetes.Clientset {
	t.Helper()
	c, err := s.Client(harness.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// file is the path of a core-group object's file in the stack's target.
func file(s *stack.Stack, namespace, resource, name string) string {
	return s.Target + "/" + namespace + "/core/" + resource + "/" + name + ".yaml"
}

// runReconcile runs the reconcile job and returns its report.
func runReconcile(t testing.TB, s *stack.Stack, env ...string) reconcile.Report {
	t.Helper()
	res, err := s.RunJob(ctx(t), "reconcile", env...)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 {
		t.Fatalf("reconcile exited %d\nstderr:\n%s\nstdout:\n%s", res.ExitCode, res.Stderr, res.Stdout)
	}
	var rep reconcile.Report
	if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
		t.Fatalf("reconcile printed no JSON report: %v\n%s", err, res.Stdout)
	}
	return rep
}

// published sums the events a run appended.
func published(rep reconcile.Report) int {
	n := 0
	for _, t := range rep.Targets {
		n += t.Published
	}
	return n
}

// waitData waits until the ConfigMap's file holds want as data.v; want "" waits for the file
// to be gone.
func waitData(t *testing.T, s *stack.Stack, p, want string) {
	t.Helper()
	_, err := s.WaitFiles(ctx(t), func(files map[string]string) bool {
		content, ok := files[p]
		if want == "" {
			return !ok
		}
		return ok && dataV(content) == want
	})
	if err != nil {
		t.Fatalf("%s never held v=%q: %v", p, want, err)
	}
}

// dataV is data.v of a ConfigMap file.
func dataV(content string) string {
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if yaml.Unmarshal([]byte(content), &cm) != nil {
		return ""
	}
	return cm.Data["v"]
}

func configMap(ns, name, v string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string]string{"v": v}}
}

// withRuleFor writes a catalog that also watches ConfigMaps in namespace, as if the rule
// was added after its objects were created, and returns its CATALOG_FILE setting. The
// running functions keep the stack's catalog: ingest never saw these objects.
func withRuleFor(t testing.TB, s *stack.Stack, namespace string) string {
	t.Helper()
	env, err := s.CatalogWatching(namespace)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestReconcileSeedsObjectsThatPredateTheRules(t *testing.T) {
	s := start(t)
	kube := admin(t, s)
	const n = 25
	for i := range n {
		if _, err := kube.CoreV1().ConfigMaps("unwatched").Create(ctx(t), configMap("unwatched", fmt.Sprintf("old-%02d", i), strconv.Itoa(i)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	catalog := withRuleFor(t, s, "unwatched")

	rep := runReconcile(t, s, catalog)
	if len(rep.Targets) != 1 || rep.Targets[0].Err != nil || rep.Targets[0].Error != "" {
		t.Fatalf("report: %+v", rep)
	}
	// Every ConfigMap of the namespace: the test's, and any the cluster made itself.
	all, err := kube.CoreV1().ConfigMaps("unwatched").List(ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rep.Targets[0].Upserts, len(all.Items); got != want || want < n {
		t.Errorf("upserts = %d, want %d (the ConfigMaps of the namespace, %d of them the test's)", got, want, n)
	}
	if got, want := published(rep), len(all.Items); got != want {
		t.Errorf("published = %d, want %d", got, want)
	}
	for i := range n {
		waitData(t, s, file(s, "unwatched", "configmaps", fmt.Sprintf("old-%02d", i)), strconv.Itoa(i))
	}
	log, err := s.Git.Log(s.Git.Branch)
	if err != nil {
		t.Fatal(err)
	}
	if log[0].AuthorName != reconcile.DefaultActor {
		t.Errorf("seed commit author = %q, want %q", log[0].AuthorName, reconcile.DefaultActor)
	}

	again := runReconcile(t, s, catalog)
	if got := published(again); got != 0 || again.Targets[0].Drift() != 0 {
		t.Errorf("second run: published %d, drift %d; want nothing: %+v", got, again.Targets[0].Drift(), again)
	}
	if again.Targets[0].Objects != rep.Targets[0].Objects {
		t.Errorf("second run saw %d objects, first %d", again.Targets[0].Objects, rep.Targets[0].Objects)
	}

	// A cluster the job cannot read fails the run, so the CronJob's history shows it, with
	// the fix in the message.
	res, err := s.RunJob(ctx(t), "reconcile", catalog, "KUBECONFIG="+t.TempDir()+"/missing")
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 1 || !strings.Contains(res.Stderr, "kubeconfigSecretRef") {
		t.Errorf("unreadable cluster: exit %d, stderr %q; want 1 and a message naming kubeconfigSecretRef", res.ExitCode, res.Stderr)
	}
}

func TestReconcileRepairsWhatIngestMissed(t *testing.T) {
	s := start(t)
	kube := admin(t, s)
	cms := kube.CoreV1().ConfigMaps("team-a")
	for _, name := range []string{"changed", "deleted", "kept"} {
		if _, err := cms.Create(ctx(t), configMap("team-a", name, "1"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitData(t, s, file(s, "team-a", "configmaps", name), "1")
	}

	// Ingest goes away: the apiserver's audit batches fail from now on.
	if err := s.Ingest.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Update(ctx(t), configMap("team-a", "changed", "2"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cms.Delete(ctx(t), "deleted", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx(t), configMap("team-a", "created", "1"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	rep := runReconcile(t, s)
	tr := rep.Targets[0]
	if tr.Upserts != 2 || tr.Deletes != 1 {
		t.Errorf("drift: %d upserts, %d deletes; want 2 (changed, created) and 1 (deleted): %+v", tr.Upserts, tr.Deletes, tr)
	}
	waitData(t, s, file(s, "team-a", "configmaps", "changed"), "2")
	waitData(t, s, file(s, "team-a", "configmaps", "created"), "1")
	waitData(t, s, file(s, "team-a", "configmaps", "deleted"), "")
	waitData(t, s, file(s, "team-a", "configmaps", "kept"), "1")

	again := runReconcile(t, s)
	if got := published(again); got != 0 {
		t.Errorf("second run published %d events, want 0: %+v", got, again)
	}
}

// TestReconcileRacingLiveUpdatesNeverRollsBack updates one ConfigMap as fast as it can while
// reconcile runs again and again, then checks every version of its file in Git's history:
// the counter in it never goes down.
func TestReconcileRacingLiveUpdatesNeverRollsBack(t *testing.T) {
	s := start(t)
	kube := admin(t, s)
	cms := kube.CoreV1().ConfigMaps("team-b")
	if _, err := cms.Create(ctx(t), configMap("team-b", "racer", "0"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := file(s, "team-b", "configmaps", "racer")
	waitData(t, s, p, "0")

	var last atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := int64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := cms.Update(context.Background(), configMap("team-b", "racer", strconv.FormatInt(i, 10)), metav1.UpdateOptions{}); err != nil {
				t.Errorf("update %d: %v", i, err)
				return
			}
			last.Store(i)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	for range 4 {
		runReconcile(t, s)
	}
	close(stop)
	wg.Wait()
	final := strconv.FormatInt(last.Load(), 10)
	waitData(t, s, p, final)

	log, err := s.Git.Log(s.Git.Branch)
	if err != nil {
		t.Fatal(err)
	}
	prev, versions, byReconcile := -1, 0, 0
	for i := len(log) - 1; i >= 0; i-- { // oldest first
		c := log[i]
		if !touches(c, p) {
			continue
		}
		content, ok, err := s.Git.FileAt(c.Hash, p)
		if err != nil || !ok {
			t.Fatalf("%s at %s: %v", p, c.Hash, err)
		}
		v, err := strconv.Atoi(dataV(content))
		if err != nil {
			t.Fatalf("%s at %s: %q", p, c.Hash, content)
		}
		if v < prev {
			t.Errorf("commit %s by %s rolled %s back from %d to %d", c.Hash[:8], c.AuthorName, p, prev, v)
		}
		if c.AuthorName == reconcile.DefaultActor {
			byReconcile++
		}
		prev = v
		versions++
	}
	if prev != int(last.Load()) {
		t.Errorf("last version in history is %d, want %d", prev, last.Load())
	}
	t.Logf("%d updates, %d versions of the file in Git, %d of them written by reconcile", last.Load(), versions, byReconcile)
}

func touches(c harness.Commit, p string) bool {
	for _, f := range c.Files {
		if f == p {
			return true
		}
	}
	return false
}

func TestResnapshotWritesOneCommitEqualToTheCluster(t *testing.T) {
	s := start(t)
	kube := admin(t, s)
	cms := kube.CoreV1().ConfigMaps("team-a")
	for i := range 5 {
		if _, err := cms.Create(ctx(t), configMap("team-a", fmt.Sprintf("snap-%d", i), "1"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitData(t, s, file(s, "team-a", "configmaps", "snap-4"), "1")
	// A file whose object never existed (left by a crash, or by hand) and a README that the
	// layout does not produce: the snapshot removes the first and keeps the second.
	stray, readme := file(s, "team-a", "configmaps", "stray"), s.Target+"/README.md"
	if err := s.Git.CommitFiles(map[string]string{stray: "apiVersion: v1\nkind: ConfigMap\n", readme: "ours\n"}, "a human"); err != nil {
		t.Fatal(err)
	}
	before, err := s.Git.Log(s.Git.Branch)
	if err != nil {
		t.Fatal(err)
	}

	for round := 1; round <= 2; round++ { // the second finds no drift and still commits
		res, err := s.RunJob(ctx(t), "resnapshot", "TARGETS=gitops/"+s.ClusterID)
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("resnapshot: %v, exit %d\n%s\n%s", err, res.ExitCode, res.Stderr, res.Stdout)
		}
		after, err := s.Git.Log(s.Git.Branch)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(after) - len(before); got != round {
			t.Fatalf("round %d: %d commits since the snapshot began, want %d", round, got, round)
		}
		head := after[0]
		if head.AuthorName != reconcile.SnapshotActor || !strings.HasPrefix(head.Message, "Snapshot of gitops/"+s.ClusterID) {
			t.Errorf("round %d: head commit by %q: %q", round, head.AuthorName, head.Message)
		}
		if round == 1 && !touches(head, stray) {
			t.Errorf("the snapshot commit did not remove %s: %v", stray, head.Files)
		}
		if round == 2 && len(head.Files) != 0 {
			t.Errorf("a snapshot without drift changed %v", head.Files)
		}
	}

	files, err := s.Git.Files(s.Git.Branch)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := files[stray]; ok {
		t.Errorf("%s survived the snapshot", stray)
	}
	if files[readme] != "ours\n" {
		t.Errorf("%s was touched: %q", readme, files[readme])
	}
	// The tree equals the cluster: every watched ConfigMap, Secret and Deployment has its
	// file, and no other object file is there.
	want := map[string]bool{}
	for _, ns := range []string{"team-a", "team-b"} {
		list, err := kube.CoreV1().ConfigMaps(ns).List(ctx(t), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, cm := range list.Items {
			want[file(s, ns, "configmaps", cm.Name)] = true
		}
	}
	for p := range files {
		if strings.HasPrefix(p, s.Target+"/") && p != readme && !want[p] {
			t.Errorf("unexpected file %s", p)
		}
	}
	for p := range want {
		if _, ok := files[p]; !ok {
			t.Errorf("missing file %s", p)
		}
	}
}
