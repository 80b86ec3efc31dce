// Package quota enforces each source cluster's share of ingest: a token bucket of audit
// events kept in Valkey, so every ingest replica draws from the same bucket. The bucket
// refills at the cluster's rate up to its burst; a batch is admitted while the bucket is not
// empty and takes one token per event, even into debt, so a batch larger than the burst
// still passes and the long-run rate stays at the limit. A refused batch is told how long
// until the bucket is positive again, for Retry-After.
package quota

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/valkey-io/valkey-go"

	"github.com/gitops-reverser/gitops-reverser/lib/apis/v1alpha1"
)

// ErrUnavailable means Valkey could not be asked: the batch should be retried.
var ErrUnavailable = errors.New("quota: valkey unavailable")

// Limiter draws from per-cluster buckets. It is safe for concurrent use.
type Limiter struct {
	c      valkey.Client
	prefix string
}

// New returns a Limiter whose keys start with prefix (the deployment's key prefix).
func New(c valkey.Client, prefix string) *Limiter { return &Limiter{c: c, prefix: prefix} }

// Key is the bucket of a cluster. It has its own hash tag, so buckets spread over a Valkey
// Cluster independently of the partitions.
func (l *Limiter) Key(cluster string) string { return l.prefix + ":{cluster:" + cluster + "}:quota" }

// Take asks for n tokens of the cluster's bucket. It returns whether the batch is admitted,
// and when it is not, how long until it would be.
func (l *Limiter) Take(ctx context.Context, cluster string, limit v1alpha1.RateLimit, n int) (bool, time.Duration, error) {
	rate := float64(limit.EventsPerSecond)
	if rate <= 0 {
		return true, 0, nil
	}
	res, err := takeScript.Exec(ctx, l.c, []string{l.Key(cluster)}, []string{
		strconv.FormatFloat(rate, 'f', -1, 64),
		strconv.Itoa(int(limit.EffectiveBurst())),
		strconv.Itoa(n),
	}).AsIntSlice()
	if err != nil || len(res) != 2 {
		return false, 0, errors.Join(ErrUnavailable, err)
	}
	if res[0] == 1 {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Millisecond, nil
}

// takeScript refills the bucket for the time since it was last used (Valkey's clock, the same
// for every replica), then admits and charges the batch if the bucket is positive.
// KEYS[1] = bucket; ARGV = rate (tokens/s), burst, n. Returns {1, 0} or {0, wait ms}.
var takeScript = valkey.NewLuaScript(`
local rate, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(b[1]), tonumber(b[2])
if tokens == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local ttl = math.ceil(burst / rate * 1000) + 60000
if tokens <= 0 then
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return {0, math.ceil((1 - tokens) * 1000 / rate)}
end
tokens = tokens - n
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], ttl + math.ceil(math.max(0, -tokens) / rate * 1000))
return {1, 0}
`)
