package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/valkey-io/valkey-go"
)

// Defaults of Options.
const (
	DefaultPrefix  = "gr"
	DefaultSeenTTL = 24 * time.Hour
	DefaultMaxLen  = 100_000
	DefaultTimeout = 5 * time.Second
)

var (
	// ErrUnavailable means Valkey could not be reached or is not serving: retry later.
	ErrUnavailable = errors.New("valkey unavailable")
	// ErrFull means the partition's stream is at its length cap: slow down and retry.
	ErrFull = errors.New("partition backlog full")
)

// Options tune a Bus. The zero value of each field means its default.
type Options struct {
	// Prefix of every key. Default "gr".
	Prefix string
	// SeenTTL is how long an event id is remembered for dedupe. Default 24h, well past the
	// apiserver's retry budget of about two minutes.
	SeenTTL time.Duration
	// MaxLen caps a partition's backlog: an append that could take it past the cap fails
	// with ErrFull and appends nothing. Default 100000.
	MaxLen int64
	// Timeout bounds each call. Default 5s.
	Timeout time.Duration
}

// Bus appends to and reads from partition streams.
type Bus struct {
	c valkey.Client
	o Options
}

// New returns a Bus on a connected client.
func New(c valkey.Client, o Options) *Bus {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.SeenTTL <= 0 {
		o.SeenTTL = DefaultSeenTTL
	}
	if o.MaxLen <= 0 {
		o.MaxLen = DefaultMaxLen
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return &Bus{c: c, o: o}
}

// Client returns the underlying client, for packages that share the connection (lease).
func (b *Bus) Client() valkey.Client { return b.c }

// Keys returns the keys of a partition.
func (b *Bus) Keys(partitionID string) Keys { return KeysOf(b.o.Prefix, partitionID) }

// Entry is an event to append: its id (for dedupe) and its encoded form.
type Entry struct {
	ID      string
	Payload []byte
}

// Append adds the entries whose ids were not appended before, in order, atomically, and
// returns how many were new. When it returns an error nothing was appended, except after a
// timeout, when the script may have run: retrying is safe because of the dedupe.
func (b *Bus) Append(ctx context.Context, partitionID string, entries []Entry) (int, error) {
	if len(entries) == 0 {
		return 0, nil
	}
	k := b.Keys(partitionID)
	keys := make([]string, 0, len(entries)+1)
	args := make([]string, 0, len(entries)+2)
	keys = append(keys, k.Stream)
	args = append(args, strconv.FormatInt(int64(b.o.SeenTTL/time.Second), 10), strconv.FormatInt(b.o.MaxLen, 10))
	for _, e := range entries {
		keys = append(keys, k.Seen(e.ID))
		args = append(args, string(e.Payload))
	}
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	n, err := appendScript.Exec(ctx, b.c, keys, args).AsInt64()
	if err != nil {
		return 0, classify("append", err)
	}
	return int(n), nil
}

// Message is a stream entry read for processing.
type Message struct {
	// StreamID is the entry's id in the stream, used to acknowledge it.
	StreamID string
	Payload  []byte
	// Deliveries counts how often the entry was read, this time included.
	Deliveries int64
	// Redrives counts how often the entry was moved back from the DLQ by the dlq-sweep job;
	// DeadLetter records it, so a parked entry shows how often it was tried again.
	Redrives int64
}

// Read returns up to count entries of the partition: the unacknowledged ones first, then new
// ones. An empty result means the partition is drained.
func (b *Bus) Read(ctx context.Context, partitionID string, count int) ([]Message, error) {
	msgs, err := b.read(ctx, partitionID, "0", count)
	if err != nil {
		return nil, err
	}
	if len(msgs) > 0 {
		return msgs, b.deliveries(ctx, partitionID, msgs)
	}
	msgs, err = b.read(ctx, partitionID, ">", count)
	for i := range msgs {
		msgs[i].Deliveries = 1
	}
	return msgs, err
}

// deliveries fills in the delivery counts of redelivered messages.
func (b *Bus) deliveries(ctx context.Context, partitionID string, msgs []Message) error {
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	stream := b.Keys(partitionID).Stream
	res, err := b.c.Do(ctx, b.c.B().Xpending().Key(stream).Group(group).Start(msgs[0].StreamID).End(msgs[len(msgs)-1].StreamID).Count(int64(len(msgs))).Build()).ToArray()
	if err != nil {
		return classify("pending", err)
	}
	counts := make(map[string]int64, len(res))
	for _, r := range res {
		e, err := r.ToArray()
		if err != nil || len(e) < 4 {
			continue
		}
		id, _ := e[0].ToString()
		counts[id], _ = e[3].AsInt64()
	}
	for i := range msgs {
		msgs[i].Deliveries = max(counts[msgs[i].StreamID], 1)
	}
	return nil
}

func (b *Bus) read(ctx context.Context, partitionID, from string, count int) ([]Message, error) {
	stream := b.Keys(partitionID).Stream
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	cmd := func() valkey.Completed {
		return b.c.B().Xreadgroup().Group(group, consumer).Count(int64(count)).Streams().Key(stream).Id(from).Build()
	}
	res, err := b.c.Do(ctx, cmd()).AsXRead()
	if err != nil && strings.HasPrefix(err.Error(), "NOGROUP") {
		if err = b.createGroup(ctx, stream); err == nil {
			res, err = b.c.Do(ctx, cmd()).AsXRead()
		}
	}
	if valkey.IsValkeyNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, classify("read", err)
	}
	entries := res[stream]
	msgs := make([]Message, 0, len(entries))
	for _, e := range entries {
		// A pending entry that was trimmed away comes back without fields; nothing to redo.
		payload, ok := e.FieldValues[field]
		if !ok {
			msgs = append(msgs, Message{StreamID: e.ID})
			continue
		}
		redrives, _ := strconv.ParseInt(e.FieldValues[redrivesField], 10, 64)
		msgs = append(msgs, Message{StreamID: e.ID, Payload: []byte(payload), Redrives: redrives})
	}
	return msgs, nil
}

