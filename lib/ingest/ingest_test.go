package ingest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/catalog"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/notify"
	"github.com/gitops-reverser/gitops-reverser/lib/quota"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/testenv"
)

// fixture is an ingest handler on a real Valkey.
type fixture struct {
	valkey *harness.Valkey
	client valkey.Client
	bus    *bus.Bus
	srv    *httptest.Server
	snap   *catalog.Snapshot
	h      *Handler
}

// inFlight is how many batches the handler is processing.
func (f *fixture) inFlight() int {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	n := 0
	for _, c := range f.h.perCluster {
		n += c
	}
	return n
}

// newFixtureSharing starts a second ingest replica on f's Valkey and catalog.
func newFixtureSharing(t testing.TB, f *fixture) *fixture {
	t.Helper()
	n, _ := notify.New(context.Background(), notify.Options{})
	h := New(Options{Catalog: catalog.Fixed(f.snap), Bus: f.bus, Notifier: n, MaxBodyBytes: 1 << 20, Quota: quota.New(f.client, "gr")})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{valkey: f.valkey, client: f.client, bus: f.bus, srv: srv, snap: f.snap, h: h}
}

func newFixture(t testing.TB, maxBody int64) *fixture {
	return newFixtureWith(t, Options{MaxBodyBytes: maxBody})
}

func newFixtureWith(t testing.TB, o Options) *fixture {
	t.Helper()
	v, client := testenv.Valkey(t, harness.ValkeyOptions{})
	cat, err := catalog.LoadFile("testdata/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p := cat.Snapshot().Problems; len(p) > 0 {
		t.Fatalf("catalog problems: %v", p)
	}
	n, _ := notify.New(context.Background(), notify.Options{})
	b := bus.New(client, bus.Options{Timeout: time.Second})
	o.Catalog, o.Bus, o.Notifier = cat, b, n
	if o.Quota == nil {
		o.Quota = quota.New(client, "gr")
	}
	h := New(o)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fixture{valkey: v, client: client, bus: b, srv: srv, snap: cat.Snapshot(), h: h}
}

