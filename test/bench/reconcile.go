package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gitops-reverser/gitops-reverser/lib/bus"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/reconcile"
	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/stack"
)

// reconcileSeed creates N ConfigMaps in a namespace no rule watches, then adds a rule for it
// and runs the reconcile job as its CronJob would: the seed's job time, the time until every
// file is on the remote, and a second run that finds no drift.
func reconcileSeed(ctx context.Context, s *Suite) error {
	n := s.Size(10_000, 500)
	st, err := stack.Start(ctx, stack.Options{Dir: s.Scratch("reconcile")})
	if err != nil {
		return fmt.Errorf("start the stack: %w", err)
	}
	defer st.Close()
	if err := createConfigMaps(ctx, st, "unwatched", n); err != nil {
		return err
	}
	catalog, err := st.CatalogWatching("unwatched")
	if err != nil {
		return err
	}
	if _, err := st.RunJob(ctx, "reconcile", "TARGETS=nobody/none"); err != nil { // builds the job, untimed
		return err
	}
	client, err := bus.Dial(ctx, st.Valkey.Addr, "", "")
	if err != nil {
		return err
	}
	defer client.Close()
	queue := bus.New(client, bus.Options{})
	partition := identity.PartitionOf(st.Git.URL, st.Git.Branch).ID

	start := time.Now()
	seed, err := runReconcile(ctx, st, catalog)
	if err != nil {
		return err
	}
	seedJob := time.Since(start)
	if got := published(seed); got < n {
		return fmt.Errorf("the seed published %d events, want at least %d", got, n)
	}
	for {
		left, err := queue.Backlog(ctx, partition)
		if err != nil {
			return err
		}
		if left == 0 {
			break
		}
		if time.Since(start) > 10*time.Minute {
			return fmt.Errorf("%d events still queued 10 minutes after the seed\n%s", left, st.Logs(20))
		}
		time.Sleep(10 * time.Millisecond)
	}
	seedGit := time.Since(start)
	files, err := st.Git.Files(st.Git.Branch)
	if err != nil {
		return err
	}
	prefix := st.Target + "/unwatched/core/configmaps/seed-"
	count := 0
	for p := range files {
		if strings.HasPrefix(p, prefix) {
			count++
		}
	}
	if count != n {
		return fmt.Errorf("the remote holds %d of the %d seeded files", count, n)
	}

	start = time.Now()
	again, err := runReconcile(ctx, st, catalog)
	if err != nil {
		return err
	}
	noDrift := time.Since(start)
	if got := published(again); got != 0 {
		return fmt.Errorf("the no-drift run published %d events", got)
	}
	s.Add(Row{
		Measure: fmt.Sprintf("Reconcile seed, %d objects, all on the remote", n), Value: seedGit.Seconds(), Unit: "s",
		Baseline: 11.6, BaselineOf: "katafygio, 10,000 ConfigMaps, quoted",
		Target: Target{Max: true, Limit: 10},
		Note:   fmt.Sprintf("the job itself took %.1f s; ~1 KiB ConfigMaps", seedJob.Seconds()),
	}, Row{
		Measure: fmt.Sprintf("Reconcile, no drift, %d objects", n), Value: noDrift.Seconds(), Unit: "s",
		Target: Target{Max: true, Limit: 5},
	})
	return nil
}

// createConfigMaps creates n ConfigMaps of about 1 KiB, 8 at a time.
func createConfigMaps(ctx context.Context, st *stack.Stack, namespace string, n int) error {
	cfg := st.Kube.RESTConfig(harness.AdminUser)
	cfg.QPS, cfg.Burst = 2000, 2000
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	payload := strings.Repeat("x", 1024)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("seed-%05d", i), Namespace: namespace}, Data: map[string]string{"v": payload}}
				if _, err := kube.CoreV1().ConfigMaps(namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// runReconcile runs the job once and reads its report.
func runReconcile(ctx context.Context, st *stack.Stack, env ...string) (reconcile.Report, error) {
	res, err := st.RunJob(ctx, "reconcile", env...)
	if err != nil {
		return reconcile.Report{}, err
	}
	if res.ExitCode != 0 {
		return reconcile.Report{}, fmt.Errorf("reconcile exited %d\n%s", res.ExitCode, res.Stderr)
	}
	var rep reconcile.Report
	if err := json.Unmarshal([]byte(res.Stdout), &rep); err != nil {
		return rep, fmt.Errorf("reconcile printed no JSON report: %w\n%s", err, res.Stdout)
	}
	return rep, nil
}

// published sums the events a run appended.
func published(rep reconcile.Report) int {
	n := 0
	for _, t := range rep.Targets {
		n += t.Published
	}
	return n
}
