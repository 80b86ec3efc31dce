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

func TestFormat(t *testing.T) {
	for v, want := range map[float64]string{13803.4: "13803", 100: "100", 31.44: "31.4", 5: "5", 0.26: "0.26", 0.004183: "0.00418", 6.919: "6.92", math.NaN(): "n/a"} {
		if got := format(v); got != want {
			t.Errorf("format(%v) = %q, want %q", v, got, want)
		}
	}
}
