// Package reconcile makes Git converge to the source clusters. It lists what the rules name
// (wildcards expanded against discovery), renders each object exactly as the writer would,
// compares it with the target's tree in Git, and publishes the differences as change events
// on the partition streams the live audit events use:
//
//   - an upsert for every object whose file is missing or differs;
//   - a delete for every file whose object no longer exists (an orphan).
//
// Every event carries the resourceVersion of the list that saw it, so the writer's per-object
// ordering decides races with live events: a live change newer than the list wins, and an
// orphan delete cannot remove an object recreated after the list. A run that finds no drift
// publishes nothing.
//
// Snapshot is the heavy variant behind the resnapshot job: every object of one target,
// written through the writer as one commit, whether or not anything drifted.
package reconcile
