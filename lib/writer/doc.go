// Package writer drains a partition (one repository branch) into Git commits. A drain takes
// the partition's lease, fetches the branch, reads events in batches (unacknowledged ones
// first), renders each object (a scale instead sets spec.replicas in the object's file as the
// commit finds it), builds one commit per run of consecutive changes by the same
// Kubernetes user, pushes with a compare-and-swap on the branch, and only then acknowledges
// the batch. Events that can never be written (undecodable, unrenderable, outside the
// target's folder) go to the partition's DLQ with the reason, so they cannot block the rest.
//
// A crash at any point leaves the batch unacknowledged; the next holder redoes it, and
// rewriting identical content makes no commit. A drain stops after a time slice and hands the
// rest on through a fresh partition.ready event, so it fits in one Knative request.
package writer
