package sweep

import (
	"strings"
	"testing"
)

func TestReportTable(t *testing.T) {
	r := &Report{Partitions: []PartitionReport{
		{ID: "aaaa", RepoURL: "https://git.example/a.git", Branch: "main", Redriven: 2, Parked: 1, Exhausted: 1, Backlog: 5, DeadLetters: 1, Notified: true},
		{ID: "bbbb", RepoURL: "https://git.example/b.git", Branch: "dev", Backlog: 1, Leased: true, Error: "bus stats: valkey unavailable"},
	}}
	r.total()
	if r.Totals != (Totals{Partitions: 2, Redriven: 2, Parked: 1, Exhausted: 1, Notified: 1, Backlog: 6, DeadLetters: 1, Failed: 1}) {
		t.Errorf("totals = %+v", r.Totals)
	}
	var b strings.Builder
	if err := r.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	t.Logf("\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want header, 2 partitions, total and 1 error", len(lines))
	}
	for i, want := range [][]string{
		{"PARTITION", "REDRIVEN", "NOTIFIED"},
		{"aaaa", "2", "yes", "https://git.example/a.git main"},
		{"bbbb", "yes", "https://git.example/b.git dev"},
		{"TOTAL (2)", "6"},
		{"error: bbbb: bus stats: valkey unavailable"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
	}
}