// createGroup creates the consumer group (and the stream) reading from the beginning, so
// entries appended before any writer existed are read too.
func (b *Bus) createGroup(ctx context.Context, stream string) error {
	err := b.c.Do(ctx, b.c.B().XgroupCreate().Key(stream).Group(group).Id("0").Mkstream().Build()).Error()
	if err != nil && !valkey.IsValkeyBusyGroup(err) {
		return err
	}
	return nil
}

// Ack records the newest resourceVersion written per object (versions may be nil),
// acknowledges processed entries and trims what no reader needs any more, atomically. With
// no entries it only records the versions, for changes written from outside the stream.
func (b *Bus) Ack(ctx context.Context, partitionID string, streamIDs []string, versions map[string]string) error {
	if len(streamIDs) == 0 && len(versions) == 0 {
		return nil
	}
	args := make([]string, 0, 2+2*len(versions)+len(streamIDs))
	args = append(args, group, strconv.Itoa(len(versions)))
	for obj, v := range versions {
		args = append(args, obj, v)
	}
	args = append(args, streamIDs...)
	k := b.Keys(partitionID)
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	if err := ackScript.Exec(ctx, b.c, []string{k.Stream, k.Versions}, args).Error(); err != nil {
		return classify("ack", err)
	}
	return nil
}

// Versions returns the newest resourceVersion written to Git of each given object that has
// one.
func (b *Bus) Versions(ctx context.Context, partitionID string, objects []string) (map[string]string, error) {
	out := make(map[string]string, len(objects))
	if len(objects) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	vals, err := b.c.Do(ctx, b.c.B().Hmget().Key(b.Keys(partitionID).Versions).Field(objects...).Build()).ToArray()
	if err != nil {
		return nil, classify("versions", err)
	}
	for i, v := range vals {
		if s, err := v.ToString(); err == nil {
			out[objects[i]] = s
		}
	}
	return out, nil
}

// DeadLetter moves a message to the partition's DLQ with the reason, the cluster it came
// from, its delivery and re-drive counts, and acknowledges it, atomically.
func (b *Bus) DeadLetter(ctx context.Context, partitionID string, m Message, reason, cluster string) error {
	k := b.Keys(partitionID)
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	args := []string{group, m.StreamID, string(m.Payload), reason, cluster, strconv.FormatInt(m.Deliveries, 10), strconv.FormatInt(m.Redrives, 10)}
	err := deadLetterScript.Exec(ctx, b.c, []string{k.Stream, k.DLQ}, args).Error()
	if err != nil {
		return classify("dead-letter", err)
	}
	return nil
}

// DeadLetters returns the DLQ entries of a partition, oldest first.
func (b *Bus) DeadLetters(ctx context.Context, partitionID string) ([]DeadLetter, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	entries, err := b.c.Do(ctx, b.c.B().Xrange().Key(b.Keys(partitionID).DLQ).Start("-").End("+").Build()).AsXRange()
	if err != nil {
		return nil, classify("dlq range", err)
	}
	out := make([]DeadLetter, 0, len(entries))
	for _, e := range entries {
		attempts, _ := strconv.ParseInt(e.FieldValues["attempts"], 10, 64)
		redrives, _ := strconv.ParseInt(e.FieldValues[redrivesField], 10, 64)
		out = append(out, DeadLetter{
			StreamID: e.ID, Payload: []byte(e.FieldValues[field]), Reason: e.FieldValues["reason"],
			Cluster: e.FieldValues["cluster"], Attempts: attempts, Redrives: redrives, At: streamTime(e.ID),
		})
	}
	return out, nil
}

