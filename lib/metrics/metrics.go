// Package metrics declares the Prometheus metrics of the functions, and the collector that
// reads partition backlogs from Valkey at scrape time. Every metric about an event carries the
// cluster id; every metric about a partition carries the partition id. All recording methods
// are safe on a nil receiver, so code under test can run without metrics.
package metrics

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/push"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
)

const namespace = "gitops_reverser"

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves a registry in the Prometheus text format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// Ingest are the ingest function's metrics.
type Ingest struct {
	batches  *prometheus.CounterVec
	events   *prometheus.CounterVec
	changes  *prometheus.CounterVec
	duration prometheus.Histogram
}

// NewIngest registers the ingest metrics.
func NewIngest(reg prometheus.Registerer) *Ingest {
	m := &Ingest{
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "ingest", Name: "batches_total",
			Help: "Audit batches received, by cluster and HTTP status code.",
		}, []string{"cluster", "code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "ingest", Name: "audit_events_total",
			Help: "Audit events in accepted batches, by cluster and outcome: changed (proved an object change) or the reason it did not.",
		}, []string{"cluster", "outcome"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "ingest", Name: "changes_total",
			Help: "Change events produced, by cluster and outcome: appended, or duplicate (a retried batch).",
		}, []string{"cluster", "outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "ingest", Name: "batch_seconds",
			Help: "Time to answer an audit batch.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	reg.MustRegister(m.batches, m.events, m.changes, m.duration)
	return m
}

// Batch records one answered batch.
func (m *Ingest) Batch(cluster string, code int, took time.Duration) {
	if m == nil {
		return
	}
	m.batches.WithLabelValues(cluster, strconv.Itoa(code)).Inc()
	m.duration.Observe(took.Seconds())
}

// Events records audit events of a batch by outcome.
func (m *Ingest) Events(cluster, outcome string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.events.WithLabelValues(cluster, outcome).Add(float64(n))
}

// Changes records change events appended and those that were already queued.
func (m *Ingest) Changes(cluster string, appended, duplicates int) {
	if m == nil {
		return
	}
	m.changes.WithLabelValues(cluster, "appended").Add(float64(appended))
	m.changes.WithLabelValues(cluster, "duplicate").Add(float64(duplicates))
}

// Writer are the writer function's metrics.
type Writer struct {
	events        *prometheus.CounterVec
	commits       *prometheus.CounterVec
	pushes        *prometheus.CounterVec
	commitSeconds *prometheus.HistogramVec
	pushSeconds   *prometheus.HistogramVec
	epoch         *prometheus.GaugeVec
	held          *prometheus.GaugeVec
	lag           *prometheus.HistogramVec
}

// NewWriter registers the writer metrics.
func NewWriter(reg prometheus.Registerer) *Writer {
	latency := prometheus.ExponentialBuckets(0.001, 2, 16)
	m := &Writer{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "writer", Name: "events_total",
			Help: "Events taken off a partition, by cluster and outcome: written, skipped (already in Git, or older than it), dead_lettered, retried (failed, under the delivery limit).",
		}, []string{"cluster", "outcome"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "writer", Name: "commits_total",
			Help: "Commits pushed, by partition.",
		}, []string{"partition"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "writer", Name: "pushes_total",
			Help: "Push attempts by partition and result: ok, conflict (the branch moved; rebuilt and retried), error.",
		}, []string{"partition", "result"}),
		commitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "writer", Name: "commit_seconds",
			Help: "Time to build one batch's commits.", Buckets: latency,
		}, []string{"partition"}),
		pushSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "writer", Name: "push_seconds",
			Help: "Time of one push.", Buckets: latency,
		}, []string{"partition"}),
		epoch: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "writer", Name: "lease_epoch",
			Help: "Epoch of the last lease this process was granted, by partition.",
		}, []string{"partition"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "writer", Name: "lease_held",
			Help: "1 while this process holds the partition's lease.",
		}, []string{"partition"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "writer", Name: "change_to_push_seconds",
			Help:    "Time from a change in the source cluster (apiserver stage timestamp) to its push, by cluster.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
		}, []string{"cluster"}),
	}
	reg.MustRegister(m.events, m.commits, m.pushes, m.commitSeconds, m.pushSeconds, m.epoch, m.held, m.lag)
	return m
}

// Lease records a granted (held) or released lease.
func (m *Writer) Lease(partition string, epoch int64, held bool) {
	if m == nil {
		return
	}
	if held {
		m.epoch.WithLabelValues(partition).Set(float64(epoch))
		m.held.WithLabelValues(partition).Set(1)
		return
	}
	m.held.WithLabelValues(partition).Set(0)
}

// Events records events by cluster and outcome.
func (m *Writer) Events(cluster, outcome string, n int) {
	if m == nil || n == 0 {
		return
	}
	m.events.WithLabelValues(cluster, outcome).Add(float64(n))
}

// Committed records the time to build a batch's commits.
func (m *Writer) Committed(partition string, took time.Duration) {
	if m == nil {
		return
	}
	m.commitSeconds.WithLabelValues(partition).Observe(took.Seconds())
}

