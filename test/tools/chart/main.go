// Command chart draws the benchmark suite's results.json (written by test/bench) as a PNG:
// on the left the latency distributions, on the right the measures taken against the
// number of files in the repository, one small plot per unit.
//
//	cd test/tools/chart && go run . -in /abs/path/results.json -out /abs/path/chart.png
//
// It is its own module so that gonum/plot stays out of the product's go.mod.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"math"
	"os"
	"time"
)

// report holds the parts of test/bench's Report that the chart draws.
type report struct {
	Machine struct {
		CPU   string `json:"cpu"`
		Cores int    `json:"cores"`
	} `json:"machine"`
	Started  time.Time `json:"started"`
	Latency  []series  `json:"latency"`
	RepoSize []curve   `json:"repoSize"`
}

// series is a set of latency samples, in milliseconds.
type series struct {
	Name string    `json:"name"`
	MS   []float64 `json:"ms"`
}

// curve is one measure at several repository sizes.
type curve struct {
	Name  string    `json:"name"`
	Unit  string    `json:"unit"`
	Files []float64 `json:"files"`
	Value []float64 `json:"value"`
}

func main() {
	in := flag.String("in", "", "results.json written by test/bench (required)")
	out := flag.String("out", "chart.png", "PNG file to write")
	flag.Parse()
	if *in == "" {
		fmt.Fprintln(os.Stderr, "chart: -in is required")
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

// run reads the results in and writes the chart to out.
func run(in, out string) error {
	r, err := load(in)
	if err != nil {
		return err
	}
	img, err := render(r)
	if err != nil {
		return fmt.Errorf("drawing %s: %w", in, err)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return f.Close()
}

// load reads a results.json and keeps only what a log axis can show: positive, finite
// latencies and repository sizes. Series and curves left empty are dropped.
func load(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s is not a results.json written by test/bench: %w", path, err)
	}
	var lat []series
	for _, s := range r.Latency {
		if s.MS = positive(s.MS); len(s.MS) > 0 {
			lat = append(lat, s)
		}
	}
	var curves []curve
	for _, c := range r.RepoSize {
		var files, values []float64
		for i := range min(len(c.Files), len(c.Value)) {
			if finite(c.Files[i]) && c.Files[i] > 0 && finite(c.Value[i]) {
				files, values = append(files, c.Files[i]), append(values, c.Value[i])
			}
		}
		if len(files) > 0 {
			c.Files, c.Value = files, values
			curves = append(curves, c)
		}
	}
	r.Latency, r.RepoSize = lat, curves
	if len(lat) == 0 && len(curves) == 0 {
		return nil, errors.New(path + " has no latency series and no repository-size curves: run `make bench` first")
	}
	return &r, nil
}

// positive returns the finite values above zero.
func positive(vs []float64) []float64 {
	var out []float64
	for _, v := range vs {
		if finite(v) && v > 0 {
			out = append(out, v)
		}
	}
	return out
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
