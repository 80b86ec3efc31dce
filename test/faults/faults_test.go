package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "faults-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	binDir, err = BuildFunctions(ctx, dir)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: build the functions: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Evidence in the writers' logs that a fault hit where it was aimed (counted, not required).
var (
	skippedRE = regexp.MustCompile(`"skipped":[1-9]`)
	movedRE   = regexp.MustCompile(`(?i)moved under us`)
	lostRE    = regexp.MustCompile(`(?i)lease (was )?lost|stopped before push|lease lost`)
)

// settleTimeout bounds every settle: generous, since a takeover waits out a lease and a
// restarted writer rebuilds its mirror.
const settleTimeout = 90 * time.Second

// flowGap is the mean pause between two batches of a flow: about 20 events a second, which
// the writers drain faster than that on two cores, so backlogs stay short.
const flowGap = 150 * time.Millisecond

// ---- Scenario 1: writers killed with SIGKILL mid-drain, at random points -------------------

func TestKillWriters(t *testing.T)        { killWriters(t, false) }
func TestKillWritersCluster(t *testing.T) { killWriters(t, true) }

// killWriters kills the writer holding the lease (when it can be told; another one otherwise)
// while changes flow, and restarts it, again and again. Kill points:
//   - random: at a random instant of the drain;
//   - on push: the instant the remote branch moves, i.e. just after a push, before or just
//     after its acknowledgement;
//   - landed: the remote holds the holder's next push after the branch moved (a post-receive
//     hook) and the holder dies waiting for the answer: its batch is in Git, unacknowledged;
//   - frozen ack (single Valkey only): Valkey is frozen with SIGSTOP, the holder completes its
//     push and blocks on the acknowledgement, and dies there: the pushed batch is redelivered.
func killWriters(t *testing.T, cluster bool) {
	r := NewRig(t, Options{Writers: 2, Cluster: cluster})
	m := r.Model
	kills := Pick(4, 24)
	if cluster {
		kills = 4 // the cluster variants run the short form in both modes
	}
	modes := []string{"random", "landed", "on-push", "frozen-ack"}
	if cluster {
		modes = modes[:3]
	}
	count := map[string]int{}
	holderKills, added := 0, 0

	flow := m.StartFlow(flowGap, BatchOptions{})
	kick := r.StartKicker()
	for k := range kills {
		time.Sleep(r.Duration(150*time.Millisecond, 700*time.Millisecond))
		mode := modes[k%len(modes)]
		if k >= len(modes) {
			mode = modes[r.IntN(len(modes))]
		}
		victim, isHolder := r.pickVictim()
		switch mode {
		case "landed":
			r.Gate.Arm()
			if r.Gate.WaitLanded(3 * time.Second) {
				victim, isHolder = r.pickVictim()
				r.KillWriter(victim)
			} else {
				mode = "landed (no push in 3s)"
			}
			r.Gate.Release()
		case "on-push":
			if !r.WaitPush(r.RemoteHead(), 3*time.Second) {
				mode = "on-push (no push in 3s)"
			}
			victim, isHolder = r.pickVictim()
		case "frozen-ack":
			if !isHolder {
				mode = "random (no known holder to freeze)"
				break
			}
			head := r.RemoteHead()
			if err := r.SignalValkey(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			if !r.WaitPush(head, 1500*time.Millisecond) {
				mode = "frozen (no push in 1.5s)"
			}
			r.KillWriter(victim)
			if err := r.SignalValkey(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
		}
		r.KillWriter(victim)
		count[mode]++
		if isHolder {
			holderKills++
		}
		time.Sleep(r.Duration(0, 300*time.Millisecond))
		// Mostly the same writer comes back (a container restart: same cache); sometimes a
		// new one starts instead (a new pod: empty cache). Writer 0 always comes back, since
		// ingest notifies it.
		if victim != 0 && len(r.Writers()) < 5 && r.IntN(3) == 0 {
			r.AddWriter()
			added++
		} else {
			r.RestartWriter(victim)
		}
	}
	flow.Stop(t)
	kick.Stop()
	r.Settle(settleTimeout)
	Check(r)
	t.Logf("kills: %d (of the identified lease holder: %d) by kill point %v, %d killed writers replaced by new ones; writer batches that skipped events already in Git (redelivered after a kill): %d; %s; %s",
		kills, holderKills, count, added, r.CountLog(skippedRE), m.Counts(), kick)
}

// pickVictim returns the writer that holds the lease, when its log names the lease's epoch,
// or else a random usable writer.
func (r *Rig) pickVictim() (int, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s, err := r.State(ctx); err == nil && s.Lease {
		if h := r.Holder(s.Epoch); h >= 0 {
			return h, true
		}
	}
	usable := r.usableWriters()
	if len(usable) == 0 {
		r.T.Fatal("no usable writer to kill")
	}
	return usable[r.IntN(len(usable))], false
}

// ---- Scenario 2: two and three writers racing for one partition ---------------------------

func TestRacingWriters(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%dwriters", n), func(t *testing.T) { racingWriters(t, n, false) })
	}
}

func TestRacingWritersCluster(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%dwriters", n), func(t *testing.T) { racingWriters(t, n, true) })
	}
}

