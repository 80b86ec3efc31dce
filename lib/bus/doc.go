// Package bus is the durable queue between ingest and the writers: one Valkey stream per
// partition (repository branch), read through one consumer group.
//
// It owns every Valkey key name and hash tag (keys.go) and every Lua script (scripts.go).
// All keys of a partition share the hash tag {<partition id>}, so each script touches one slot
// and the same code runs on a Valkey Cluster.
//
// Guarantees:
//   - Append is idempotent per event id: a "seen" key and the XADD are written in one script,
//     so an apiserver retry of the same audit batch appends nothing twice, and an append whose
//     reply was lost can simply be retried.
//   - Read returns this partition's unacknowledged entries first, then new ones, so a writer
//     that took over after a crash redoes exactly the unacknowledged work, in order.
//   - Ack and DeadLetter trim what was acknowledged, so a stream holds only pending work.
//   - Redrive moves a DLQ entry back onto its stream and out of the DLQ in one script, so an
//     entry is never in both or in neither; it carries a re-drive count that DeadLetter
//     records if the entry is parked again.
//
// Raw valkey errors are classified before they are wrapped: ErrUnavailable means "try again
// later" (answer 503), ErrFull means "slow down" (answer 429).
package bus