func (f *fixture) post(t testing.TB, cluster, token string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/audit-webhook/"+cluster, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

// keys returns every key in Valkey.
func (f *fixture) keys(t testing.TB) []string {
	t.Helper()
	keys, err := f.client.Do(context.Background(), f.client.B().Keys().Pattern("*").Build()).AsStrSlice()
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// stream returns the changes queued for the test target's partition.
func (f *fixture) stream(t testing.TB) []*change.Change {
	t.Helper()
	p := f.snap.Plan.Targets()[0].Partition
	entries, err := f.client.Do(context.Background(), f.client.B().Xrange().Key(f.bus.Keys(p.ID).Stream).Start("-").End("+").Build()).AsXRange()
	if err != nil {
		t.Fatal(err)
	}
	var out []*change.Change
	for _, e := range entries {
		c, err := change.Unmarshal([]byte(e.FieldValues["ce"]))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

const configMap = `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":%q,"uid":"u-%[1]s","resourceVersion":"%[3]d","managedFields":[{"manager":"kubectl"}]},"data":{"k":"v"}}`

// auditEvent builds one audit event for a ConfigMap write.
func auditEvent(auditID, verb, namespace, name string, code, rv int, response string) map[string]any {
	return map[string]any{
		"level": "RequestResponse", "auditID": auditID, "stage": "ResponseComplete", "verb": verb,
		"requestURI":               "/api/v1/namespaces/" + namespace + "/configmaps",
		"user":                     map[string]any{"username": "alice", "groups": []string{"system:authenticated"}},
		"objectRef":                map[string]any{"resource": "configmaps", "namespace": namespace, "name": name, "apiVersion": "v1"},
		"responseStatus":           map[string]any{"code": code},
		"responseObject":           json.RawMessage(response),
		"stageTimestamp":           "2026-11-26T07:00:00.000000Z",
		"requestReceivedTimestamp": "2026-11-26T07:00:00.000000Z",
	}
}

// secretEvent builds the audit event of a Secret's creation in namespace apps.
func secretEvent(auditID, response string) map[string]any {
	e := auditEvent(auditID, "create", "apps", "s", 201, 4, response)
	e["objectRef"] = map[string]any{"resource": "secrets", "namespace": "apps", "name": "s", "apiVersion": "v1"}
	e["requestURI"] = "/api/v1/namespaces/apps/secrets"
	return e
}

func eventList(events ...map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"apiVersion": "audit.k8s.io/v1", "kind": "EventList", "items": events})
	return b
}

func TestAuditWebhookQueuesWantedChangesOnce(t *testing.T) {
	f := newFixture(t, 1<<20)
	batch := eventList(
		auditEvent("a1", "create", "apps", "web", 201, 10, fmt.Sprintf(configMap, "web", "apps", 10)),
		auditEvent("a2", "create", "other", "web", 201, 11, fmt.Sprintf(configMap, "web", "other", 11)), // no rule
		auditEvent("a3", "get", "apps", "web", 200, 10, fmt.Sprintf(configMap, "web", "apps", 10)),      // read
		auditEvent("a4", "update", "apps", "web", 409, 10, `{"kind":"Status"}`),                         // conflict
		auditEvent("a5", "delete", "apps", "web", 200, 12, `{"kind":"Status","status":"Success"}`),
	)
	resp, body := f.post(t, "c1", "token-of-c1", batch)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var res Result
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if res.Events != 5 || res.Changes != 2 || res.Appended != 2 || res.Skipped["read-only"] != 1 || res.Skipped["failed"] != 1 {
		t.Errorf("result = %+v", res)
	}

	got := f.stream(t)
	if len(got) != 2 {
		t.Fatalf("stream holds %d changes, want 2", len(got))
	}
	up, del := got[0], got[1]
	if up.Op != change.OpUpsert || up.Path != "clusters/c1/apps/core/configmaps/web.yaml" || up.Actor.Username != "alice" || up.AuditID != "a1" || up.ResourceVersion != "10" || up.UID != "u-web" {
		t.Errorf("upsert = %+v", up)
	}
	if strings.Contains(string(up.Object), "managedFields") || strings.Contains(string(up.Object), "resourceVersion") {
		t.Errorf("object not sanitized: %s", up.Object)
	}
	if del.Op != change.OpDelete || del.Object != nil || del.Key.Name != "web" {
		t.Errorf("delete = %+v", del)
	}

	// The apiserver retries a batch it got no answer for: nothing is queued twice.
	resp, body = f.post(t, "c1", "token-of-c1", batch)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"appended":0`) {
		t.Fatalf("retry: status %d: %s", resp.StatusCode, body)
	}
	if n := len(f.stream(t)); n != 2 {
		t.Errorf("after retry the stream holds %d changes, want 2", n)
	}
}

func TestAuditWebhookQueuesAScaleForItsParent(t *testing.T) {
	f := newFixture(t, 1<<20)
	sub := func(e map[string]any, resource, subresource string) map[string]any {
		e["objectRef"] = map[string]any{"resource": resource, "subresource": subresource, "namespace": "apps", "name": "web", "apiGroup": "apps", "apiVersion": "v1"}
		return e
	}
	scale := `{"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web","namespace":"apps","uid":"u-web","resourceVersion":"31"},"spec":{"replicas":3},"status":{"replicas":1}}`
	batch := eventList(
		sub(auditEvent("s1", "update", "apps", "web", 200, 31, scale), "deployments", "scale"),
		sub(auditEvent("s2", "update", "apps", "web", 200, 32, `{"kind":"Deployment"}`), "deployments", "status"),
		sub(auditEvent("s3", "create", "apps", "web", 201, 33, `{"kind":"Status"}`), "pods", "binding"),
	)
	resp, body := f.post(t, "c1", "token-of-c1", batch)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var res Result
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	if res.Changes != 1 || res.Skipped["subresource"] != 1 || res.Skipped["subresource-refresh"] != 1 {
		t.Errorf("result = %+v, want one change, one status and one binding skipped", res)
	}
	got := f.stream(t)
	if len(got) != 1 {
		t.Fatalf("stream holds %d changes, want 1", len(got))
	}
	c := got[0]
	if c.Op != change.OpScale || c.Replicas == nil || *c.Replicas != 3 || c.Object != nil {
		t.Errorf("change = op %s replicas %v object %s, want a scale to 3 without object", c.Op, c.Replicas, c.Object)
	}
	if c.Path != "clusters/c1/apps/apps/deployments/web.yaml" || c.ResourceVersion != "31" || c.UID != "u-web" || c.Verb != "update" {
		t.Errorf("change = %+v, want the deployment's file at rv 31", c)
	}
}

func TestAuditWebhookRejectsBadInputWithoutWriting(t *testing.T) {
	f := newFixture(t, 4096)
	valid := eventList(auditEvent("a1", "create", "apps", "web", 201, 1, fmt.Sprintf(configMap, "web", "apps", 1)))
	big := eventList(auditEvent("a1", "create", "apps", "web", 201, 1, fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web","namespace":"apps"},"data":{"k":%q}}`, strings.Repeat("x", 8192))))
	tests := []struct {
		name    string
		cluster string
		token   string
		body    []byte
		chunked bool
		want    int
	}{
		{name: "malformed JSON", cluster: "c1", token: "token-of-c1", body: []byte(`{"apiVersion":"audit.k8s.io/v1","items":[`), want: 400},
		{name: "not an EventList", cluster: "c1", token: "token-of-c1", body: []byte(`{"apiVersion":"v1","kind":"ConfigMap"}`), want: 400},
		{name: "unknown cluster", cluster: "nope", token: "token-of-c1", body: valid, want: 404},
		{name: "missing token", cluster: "c1", body: valid, want: 401},
		{name: "wrong token", cluster: "c1", token: "guess", body: valid, want: 401},
		{name: "another cluster's token", cluster: "c1", token: "token-of-c2", body: valid, want: 401},
		{name: "over the limit", cluster: "c1", token: "token-of-c1", body: big, want: 413},
		{name: "over the limit without length", cluster: "c1", token: "token-of-c1", body: big, chunked: true, want: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(tt.body)
			if tt.chunked {
				r = io.MultiReader(r) // hides the length, so the request is chunked
			}
			req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/audit-webhook/"+tt.cluster, r)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d (%s)", resp.StatusCode, tt.want, body)
			}
			assertOneLineJSONError(t, resp, body)
			if keys := f.keys(t); len(keys) != 0 {
				t.Errorf("rejected request wrote %v", keys)
			}
		})
	}
}