// racingWriters waits until the lease is free, then posts a batch and kicks every writer at
// the same instant (ingest's own notification to writer 0 joins the race), over and over,
// with more changes flowing in the background: the lease must let one drain at a time and
// turn the others away with 202.
func racingWriters(t *testing.T, writers int, cluster bool) {
	r := NewRig(t, Options{Writers: writers, Cluster: cluster})
	m := r.Model
	rounds := Pick(10, 150)
	if cluster {
		rounds = 10
	}
	flow := m.StartFlow(3*flowGap, BatchOptions{})
	status := map[string]int{}
	wins := make([]int, writers)
	contended, shared := 0, 0
	for range rounds {
		r.WaitIdle(time.Second)
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			m.Send(BatchOptions{})
		}()
		res := r.KickAll(context.Background())
		<-sent
		busy, drained := 0, 0
		for _, k := range res {
			switch {
			case k.Err != nil:
				status["error"]++
			case k.Drained():
				status["200"]++
				drained++
				wins[k.Writer]++
			case k.Busy():
				status["202"]++
				busy++
			default:
				status[fmt.Sprint(k.Status)]++
			}
		}
		if busy > 0 {
			contended++
		}
		if drained > 1 {
			shared++
		}
		time.Sleep(r.Duration(0, 40*time.Millisecond))
	}
	flow.Stop(t)
	r.Settle(settleTimeout)
	Check(r)
	t.Logf("%d rounds of %d concurrent kicks: answers %v, drains won per writer %v; %d rounds saw a writer turned away busy, %d saw two or more drain one after the other; %s",
		rounds, writers, status, wins, contended, shared, m.Counts())
}

// ---- Scenario 3: a writer paused past its lease while another takes over ------------------

