package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/stack"
)

// waitTimeout covers the apiserver's 1s batch wait plus the pipeline, with room for a slow CI.
const waitTimeout = 30 * time.Second

func client(t *testing.T, user string) *kubernetes.Clientset {
	t.Helper()
	c, err := env.Client(user)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return c
}

// path is where an object lands in Git.
func path(namespace, group, resource, name string) string {
	if group == "" {
		group = "core"
	}
	return env.Target + "/" + namespace + "/" + group + "/" + resource + "/" + name + ".yaml"
}

// waitFile waits until the file exists and cond holds for its decoded content.
func waitFile(t *testing.T, p string, cond func(obj map[string]any) bool) map[string]any {
	t.Helper()
	var obj map[string]any
	_, err := env.WaitFiles(ctx(t), func(files map[string]string) bool {
		content, ok := files[p]
		if !ok {
			return false
		}
		obj = nil
		if err := yaml.Unmarshal([]byte(content), &obj); err != nil {
			return false
		}
		return cond(obj)
	})
	if err != nil {
		t.Fatalf("%s: %v\n%s", p, err, env.Logs(30))
	}
	return obj
}

func waitGone(t *testing.T, p string) {
	t.Helper()
	if _, err := env.WaitFiles(ctx(t), func(files map[string]string) bool { _, ok := files[p]; return !ok }); err != nil {
		t.Fatalf("%s still in Git: %v\n%s", p, err, env.Logs(30))
	}
}

// lastCommitTouching returns the newest commit that changed p.
func lastCommitTouching(t *testing.T, p string) harness.Commit {
	t.Helper()
	log, err := env.Git.Log(env.Git.Branch)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range log {
		for _, f := range c.Files {
			if f == p {
				return c
			}
		}
	}
	t.Fatalf("no commit touches %s", p)
	return harness.Commit{}
}

