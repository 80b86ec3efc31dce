package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestQuickSuite runs every measure at its small sizes, as `make bench BENCH_FLAGS=-quick`
// does, so the suite cannot rot between benchmark runs: each measure must run against the
// real servers and report finite, positive numbers. Targets are not checked; small sizes
// say little about them.
func TestQuickSuite(t *testing.T) {
	out := t.TempDir()
	if err := suite("", out, true); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) < 2*len(measures) {
		t.Errorf("%d rows from %d measures, want at least two each", len(r.Rows), len(measures))
	}
	for _, row := range r.Rows {
		if math.IsNaN(row.Value) || row.Value <= 0 {
			t.Errorf("%s: value %v", row.Measure, row.Value)
		}
		if row.Target.OnRatio && (row.Baseline <= 0 || row.Ratio <= 0) {
			t.Errorf("%s: a ratio target with baseline %v and ratio %v", row.Measure, row.Baseline, row.Ratio)
		}
	}
	if len(r.Latency) != 3 || len(r.RepoSize) != 3 {
		t.Errorf("%d latency series and %d repository-size curves, want 3 and 3", len(r.Latency), len(r.RepoSize))
	}
}