// TestPausedWriter freezes the lease holder (SIGSTOP) for 3s, three lease TTLs, then lets it
// run again. Two variants alternate:
//   - takeover: another writer takes the partition over during the pause. When the writer
//     writes Writer-Epoch trailers, no commit of the paused writer's epoch may follow the
//     takeover.
//   - same process: nobody else is kicked, changes keep coming and their notifications queue
//     up in the paused process; on resume, its old drain (whose lease is gone) and new drains
//     (under a new lease) run side by side in one process.
func TestPausedWriter(t *testing.T) {
	r := NewRig(t, Options{Writers: 2})
	m := r.Model
	pauses := Pick(2, 6)
	type pause struct {
		mode             string
		paused, takeover int64
	}
	var done []pause

	flow := m.StartFlow(flowGap, BatchOptions{})
	kickA := r.StartKicker(0)
	for p := range pauses {
		mode := []string{"takeover", "same process"}[p%2]
		// Catch writer 0 holding the lease: pause it, then look (only it is kicked).
		var epochA int64
		for try := 0; try < 300 && epochA == 0; try++ {
			time.Sleep(r.Duration(30*time.Millisecond, 250*time.Millisecond))
			r.PauseWriter(0)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s, err := r.State(ctx)
			cancel()
			if err == nil && s.Lease && r.Holder(s.Epoch) == 0 {
				epochA = s.Epoch
				break
			}
			r.ResumeWriter(0)
		}
		if epochA == 0 {
			t.Fatalf("pause %d: never caught writer 0 holding the lease in 300 tries", p+1)
		}
		pausedAt := time.Now()

		var takeover int64
		if mode == "takeover" {
			// Writer 1 takes over once the lease has expired.
			var last KickResult
			deadline := time.Now().Add(20 * time.Second)
			for takeover == 0 && time.Now().Before(deadline) {
				last = r.Kick(context.Background(), 1)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				s, err := r.State(ctx)
				cancel()
				if last.Drained() && err == nil && s.Epoch > epochA {
					takeover = s.Epoch
				} else {
					time.Sleep(50 * time.Millisecond)
				}
			}
			if takeover == 0 {
				t.Fatalf("pause %d: writer 1 did not take over from paused writer 0 (epoch %d) within 20s; last kick %s", p+1, epochA, last)
			}
			t.Logf("pause %d (%s): writer 0 paused holding epoch %d; writer 1 took over after %v (epoch now %d)", p+1, mode, epochA, time.Since(pausedAt).Round(time.Millisecond), takeover)
		} else {
			t.Logf("pause %d (%s): writer 0 paused holding epoch %d; nobody else kicked", p+1, mode, epochA)
		}
		time.Sleep(time.Until(pausedAt.Add(3 * time.Second)))
		r.ResumeWriter(0)
		done = append(done, pause{mode, epochA, takeover})
		if mode == "takeover" {
			// Both writers work on for a while: writer 0 finds out it lost the lease.
			kickB := r.StartKicker(1)
			time.Sleep(r.Duration(300*time.Millisecond, 800*time.Millisecond))
			kickB.Stop()
		} else {
			time.Sleep(r.Duration(300*time.Millisecond, 800*time.Millisecond))
		}
	}
	flow.Stop(t)
	kickA.Stop()
	r.Settle(settleTimeout)
	rep := Check(r)

	if len(rep.Epochs) == 0 {
		t.Logf("the writer writes no Writer-Epoch trailer yet: checked the invariants, not which epoch pushed after the takeover")
	}
	for i, p := range done {
		// Commits after the first one of an epoch above the paused one must not carry it.
		after := false
		for _, c := range rep.EpochsInOrder() {
			if c.Epoch > p.paused {
				after = true
			}
			if after && c.Epoch == p.paused {
				t.Errorf("pause %d: commit %s carries the paused writer's epoch %d after a commit of a later epoch: the fenced-off writer pushed after the takeover", i+1, short(c.Hash), p.paused)
			}
		}
	}
	t.Logf("%d pauses of 3s (LEASE_TTL 1s): %v; writer 0 log lines about a lost lease: %d; %s",
		pauses, done, len(lostRE.FindAllStringIndex(r.Writer(0).FullLog(), -1)), m.Counts())
}

// TestStaleWriter hands the partition to a writer whose mirror is behind the remote: another
// writer created objects since its last drain, and it now gets their deletes. Against its old
// tree the deletes change nothing; it must find out that the branch moved instead of
// acknowledging them as written. (Found by TestPausedWriter's long form, made deterministic.)
func TestStaleWriter(t *testing.T) {
	r := NewRig(t, Options{Writers: 2})
	m := r.Model
	rounds := Pick(2, 6)
	for i := range rounds {
		// Writer 1 drains: its mirror is current. Writer 0 is paused, since ingest notifies it.
		r.WaitIdle(5 * time.Second)
		r.PauseWriter(0)
		m.Send(BatchOptions{Objects: []Obj{{"team-s", fmt.Sprintf("base-%d", i)}}})
		r.Settle(settleTimeout)
		// Writer 0 writes new objects; writer 1 does not see them.
		r.ResumeWriter(0)
		r.PauseWriter(1)
		var fresh []Obj
		for j := range 3 {
			fresh = append(fresh, Obj{"team-s", fmt.Sprintf("fresh-%d-%d", i, j)})
		}
		m.Send(BatchOptions{Objects: fresh})
		r.Settle(settleTimeout)
		// Their deletes go to writer 1, with its mirror from before they existed.
		r.ResumeWriter(1)
		r.PauseWriter(0)
		m.Send(BatchOptions{Objects: fresh, Delete: true})
		r.Settle(settleTimeout)
		r.ResumeWriter(0)
		// Writer 0 now serves the notification it got while paused; let it finish, so the
		// next round does not pause it in the middle of a drain.
		r.WaitIdle(5 * time.Second)
		time.Sleep(300 * time.Millisecond)
		r.WaitIdle(5 * time.Second)
	}
	Check(r)
	t.Logf("%d hand-overs to a stale writer; %s", rounds, m.Counts())
}

