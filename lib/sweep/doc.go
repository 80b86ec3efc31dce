// Package sweep is one pass of the dlq-sweep job over every partition the catalog knows.
//
// It gives parked events another chance and recovers work no writer is doing:
//   - A DLQ entry is re-driven (moved back onto its partition's stream and out of the DLQ in
//     one step, see bus.Redrive) when it was re-driven fewer than MaxRedrives times and its
//     backoff has passed: Backoff after it was parked, doubled for every earlier re-drive.
//     Causes that go away (a GitTarget the writer had not seen yet) are written then; an
//     event that keeps failing comes back to the DLQ with its re-drive count, and stays
//     parked with its reason once the limit is reached. Nothing else ever leaves the DLQ.
//   - A partition with backlog and no lease holder (a writer crashed, or was scaled to zero
//     with its notification lost) gets a "partition ready" event, and so does every
//     partition something was re-driven onto.
//
// A pass returns a Report per partition. The job's schedule is the retry loop; a pass holds
// no state of its own, so two overlapping passes re-drive each entry at most once.
package sweep
