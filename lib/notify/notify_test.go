package notify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
)

// sink is a writer stand-in that records partition.ready events and answers slowly, like a
// writer that drains while the request is open.
type sink struct {
	mu       sync.Mutex
	got      []identity.Partition
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	status   int
	delay    time.Duration
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.maxSeen.Load(); n > m && !s.maxSeen.CompareAndSwap(m, n); m = s.maxSeen.Load() {
	}
	e, err := cloudevents.NewEventFromHTTPRequest(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p, err := change.ReadyFromEvent(*e)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	time.Sleep(s.delay)
	s.mu.Lock()
	s.got = append(s.got, p)
	s.mu.Unlock()
	w.WriteHeader(s.status)
}

func TestNotifyCoalescesPerPartition(t *testing.T) {
	s := &sink{status: http.StatusOK, delay: 200 * time.Millisecond}
	srv := httptest.NewServer(s)
	defer srv.Close()
	n, err := New(context.Background(), Options{Sink: srv.URL, Source: "/test"})
	if err != nil {
		t.Fatal(err)
	}
	a := identity.PartitionOf("http://git/a.git", "main")
	b := identity.PartitionOf("http://git/b.git", "main")
	for i := 0; i < 20; i++ {
		n.Notify(a)
		n.Notify(b)
	}
	n.Wait()
	counts := map[string]int{}
	for _, p := range s.got {
		counts[p.ID]++
	}
	// One send in flight per partition, and at most one more queued behind it.
	if counts[a.ID] < 1 || counts[a.ID] > 2 || counts[b.ID] < 1 || counts[b.ID] > 2 {
		t.Errorf("sends per partition = %v, want 1 or 2 each for 20 notifications", counts)
	}
	if m := s.maxSeen.Load(); m > 2 {
		t.Errorf("%d requests in flight at once, want at most one per partition", m)
	}
}

func TestNotifyRetriesFailedSends(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	n, err := New(context.Background(), Options{Sink: srv.URL, Source: "/test", Attempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(identity.PartitionOf("http://git/a.git", "main"))
	n.Wait()
	if c := calls.Load(); c != 3 {
		t.Errorf("calls = %d, want 2 failures then 1 success", c)
	}
}

func TestNotifyWithoutSinkDoesNothing(t *testing.T) {
	n, err := New(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(identity.PartitionOf("http://git/a.git", "main"))
	n.Wait() // must not block
	if len(n.state) != 0 {
		t.Errorf("a notifier without a sink scheduled sends: %v", n.state)
	}
}

func TestSendReportsTheOutcome(t *testing.T) {
	for _, tc := range []struct {
		name    string
		status  int
		wantErr bool
	}{
		{name: "writer drained", status: http.StatusOK},
		{name: "another writer holds the partition", status: http.StatusAccepted},
		{name: "writer keeps failing", status: http.StatusServiceUnavailable, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &sink{status: tc.status}
			srv := httptest.NewServer(s)
			defer srv.Close()
			n, err := New(context.Background(), Options{Sink: srv.URL, Source: "/test", Attempts: 2})
			if err != nil {
				t.Fatal(err)
			}
			p := identity.PartitionOf("http://git/a.git", "main")
			err = n.Send(context.Background(), p)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Send = %v, want error %v", err, tc.wantErr)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			wantCalls := 1
			if tc.wantErr {
				wantCalls = 2
			}
			if len(s.got) != wantCalls || s.got[0] != p {
				t.Errorf("sink got %v, want %d events for %s", s.got, wantCalls, p.ID)
			}
		})
	}
}