func dig(obj map[string]any, keys ...string) any {
	var cur any = obj
	for _, k := range keys {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

func TestConfigMapCreatePatchApplyDelete(t *testing.T) {
	alice := client(t, stack.Alice)
	file := path("team-a", "", "configmaps", "settings")

	_, err := alice.CoreV1().ConfigMaps("team-a").Create(ctx(t), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Labels: map[string]string{"app": "shop"}},
		Data:       map[string]string{"color": "blue"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	obj := waitFile(t, file, func(o map[string]any) bool { return dig(o, "data", "color") == "blue" })
	for _, field := range []string{"uid", "resourceVersion", "creationTimestamp", "managedFields"} {
		if dig(obj, "metadata", field) != nil {
			t.Errorf("metadata.%s reached Git", field)
		}
	}
	if dig(obj, "metadata", "labels", "app") != "shop" || obj["kind"] != "ConfigMap" {
		t.Errorf("file lost real fields: %v", obj)
	}
	c := lastCommitTouching(t, file)
	if c.AuthorName != stack.Alice || c.CommitterName != "GitOps Reverser" || c.CommitterEmail != "bot@gitops-reverser.dev" {
		t.Errorf("create commit author %q committer %q <%s>", c.AuthorName, c.CommitterName, c.CommitterEmail)
	}
	if !strings.Contains(c.Message, "Cluster-Id: "+env.ClusterID) || !strings.Contains(c.Message, "Audit-Id: ") || !strings.Contains(c.Message, "Event-Id: ") {
		t.Errorf("commit message lacks trailers:\n%s", c.Message)
	}

	// bob, impersonated by alice, patches: the commit is bob's.
	bob, err := env.ClientAs(stack.Alice, stack.Bob)
	if err != nil {
		t.Fatal(err)
	}
	_, err = bob.CoreV1().ConfigMaps("team-a").Patch(ctx(t), "settings", types.MergePatchType, []byte(`{"data":{"color":"green"}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFile(t, file, func(o map[string]any) bool { return dig(o, "data", "color") == "green" })
	c = lastCommitTouching(t, file)
	if c.AuthorName != stack.Bob || !strings.Contains(c.Message, "Impersonated-By: "+stack.Alice) {
		t.Errorf("patch commit author %q, message:\n%s", c.AuthorName, c.Message)
	}

	// alice applies (server-side apply) a new key.
	apply := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings","namespace":"team-a"},"data":{"size":"xl"}}`)
	force := true
	_, err = alice.CoreV1().ConfigMaps("team-a").Patch(ctx(t), "settings", types.ApplyPatchType, apply, metav1.PatchOptions{FieldManager: "e2e", Force: &force})
	if err != nil {
		t.Fatal(err)
	}
	waitFile(t, file, func(o map[string]any) bool {
		return dig(o, "data", "size") == "xl" && dig(o, "data", "color") == "green"
	})
	if c := lastCommitTouching(t, file); c.AuthorName != stack.Alice {
		t.Errorf("apply commit author %q, want alice", c.AuthorName)
	}

	if err := alice.CoreV1().ConfigMaps("team-a").Delete(ctx(t), "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, file)
	if c := lastCommitTouching(t, file); !strings.HasPrefix(c.Message, "delete configmaps team-a/settings") {
		t.Errorf("delete commit message:\n%s", c.Message)
	}
}

func TestDeploymentCreateUpdateDelete(t *testing.T) {
	alice := client(t, stack.Alice)
	file := path("team-b", "apps", "deployments", "web")
	replicas := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}},
			},
		},
	}
	if _, err := alice.AppsV1().Deployments("team-b").Create(ctx(t), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	obj := waitFile(t, file, func(o map[string]any) bool { return dig(o, "spec", "replicas") == float64(2) })
	if obj["status"] != nil || obj["apiVersion"] != "apps/v1" {
		t.Errorf("deployment file: apiVersion %v, status %v", obj["apiVersion"], obj["status"])
	}
	if _, err := alice.AppsV1().Deployments("team-b").Patch(ctx(t), "web", types.StrategicMergePatchType,
		[]byte(`{"spec":{"replicas":5,"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFile(t, file, func(o map[string]any) bool {
		containers, _ := dig(o, "spec", "template", "spec", "containers").([]any)
		return dig(o, "spec", "replicas") == float64(5) && len(containers) == 1 && dig(containers[0].(map[string]any), "image") == "nginx:1.28"
	})
	if err := alice.AppsV1().Deployments("team-b").Delete(ctx(t), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, file)
}

func TestSameNameInTwoNamespacesMakesTwoFiles(t *testing.T) {
	alice := client(t, stack.Alice)
	for _, ns := range []string{"team-a", "team-b"} {
		_, err := alice.CoreV1().ConfigMaps(ns).Create(ctx(t), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "shared"}, Data: map[string]string{"owner": ns},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, ns := range []string{"team-a", "team-b"} {
		waitFile(t, path(ns, "", "configmaps", "shared"), func(o map[string]any) bool { return dig(o, "data", "owner") == ns })
	}
}

func TestUnwatchedChangesStayOutOfGit(t *testing.T) {
	alice := client(t, stack.Alice)
	// Not matched: a namespace no rule names, and a resource no rule names.
	if _, err := alice.CoreV1().ConfigMaps("unwatched").Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "hidden"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CoreV1().ServiceAccounts("team-a").Create(ctx(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "hidden"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A dry run of a watched object is never persisted, so it must not appear either.
	if _, err := alice.CoreV1().ConfigMaps("team-a").Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "dry"}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	// The apiserver batches audit events for a second; a watched marker written after that
	// window arrives after everything above was judged.
	time.Sleep(1500 * time.Millisecond)
	if _, err := alice.CoreV1().ConfigMaps("team-a").Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "marker"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFile(t, path("team-a", "", "configmaps", "marker"), func(map[string]any) bool { return true })

	log, err := env.Git.Log(env.Git.Branch)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range log {
		for _, f := range c.Files {
			if f == "README.md" {
				continue
			}
			if !strings.HasPrefix(f, env.Target+"/team-a/") && !strings.HasPrefix(f, env.Target+"/team-b/") {
				t.Errorf("commit %s wrote %s, which no rule selects", c.Hash[:8], f)
			}
			if strings.Contains(f, "/serviceaccounts/") || strings.HasSuffix(f, "/dry.yaml") {
				t.Errorf("commit %s wrote %s", c.Hash[:8], f)
			}
		}
	}
}

func TestSecretValuesAreRedactedEverywhere(t *testing.T) {
	alice := client(t, stack.Alice)
	const plaintext = "s3cr3t-e2e-plaintext-4f1c"
	lastApplied, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Secret", "stringData": map[string]string{"password": plaintext}})
	_, err := alice.CoreV1().Secrets("team-a").Create(ctx(t), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": string(lastApplied)}},
		StringData: map[string]string{"password": plaintext},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	obj := waitFile(t, path("team-a", "", "secrets", "db"), func(map[string]any) bool { return true })
	if dig(obj, "data", "password") != "REDACTED" {
		t.Errorf("secret file data = %v, want the key kept and the value REDACTED", obj["data"])
	}
	assertNowhere(t, plaintext)
}
