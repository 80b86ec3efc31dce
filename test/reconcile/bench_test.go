package reconcile

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gitops-reverser/gitops-reverser/test/harness"
	"github.com/gitops-reverser/gitops-reverser/test/stack"
)

// BenchmarkReconcile measures a seed (N objects that predate the rules, into a target that
// holds none of them) and a run that finds no drift, with the job as a CronJob runs it:
// the seed's job time, the time until every file is on the remote, and the no-drift time.
func BenchmarkReconcile(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			for range b.N {
				benchReconcile(b, n)
			}
		})
	}
}

func benchReconcile(b *testing.B, n int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	s, err := stack.Start(ctx, stack.Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatalf("start the stack: %v", err)
	}
	defer s.Close()
	cfg := s.Kube.RESTConfig(harness.AdminUser)
	cfg.QPS, cfg.Burst = 2000, 2000
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	// ~1 KiB of data per ConfigMap, about what a real one holds.
	payload := strings.Repeat("x", 1024)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				c := configMap("unwatched", fmt.Sprintf("seed-%05d", i), payload)
				if _, err := kube.CoreV1().ConfigMaps("unwatched").Create(ctx, c, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	catalog := withRuleFor(b, s, "unwatched")
	if _, err := s.RunJob(ctx, "reconcile", "TARGETS=nobody/none"); err != nil { // builds the job
		b.Fatal(err)
	}
	prefix := s.Target + "/unwatched/core/configmaps/seed-"

	b.ResetTimer()
	start := time.Now()
	seed := runReconcile(b, s, catalog)
	seedJob := time.Since(start)
	if got := published(seed); got < n {
		b.Fatalf("seed published %d events, want at least %d", got, n)
	}
	_, err = s.WaitFiles(ctx, func(files map[string]string) bool {
		count := 0
		for p := range files {
			if strings.HasPrefix(p, prefix) {
				count++
			}
		}
		return count == n
	})
	if err != nil {
		b.Fatal(err)
	}
	seedGit := time.Since(start)

	start = time.Now()
	again := runReconcile(b, s, catalog)
	noDrift := time.Since(start)
	b.StopTimer()
	if got := published(again); got != 0 {
		b.Fatalf("no-drift run published %d events", got)
	}
	b.ReportMetric(seedJob.Seconds(), "seed-job-s")
	b.ReportMetric(seedGit.Seconds(), "seed-in-git-s")
	b.ReportMetric(noDrift.Seconds(), "no-drift-s")
	b.ReportMetric(again.Took.Seconds(), "no-drift-pass-s")
	b.ReportMetric(0, "ns/op")
}