// DeadLetter is a parked message and why it was parked.
type DeadLetter struct {
	StreamID string
	Payload  []byte
	Reason   string
	Cluster  string
	// Attempts is how often the writer read it before parking it, the last time.
	Attempts int64
	// Redrives is how often the dlq-sweep moved it back onto the stream before this parking.
	Redrives int64
	// At is when it was parked: the time part of its DLQ stream id, set by the Valkey server.
	At time.Time
}

// streamTime is the millisecond time part of a stream id ("1700000000000-0").
func streamTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// Redrive moves a DLQ entry back onto the partition's stream, to be read like a new entry,
// with its re-drive count increased, and removes it from the DLQ, atomically. It reports
// false when the entry is no longer in the DLQ (another sweep moved it) or holds no payload.
// It fails with ErrFull, moving nothing, when the stream is at its length cap (Options.MaxLen).
func (b *Bus) Redrive(ctx context.Context, partitionID, dlqID string) (bool, error) {
	k := b.Keys(partitionID)
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	n, err := redriveScript.Exec(ctx, b.c, []string{k.Stream, k.DLQ}, []string{dlqID, strconv.FormatInt(b.o.MaxLen, 10)}).AsInt64()
	if err != nil {
		return false, classify("redrive", err)
	}
	return n == 1, nil
}

// Backlog returns the number of entries in the partition's stream not yet trimmed.
func (b *Bus) Backlog(ctx context.Context, partitionID string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	n, err := b.c.Do(ctx, b.c.B().Xlen().Key(b.Keys(partitionID).Stream).Build()).AsInt64()
	if err != nil {
		return 0, classify("backlog", err)
	}
	return n, nil
}

// Stats is the state of a partition's queue.
type Stats struct {
	// Length is the entries in the stream: unread, and read but unacknowledged.
	Length int64
	// Pending is the entries read but not acknowledged.
	Pending int64
	// Lag is the entries not read yet.
	Lag int64
	// DeadLetters is the entries parked in the DLQ.
	DeadLetters int64
	// Leased is true while a writer holds the partition's lease.
	Leased bool
}

// Stats reads the state of a partition's queue, atomically.
func (b *Bus) Stats(ctx context.Context, partitionID string) (Stats, error) {
	k := b.Keys(partitionID)
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	vals, err := statsScript.Exec(ctx, b.c, []string{k.Stream, k.DLQ, k.Lease}, []string{group}).ToArray()
	if err != nil {
		return Stats{}, classify("stats", err)
	}
	n := make([]int64, len(vals))
	for i, v := range vals {
		n[i], _ = v.AsInt64()
	}
	if len(n) != 5 {
		return Stats{}, fmt.Errorf("bus stats: unexpected reply of %d values", len(n))
	}
	return Stats{Length: n[0], Pending: n[1], Lag: n[2], DeadLetters: n[3], Leased: n[4] == 1}, nil
}

// Ping checks that Valkey answers.
func (b *Bus) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.o.Timeout)
	defer cancel()
	if err := b.c.Do(ctx, b.c.B().Ping().Build()).Error(); err != nil {
		return classify("ping", err)
	}
	return nil
}

// classify maps a raw valkey error onto this package's sentinels. It must see the raw error:
// valkey's predicates do not look through wrapping.
func classify(op string, err error) error {
	if verr, ok := valkey.IsValkeyErr(err); ok {
		msg := verr.Error()
		switch {
		case strings.HasPrefix(msg, "FULL"):
			return fmt.Errorf("bus %s: %w", op, ErrFull)
		case strings.HasPrefix(msg, "LOADING"), strings.HasPrefix(msg, "BUSY"), strings.HasPrefix(msg, "TRYAGAIN"),
			strings.HasPrefix(msg, "CLUSTERDOWN"), strings.HasPrefix(msg, "OOM"), strings.HasPrefix(msg, "READONLY"),
			strings.HasPrefix(msg, "MASTERDOWN"):
			return fmt.Errorf("bus %s: %w: %s", op, ErrUnavailable, msg)
		}
		return fmt.Errorf("bus %s: %w", op, err)
	}
	// Anything that is not a server reply is the connection: refused, reset, timed out.
	return fmt.Errorf("bus %s: %w: %v", op, ErrUnavailable, err)
}

// Dial connects to Valkey, retrying until ctx is done, so a function started before Valkey
// is reachable waits for it instead of crash-looping. addr is host:port, or a comma-separated
// list of a Valkey Cluster's nodes (a single node of a cluster works too: the client
// discovers the others).
func Dial(ctx context.Context, addr, username, password string) (valkey.Client, error) {
	opt := valkey.ClientOption{
		InitAddress:  strings.Split(addr, ","),
		Username:     username,
		Password:     password,
		DisableCache: true, // no client-side caching: every read must see the server's state
	}
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		c, err := valkey.NewClient(opt)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to Valkey at %s (VALKEY_ADDR): %w", addr, err)
		case <-time.After(delay):
		}
	}
}
