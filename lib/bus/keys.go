package bus

// group and consumer name the one consumer group of every stream. A partition has one reader
// at a time (the writer holding its lease), so one fixed consumer is enough: whoever takes the
// lease next sees the previous holder's unacknowledged entries as its own pending entries.
const (
	group    = "writer"
	consumer = "writer"
)

// Stream entry fields. field holds the structured-mode CloudEvent; redrivesField, present
// only on entries the dlq-sweep moved back from the DLQ, counts those moves, so the count
// survives another trip through the writer into the DLQ.
const (
	field         = "ce"
	redrivesField = "redrives"
)

// Keys are the Valkey keys of one partition. They share the hash tag {id}.
type Keys struct {
	Stream   string // the pending changes
	DLQ      string // changes that failed too often, with the reason
	Lease    string // who is writing the partition now
	Epoch    string // incremented on every lease grant: the fencing token
	Versions string // hash: object -> newest resourceVersion written to Git
	Status   string // hash: last push, last error and reconcile results (lib/status)
	seen     string // prefix of the per-event dedupe keys
}

// KeysOf returns the keys of a partition under a key prefix.
func KeysOf(prefix, partitionID string) Keys {
	base := prefix + ":{" + partitionID + "}:"
	return Keys{
		Stream:   base + "events",
		DLQ:      base + "dlq",
		Lease:    base + "lease",
		Epoch:    base + "epoch",
		Versions: base + "versions",
		Status:   base + "status",
		seen:     base + "seen:",
	}
}

// Seen is the dedupe key of one event.
func (k Keys) Seen(eventID string) string { return k.seen + eventID }
