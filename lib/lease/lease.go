// Package lease gives one writer at a time the right to write a partition. A lease is a Valkey
// key set with NX and a TTL to a random token, renewed while its holder works and deleted by
// compare-and-delete when done, so a holder can never renew or release someone else's lease.
//
// Each grant also increments the partition's epoch, a fencing token that tells holders apart
// in logs, metrics and commits. The lease is advisory: a holder paused past its TTL can still
// act, which is why the writer's real fence is the compare-and-swap on the Git ref. A holder
// learns of loss through Context, which is canceled as soon as a renewal fails to confirm it.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/valkey-io/valkey-go"
)

var (
	// ErrHeld means another holder has the lease now.
	ErrHeld = errors.New("lease held by another writer")
	// ErrLost means the lease expired or was taken before it could be renewed.
	ErrLost = errors.New("lease lost")
)

var (
	// acquireScript: KEYS[1] = lease, KEYS[2] = epoch; ARGV[1] = token, ARGV[2] = ttl (ms).
	// Returns the new epoch, or nil when the lease is held.
	acquireScript = valkey.NewLuaScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return false
`)
	// renewScript: extends the lease only if the caller still holds it. Returns 1 or 0.
	renewScript = valkey.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)
	// releaseScript: deletes the lease only if the caller still holds it (Valkey 8 has no
	// DELIFEQ). Returns 1 or 0.
	releaseScript = valkey.NewLuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
)

// Keys are the Valkey keys of one lease; they must share a hash slot.
type Keys struct {
	Lease, Epoch string
}

// Lease is a granted lease. Release it when done.
type Lease struct {
	// Token is the random value stored in the lease key.
	Token string
	// Epoch increases with every grant of this lease.
	Epoch int64

	c      valkey.Client
	keys   Keys
	ttl    time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc
	done   chan struct{}
	once   sync.Once

	mu        sync.Mutex
	confirmed time.Time // when Valkey last confirmed this holder (monotonic clock)
}

// Acquire takes the lease for ttl and renews it every ttl/3 until Release or loss. It returns
// ErrHeld when someone else holds it.
func Acquire(ctx context.Context, c valkey.Client, keys Keys, ttl time.Duration) (*Lease, error) {
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	start := time.Now() // the TTL runs from before the request, to be safe
	epoch, err := acquireScript.Exec(ctx, c, []string{keys.Lease, keys.Epoch}, []string{token, ms(ttl)}).AsInt64()
	if valkey.IsValkeyNil(err) {
		return nil, ErrHeld
	}
	if err != nil {
		return nil, fmt.Errorf("lease acquire: %w", err)
	}
	// The lease outlives the request that took it only as long as the holder renews it.
	lctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	l := &Lease{Token: token, Epoch: epoch, c: c, keys: keys, ttl: ttl, ctx: lctx, cancel: cancel, done: make(chan struct{}), confirmed: start}
	go l.renew()
	return l, nil
}

// Context is canceled, with cause ErrLost, when the lease is lost, and when it is released.
func (l *Lease) Context() context.Context { return l.ctx }

// Check confirms, just before an irreversible step such as a push, that the lease is still
// held: the last renewal is younger than the TTL (a holder that was paused, e.g. by SIGSTOP,
// finds out here before its renewer does) and the key still holds this holder's token.
func (l *Lease) Check(ctx context.Context) error {
	if err := context.Cause(l.ctx); err != nil {
		return err
	}
	l.mu.Lock()
	age := time.Since(l.confirmed)
	l.mu.Unlock()
	if age >= l.ttl {
		l.cancel(ErrLost)
		return fmt.Errorf("%w: last renewed %s ago, TTL %s", ErrLost, age.Round(time.Millisecond), l.ttl)
	}
	holder, err := l.c.Do(ctx, l.c.B().Get().Key(l.keys.Lease).Build()).ToString()
	if err != nil && !valkey.IsValkeyNil(err) {
		return fmt.Errorf("lease check: %w", err)
	}
	if holder != l.Token {
		l.cancel(ErrLost)
		return ErrLost
	}
	return nil
}

// Release stops renewing and deletes the lease if this holder still has it.
func (l *Lease) Release(ctx context.Context) error {
	var err error
	l.once.Do(func() {
		l.cancel(context.Canceled)
		<-l.done
		err = releaseScript.Exec(ctx, l.c, []string{l.keys.Lease}, []string{l.Token}).Error()
	})
	if err != nil {
		return fmt.Errorf("lease release: %w", err)
	}
	return nil
}

// renew extends the lease every ttl/3. A renewal that finds another token ends the lease at
// once; so does any renewal attempted a TTL or more after the last confirmed one (Valkey was
// unreachable, or this process was paused), since by then the key may have been taken.
func (l *Lease) renew() {
	defer close(l.done)
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-tick.C:
		}
		sent := time.Now()
		ctx, cancel := context.WithTimeout(l.ctx, l.ttl/3)
		ok, err := renewScript.Exec(ctx, l.c, []string{l.keys.Lease}, []string{l.Token, ms(l.ttl)}).AsInt64()
		cancel()
		l.mu.Lock()
		confirmed := l.confirmed
		l.mu.Unlock()
		switch {
		case time.Since(confirmed) >= l.ttl:
			// Paused or cut off past the TTL: the key may have expired and been taken, so
			// even a renewal that succeeded now could follow another holder's tenure.
			l.cancel(fmt.Errorf("%w: not renewed for %s (last error: %v)", ErrLost, time.Since(confirmed).Round(time.Millisecond), err))
			return
		case err != nil:
			// Valkey unreachable for now: try again at the next tick, within the TTL.
		case ok == 1:
			l.mu.Lock()
			l.confirmed = sent
			l.mu.Unlock()
		default:
			l.cancel(ErrLost)
			return
		}
	}
}

func ms(d time.Duration) string { return fmt.Sprint(d.Milliseconds()) }

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
