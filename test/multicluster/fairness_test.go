package multicluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// The flood: east's rate limit, and ten times as many updates per second spread over
// floodObjects ConfigMaps, for floodDuration (MULTICLUSTER_FLOOD_SECONDS to change it).
const (
	eastEventsPerSecond = 20
	eastBurst           = 40
	floodObjects        = 20
	floodPerObject      = 100 * time.Millisecond // 10/s each, 200/s in all
	westInterval        = 500 * time.Millisecond
	calmDuration        = 10 * time.Second
	// westP99Bound is generous: a west change waits up to 1 s for its apiserver's batch,
	// then ingest, the writer's batch and a push; about 1 to 1.5 s on an idle machine. Under
	// the flood, two cores also run east's apiserver and etcd at full tilt, so scheduling
	// alone adds to it. A west that waited behind east's backlog would instead take as long
	// as east's retries (10 s and more).
	westP99Bound = 5 * time.Second
)

func floodDuration(t *testing.T) time.Duration {
	if s := os.Getenv("MULTICLUSTER_FLOOD_SECONDS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			t.Fatalf("MULTICLUSTER_FLOOD_SECONDS=%q: want a positive number of seconds", s)
		}
		return time.Duration(n) * time.Second
	}
	return 20 * time.Second
}

// East, rate-limited, floods; west trickles. West's write-to-commit latency stays bounded,
// east is throttled with 429s, and east's final state still reaches Git: through the
// apiserver's retries, or else through the reconcile job.
func TestNoisyClusterIsThrottledNotDropped(t *testing.T) {
	flood := floodDuration(t)
	ctx := ctxFor(t, flood+4*time.Minute)
	east, west := env.East, env.West

	// The flooded objects exist, in Git too, before east is limited.
	names := make([]string, floodObjects)
	for i := range names {
		names[i] = fmt.Sprintf("flood-%02d", i)
		if _, err := east.Client.CoreV1().ConfigMaps("team-b").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: names[i]}, Data: map[string]string{"v": "0"},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFiles(t, waitTimeout, "the flooded ConfigMaps", func(files map[string]string) bool {
		for _, n := range names {
			if configMapData(files[east.File("team-b", "configmaps", n)])["v"] != "0" {
				return false
			}
		}
		return true
	})

	calm := measureWest(t, ctx, west, "tick-calm", calmDuration, westInterval)

	if err := env.applySourceCluster(ctx, east, sourceClusterSpec{Tokens: []string{east.TokenSecret}, EventsPerSecond: eastEventsPerSecond, Burst: eastBurst}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.applySourceCluster(context.Background(), east, sourceClusterSpec{Tokens: []string{east.TokenSecret}})
	})
	throttledLabels := map[string]string{"cluster": "east", "outcome": "throttled"}
	tooManyLabels := map[string]string{"cluster": "east", "code": "429"}
	throttledBefore, tooManyBefore := metric(t, eventsMetric, throttledLabels), metric(t, batchesMetric, tooManyLabels)

	// A client of its own, without client-go's rate limiter in the way of the flood's pace.
	cfg := east.Kube.RESTConfig(east.User)
	cfg.QPS, cfg.Burst = 5000, 5000
	flooder, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var updates, failures atomic.Int64
	var firstFailure atomic.Value
	floodCtx, stopFlood := context.WithTimeout(ctx, flood)
	defer stopFlood()
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(floodPerObject)
			defer tick.Stop()
			for v := 1; ; v++ {
				patch := fmt.Appendf(nil, `{"data":{"v":"%d"}}`, v)
				if _, err := flooder.CoreV1().ConfigMaps("team-b").Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err == nil {
					updates.Add(1)
				} else {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, err.Error())
				}
				select {
				case <-floodCtx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	flooded := measureWest(t, ctx, west, "tick-flood", flood, westInterval)
	wg.Wait()
	if failures.Load() > 0 {
		t.Errorf("%d of east's updates failed, the first with: %v", failures.Load(), firstFailure.Load())
	}

	// East's final state, from east itself.
	list, err := east.Admin.CoreV1().ConfigMaps("team-b").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	final := map[string]string{}
	for _, cm := range list.Items {
		final[east.File("team-b", "configmaps", cm.Name)] = cm.Data["v"]
	}
	matching := func(files map[string]string) int {
		n := 0
		for _, name := range names {
			p := east.File("team-b", "configmaps", name)
			if configMapData(files[p])["v"] == final[p] {
				n++
			}
		}
		return n
	}
	// Give the apiserver's retries a chance first; whatever they do not deliver soon is the
	// reconcile job's.
	floodEnd := time.Now()
	var natural int
	_ = poll(ctxFor(t, 10*time.Second), 250*time.Millisecond, func() (bool, error) {
		files, err := env.Git.Files(env.Git.Branch)
		if err != nil {
			return false, nil
		}
		natural = matching(files)
		return natural == len(names), nil
	})
	// Reconcile runs either way: it repairs what the retries did not deliver, and when they
	// did, it must find nothing to publish for the flooded objects.
	out, errOut, err := env.runReconcile(ctx, "TARGETS=gitops/east")
	if err != nil {
		t.Fatalf("reconcile: %v\nstderr:\n%s\nstdout:\n%s", err, errOut, out)
	}
	var report struct {
		Targets []struct{ Objects, Upserts, Deletes, Published int }
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || len(report.Targets) != 1 {
		t.Fatalf("reconcile report %q: %v", out, err)
	}
	rep := report.Targets[0]
	// Retries may still land between the last look and the job's listing, never the reverse.
	if rep.Upserts > len(names)-natural || rep.Deletes != 0 {
		t.Errorf("reconcile found %d upserts and %d deletes; at most %d flooded objects were behind in Git when it ran",
			rep.Upserts, rep.Deletes, len(names)-natural)
	}
	waitFiles(t, time.Minute, "Git to equal east's final state", func(files map[string]string) bool { return matching(files) == len(names) })
	convergedAfter := time.Since(floodEnd)

	throttled := metric(t, eventsMetric, throttledLabels) - throttledBefore
	tooMany := metric(t, batchesMetric, tooManyLabels) - tooManyBefore
	accepted := metric(t, batchesMetric, map[string]string{"cluster": "east", "code": "200"})

	t.Logf("east flood: %d updates in %s (%.0f/s) against a limit of %d/s burst %d; ingest answered 429 to %v batches, %v audit events throttled (east 200s overall: %v)",
		updates.Load(), flood, float64(updates.Load())/flood.Seconds(), eastEventsPerSecond, eastBurst, tooMany, throttled, accepted)
	t.Logf("west latency, apiserver write to commit on the remote: calm p50 %s p99 %s (n=%d); under east's flood p50 %s p99 %s (n=%d)",
		percentile(calm, 0.5).Round(time.Millisecond), percentile(calm, 0.99).Round(time.Millisecond), len(calm),
		percentile(flooded, 0.5).Round(time.Millisecond), percentile(flooded, 0.99).Round(time.Millisecond), len(flooded))
	t.Logf("east's final state: %d of %d flooded objects reached Git through the apiserver's retries within 10 s of the flood's end; reconcile then published %d upserts (of %d objects); Git equal to east %.1f s after the flood",
		natural, len(names), rep.Upserts, rep.Objects, convergedAfter.Seconds())

	// The events east's apiserver gave up on so far (its batches still being retried are not
	// counted yet): what the reconcile job is there for.
	if raw, err := east.Admin.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx); err == nil {
		dropped, _ := sumSamples(bytes.NewReader(raw), "apiserver_audit_error_total", map[string]string{"plugin": "webhook"})
		t.Logf("east's apiserver counts %v audit events it failed to deliver (apiserver_audit_error_total)", dropped)
	}
	if tooMany == 0 || throttled == 0 {
		t.Errorf("east was not throttled: %v 429 answers, %v throttled events", tooMany, throttled)
	}
	if p99 := percentile(flooded, 0.99); p99 > westP99Bound {
		t.Errorf("west's p99 under east's flood is %s, over %s", p99, westP99Bound)
	}
	if float64(updates.Load()) < 5*eastEventsPerSecond*flood.Seconds() {
		t.Errorf("the flood reached only %d updates: not the 10x load this test means to prove against", updates.Load())
	}
}

