package writer

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/layout"
)

// BenchmarkDrain queues rounds of updates of 2,000 ConfigMaps of about 1.5 KiB, as ingest
// would, and drains them into pushed commits on a real remote. Each iteration drains 10,000
// events; the mirror is cloned before the clock starts. Run it with -cpuprofile to see where
// a drain spends its time.
func BenchmarkDrain(b *testing.B) {
	const objects, events = 2000, 10_000
	f := newFixture(b)
	ctx := context.Background()
	f.appendChanges(b, "warm", "warm")
	if _, err := f.w.Drain(ctx, f.partition); err != nil {
		b.Fatal(err)
	}
	settings := strings.Repeat("feature.flag: enabled # with a comment\n", 32)
	target := identity.TargetRef{Namespace: "gitops", Name: "main"}
	round := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for sent := 0; sent < events; sent += 500 {
			round++
			entries := make([]bus.Entry, 0, 500)
			for i := range 500 {
				name := fmt.Sprintf("cm-%05d", (sent+i)%objects)
				key := identity.Key{Cluster: "prod", Resource: "configmaps", Namespace: "apps", Name: name}
				obj, _ := json.Marshal(map[string]any{
					"apiVersion": "v1", "kind": "ConfigMap",
					"metadata": map[string]any{"name": name, "namespace": "apps", "resourceVersion": fmt.Sprint(round), "labels": map[string]string{"app": "shop"}},
					"data":     map[string]string{"round": fmt.Sprint(round), "settings.yaml": settings},
				})
				c := &change.Change{
					ID: identity.EventID(fmt.Sprintf("bench-%d", round), key, target), Op: change.OpUpsert, Time: time.Now(),
					Actor: change.Actor{Username: "alice"}, AuditID: fmt.Sprintf("bench-%d", round), Verb: "update",
					Key: key, Target: target, Path: layout.Path("clusters/prod", key), Partition: f.partition.ID,
					ResourceVersion: fmt.Sprint(round), Object: obj,
				}
				p, err := c.Marshal()
				if err != nil {
					b.Fatal(err)
				}
				entries = append(entries, bus.Entry{ID: c.ID, Payload: p})
			}
			if _, err := f.bus.Append(ctx, f.partition.ID, entries); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		res, err := f.w.Drain(ctx, f.partition)
		if err != nil {
			b.Fatal(err)
		}
		if res.Events != events {
			b.Fatalf("drained %d events, want %d", res.Events, events)
		}
	}
	b.ReportMetric(float64(events*b.N)/b.Elapsed().Seconds(), "events/s")
}