func assertOneLineJSONError(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if bytes.Count(body, []byte("\n")) != 1 || !bytes.HasSuffix(body, []byte("\n")) {
		t.Errorf("body is not one line: %q", body)
	}
	var e struct {
		Code  int    `json:"code"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" || e.Code != resp.StatusCode {
		t.Errorf("body is not a JSON error: %q (%v)", body, err)
	}
}

func TestAuditWebhookAnswers503WhileValkeyIsDown(t *testing.T) {
	f := newFixture(t, 1<<20)
	if err := f.valkey.Stop(); err != nil {
		t.Fatal(err)
	}
	batch := eventList(auditEvent("a1", "create", "apps", "web", 201, 1, fmt.Sprintf(configMap, "web", "apps", 1)))
	resp, body := f.post(t, "c1", "token-of-c1", batch)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status = %d, Retry-After %q, want 503 with Retry-After (%s)", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	assertOneLineJSONError(t, resp, body)
	if r, _ := f.srv.Client().Get(f.srv.URL + "/readyz"); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz = %d while Valkey is down, want 503", r.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.valkey.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitReady(t, f.srv)
	if keys := f.keys(t); len(keys) != 0 {
		t.Errorf("the refused batch left %v", keys)
	}
	// The apiserver's retry now lands.
	if resp, body := f.post(t, "c1", "token-of-c1", batch); resp.StatusCode != http.StatusOK {
		t.Fatalf("retry after restart: %d %s", resp.StatusCode, body)
	}
	if n := len(f.stream(t)); n != 1 {
		t.Errorf("stream holds %d changes, want 1", n)
	}
}

func waitReady(t *testing.T, srv *httptest.Server) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := srv.Client().Get(srv.URL + "/readyz"); err == nil && r.StatusCode == http.StatusOK {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("ingest did not become ready after Valkey came back")
}

func TestSecretPlaintextNeverReachesValkey(t *testing.T) {
	f := newFixture(t, 1<<20)
	const plaintext = "hunter2-plaintext-7f3a"
	encoded := base64.StdEncoding.EncodeToString([]byte(plaintext))
	secret := fmt.Sprintf(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"apps","annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"stringData\":{\"password\":\"%s\"}}"}},"type":"Opaque","data":{"password":%q}}`, plaintext, encoded)
	ev := auditEvent("s1", "create", "apps", "db", 201, 1, secret)
	ev["objectRef"] = map[string]any{"resource": "secrets", "namespace": "apps", "name": "db", "apiVersion": "v1"}
	if resp, body := f.post(t, "c1", "token-of-c1", eventList(ev)); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	got := f.stream(t)
	if len(got) != 1 || !strings.Contains(string(got[0].Object), `"password":"REDACTED"`) {
		t.Fatalf("stream = %+v, want one redacted Secret", got)
	}
	for _, key := range f.keys(t) {
		dump, err := f.client.Do(context.Background(), f.client.B().Dump().Key(key).Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		for _, needle := range []string{plaintext, encoded} {
			if strings.Contains(dump, needle) {
				t.Errorf("key %s holds the secret value %q", key, needle)
			}
		}
	}
}

func BenchmarkAuditWebhook400(b *testing.B) {
	f := newFixture(b, 32<<20)
	pad := strings.Repeat("x", 1500) // realistic objects are a few KB
	events := make([]map[string]any, 400)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for j := range events {
			name := fmt.Sprintf("cm-%d", j)
			obj := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":%q,"namespace":"apps","labels":{"app":"bench"}},"data":{"payload":%q}}`, name, pad)
			events[j] = auditEvent(fmt.Sprintf("b%d-%d", i, j), "update", "apps", name, 200, i, obj)
		}
		body := eventList(events...)
		b.SetBytes(int64(len(body)))
		resp, out := f.post(b, "c1", "token-of-c1", body)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d: %s", resp.StatusCode, out)
		}
		// Keep the stream from hitting its cap across iterations.
		if err := f.client.Do(context.Background(), f.client.B().Flushall().Build()).Error(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(400*b.N)/time.Since(start).Seconds(), "events/s")
}