// measureWest updates ConfigMap name in c's team-a every interval for d, and returns the
// latency of each update from the apiserver's answer to the first commit on the remote that
// holds it (or a later value).
func measureWest(t *testing.T, ctx context.Context, c *cluster, name string, d, interval time.Duration) []time.Duration {
	t.Helper()
	if _, err := c.Client.CoreV1().ConfigMaps("team-a").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"v": "0"},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := c.File("team-a", "configmaps", name)
	waitFiles(t, waitTimeout, p, func(files map[string]string) bool { return configMapData(files[p])["v"] == "0" })

	type seen struct {
		at time.Time
		v  int
	}
	var (
		mu     sync.Mutex
		seenAt []seen
	)
	watchCtx, stopWatch := context.WithCancel(ctx)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		var last string
		for watchCtx.Err() == nil {
			head, err := env.Git.Head(env.Git.Branch)
			now := time.Now()
			if err == nil && head != last {
				last = head
				if content, ok, err := env.Git.FileAt(head, p); err == nil && ok {
					if v, err := strconv.Atoi(configMapData(content)["v"]); err == nil {
						mu.Lock()
						seenAt = append(seenAt, seen{now, v})
						mu.Unlock()
					}
				}
			}
			select {
			case <-watchCtx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	var written []time.Time
	end := time.Now().Add(d)
	tick := time.NewTicker(interval)
	for v := 1; time.Now().Before(end); v++ {
		patch := fmt.Appendf(nil, `{"data":{"v":"%d"}}`, v)
		if _, err := c.Client.CoreV1().ConfigMaps("team-a").Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			tick.Stop()
			stopWatch()
			t.Fatal(err)
		}
		written = append(written, time.Now())
		<-tick.C
	}
	tick.Stop()
	last := len(written)
	err := poll(ctxFor(t, waitTimeout), 50*time.Millisecond, func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(seenAt) > 0 && seenAt[len(seenAt)-1].v >= last, nil
	})
	stopWatch()
	<-watching
	if err != nil {
		t.Fatalf("%s: value %d never reached Git: %v\n%s", p, last, err, env.Logs(40))
	}
	lat := make([]time.Duration, 0, len(written))
	for i, w := range written {
		v := i + 1
		for _, s := range seenAt {
			if s.v >= v {
				lat = append(lat, s.at.Sub(w))
				break
			}
		}
	}
	return lat
}
