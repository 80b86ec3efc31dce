package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/gitops-reverser/gitops-reverser/test/stack"
)

// scrape returns the value of the first sample of a series matching pattern (a regexp over
// the exposition line up to the value), or -1 when there is none.
func scrape(t *testing.T, url, pattern string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + pattern + ` ([0-9.e+-]+)$`).FindSubmatch(metricsOf(t, url))
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// metricsOf returns the Prometheus exposition of a function (ingest or writer).
func metricsOf(t *testing.T, url string) []byte {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(env.CA.CertPEM)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func TestFunctionsExportMetrics(t *testing.T) {
	alice := client(t, stack.Alice)
	if _, err := alice.CoreV1().ConfigMaps("team-b").Create(ctx(t), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "metered"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFile(t, path("team-b", "", "configmaps", "metered"), func(map[string]any) bool { return true })

	cluster := `cluster="` + env.ClusterID + `"`
	checks := []struct {
		url, series string
	}{
		{env.IngestURL, `gitops_reverser_ingest_batches_total\{` + cluster + `,code="200"\}`},
		{env.IngestURL, `gitops_reverser_ingest_changes_total\{` + cluster + `,outcome="appended"\}`},
		{env.IngestURL, `gitops_reverser_ingest_audit_events_total\{` + cluster + `,outcome="changed"\}`},
		{env.WriterURL, `gitops_reverser_writer_events_total\{` + cluster + `,outcome="written"\}`},
		{env.WriterURL, `gitops_reverser_writer_commits_total\{partition="[0-9a-f]+"\}`},
		{env.WriterURL, `gitops_reverser_writer_pushes_total\{partition="[0-9a-f]+",result="ok"\}`},
		{env.WriterURL, `gitops_reverser_writer_lease_epoch\{partition="[0-9a-f]+"\}`},
		{env.WriterURL, `gitops_reverser_writer_change_to_push_seconds_count\{` + cluster + `\}`},
	}
	for _, c := range checks {
		if v := scrape(t, c.url, c.series); v <= 0 {
			t.Errorf("%s/metrics: %s = %v, want > 0", c.url, c.series, v)
		}
	}
	// Backlog gauges exist for the configured partition (their value may be 0 by now).
	for _, g := range []string{"stream_length", "pending", "lag", "dead_letters", "leased"} {
		if v := scrape(t, env.WriterURL, `gitops_reverser_partition_`+g+`\{partition="[0-9a-f]+"\}`); v < 0 {
			t.Errorf("writer /metrics lacks gitops_reverser_partition_%s", g)
		}
	}
}