// hold starts a batch from cluster that trickles in and holds its in-flight slot until the
// returned function sends the rest; that function returns the batch's status code.
func (f *fixture) hold(t *testing.T, cluster string, batch []byte) func() int {
	t.Helper()
	before := f.inFlight()
	body, writer := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/audit-webhook/"+cluster, body)
	req.Header.Set("Authorization", "Bearer token-of-"+cluster)
	done := make(chan int)
	go func() {
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	if _, err := writer.Write(batch[:10]); err != nil {
		t.Fatal(err)
	}
	// The handler holds its slot once it reads the body: wait until it does.
	deadline := time.Now().Add(5 * time.Second)
	for f.inFlight() == before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return func() int {
		if _, err := writer.Write(batch[10:]); err != nil {
			t.Fatal(err)
		}
		writer.Close()
		return <-done
	}
}

func TestInFlightLimitsAreFairAcrossClusters(t *testing.T) {
	f := newFixtureWith(t, Options{MaxBodyBytes: 1 << 20, MaxInFlight: 2, MaxInFlightPerCluster: 1})
	batch := eventList(auditEvent("a1", "create", "apps", "web", 201, 1, fmt.Sprintf(configMap, "web", "apps", 1)))

	finishC1 := f.hold(t, "c1", batch)
	// c1 has used its share: its next batch is refused, and c2 still gets in.
	if resp, out := f.post(t, "c1", "token-of-c1", batch); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("c1's second batch: %d %s, want 429 with Retry-After", resp.StatusCode, out)
	}
	finishC2 := f.hold(t, "c2", batch)
	// Both slots taken: the next cluster is told ingest is busy.
	if resp, out := f.post(t, "limited", "token-of-limited", batch); resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a third cluster: %d %s, want 503 with Retry-After", resp.StatusCode, out)
	}
	if code := finishC1(); code != http.StatusOK {
		t.Errorf("c1's first batch: %d, want 200", code)
	}
	if code := finishC2(); code != http.StatusOK {
		t.Errorf("c2's first batch: %d, want 200", code)
	}
	if resp, out := f.post(t, "c1", "token-of-c1", batch); resp.StatusCode != http.StatusOK {
		t.Errorf("after the slots freed: %d %s", resp.StatusCode, out)
	}
}

