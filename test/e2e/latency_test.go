package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/gitops-reverser/gitops-reverser/test/stack"
)

// BenchmarkEndToEndLatency measures, for isolated edits, the time from a write answered by
// the apiserver to the commit being on the remote branch. The apiserver holds audit events
// for up to --audit-webhook-batch-max-wait (1s here) before sending them, which dominates.
func BenchmarkEndToEndLatency(b *testing.B) {
	const changes = 50
	alice, err := env.Client(stack.Alice)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	name := fmt.Sprintf("latency-%d", time.Now().UnixNano())
	if _, err := alice.CoreV1().ConfigMaps("team-a").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"count": "0"}}, metav1.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	file := env.Target + "/team-a/core/configmaps/" + name + ".yaml"
	if _, err := waitContent(file, `count: "0"`, 30*time.Second); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		for n := 1; n <= changes; n++ {
			patch := fmt.Sprintf(`{"data":{"count":"%d-%d"}}`, i, n)
			start := time.Now()
			if _, err := alice.CoreV1().ConfigMaps("team-a").Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				b.Fatal(err)
			}
			if _, err := waitContent(file, fmt.Sprintf(`count: %d-%d`, i, n), 30*time.Second); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
	}
	b.StopTimer()
	reportQuantiles(b, lat)
}

// waitContent polls the remote branch until the file contains want.
func waitContent(file, want string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < timeout {
		out, err := exec.Command("git", "-C", env.Git.BareDir, "show", env.Git.Branch+":"+file).Output()
		if err == nil && strings.Contains(string(out), want) {
			return time.Since(start), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	out, err := exec.Command("git", "-C", env.Git.BareDir, "show", env.Git.Branch+":"+file).CombinedOutput()
	return 0, fmt.Errorf("%s did not get %q within %s (%v: %s)\n%s", file, want, timeout, err, out, env.Logs(20))
}

// BenchmarkPipelineLatency measures, for isolated edits, the time from an audit batch
// arriving at ingest to its commit being on the remote branch: the product's own share of the
// end-to-end latency, without the apiserver's batching wait.
func BenchmarkPipelineLatency(b *testing.B) {
	const changes = 50
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(env.CA.CertPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	name := fmt.Sprintf("pipeline-%d", time.Now().UnixNano())
	file := env.Target + "/team-a/core/configmaps/" + name + ".yaml"
	post := func(n int) {
		obj := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":"team-a","resourceVersion":"%d"},"data":{"count":"%d"}}`, name, n+1, n)
		body := fmt.Sprintf(`{"apiVersion":"audit.k8s.io/v1","kind":"EventList","items":[{"auditID":"%s-%d","stage":"ResponseComplete","verb":"update",
			"requestURI":"/api/v1/namespaces/team-a/configmaps/%s","user":{"username":"bench"},"objectRef":{"resource":"configmaps","namespace":"team-a","name":%q,"apiVersion":"v1"},
			"responseStatus":{"code":200},"responseObject":%s,"stageTimestamp":%q}]}`, name, n, name, name, obj, time.Now().UTC().Format(time.RFC3339Nano))
		req, _ := http.NewRequest(http.MethodPost, env.IngestURL+"/audit-webhook/"+env.ClusterID, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+env.ClusterToken)
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("ingest answered %d", resp.StatusCode)
		}
	}
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		for n := 1; n <= changes; n++ {
			v := i*changes + n
			start := time.Now()
			post(v)
			if _, err := waitContent(file, fmt.Sprintf(`count: "%d"`, v), 30*time.Second); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
		}
	}
	reportQuantiles(b, lat)
}

// reportQuantiles reports p50 and p99 of the latencies in milliseconds.
func reportQuantiles(b *testing.B, lat []time.Duration) {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return lat[int(p*float64(len(lat)-1))].Seconds() * 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(len(lat)), "changes")
}
