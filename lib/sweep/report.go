package sweep

import (
	"fmt"
	"io"
	"text/tabwriter"

	"go.uber.org/zap"

	"github.com/gitops-reverser/gitops-reverser/lib/metrics"
)

// PartitionReport is what a pass did in one partition, and the partition's state after it.
type PartitionReport struct {
	ID      string `json:"partition"`
	RepoURL string `json:"repoURL"`
	Branch  string `json:"branch"`
	// Redriven is the events moved back from the DLQ onto the stream.
	Redriven int `json:"redriven"`
	// Parked is the DLQ entries left where they are: backoff not passed, at the limit, no
	// payload, or the stream at its cap.
	Parked int `json:"parked"`
	// Exhausted is the parked entries at the re-drive limit: they wait for a human.
	Exhausted int `json:"exhausted"`
	// Backlog and DeadLetters are the stream and DLQ lengths after the re-drives.
	Backlog     int64 `json:"backlog"`
	DeadLetters int64 `json:"deadLetters"`
	// Leased is true when a writer held the partition's lease.
	Leased bool `json:"leased"`
	// Notified is true when a writer was sent, and accepted, a "partition ready" event.
	Notified bool `json:"notified"`
	// Error is why the partition could not be swept or notified; empty when it was.
	Error string `json:"error,omitempty"`
}

// Totals add up a pass over all partitions.
type Totals struct {
	Partitions  int   `json:"partitions"`
	Redriven    int   `json:"redriven"`
	Parked      int   `json:"parked"`
	Exhausted   int   `json:"exhausted"`
	Notified    int   `json:"notified"`
	Backlog     int64 `json:"backlog"`
	DeadLetters int64 `json:"deadLetters"`
	Failed      int   `json:"failed"`
}

// Report is the outcome of a pass.
type Report struct {
	Partitions []PartitionReport `json:"partitions"`
	Totals     Totals            `json:"totals"`
}

func (r *Report) total() {
	t := Totals{Partitions: len(r.Partitions)}
	for _, p := range r.Partitions {
		t.Redriven += p.Redriven
		t.Parked += p.Parked
		t.Exhausted += p.Exhausted
		t.Backlog += p.Backlog
		t.DeadLetters += p.DeadLetters
		if p.Notified {
			t.Notified++
		}
		if p.Error != "" {
			t.Failed++
		}
	}
	r.Totals = t
}

// WriteTable prints the report as an aligned table, for a person at a terminal.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tREDRIVEN\tPARKED\tEXHAUSTED\tBACKLOG\tDLQ\tLEASED\tNOTIFIED\tREPOSITORY")
	for _, p := range r.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s %s\n", p.ID, p.Redriven, p.Parked, p.Exhausted, p.Backlog, p.DeadLetters, yes(p.Leased), yes(p.Notified), p.RepoURL, p.Branch)
	}
	t := r.Totals
	fmt.Fprintf(tw, "TOTAL (%d)\t%d\t%d\t%d\t%d\t%d\t\t%d\n", t.Partitions, t.Redriven, t.Parked, t.Exhausted, t.Backlog, t.DeadLetters, t.Notified)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range r.Partitions {
		if p.Error != "" {
			if _, err := fmt.Fprintf(w, "error: %s: %s\n", p.ID, p.Error); err != nil {
				return err
			}
		}
	}
	return nil
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}

// Log writes the report as structured log lines: one per partition, then the totals.
func (r *Report) Log(log *zap.SugaredLogger) {
	for _, p := range r.Partitions {
		kv := []any{"partition", p.ID, "repoURL", p.RepoURL, "branch", p.Branch,
			"redriven", p.Redriven, "parked", p.Parked, "exhausted", p.Exhausted,
			"backlog", p.Backlog, "deadLetters", p.DeadLetters, "leased", p.Leased, "notified", p.Notified}
		if p.Error != "" {
			log.Errorw("Partition swept with errors", append(kv, "error", p.Error)...)
			continue
		}
		log.Infow("Partition swept", kv...)
	}
	t := r.Totals
	log.Infow("Sweep done", "partitions", t.Partitions, "redriven", t.Redriven, "parked", t.Parked, "exhausted", t.Exhausted,
		"notified", t.Notified, "backlog", t.Backlog, "deadLetters", t.DeadLetters, "failed", t.Failed)
}

// Record sets the report's counts on the sweep metrics.
func (r *Report) Record(m *metrics.Sweep) {
	for _, p := range r.Partitions {
		m.Partition(p.ID, p.Redriven, p.Parked, p.Exhausted, p.Backlog, p.DeadLetters, p.Notified)
	}
	m.Failed(r.Totals.Failed)
}