func TestPolicyDropsWhatTheClusterMayNotSend(t *testing.T) {
	f := newFixture(t, 1<<20)
	secret := `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"apps","uid":"u-s","resourceVersion":"4"},"data":{"k":"dg=="}}`
	batch := eventList(
		auditEvent("p1", "create", "apps", "web", 201, 1, fmt.Sprintf(configMap, "web", "apps", 1)), // allowed
		secretEvent("p2", secret), // resource not allowed
		auditEvent("p3", "create", "other", "x", 201, 3, fmt.Sprintf(configMap, "x", "other", 3)), // namespace not allowed
	)
	resp, out := f.post(t, "limited", "token-of-limited", batch)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s: a policy drop is not an error for the apiserver", resp.StatusCode, out)
	}
	var res Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	if res.Changes != 1 || res.Skipped[ReasonPolicy] != 2 {
		t.Errorf("result %+v: want 1 change and 2 events dropped by policy", res)
	}
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	f := newFixtureWith(t, Options{MaxBodyBytes: 1 << 20})
	f2 := newFixtureSharing(t, f) // a second ingest replica on the same Valkey
	batch := func(id string) []byte {
		return eventList(
			auditEvent(id+"-1", "create", "apps", id+"-1", 201, 1, fmt.Sprintf(configMap, id+"-1", "apps", 1)),
			auditEvent(id+"-2", "create", "apps", id+"-2", 201, 2, fmt.Sprintf(configMap, id+"-2", "apps", 2)),
			auditEvent(id+"-3", "create", "apps", id+"-3", 201, 3, fmt.Sprintf(configMap, id+"-3", "apps", 3)),
		)
	}
	// A full bucket (burst 2) admits a batch of 3 and goes 1 in debt, at 1 event/s.
	if resp, out := f.post(t, "limited", "token-of-limited", batch("a")); resp.StatusCode != http.StatusOK {
		t.Fatalf("first batch: %d %s", resp.StatusCode, out)
	}
	for name, fx := range map[string]*fixture{"same replica": f, "other replica": f2} {
		resp, out := fx.post(t, "limited", "token-of-limited", batch("b"))
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("%s: %d %s, want 429", name, resp.StatusCode, out)
		}
		if ra := resp.Header.Get("Retry-After"); ra != "2" {
			t.Errorf("%s: Retry-After %q, want 2 (seconds until the bucket is positive)", name, ra)
		}
		if !strings.Contains(string(out), "spec.rateLimit") {
			t.Errorf("%s: %s does not name the setting", name, out)
		}
	}
	// Other clusters are not limited by it.
	if resp, out := f.post(t, "c1", "token-of-c1", batch("c")); resp.StatusCode != http.StatusOK {
		t.Errorf("c1: %d %s", resp.StatusCode, out)
	}
}