// Pushed records a push attempt: result is ok, conflict or error; commits counts on ok.
func (m *Writer) Pushed(partition, result string, commits int, took time.Duration) {
	if m == nil {
		return
	}
	m.pushes.WithLabelValues(partition, result).Inc()
	m.pushSeconds.WithLabelValues(partition).Observe(took.Seconds())
	if result == "ok" {
		m.commits.WithLabelValues(partition).Add(float64(commits))
	}
}

// Lag records how long after the change in its cluster an event was pushed.
func (m *Writer) Lag(cluster string, changed time.Time) {
	if m == nil || changed.IsZero() {
		return
	}
	m.lag.WithLabelValues(cluster).Observe(time.Since(changed).Seconds())
}

// Backlog reads partition backlogs from Valkey when scraped.
type Backlog struct {
	partitions func() []string
	bus        *bus.Bus
	length     *prometheus.Desc
	pending    *prometheus.Desc
	lag        *prometheus.Desc
	dlq        *prometheus.Desc
	holder     *prometheus.Desc
}

// NewBacklog returns a collector of the backlog of the partitions listed at scrape time.
func NewBacklog(partitions func() []string, b *bus.Bus) *Backlog {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "partition", name), help, []string{"partition"}, nil)
	}
	return &Backlog{
		partitions: partitions,
		bus:        b,
		length:     desc("stream_length", "Entries in the partition's stream (unread and unacknowledged)."),
		pending:    desc("pending", "Entries read but not yet acknowledged."),
		lag:        desc("lag", "Entries not yet read."),
		dlq:        desc("dead_letters", "Entries parked in the partition's DLQ."),
		holder:     desc("leased", "1 while some writer holds the partition's lease."),
	}
}

// Describe implements prometheus.Collector.
func (b *Backlog) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{b.length, b.pending, b.lag, b.dlq, b.holder} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A partition that cannot be read is left out.
func (b *Backlog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range b.partitions() {
		s, err := b.bus.Stats(ctx, p)
		if err != nil {
			continue
		}
		leased := 0.0
		if s.Leased {
			leased = 1
		}
		ch <- prometheus.MustNewConstMetric(b.length, prometheus.GaugeValue, float64(s.Length), p)
		ch <- prometheus.MustNewConstMetric(b.pending, prometheus.GaugeValue, float64(s.Pending), p)
		ch <- prometheus.MustNewConstMetric(b.lag, prometheus.GaugeValue, float64(s.Lag), p)
		ch <- prometheus.MustNewConstMetric(b.dlq, prometheus.GaugeValue, float64(s.DeadLetters), p)
		ch <- prometheus.MustNewConstMetric(b.holder, prometheus.GaugeValue, leased, p)
	}
}

// Sweep are the dlq-sweep job's metrics: gauges of one run, pushed to a Pushgateway when the
// run ends (a job is gone before anyone could scrape it).
type Sweep struct {
	redriven, parked, exhausted, backlog, dlq, notified *prometheus.GaugeVec
	failed, finished                                    prometheus.Gauge
}

// NewSweep registers the sweep metrics.
func NewSweep(reg prometheus.Registerer) *Sweep {
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "sweep", Name: name, Help: help}, []string{"partition"})
	}
	m := &Sweep{
		redriven:  gauge("redriven", "Events moved back from the DLQ to the partition's stream by the last run."),
		parked:    gauge("parked", "DLQ entries the last run left parked (backoff not passed, or at the re-drive limit)."),
		exhausted: gauge("exhausted", "DLQ entries at the re-drive limit, waiting for a human."),
		backlog:   gauge("backlog", "Stream entries after the last run's re-drives."),
		dlq:       gauge("dead_letters", "DLQ entries after the last run's re-drives."),
		notified:  gauge("notified", "1 when the last run sent the partition's writer a partition.ready event."),
		failed: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "sweep", Name: "failed_partitions",
			Help: "Partitions the last run could not sweep or notify.",
		}),
		finished: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Subsystem: "sweep", Name: "last_run_timestamp_seconds",
			Help: "When the last run ended, in Unix seconds.",
		}),
	}
	reg.MustRegister(m.redriven, m.parked, m.exhausted, m.backlog, m.dlq, m.notified, m.failed, m.finished)
	return m
}

// Partition records one partition's outcome.
func (m *Sweep) Partition(id string, redriven, parked, exhausted int, backlog, deadLetters int64, notified bool) {
	if m == nil {
		return
	}
	m.redriven.WithLabelValues(id).Set(float64(redriven))
	m.parked.WithLabelValues(id).Set(float64(parked))
	m.exhausted.WithLabelValues(id).Set(float64(exhausted))
	m.backlog.WithLabelValues(id).Set(float64(backlog))
	m.dlq.WithLabelValues(id).Set(float64(deadLetters))
	n := 0.0
	if notified {
		n = 1
	}
	m.notified.WithLabelValues(id).Set(n)
}

// Failed records how many partitions failed, and that the run ended now.
func (m *Sweep) Failed(n int) {
	if m == nil {
		return
	}
	m.failed.Set(float64(n))
	m.finished.SetToCurrentTime()
}

// Push sends everything gathered from g to a Prometheus Pushgateway under job, replacing
// what that job pushed before.
func Push(ctx context.Context, url, job string, g prometheus.Gatherer) error {
	if err := push.New(url, job).Gatherer(g).PushContext(ctx); err != nil {
		return fmt.Errorf("push metrics to %s (PUSHGATEWAY_URL): %w", url, err)
	}
	return nil
}
