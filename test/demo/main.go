// Command demo runs GitOps Reverser end to end on this machine (`make demo`): it starts
// Valkey, a Git remote, the writer and ingest functions and a kube-apiserver whose audit
// webhook points at ingest, makes a few changes as two users, and prints the commits they
// became and one of the files.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gitops-reverser/gitops-reverser/test/stack"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	step("Starting Valkey, a Git remote, the writer and ingest functions, and a kube-apiserver (the first run builds the apiserver: a few minutes)")
	s, err := stack.Start(ctx, stack.Options{ClusterID: "demo"})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Printf("  apiserver %s -> audit webhook %s/audit-webhook/%s -> Valkey %s -> writer %s -> %s\n",
		s.Kube.URL, s.IngestURL, s.ClusterID, s.Valkey.Addr, s.WriterURL, s.Git.URL)

	alice, err := s.Client(stack.Alice)
	if err != nil {
		return err
	}
	bob, err := s.ClientAs(stack.Alice, stack.Bob)
	if err != nil {
		return err
	}

	step("alice creates a ConfigMap, a Deployment and a Secret in team-a")
	if _, err := alice.CoreV1().ConfigMaps("team-a").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-settings", Labels: map[string]string{"app": "shop"}},
		Data:       map[string]string{"currency": "EUR", "theme": "light"},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	replicas := int32(2)
	if _, err := alice.AppsV1().Deployments("team-a").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"app": "shop"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "shop"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "shop"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "shop", Image: "ghcr.io/example/shop:1.4.2"}}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := alice.CoreV1().Secrets("team-a").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-db"},
		StringData: map[string]string{"password": "correct-horse-battery-staple"},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	settings := s.Target + "/team-a/core/configmaps/shop-settings.yaml"
	if err := waitFor(ctx, s, func(f map[string]string) bool { _, ok := f[settings]; return ok }); err != nil {
		return err
	}

	step("bob (impersonated by alice) switches the theme and scales the Deployment")
	if _, err := bob.CoreV1().ConfigMaps("team-a").Patch(ctx, "shop-settings", types.MergePatchType, []byte(`{"data":{"theme":"dark"}}`), metav1.PatchOptions{}); err != nil {
		return err
	}
	if _, err := bob.AppsV1().Deployments("team-a").Patch(ctx, "shop", types.MergePatchType, []byte(`{"spec":{"replicas":4}}`), metav1.PatchOptions{}); err != nil {
		return err
	}
	step("alice creates and deletes a ConfigMap in team-b; a ConfigMap in an unwatched namespace stays out")
	if _, err := alice.CoreV1().ConfigMaps("team-b").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "temporary"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := alice.CoreV1().ConfigMaps("unwatched").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "private"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	time.Sleep(1500 * time.Millisecond) // let the create reach Git first, so the history shows both
	if err := alice.CoreV1().ConfigMaps("team-b").Delete(ctx, "temporary", metav1.DeleteOptions{}); err != nil {
		return err
	}
	if err := waitFor(ctx, s, func(f map[string]string) bool {
		_, tmp := f[s.Target+"/team-b/core/configmaps/temporary.yaml"]
		return !tmp && strings.Contains(f[settings], "theme: dark") && strings.Contains(f[s.Target+"/team-a/apps/deployments/shop.yaml"], "replicas: 4")
	}); err != nil {
		return err
	}

	step("The branch on the remote: git log --stat")
	if err := git(s, "log", "--stat", "--format=%n%C(yellow)commit %h%Creset%nAuthor:    %an <%ae>%nCommitter: %cn <%ce>%n%n%w(0,4,4)%B", s.Git.Branch); err != nil {
		return err
	}
	step("One file: " + settings)
	if err := git(s, "show", s.Git.Branch+":"+settings); err != nil {
		return err
	}
	step("The Secret, redacted before it ever reached Valkey")
	return git(s, "show", s.Git.Branch+":"+s.Target+"/team-a/core/secrets/shop-db.yaml")
}

func waitFor(ctx context.Context, s *stack.Stack, cond func(map[string]string) bool) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := s.WaitFiles(ctx, cond); err != nil {
		return fmt.Errorf("%w\n%s", err, s.Logs(30))
	}
	return nil
}

func git(s *stack.Stack, args ...string) error {
	cmd := exec.Command("git", append([]string{"-C", s.Git.BareDir, "--no-pager", "-c", "color.ui=always"}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

func step(msg string) { fmt.Printf("\n==> %s\n", msg) }
