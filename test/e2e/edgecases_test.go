package e2e

import (
	"context"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/stack"
)

// The edge cases of the audit stream, each proven against the real apiserver. A case that
// must write nothing is proven by a barrier instead of a pause: ingest has counted the
// requests' audit events (by outcome), and the writer has acknowledged everything queued
// (the partition stream is empty), so nothing about them can still reach Git.

// hold is a finalizer no controller knows: it keeps an object Terminating until a test lets go.
const hold = "e2e.gitops-reverser.dev/hold"

var auditEventsLine = regexp.MustCompile(`(?m)^gitops_reverser_ingest_audit_events_total\{cluster="([^"]*)",outcome="([^"]*)"\} ([0-9.e+-]+)$`)

// audited returns how many audit events of the stack's cluster ingest has judged, by outcome
// ("changed", or the reason none was: "dry-run", "failed", "terminating", ...).
func audited(t *testing.T) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, m := range auditEventsLine.FindAllSubmatch(metricsOf(t, env.IngestURL), -1) {
		if string(m[1]) != env.ClusterID {
			continue
		}
		n, err := strconv.ParseFloat(string(m[3]), 64)
		if err != nil {
			t.Fatalf("audit events metric %q: %v", m[0], err)
		}
		counts[string(m[2])] = int(n)
	}
	return counts
}

