package reconcile

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/gitops-reverser/gitops-reverser/lib/change"
	"github.com/gitops-reverser/gitops-reverser/lib/identity"
	"github.com/gitops-reverser/gitops-reverser/lib/writer"
)

// SnapshotActor is the user a resnapshot commit is attributed to.
const SnapshotActor = "system:gitops-reverser:resnapshot"

// Snapshot writes every object one target wants, and the removal of its orphans, through w
// as one commit (one per source cluster when the target has several), made even when nothing
// drifted. It holds the partition's lease while it writes, so live events wait and are then
// written on top; those older than the snapshot's lists are skipped.
func Snapshot(ctx context.Context, o Options, target identity.TargetRef, w *writer.Writer) (TargetReport, error) {
	if o.Actor == "" {
		o.Actor = SnapshotActor
	}
	o.defaults()
	tr := TargetReport{Target: target}
	targets, err := selectTargets(o.Catalog.Plan, []identity.TargetRef{target})
	if err != nil {
		return tr, err
	}
	t := targets[0]
	tr.Partition = t.Partition.ID
	err = func() error {
		obs, err := observationsOf(t, observeAll(ctx, &o, targets))
		if err != nil {
			return err
		}
		files, err := readTree(ctx, &o, t)
		if err != nil {
			return err
		}
		changes, n, err := diff(o.Catalog.Plan, t, obs, files, true, change.Actor{Username: o.Actor})
		if err != nil {
			return err
		}
		tr.count(n, changes)
		o.Planned(len(changes))
		// The writer makes one commit per run of changes from one cluster.
		sort.SliceStable(changes, func(i, j int) bool { return changes[i].Key.Cluster < changes[j].Key.Cluster })
		id := fmt.Sprintf("%s-%d", t.Ref.Name, time.Now().UnixNano())
		res, err := w.Apply(ctx, t.Partition, id, changes, o.FullWait)
		tr.Published = res.Events
		o.Published(len(changes))
		return err
	}()
	tr.Err = err
	if err != nil {
		tr.Error = err.Error()
	}
	return tr, err
}
