package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/gitops-reverser/gitops-reverser/test/stack"
)

// endToEnd times real writes through a real kube-apiserver, whose audit webhook batches
// events for up to a second, to their commit on the remote: first one change every 2 s
// (jittered, so changes do not keep one phase of the apiserver's batch timer), then 20
// changes a second. A change counts as landed when its object's file on the branch holds
// it or a later version.
func endToEnd(ctx context.Context, s *Suite) error {
	st, err := stack.Start(ctx, stack.Options{Dir: s.Scratch("e2e"), Env: []string{"LOG_LEVEL=info"}})
	if err != nil {
		return fmt.Errorf("start the stack: %w", err)
	}
	defer st.Close()
	alice, err := st.Client(stack.Alice)
	if err != nil {
		return err
	}
	phases := []struct {
		name    string
		objects int
		every   time.Duration // mean interval
		changes int
	}{
		{"one change every 2 s", 1, 2 * time.Second, s.Size(50, 5)},
		{"20 changes/s", 10, 50 * time.Millisecond, s.Size(600, 60)},
	}
	p50 := map[string]float64{}
	for i, ph := range phases {
		w := newLandWatch(st, fmt.Sprintf("e2e-%d", i), ph.objects)
		if err := w.create(ctx, alice); err != nil {
			return err
		}
		lat, err := w.run(ctx, alice, ph.every, ph.changes)
		if err != nil {
			return fmt.Errorf("%s: %w\n%s", ph.name, err, st.Logs(20))
		}
		ms := Millis(lat)
		s.AddLatency(Series{Name: "end to end, " + ph.name, MS: ms})
		p50[ph.name] = Quantile(ms, 0.5)
		rows := []Row{{
			Measure: "End to end p50, " + ph.name, Value: Quantile(ms, 0.5), Unit: "ms",
			Target: Target{Max: true, Limit: 1000}, Note: fmt.Sprintf("%d changes, apiserver batch-max-wait 1 s", len(ms)),
		}, {
			Measure: "End to end p99, " + ph.name, Value: Quantile(ms, 0.99), Unit: "ms",
			Target: Target{Max: true, Limit: 2000},
		}}
		if i == 0 {
			rows[0].Baseline, rows[0].BaselineOf = 2400, "old operator at this rate, quoted"
			rows[1].Baseline, rows[1].BaselineOf = 4700, "old operator at this rate, quoted"
		}
		s.Add(rows...)
	}
	slow, fast := p50[phases[0].name], p50[phases[1].name]
	s.Add(Row{
		Measure: "End to end p50, 20/s vs 1 per 2 s", Value: fast, Unit: "ms",
		Baseline: slow, BaselineOf: "1 per 2 s, this run", Ratio: fast / slow,
		Target: Target{OnRatio: true, Max: true, Limit: 1.5}, Note: "flat as the rate grows: at most 1.5x",
	})
	return nil
}

// landWatch makes changes to a few ConfigMaps and notes when each reaches the remote.
type landWatch struct {
	st     *stack.Stack
	prefix string
	names  []string

	mu      sync.Mutex
	sent    map[string][]time.Time // per object, when the apiserver answered change n (index n)
	landed  map[string]int         // per object, the newest change on the remote
	latency []time.Duration
}

func newLandWatch(st *stack.Stack, prefix string, objects int) *landWatch {
	w := &landWatch{st: st, prefix: prefix, sent: map[string][]time.Time{}, landed: map[string]int{}}
	for i := range objects {
		w.names = append(w.names, fmt.Sprintf("%s-%d", prefix, i))
	}
	return w
}

// create makes the objects at change 0 and waits for them on the remote.
func (w *landWatch) create(ctx context.Context, kube *kubernetes.Clientset) error {
	for _, name := range w.names {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"change": "0", "settings": settings}}
		if _, err := kube.CoreV1().ConfigMaps("team-a").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_, err := w.st.WaitFiles(ctx, func(files map[string]string) bool {
		for _, name := range w.names {
			if _, ok := files[w.file(name)]; !ok {
				return false
			}
		}
		return true
	})
	return err
}

func (w *landWatch) file(name string) string {
	return w.st.Target + "/team-a/core/configmaps/" + name + ".yaml"
}

// run makes changes round-robin over the objects at random intervals around every, and
// returns each one's latency once all have landed.
func (w *landWatch) run(ctx context.Context, kube *kubernetes.Clientset, every time.Duration, changes int) ([]time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	watchErr := make(chan error, 1)
	go func() { watchErr <- w.watch(ctx, changes) }()
	next := time.Now()
	for n := 1; n <= changes; n++ {
		name := w.names[(n-1)%len(w.names)]
		seq := (n-1)/len(w.names) + 1
		time.Sleep(time.Until(next))
		patch := fmt.Sprintf(`{"data":{"change":"%d"}}`, seq)
		if _, err := kube.CoreV1().ConfigMaps("team-a").Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return nil, err
		}
		w.mu.Lock()
		w.sent[name] = append(w.sent[name], time.Now())
		w.mu.Unlock()
		next = next.Add(time.Duration(float64(every) * (0.5 + rand.Float64()))) // mean every
	}
	select {
	case err := <-watchErr:
		return w.latency, err
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("%d of %d changes landed within a minute of the last", len(w.latency), changes)
	}
}

// watch polls the branch; on each new commit it reads the objects' files and counts every
// change up to the version found as landed.
func (w *landWatch) watch(ctx context.Context, changes int) error {
	ref := ""
	for {
		at, err := waitRefMoves(ctx, w.st.Git, w.st.Git.Branch, ref, 2*time.Minute)
		if err != nil {
			return err
		}
		now := time.Now()
		ref = at
		for _, name := range w.names {
			content, ok, err := w.st.Git.FileAt(at, w.file(name))
			if err != nil || !ok {
				return fmt.Errorf("read %s at %s: %v", name, at, err)
			}
			seq := changeOf(content)
			w.mu.Lock()
			for n := w.landed[name] + 1; n <= seq && n <= len(w.sent[name]); n++ {
				w.latency = append(w.latency, now.Sub(w.sent[name][n-1]))
				w.landed[name] = n
			}
			done := len(w.latency) == changes
			w.mu.Unlock()
			if done {
				return nil
			}
		}
	}
}

// changeOf reads data.change from a ConfigMap's file.
func changeOf(content string) int {
	for _, line := range strings.Split(content, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "change: "); ok {
			n, _ := strconv.Atoi(strings.Trim(v, `"`))
			return n
		}
	}
	return 0
}
