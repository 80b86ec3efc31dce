package multicluster

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// West's token is rotated the documented way: list the new token beside the old one,
// restart the apiserver with a webhook kubeconfig carrying the new token, drop the old one.
// Ingest never refuses a batch of west's apiserver on the way, and west's changes, made
// before, during and after the restart, all reach Git.
func TestTokenRotationRefusesNoBatch(t *testing.T) {
	ctx := ctxFor(t, 3*time.Minute)
	west := env.West
	unauthorized := map[string]string{"cluster": "west", "code": "401"}
	before := metric(t, batchesMetric, unauthorized)
	own := 0 // 401s the test's own probes got; the rest would be the apiserver's

	oldToken, oldSecret := west.Token, west.TokenSecret
	newToken, newSecret := random(), "west-token-next"
	if _, err := env.East.Admin.CoreV1().Secrets("gitops").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: newSecret, Namespace: "gitops"},
		StringData: map[string]string{"token": newToken},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	spec := sourceClusterSpec{Tokens: []string{oldSecret, newSecret}, Kubeconfig: "west-kubeconfig"}
	if err := env.applySourceCluster(ctx, west, spec); err != nil {
		t.Fatal(err)
	}
	own += waitCode(t, "west", newToken, http.StatusOK)
	own += waitCode(t, "west", oldToken, http.StatusOK) // both are valid now

	createAndWait(t, west, "rotate-before")

	stop := make(chan struct{})
	created, failed, _ := keepWriting(ctx, west, "rotate", 250*time.Millisecond, stop)
	audit := west.Audit
	audit.Token = newToken
	restartStart := time.Now()
	if err := west.Kube.RestartAPIServer(ctx, &audit); err != nil {
		close(stop)
		t.Fatalf("restart west's apiserver: %v\n%s", err, west.Kube.LogTail(30))
	}
	restartTook := time.Since(restartStart)
	west.Audit, west.Token, west.TokenSecret = audit, newToken, newSecret

	spec.Tokens = []string{newSecret}
	if err := env.applySourceCluster(ctx, west, spec); err != nil {
		close(stop)
		t.Fatal(err)
	}
	own += waitCode(t, "west", oldToken, http.StatusUnauthorized)
	createAndWait(t, west, "rotate-after")
	close(stop)
	names := created()
	t.Logf("west's apiserver restarted in %.1f s; %d ConfigMaps created around it, %d creates failed while it was down",
		restartTook.Seconds(), len(names), failed())
	if len(names) == 0 {
		t.Fatal("no ConfigMap was created during the rotation")
	}
	waitFiles(t, waitTimeout, "every ConfigMap created during the rotation", func(files map[string]string) bool {
		for _, n := range names {
			if _, ok := files[west.File("team-a", "configmaps", n)]; !ok {
				return false
			}
		}
		return true
	})

	if got := metric(t, batchesMetric, unauthorized) - before; got != float64(own) {
		t.Errorf("ingest answered west %v times 401 during the rotation, %d of them to the test's own probes: the apiserver's batches were refused", got, own)
	}
	// The restarted apiserver's own count of batches it gave up on.
	raw, err := west.Admin.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sumSamples(bytes.NewReader(raw), "apiserver_audit_error_total", map[string]string{"plugin": "webhook"}); err != nil || n != 0 {
		t.Errorf("west's apiserver counts %v audit events it failed to send (%v)", n, err)
	}
}

// createAndWait creates a ConfigMap in c's team-a and waits until it is in Git.
func createAndWait(t *testing.T, c *cluster, name string) {
	t.Helper()
	ctx := ctxFor(t, waitTimeout)
	if _, err := c.Client.CoreV1().ConfigMaps("team-a").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": name},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := c.File("team-a", "configmaps", name)
	waitFiles(t, waitTimeout, p, func(files map[string]string) bool { _, ok := files[p]; return ok })
}
