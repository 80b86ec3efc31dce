package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
)

// coldStart starts each function from its binary, as Knative does a new pod's container,
// and times the start to the first 200 from /readyz: the catalog read, Valkey reached and
// the server listening. The median of several starts counts.
func coldStart(ctx context.Context, s *Suite) error {
	r, err := startRig(ctx, s, rigOptions{})
	if err != nil {
		return err
	}
	defer r.Close()
	runs := s.Size(7, 3)
	for _, fn := range []string{"ingest", "writer"} {
		var took []time.Duration
		for range runs {
			port, err := harness.FreePort()
			if err != nil {
				return err
			}
			p, err := harness.StartProcess(ctx, harness.ProcessOptions{
				Name: fn, Path: s.Binary(fn), Dir: s.Scratch("cold"),
				Env: []string{"VALKEY_ADDR=" + r.valkey.Addr, "CATALOG_FILE=" + r.catalog,
					"CACHE_DIR=" + s.Scratch("cold-cache"), "PORT=" + strconv.Itoa(port)},
				ReadyURL: "http://127.0.0.1:" + strconv.Itoa(port) + "/readyz",
			})
			if err != nil {
				return fmt.Errorf("%s: %w", fn, err)
			}
			took = append(took, p.ReadyAfter)
			if err := p.Close(); err != nil {
				return fmt.Errorf("stop %s: %w", fn, err)
			}
		}
		ms := Millis(took)
		s.Add(Row{
			Measure: "Cold start to ready, " + fn, Value: Quantile(ms, 0.5), Unit: "ms",
			Target: Target{Max: true, Limit: 1000},
			Note:   fmt.Sprintf("median of %d starts; slowest %.0f ms", runs, Quantile(ms, 1)),
		})
	}
	return nil
}