// waitAudited waits until ingest has judged at least want more audit events, by outcome,
// than it had at before.
func waitAudited(t *testing.T, before map[string]int, want map[string]int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		now, missing := audited(t), false
		for outcome, n := range want {
			missing = missing || now[outcome] < before[outcome]+n
		}
		if !missing {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingest judged %v audit events, had %v before; want %v more\n%s", now, before, want, env.Logs(30))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// waitDrained waits until the writer has pushed and acknowledged everything queued: the
// partition stream is trimmed to nothing only after the push.
func waitDrained(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		n := scrape(t, env.WriterURL, `gitops_reverser_partition_stream_length\{partition="[0-9a-f]+"\}`)
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition stream still holds %v entries\n%s", n, env.Logs(30))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// head returns the branch's tip once everything queued is in Git.
func head(t *testing.T) string {
	t.Helper()
	waitDrained(t)
	h, err := env.Git.Head(env.Git.Branch)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// assertNoCommitSince fails if the branch moved past base, naming what the commits wrote.
func assertNoCommitSince(t *testing.T, base string) {
	t.Helper()
	if now := head(t); now != base {
		log, _ := env.Git.Log(env.Git.Branch)
		var extra []string
		for _, c := range log {
			if c.Hash == base {
				break
			}
			extra = append(extra, c.Hash[:8]+" "+strings.SplitN(c.Message, "\n", 2)[0]+" "+strings.Join(c.Files, ","))
		}
		t.Fatalf("branch moved %s -> %s; want no commit:\n%s", base[:8], now[:8], strings.Join(extra, "\n"))
	}
}

// fileContent returns a file of the branch, and whether it exists.
func fileContent(t *testing.T, p string) (string, bool) {
	t.Helper()
	files, err := env.Git.Files(env.Git.Branch)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := files[p]
	return c, ok
}

func configMap(name string, labels map[string]string, finalizers ...string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Finalizers: finalizers},
		Data:       map[string]string{"name": name},
	}
}

// release removes the hold finalizer, keeping any other (the garbage collector's).
func release(t *testing.T, c *kubernetes.Clientset, namespace, name string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := c.CoreV1().ConfigMaps(namespace).Get(ctx(t), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		cm.Finalizers = slices.DeleteFunc(cm.Finalizers, func(f string) bool { return f == hold })
		_, err = c.CoreV1().ConfigMaps(namespace).Update(ctx(t), cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("release %s/%s: %v", namespace, name, err)
	}
}

// waitTerminating waits until the apiserver shows the object marked for deletion.
func waitTerminating(t *testing.T, c *kubernetes.Clientset, namespace, name string) *corev1.ConfigMap {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		cm, err := c.CoreV1().ConfigMaps(namespace).Get(ctx(t), name, metav1.GetOptions{})
		if err == nil && cm.DeletionTimestamp != nil {
			return cm
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s not Terminating: %v", namespace, name, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func assertGoneFromCluster(t *testing.T, c *kubernetes.Clientset, namespace, name string) {
	t.Helper()
	if _, err := c.CoreV1().ConfigMaps(namespace).Get(ctx(t), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("%s/%s: get = %v, want NotFound", namespace, name, err)
	}
}

func TestDeleteHeldByFinalizerKeepsTheFileUntilTheObjectIsGone(t *testing.T) {
	alice := client(t, stack.Alice)
	file := path("team-a", "", "configmaps", "held")
	if _, err := alice.CoreV1().ConfigMaps("team-a").Create(ctx(t), configMap("held", nil, hold), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFile(t, file, func(map[string]any) bool { return true })
	base := head(t)
	content, _ := fileContent(t, file)

	before := audited(t)
	if err := alice.CoreV1().ConfigMaps("team-a").Delete(ctx(t), "held", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitTerminating(t, alice, "team-a", "held")
	waitAudited(t, before, map[string]int{"terminating": 1})
	assertNoCommitSince(t, base)
	if now, ok := fileContent(t, file); !ok || now != content {
		t.Fatalf("file of the Terminating object changed (exists %v):\n%s\nwant:\n%s", ok, now, content)
	}

	// Removing the last finalizer is an update whose answer is the deleted object: now it goes.
	if _, err := alice.CoreV1().ConfigMaps("team-a").Patch(ctx(t), "held", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, file)
	assertGoneFromCluster(t, alice, "team-a", "held")
	if c := lastCommitTouching(t, file); !strings.HasPrefix(c.Message, "patch configmaps team-a/held (e2e)\n") || len(c.Files) != 1 {
		t.Errorf("removal commit (files %v):\n%s", c.Files, c.Message)
	}
}

func TestDeleteCollectionRemovesEveryMemberAndNothingElse(t *testing.T) {
	alice := client(t, stack.Alice)
	members := map[string]string{"batch": "dc"}
	names := []string{"dc-1", "dc-2", "dc-3"}
	for _, n := range names {
		if _, err := alice.CoreV1().ConfigMaps("team-b").Create(ctx(t), configMap(n, members), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// A member held by a finalizer, and a ConfigMap the selector does not pick.
	if _, err := alice.CoreV1().ConfigMaps("team-b").Create(ctx(t), configMap("dc-held", members, hold), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CoreV1().ConfigMaps("team-b").Create(ctx(t), configMap("dc-other", map[string]string{"batch": "other"}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range append(names, "dc-held", "dc-other") {
		waitFile(t, path("team-b", "", "configmaps", n), func(map[string]any) bool { return true })
	}
	head(t)
	files, err := env.Git.Files(env.Git.Branch)
	if err != nil {
		t.Fatal(err)
	}

	if err := alice.CoreV1().ConfigMaps("team-b").DeleteCollection(ctx(t), metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "batch=dc"}); err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for _, n := range names {
		deleted = append(deleted, path("team-b", "", "configmaps", n))
		waitGone(t, deleted[len(deleted)-1])
	}
	// One request, one audit event: its deletes are one commit that touches nothing else.
	c := lastCommitTouching(t, deleted[0])
	if got := slices.Sorted(slices.Values(c.Files)); !slices.Equal(got, deleted) {
		t.Errorf("deletecollection commit wrote %v, want exactly %v", got, deleted)
	}
	if !strings.HasPrefix(c.Message, "3 changes by alice (e2e)\n") || c.AuthorName != stack.Alice {
		t.Errorf("deletecollection commit by %s:\n%s", c.AuthorName, c.Message)
	}
	head(t)
	for _, n := range []string{"dc-held", "dc-other"} {
		p := path("team-b", "", "configmaps", n)
		if now, ok := fileContent(t, p); !ok || now != files[p] {
			t.Errorf("%s changed by the deletecollection (exists %v):\n%s", p, ok, now)
		}
	}
	waitTerminating(t, alice, "team-b", "dc-held")

	release(t, alice, "team-b", "dc-held")
	waitGone(t, path("team-b", "", "configmaps", "dc-held"))
}

// TestOwnerReferenceCascades runs the garbage collector of a real kube-controller-manager:
// the deletes it makes are audited like any client's, as the user it runs as.
func TestOwnerReferenceCascades(t *testing.T) {
	// A first run builds the binary (see harness.BuildControllerManager); `make tools` does it
	// ahead.
	start, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cm, err := env.Kube.StartControllerManager(start, harness.ControllerManagerOptions{Controllers: []string{"garbagecollector"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kube-controller-manager log:\n%s", cm.LogTail(40))
		}
		if err := cm.Close(); err != nil {
			t.Error(err)
		}
	})
	alice := client(t, stack.Alice)

	// family creates an owner and its dependents and waits for their files.
	family := func(t *testing.T, owner string, dependents map[string][]string) (ownerFile string, depFiles map[string]string) {
		t.Helper()
		o, err := alice.CoreV1().ConfigMaps("team-a").Create(ctx(t), configMap(owner, nil), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		block := true
		ref := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: owner, UID: o.UID, BlockOwnerDeletion: &block}
		depFiles = map[string]string{}
		for name, finalizers := range dependents {
			d := configMap(name, nil, finalizers...)
			d.OwnerReferences = []metav1.OwnerReference{ref}
			if _, err := alice.CoreV1().ConfigMaps("team-a").Create(ctx(t), d, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			depFiles[name] = path("team-a", "", "configmaps", name)
			waitFile(t, depFiles[name], func(o map[string]any) bool { return dig(o, "metadata", "ownerReferences") != nil })
		}
		ownerFile = path("team-a", "", "configmaps", owner)
		waitFile(t, ownerFile, func(map[string]any) bool { return true })
		return ownerFile, depFiles
	}

	t.Run("background", func(t *testing.T) {
		ownerFile, deps := family(t, "owner-bg", map[string][]string{"dep-bg-1": nil, "dep-bg-2": nil})
		if err := alice.CoreV1().ConfigMaps("team-a").Delete(ctx(t), "owner-bg", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		waitGone(t, ownerFile)
		for name, f := range deps {
			waitGone(t, f)
			assertGoneFromCluster(t, alice, "team-a", name)
			// The collector deletes as the user it runs as, and the commit says so.
			if c := lastCommitTouching(t, f); c.AuthorName != harness.AdminUser || !strings.Contains(c.Message, "delete configmaps team-a/"+name) {
				t.Errorf("cascade commit of %s by %s:\n%s", name, c.AuthorName, c.Message)
			}
		}
		if c := lastCommitTouching(t, ownerFile); c.AuthorName != stack.Alice {
			t.Errorf("owner delete commit by %s, want alice", c.AuthorName)
		}
	})

	t.Run("foreground", func(t *testing.T) {
		// dep-fg-held keeps the owner Terminating until the test releases it.
		ownerFile, deps := family(t, "owner-fg", map[string][]string{"dep-fg-held": {hold}, "dep-fg-free": nil})
		base := head(t)
		ownerContent, _ := fileContent(t, ownerFile)
		heldContent, _ := fileContent(t, deps["dep-fg-held"])

		before := audited(t)
		foreground := metav1.DeletePropagationForeground
		if err := alice.CoreV1().ConfigMaps("team-a").Delete(ctx(t), "owner-fg", metav1.DeleteOptions{PropagationPolicy: &foreground}); err != nil {
			t.Fatal(err)
		}
		owner := waitTerminating(t, alice, "team-a", "owner-fg")
		if !slices.Contains(owner.Finalizers, metav1.FinalizerDeleteDependents) {
			t.Errorf("owner finalizers %v, want %s", owner.Finalizers, metav1.FinalizerDeleteDependents)
		}
		waitGone(t, deps["dep-fg-free"])
		waitTerminating(t, alice, "team-a", "dep-fg-held")
		// The owner's delete and the collector's delete of the held dependent.
		waitAudited(t, before, map[string]int{"terminating": 2})
		head(t)
		if now, ok := fileContent(t, ownerFile); !ok || now != ownerContent {
			t.Fatalf("owner file changed while the owner is Terminating (exists %v):\n%s", ok, now)
		}
		if now, ok := fileContent(t, deps["dep-fg-held"]); !ok || now != heldContent {
			t.Fatalf("held dependent's file changed while it is Terminating (exists %v):\n%s", ok, now)
		}
		log, err := env.Git.Log(env.Git.Branch)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range log {
			if c.Hash == base {
				break
			}
			if !slices.Equal(c.Files, []string{deps["dep-fg-free"]}) {
				t.Errorf("while the owner was Terminating, commit %s wrote %v", c.Hash[:8], c.Files)
			}
		}

		release(t, alice, "team-a", "dep-fg-held")
		waitGone(t, deps["dep-fg-held"])
		waitGone(t, ownerFile)
		assertGoneFromCluster(t, alice, "team-a", "owner-fg")
	})
	head(t) // leave nothing queued behind for the next test
}

func TestDryRunWritesNothing(t *testing.T) {
	alice := client(t, stack.Alice)
	file := path("team-a", "", "configmaps", "dry-base")
	if _, err := alice.CoreV1().ConfigMaps("team-a").Create(ctx(t), configMap("dry-base", nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFile(t, file, func(map[string]any) bool { return true })
	base := head(t)
	content, _ := fileContent(t, file)

	before := audited(t)
	dry := []string{metav1.DryRunAll}
	if _, err := alice.CoreV1().ConfigMaps("team-a").Create(ctx(t), configMap("dry-new", nil), metav1.CreateOptions{DryRun: dry}); err != nil {
		t.Fatal(err)
	}
	changed := configMap("dry-base", nil)
	changed.Data["name"] = "changed"
	if _, err := alice.CoreV1().ConfigMaps("team-a").Update(ctx(t), changed, metav1.UpdateOptions{DryRun: dry}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CoreV1().ConfigMaps("team-a").Patch(ctx(t), "dry-base", types.MergePatchType, []byte(`{"data":{"patched":"yes"}}`), metav1.PatchOptions{DryRun: dry}); err != nil {
		t.Fatal(err)
	}
	if err := alice.CoreV1().ConfigMaps("team-a").Delete(ctx(t), "dry-base", metav1.DeleteOptions{DryRun: dry}); err != nil {
		t.Fatal(err)
	}
	waitAudited(t, before, map[string]int{"dry-run": 4})
	assertNoCommitSince(t, base)
	if now, ok := fileContent(t, file); !ok || now != content {
		t.Errorf("dry runs changed %s (exists %v):\n%s", file, ok, now)
	}
	if _, ok := fileContent(t, path("team-a", "", "configmaps", "dry-new")); ok {
		t.Error("a dry-run create reached Git")
	}
}

func TestRejectedWritesWriteNothing(t *testing.T) {
	alice := client(t, stack.Alice)
	file := path("team-b", "", "configmaps", "contested")
	first, err := alice.CoreV1().ConfigMaps("team-b").Create(ctx(t), configMap("contested", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second := first.DeepCopy()
	second.Data["name"] = "second"
	if _, err := alice.CoreV1().ConfigMaps("team-b").Update(ctx(t), second, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFile(t, file, func(o map[string]any) bool { return dig(o, "data", "name") == "second" })
	base := head(t)
	content, _ := fileContent(t, file)

	before := audited(t)
	stale := first.DeepCopy() // the resourceVersion before the update: 409
	stale.Data["name"] = "stale"
	if _, err := alice.CoreV1().ConfigMaps("team-b").Update(ctx(t), stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Fatalf("stale update: %v, want a conflict", err)
	}
	// Validation: a name that is no DNS subdomain, and a negative replica count: 422.
	if _, err := alice.CoreV1().ConfigMaps("team-b").Create(ctx(t), configMap("Not_A_Name", nil), metav1.CreateOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("invalid name: %v, want invalid", err)
	}
	if _, err := alice.CoreV1().ConfigMaps("team-b").Patch(ctx(t), "contested", types.MergePatchType, []byte(`{"metadata":{"labels":{"bad label":"x"}}}`), metav1.PatchOptions{}); !apierrors.IsInvalid(err) {
		t.Fatalf("invalid label: %v, want invalid", err)
	}
	// Authorization: alice may impersonate anyone, but mallory may not write: 403.
	mallory, err := env.ClientAs(stack.Alice, "mallory")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mallory.CoreV1().ConfigMaps("team-b").Create(ctx(t), configMap("intruder", nil), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("mallory's create: %v, want forbidden", err)
	}
	if err := mallory.CoreV1().ConfigMaps("team-b").Delete(ctx(t), "contested", metav1.DeleteOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("mallory's delete: %v, want forbidden", err)
	}
	waitAudited(t, before, map[string]int{"failed": 5})
	assertNoCommitSince(t, base)
	if now, ok := fileContent(t, file); !ok || now != content {
		t.Errorf("rejected writes changed %s (exists %v):\n%s", file, ok, now)
	}
	for _, name := range []string{"Not_A_Name", "intruder"} {
		if _, ok := fileContent(t, path("team-b", "", "configmaps", name)); ok {
			t.Errorf("rejected create of %s reached Git", name)
		}
	}
}

func TestRepeatedApplyMakesNoCommit(t *testing.T) {
	alice := client(t, stack.Alice)
	file := path("team-a", "", "configmaps", "applied")
	manifest := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied","namespace":"team-a","labels":{"app":"shop"}},"data":{"color":"blue"}}`)
	apply := func() *corev1.ConfigMap {
		t.Helper()
		cm, err := alice.CoreV1().ConfigMaps("team-a").Patch(ctx(t), "applied", types.ApplyPatchType, manifest, metav1.PatchOptions{FieldManager: "e2e-apply"})
		if err != nil {
			t.Fatal(err)
		}
		return cm
	}
	first := apply()
	waitFile(t, file, func(o map[string]any) bool { return dig(o, "data", "color") == "blue" })
	base := head(t)

	before := audited(t)
	if second := apply(); second.ResourceVersion != first.ResourceVersion {
		t.Fatalf("the repeated apply changed the object: resourceVersion %s -> %s", first.ResourceVersion, second.ResourceVersion)
	}
	// The apiserver reports the apply as a successful patch, so it is queued like a change;
	// the writer renders the same bytes and makes no commit.
	waitAudited(t, before, map[string]int{"changed": 1})
	assertNoCommitSince(t, base)

	log, err := env.Git.Log(env.Git.Branch)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range log {
		if len(c.Files) == 0 {
			t.Errorf("empty commit %s on the branch:\n%s", c.Hash[:8], c.Message)
		}
	}
}

func TestScaleSubresourceRefreshesReplicas(t *testing.T) {
	alice := client(t, stack.Alice)
	file := path("team-b", "apps", "deployments", "scaled")
	replicas := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "scaled", Labels: map[string]string{"app": "scaled"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "scaled"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "scaled"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
			},
		},
	}
	if _, err := alice.AppsV1().Deployments("team-b").Create(ctx(t), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFile(t, file, func(o map[string]any) bool { return dig(o, "spec", "replicas") == float64(2) })
	created, _ := fileContent(t, file)
	if strings.Count(created, "\n  replicas: 2\n") != 1 {
		t.Fatalf("the created file has no single spec.replicas line:\n%s", created)
	}
	withReplicas := func(n int) string {
		return strings.Replace(created, "\n  replicas: 2\n", "\n  replicas: "+strconv.Itoa(n)+"\n", 1)
	}
	waitContent := func(want string) {
		t.Helper()
		if _, err := env.WaitFiles(ctx(t), func(files map[string]string) bool { return files[file] == want }); err != nil {
			now, _ := fileContent(t, file)
			t.Fatalf("%s: %v\n%s\nwant:\n%s\n%s", file, err, now, want, env.Logs(30))
		}
	}

	// PUT .../deployments/scaled/scale: the file gets the new replicas and nothing else.
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "scaled", Namespace: "team-b"}, Spec: autoscalingv1.ScaleSpec{Replicas: 5}}
	if _, err := alice.AppsV1().Deployments("team-b").UpdateScale(ctx(t), "scaled", scale, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitContent(withReplicas(5))
	if c := lastCommitTouching(t, file); !strings.HasPrefix(c.Message, "scale deployments.apps team-b/scaled to 5 (e2e)\n") || c.AuthorName != stack.Alice {
		t.Errorf("scale commit by %s:\n%s", c.AuthorName, c.Message)
	}

	// PATCH of the scale subresource, by bob through alice; down to zero.
	bob, err := env.ClientAs(stack.Alice, stack.Bob)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.AppsV1().Deployments("team-b").Patch(ctx(t), "scaled", types.MergePatchType, []byte(`{"spec":{"replicas":0}}`), metav1.PatchOptions{}, "scale"); err != nil {
		t.Fatal(err)
	}
	waitContent(withReplicas(0))
	if c := lastCommitTouching(t, file); c.AuthorName != stack.Bob || !strings.Contains(c.Message, "Impersonated-By: "+stack.Alice) {
		t.Errorf("patched scale commit by %s:\n%s", c.AuthorName, c.Message)
	}

	// A dry-run scale and a status update change nothing in Git.
	base := head(t)
	before := audited(t)
	scale.Spec.Replicas = 9
	if _, err := alice.AppsV1().Deployments("team-b").UpdateScale(ctx(t), "scaled", scale, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	current, err := alice.AppsV1().Deployments("team-b").Get(ctx(t), "scaled", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	current.Status.ObservedGeneration = current.Generation
	if _, err := alice.AppsV1().Deployments("team-b").UpdateStatus(ctx(t), current, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The shipped audit policy drops */status at the source, so only the dry run is counted.
	waitAudited(t, before, map[string]int{"dry-run": 1})
	assertNoCommitSince(t, base)
	if now, _ := fileContent(t, file); now != withReplicas(0) {
		t.Errorf("file after the dry run and the status update:\n%s", now)
	}
}