// TestRedoAfterPushLanded kills the writer at the instant its push is in Git but before it
// heard so (and so before it acknowledged the batch), with a batch of this shape:
//
//	alice creates X, alice deletes X (one commit group that changes nothing: no commit, so
//	no Event-Id trailer records it), then bob creates X again.
//
// The next writer redoes the batch. It must not replay alice's group on top of bob's X: that
// deletes X, an older version coming back over a newer one.
func TestRedoAfterPushLanded(t *testing.T) {
	r := NewRig(t, Options{Writers: 2})
	m := r.Model
	rounds := Pick(2, 6)
	for i := range rounds {
		x := Obj{"team-r", fmt.Sprintf("redo-%d", i)}
		r.WaitIdle(5 * time.Second)
		r.PauseWriter(1) // writer 0 alone, notified by ingest
		r.Gate.Arm()
		m.Send(BatchOptions{Steps: []Step{
			{x, OpCreate, "alice"}, {x, OpDelete, "alice"}, {x, OpCreate, "bob"},
		}})
		if !r.Gate.WaitLanded(20 * time.Second) {
			r.Gate.Release()
			t.Fatalf("round %d: writer 0 pushed nothing within 20s", i+1)
		}
		r.KillWriter(0)
		r.Gate.Release()
		r.ResumeWriter(1)
		r.RestartWriter(0)
		r.Settle(settleTimeout)
	}
	Check(r)
	t.Logf("%d pushes landed with their writer killed before the answer; %s", rounds, m.Counts())
}

// TestRevertedTreeInOnePush sends one batch whose commits bring a folder back to an earlier
// state: alice creates a, bob creates b, alice deletes b, so the folder after the third
// commit is the folder after the first. One push carries all three commits and must carry
// every object they need (the blob of a included).
func TestRevertedTreeInOnePush(t *testing.T) {
	r := NewRig(t, Options{Writers: 1})
	m := r.Model
	for i := range Pick(2, 4) {
		a, b := Obj{"team-t", fmt.Sprintf("a-%d", i)}, Obj{"team-t", fmt.Sprintf("b-%d", i)}
		m.Send(BatchOptions{Steps: []Step{{a, OpCreate, "alice"}, {b, OpCreate, "bob"}, {b, OpDelete, "alice"}}})
		r.Settle(settleTimeout)
	}
	Check(r)
	t.Logf("%s", m.Counts())
}

// ---- Scenario 4: Valkey restarted between append and drain, and mid-drain ------------------

