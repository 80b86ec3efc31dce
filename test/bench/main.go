// Command bench is GitOps Reverser's performance suite. It starts real servers on loopback
// (Valkey, Git remotes over smart HTTP, a kube-apiserver with etcd, the functions and jobs as
// processes), runs every measure, and prints one table: each measure's value, the baseline it
// is compared with (measured in the same run where the target is a ratio), the ratio, the
// target and whether it was met. It writes the table and the raw samples as JSON under -out;
// test/tools/chart draws them as a PNG.
//
// Targets are read, not enforced: the command fails only when a measure cannot run.
//
//	go run ./test/bench                 # everything (make bench)
//	go run ./test/bench -run 'ingest|cold'
//	go run ./test/bench -quick          # small sizes: checks the suite, not the product
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// measure is one part of the suite. It adds its rows, series and curves to the suite.
type measure struct {
	name string
	run  func(ctx context.Context, s *Suite) error
}

// measures run in this order. Heavier ones come last, so a failing light one shows quickly.
var measures = []measure{
	{"coldstart", coldStart},
	{"ingest", ingestThroughput},
	{"pipeline", pipelineLatency},
	{"drain", writerDrain},
	{"scale", writerScale},
	{"reposize", repoSize},
	{"reconcile", reconcileSeed},
	{"e2e", endToEnd},
}

// Suite is what every measure shares: a scratch folder, the built binaries, the sizes to
// use and the report being filled.
type Suite struct {
	Dir   string // scratch space, removed at the end
	Bin   string // the functions and jobs, built once
	Quick bool   // small sizes, to check the suite itself

	report Report
}

// Add appends rows to the table.
func (s *Suite) Add(rows ...Row) { s.report.Rows = append(s.report.Rows, rows...) }

// AddLatency keeps latency samples for the distribution chart.
func (s *Suite) AddLatency(series Series) { s.report.Latency = append(s.report.Latency, series) }

// AddCurve keeps a measure taken at several repository sizes.
func (s *Suite) AddCurve(c Curve) { s.report.RepoSize = append(s.report.RepoSize, c) }

// Size picks the full size, or the quick one under -quick.
func (s *Suite) Size(full, quick int) int {
	if s.Quick {
		return quick
	}
	return full
}

// Binary is the path of a built function or job: "ingest", "writer", "reconcile", ...
func (s *Suite) Binary(name string) string { return filepath.Join(s.Bin, name) }

// Scratch returns a new empty folder under the suite's scratch space.
func (s *Suite) Scratch(name string) string {
	d, err := os.MkdirTemp(s.Dir, name+"-")
	if err != nil {
		panic(err) // the scratch space itself was made at start; this is a full disk
	}
	return d
}

func main() {
	run := flag.String("run", "", "run only the measures whose name matches this regexp")
	out := flag.String("out", "out/bench", "folder for results.json")
	quick := flag.Bool("quick", false, "small sizes: checks that the suite works, the numbers mean little")
	flag.Parse()
	if err := suite(*run, *out, *quick); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func suite(run, out string, quick bool) error {
	match, err := regexp.Compile(run)
	if err != nil {
		return fmt.Errorf("-run: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "gitops-reverser-bench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s := &Suite{Dir: dir, Bin: filepath.Join(dir, "bin"), Quick: quick}
	s.report.Machine, s.report.Started = describe(), time.Now()

	for _, pkg := range []string{"functions/ingest", "functions/writer", "jobs/reconcile"} {
		if err := harness.BuildGo(ctx, "./"+pkg, s.Binary(filepath.Base(pkg))); err != nil {
			return err
		}
	}
	for _, m := range measures {
		if !match.MatchString(m.name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s ...\n", m.name)
		start := time.Now()
		if err := m.run(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		fmt.Fprintf(os.Stderr, "bench: %s took %s\n", m.name, time.Since(start).Round(time.Second))
	}
	s.report.Seconds = time.Since(s.report.Started).Seconds()
	s.report.finish()
	s.report.Print(os.Stdout)
	p, err := s.report.Write(out)
	if err != nil {
		return err
	}
	fmt.Printf("\nresults: %s\n", p)
	return nil
}
