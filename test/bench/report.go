package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one run of the suite: what ran where, one row per measure, and the raw series
// the chart draws. It is written as results.json; test/tools/chart turns it into chart.png.
type Report struct {
	Machine  Machine   `json:"machine"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Rows     []Row     `json:"rows"`
	Latency  []Series  `json:"latency"`  // latency samples, for the distribution chart
	RepoSize []Curve   `json:"repoSize"` // a measure against the number of files in the repository
}

// Machine describes where the suite ran; ratios only compare numbers of the same run.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Memory string `json:"memory"`
	Go     string `json:"go"`
	OS     string `json:"os"`
}

// Row is one measure: its value, the baseline it is compared with and the target it must meet.
type Row struct {
	Measure string  `json:"measure"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	// Baseline is what the value is compared with, in the same unit; BaselineOf says what it
	// is and whether this run measured it. Zero when the measure has none.
	Baseline   float64 `json:"baseline,omitempty"`
	BaselineOf string  `json:"baselineOf,omitempty"`
	// Ratio is Value/Baseline, or the ratio the measure defines (see Measure).
	Ratio  float64 `json:"ratio,omitempty"`
	Target Target  `json:"target"`
	Pass   bool    `json:"pass"`
	// Note says anything a reader needs to read the row right.
	Note string `json:"note,omitempty"`
}

// Target is a bound on a row's value or on its ratio.
type Target struct {
	OnRatio bool    `json:"onRatio,omitempty"` // the bound applies to Ratio, not Value
	Max     bool    `json:"max,omitempty"`     // at most Limit; otherwise at least
	Limit   float64 `json:"limit"`
}

func (t Target) String() string {
	op := ">="
	if t.Max {
		op = "<="
	}
	on := ""
	if t.OnRatio {
		on = "ratio "
	}
	return on + op + " " + format(t.Limit)
}

// met says whether r meets its target.
func (t Target) met(r Row) bool {
	v := r.Value
	if t.OnRatio {
		v = r.Ratio
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	if t.Max {
		return v <= t.Limit
	}
	return v >= t.Limit
}

// Series is a set of samples of one latency, in milliseconds.
type Series struct {
	Name string    `json:"name"`
	MS   []float64 `json:"ms"`
}

// Curve is a measure at several repository sizes.
type Curve struct {
	Name  string    `json:"name"`
	Unit  string    `json:"unit"`
	Files []float64 `json:"files"`
	Value []float64 `json:"value"`
}

// Quantile returns the q-quantile (0..1) of ms, nearest rank.
func Quantile(ms []float64, q float64) float64 {
	if len(ms) == 0 {
		return math.NaN()
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// Millis converts durations to the milliseconds a Series holds.
func Millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d.Microseconds()) / 1000
	}
	return out
}

// finish fills in ratios' pass marks.
func (r *Report) finish() {
	for i := range r.Rows {
		r.Rows[i].Pass = r.Rows[i].Target.met(r.Rows[i])
	}
}

// Print writes the table.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\nGitOps Reverser performance, %s, %d cores, %s, %s (%s)\n\n",
		r.Machine.CPU, r.Machine.Cores, r.Machine.Memory, r.Machine.Go, r.Started.Format("2006-01-02 15:04 MST"))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEASURE\tVALUE\tBASELINE\tRATIO\tTARGET\tRESULT")
	for _, row := range r.Rows {
		base, ratio := "-", "-"
		if row.Baseline != 0 {
			base = format(row.Baseline) + " " + row.Unit + " (" + row.BaselineOf + ")"
		}
		if row.Ratio != 0 {
			ratio = format(row.Ratio)
		}
		result := "PASS"
		if !row.Pass {
			result = "FAIL"
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\n", row.Measure, format(row.Value), row.Unit, base, ratio, row.Target, result)
	}
	tw.Flush()
	for _, row := range r.Rows {
		if row.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", row.Measure, row.Note)
		}
	}
}

// Write stores the report as JSON in dir/results.json.
func (r *Report) Write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, "results.json")
	return p, os.WriteFile(p, append(b, '\n'), 0o644)
}

// format prints a number with as many digits as it deserves.
func format(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "n/a"
	case a >= 100 || v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default: // three significant digits
		p := math.Pow(10, 2-math.Floor(math.Log10(a)))
		return strconv.FormatFloat(math.Round(v*p)/p, 'f', -1, 64)
	}
}

// describe reads the machine's CPU model and memory.
func describe() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH, CPU: "unknown CPU"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.Memory = fmt.Sprintf("%.0f GiB", kb/(1<<20))
		}
	}
	return m
}