func TestValkeyRestart(t *testing.T) {
	r := NewRig(t, Options{Writers: 2})
	m := r.Model
	ctx := context.Background()

	// Appended, not yet drained: every writer is frozen while ingest appends.
	for _, w := range r.Writers() {
		r.PauseWriter(w.Index)
	}
	var sent int
	first := m.Send(BatchOptions{})
	sent += len(first.Events)
	for range Pick(8, 40) {
		sent += len(m.Send(BatchOptions{}).Events)
	}
	before, err := r.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.Stream != int64(sent) {
		t.Errorf("stream holds %d entries after %d events were accepted by ingest with every writer paused", before.Stream, sent)
	}
	if err := r.Valkey.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := r.Valkey.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := waitState(r, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if after.Stream != before.Stream {
		t.Errorf("Valkey lost queued events in a crash: %d entries before SIGKILL, %d after restart (AOF, appendfsync always)", before.Stream, after.Stream)
	}
	// The dedupe survived too: the very same batch again appends nothing.
	resend := first.Appended.Load()
	if err := m.Post(ctx, first, 0); err != nil {
		t.Fatal(err)
	}
	if n := first.Appended.Load() - resend; n != 0 {
		t.Errorf("a retried batch appended %d events again after the Valkey restart: the dedupe keys were lost", n)
	}
	for _, w := range r.Writers() {
		r.ResumeWriter(w.Index)
	}
	r.Settle(settleTimeout)
	Check(r)

	// Restarts while everything runs: ingest answers 503 and is retried, writers answer 503
	// and are kicked again.
	restarts := Pick(2, 8)
	flow := m.StartFlow(flowGap, BatchOptions{})
	kick := r.StartKicker()
	for i := range restarts {
		time.Sleep(r.Duration(200*time.Millisecond, 900*time.Millisecond))
		if i%2 == 0 {
			err = r.Valkey.Kill()
		} else {
			err = r.Valkey.Stop()
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(r.Duration(50*time.Millisecond, 700*time.Millisecond))
		if err := r.Valkey.Restart(ctx); err != nil {
			t.Fatal(err)
		}
	}
	flow.Stop(t)
	kick.Stop()
	r.Settle(settleTimeout)
	Check(r)
	t.Logf("%d events queued across a Valkey SIGKILL with every writer paused, then %d restarts mid-drain; %s; %s", before.Stream, restarts, m.Counts(), kick)
}

// waitState reads the partition state, retrying while Valkey comes back.
func waitState(r *Rig, timeout time.Duration) (State, error) {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s, err := r.State(ctx)
		cancel()
		if err == nil || time.Now().After(deadline) {
			return s, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- Scenario 5: the branch moved by human commits while writers drain ---------------------

// TestHumanMovesBranch has a human push to the branch with the git CLI, at random moments,
// while changes flow and writers drain continuously, so the branch moves between a writer's
// fetch and its push. What the human does, and what must hold in the end:
//   - outside the target folder (a new file, an edit of README.md): kept as the human left it;
//   - a new file inside the target folder for an object no event ever touches (namespace
//     team-human, and a NOTES file that is no object at all): kept as the human left it; the
//     writer owns only the files of objects it receives changes for;
//   - an edit or a deletion of the file of an object the writers do manage (the reserved
//     objects team-h/h-*, which the random flow never touches): the driver sends a change of
//     that object after the human's push, and that later change wins. The reserved objects
//     are only ever upserted, so every event changes its file and shows in a commit.
func TestHumanMovesBranch(t *testing.T) {
	r := NewRig(t, Options{Writers: 2})
	m := r.Model
	h := r.NewHuman()
	var reserved []Obj
	for i := range 4 {
		reserved = append(reserved, Obj{"team-h", fmt.Sprintf("h-%d", i)})
	}
	m.Send(BatchOptions{Objects: reserved})

	// A slower flow than elsewhere: the git CLI is slow, and a human must find gaps.
	flow := m.StartFlow(3*flowGap, BatchOptions{})
	kick := r.StartKicker()
	rounds := Pick(8, 40)
	did := map[string]int{}
	for i := range rounds {
		time.Sleep(r.Duration(10*time.Millisecond, 150*time.Millisecond))
		var err error
		switch kind := []string{"outside-new", "outside-edit", "inside-managed", "inside-unmanaged"}[i%4]; kind {
		case "outside-new":
			path := fmt.Sprintf("docs/human-%d.md", i)
			content := fmt.Sprintf("# Note %d\nWritten by a human while the writers drain.\n", i)
			_, err = h.Commit("docs: note "+fmt.Sprint(i), func(dir string) error { return writeFile(dir, path, content) })
			if err == nil {
				r.AddOutside(path, content)
			}
			did[kind]++
		case "outside-edit":
			_, err = h.Commit("README: another line", func(dir string) error {
				old, err := os.ReadFile(filepath.Join(dir, "README.md"))
				if err != nil {
					return err
				}
				return writeFile(dir, "README.md", string(old)+fmt.Sprintf("Edited by a human, round %d.\n", i))
			})
			if err == nil {
				var content string
				if content, err = h.Read("README.md"); err == nil {
					r.AddOutside("README.md", content)
				}
			}
			did[kind]++
		case "inside-managed":
			o := reserved[r.IntN(len(reserved))]
			del := r.IntN(3) == 0
			_, err = h.Commit("hand edit of "+o.String(), func(dir string) error {
				if del {
					err := os.Remove(filepath.Join(dir, o.Path()))
					if os.IsNotExist(err) {
						return nil
					}
					return err
				}
				return writeFile(dir, o.Path(), fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: %s\ndata:\n  edited-by: human\n  round: %q\n", o.Name, o.Namespace, fmt.Sprint(i)))
			})
			if err == nil {
				m.Send(BatchOptions{Objects: []Obj{o}}) // the cluster's next change of o must win
			}
			if del {
				did["inside-managed-delete"]++
			} else {
				did["inside-managed-edit"]++
			}
		case "inside-unmanaged":
			path := fmt.Sprintf("%s/team-human/core/configmaps/handmade-%d.yaml", TargetPath, i)
			content := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: handmade-%d\n  namespace: team-human\ndata:\n  by: hand\n", i)
			notes := fmt.Sprintf("%s/NOTES-%d.md", TargetPath, i)
			_, err = h.Commit("hand-made object "+fmt.Sprint(i), func(dir string) error {
				if err := writeFile(dir, path, content); err != nil {
					return err
				}
				return writeFile(dir, notes, "not an object\n")
			})
			if err == nil {
				r.AddHumanInside(path, content)
				r.AddHumanInside(notes, "not an object\n")
			}
			did[kind]++
		}
		if err != nil {
			t.Fatalf("human round %d: %v", i, err)
		}
	}
	flow.Stop(t)
	kick.Stop()
	r.Settle(settleTimeout)
	Check(r)
	moved := r.CountLog(movedRE)
	t.Logf("human: %d pushes (%v), %d refused because a writer had just pushed; writer log lines about the branch having moved under them: %d; %s; %s",
		h.Pushes, did, h.Rejections, moved, m.Counts(), kick)
}

// ---- Scenario 6: the Git remote down for a while -------------------------------------------

func TestRemoteDown(t *testing.T) {
	r := NewRig(t, Options{Writers: 2})
	m := r.Model
	outages := Pick(1, 3)
	flow := m.StartFlow(flowGap, BatchOptions{})
	kick := r.StartKicker()
	answers := map[string]int{}
	for i := range outages {
		time.Sleep(r.Duration(300*time.Millisecond, 800*time.Millisecond))
		if err := r.Git.Stop(); err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		before := flow.Events.Load()
		failed := 0
		for time.Since(down) < r.Duration(1500*time.Millisecond, 2500*time.Millisecond) {
			for _, k := range r.KickAll(context.Background()) {
				switch {
				case k.Err != nil:
					answers["error"]++
				case k.Status >= 500:
					answers["5xx"]++
					failed++
				default:
					answers[fmt.Sprint(k.Status)]++
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		s, err := r.State(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		queued := flow.Events.Load() - before
		if failed == 0 {
			t.Errorf("outage %d: no writer answered 5xx while the remote was down", i+1)
		}
		if queued > 0 && s.Stream == 0 {
			t.Errorf("outage %d: %d events accepted while the remote was down, yet the stream is empty: they were acknowledged without reaching Git", i+1, queued)
		}
		if err := r.Git.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Logf("outage %d: remote down %v, %d events accepted meanwhile, stream %d, kicks answered %v", i+1, time.Since(down).Round(time.Millisecond), queued, s.Stream, answers)
	}
	flow.Stop(t)
	kick.Stop()
	r.Settle(settleTimeout)
	Check(r)
	t.Logf("%d outages; %s; %s", outages, m.Counts(), kick)
}

// ---- Scenario 7: poison events go to the DLQ, the rest keeps flowing -----------------------

func TestPoison(t *testing.T) {
	r := NewRig(t, Options{Writers: 2})
	m := r.Model
	poisons := Pick(3, 10)
	flow := m.StartFlow(flowGap, BatchOptions{})
	kick := r.StartKicker()
	for i := range poisons {
		time.Sleep(r.Duration(50*time.Millisecond, 400*time.Millisecond))
		if i%3 == 2 {
			m.Send(BatchOptions{PoisonAt: []int{0}}) // a batch of poison only
			continue
		}
		n := 2 + r.IntN(6)
		m.Send(BatchOptions{Events: n, PoisonAt: []int{r.IntN(n)}})
	}
	// Changes keep coming after the last poison: they must not wait behind it.
	time.Sleep(500 * time.Millisecond)
	flow.Stop(t)
	kick.Stop()
	r.Settle(settleTimeout)
	rep := Check(r)
	t.Logf("%d poison events, DLQ %d, parked after at most %d attempts (MAX_DELIVERIES=%d); %s; %s", poisons, rep.DLQ, rep.MaxAttempts, r.Opts.MaxDeliveries, m.Counts(), kick)
}

// ---- Scenario 8: ingest receiving the same audit batch twice -------------------------------

func TestDuplicateBatch(t *testing.T)        { duplicateBatch(t, false) }
func TestDuplicateBatchCluster(t *testing.T) { duplicateBatch(t, true) }

// duplicateBatch sends every batch twice: to the same replica, to the other one, or to both
// at the same instant. With the writers paused, the stream must hold each event once; then,
// with writers draining, again, and once more after the batches reached Git.
func duplicateBatch(t *testing.T, cluster bool) {
	r := NewRig(t, Options{Writers: 2, Ingests: 2, Cluster: cluster})
	m := r.Model
	ctx := context.Background()
	modes := map[string]int{}
	twice := func(b *Batch) {
		t.Helper()
		switch mode := []string{"same replica", "other replica", "both at once"}[r.IntN(3)]; mode {
		case "both at once":
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range 2 {
				wg.Go(func() { errs[i] = m.Post(ctx, b, i) })
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			modes[mode]++
		default:
			first := r.IntN(2)
			second := first
			if mode == "other replica" {
				second = 1 - first
			}
			if err := m.Post(ctx, b, first); err != nil {
				t.Fatal(err)
			}
			if err := m.Post(ctx, b, second); err != nil {
				t.Fatal(err)
			}
			modes[mode]++
		}
		if n := b.Appended.Load(); n != int64(b.Changes()) {
			t.Errorf("batch %d sent twice: ingest reported %d appended in total for %d changes", b.N, n, b.Changes())
		}
	}

	for _, w := range r.Writers() {
		r.PauseWriter(w.Index)
	}
	var held []*Batch
	n1, n2 := Pick(6, 30), Pick(15, 100)
	if cluster {
		n1, n2 = 6, 15
	}
	for range n1 {
		b := m.NewBatch(BatchOptions{})
		twice(b)
		held = append(held, b)
	}
	checkStreamOnce(t, r, held)
	for _, w := range r.Writers() {
		r.ResumeWriter(w.Index)
	}
	r.Settle(settleTimeout)

	// Again after they reached Git: nothing new.
	for _, b := range held {
		before := b.Appended.Load()
		if err := m.Post(ctx, b, r.IntN(2)); err != nil {
			t.Fatal(err)
		}
		if n := b.Appended.Load() - before; n != 0 {
			t.Errorf("batch %d re-sent after it was written: %d events appended again", b.N, n)
		}
	}
	// And while the writers drain.
	kick := r.StartKicker()
	for range n2 {
		twice(m.NewBatch(BatchOptions{}))
		time.Sleep(r.Duration(0, 20*time.Millisecond))
	}
	kick.Stop()
	r.Settle(settleTimeout)
	Check(r)
	t.Logf("every batch sent twice (%v); %s", modes, m.Counts())
}

// checkStreamOnce reads the whole stream and wants each event of the batches exactly once.
func checkStreamOnce(t *testing.T, r *Rig, batches []*Batch) {
	t.Helper()
	entries, err := r.VK.Do(context.Background(), r.VK.B().Xrange().Key(r.Keys.Stream).Start("-").End("+").Build()).AsXRange()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", r.Keys.Stream, err)
	}
	got := map[string]int{}
	for _, e := range entries {
		var ce struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(e.FieldValues["ce"]), &ce); err != nil {
			t.Fatalf("stream entry %s is no CloudEvent: %v", e.ID, err)
		}
		got[ce.ID]++
	}
	want := 0
	for _, b := range batches {
		for _, e := range b.Events {
			want++
			if got[e.EventID] != 1 {
				t.Errorf("event %s (batch %d, %s) is in the stream %d times, want once", e.EventID, b.N, e.Obj, got[e.EventID])
			}
		}
	}
	if len(entries) != want {
		t.Errorf("stream holds %d entries for %d distinct events sent twice each", len(entries), want)
	}
}

// ---- Scenario 9: an ingest replica killed mid-request --------------------------------------

// TestIngestKilled sends big batches to one ingest replica and kills it (SIGKILL) during the
// request: half-way through the body, or just after the body was sent (while it decodes,
// appends or answers). The driver retries the batch against the other replica, as the
// apiserver would through the Service; the restarted replica takes traffic again.
func TestIngestKilled(t *testing.T) {
	r := NewRig(t, Options{Writers: 2, Ingests: 2})
	m := r.Model
	kills := Pick(4, 16)
	// The big batches change objects of their own: small batches flow alongside through
	// whichever replica is up, and their order relative to the big ones does not matter.
	var big []Obj
	for i := range 20 {
		big = append(big, Obj{"team-big", fmt.Sprintf("cm-%02d", i)})
	}
	flow := m.StartFlow(flowGap, BatchOptions{})
	kick := r.StartKicker()
	outcome := map[string]int{}
	for i := range kills {
		victim := i % 2
		b := m.NewBatch(BatchOptions{Events: 60 + r.IntN(40), Pad: 1000, Pool: big})
		midBody := r.IntN(2) == 0
		cut := int64(len(b.Body)) * int64(10+r.IntN(80)) / 100
		delay := r.Duration(0, 40*time.Millisecond)

		pr, pw := io.Pipe()
		sent := make(chan struct{})
		go func() {
			// Write the body in chunks; stop at the cut when killing mid-body.
			body := b.Body
			limit := int64(len(body))
			if midBody {
				limit = cut
			}
			for off := int64(0); off < limit; off += 32 << 10 {
				end := min(off+32<<10, limit)
				if _, err := pw.Write(body[off:end]); err != nil {
					break
				}
			}
			close(sent)
			if !midBody {
				_ = pw.Close()
			}
		}()
		type answer struct {
			status int
			res    IngestResult
			err    error
		}
		ans := make(chan answer, 1)
		go func() {
			status, res, err := m.PostOnce(context.Background(), victim, pr)
			ans <- answer{status, res, err}
		}()
		<-sent
		time.Sleep(delay)
		r.KillIngest(victim)
		_ = pw.CloseWithError(io.ErrUnexpectedEOF)
		a := <-ans
		b.Attempts.Add(1)
		switch {
		case a.err == nil && !midBody:
			// It answered before it died: accepted.
			b.Appended.Add(int64(a.res.Appended))
			b.accepted.Store(true)
			outcome["answered before the kill"]++
		default:
			if err := m.Post(context.Background(), b, 1-victim); err != nil {
				t.Fatal(err)
			}
			switch {
			case midBody:
				outcome["killed mid-body"]++
			case b.Appended.Load() == 0:
				outcome["killed after appending, before answering"]++
			default:
				outcome["killed before appending"]++
			}
		}
		r.RestartIngest(victim)
	}
	flow.Stop(t)
	kick.Stop()
	r.Settle(settleTimeout)
	Check(r)
	t.Logf("%d ingest kills: %v; %s; %s", kills, outcome, m.Counts(), kick)
}
