package metrics

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/testenv"
)

func TestBacklogReadsValkeyAtScrape(t *testing.T) {
	ctx := context.Background()
	_, c := testenv.Valkey(t, harness.ValkeyOptions{})
	b := bus.New(c, bus.Options{})
	if _, err := b.Append(ctx, "p1", []bus.Entry{{ID: "a", Payload: []byte("x")}, {ID: "b", Payload: []byte("y")}}); err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry()
	reg.MustRegister(NewBacklog(func() []string { return []string{"p1", "p2"} }, b))
	want := `
# HELP gitops_reverser_partition_lag Entries not yet read.
# TYPE gitops_reverser_partition_lag gauge
gitops_reverser_partition_lag{partition="p1"} 2
gitops_reverser_partition_lag{partition="p2"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "gitops_reverser_partition_lag"); err != nil {
		t.Error(err)
	}
	rec := httptest.NewRecorder()
	Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `gitops_reverser_partition_stream_length{partition="p1"} 2`) {
		t.Errorf("/metrics lacks the stream length:\n%s", rec.Body.String())
	}
}

func TestRecordersAreNilSafe(t *testing.T) {
	var i *Ingest
	var w *Writer
	i.Batch("c", 200, time.Second)
	i.Events("c", "changed", 1)
	i.Changes("c", 1, 0)
	w.Lease("p", 1, true)
	w.Events("c", "written", 1)
	w.Committed("p", time.Second)
	w.Pushed("p", "ok", 1, time.Second)
	w.Lag("c", time.Now())
	reg := NewRegistry()
	m := NewIngest(reg)
	m.Changes("c1", 3, 1)
	if got := testutil.ToFloat64(m.changes.WithLabelValues("c1", "appended")); got != 3 {
		t.Errorf("appended = %v, want 3", got)
	}
}
