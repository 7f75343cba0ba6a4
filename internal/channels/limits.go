package channels

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/parleyhq/parley/internal/channels/provider"
)

// Backoff is exponential backoff with jitter: attempt n waits about
// Base·2^(n-1), capped at Max, with the upper half randomized ("equal
// jitter"), so that many messages failing together do not retry together.
type Backoff struct {
	Base, Max time.Duration
}

// Delay is the pause after the given failed attempt (1 = the first).
func (b Backoff) Delay(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := b.Base
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(half+1)
}

// Rate is a token bucket's refill rate (per second) and size; the
// defaults are the providers' (provider.Facts.Rate).
type Rate = provider.Rate

// buckets are per-account token buckets: a burst of replies is spread out
// so that it does not trip the provider's throughput limit. A provider's
// "slow down" (429 and its throttling codes) pauses the account's bucket.
type buckets struct {
	mu sync.Mutex
	m  map[int]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
	paused time.Time
}

func newBuckets() *buckets { return &buckets{m: map[int]*bucket{}} }

// take spends one token of account's bucket, or says how long until one is
// available (spending nothing).
func (b *buckets) take(account int, r Rate, now time.Time) time.Duration {
	if r.PerSecond <= 0 {
		return 0
	}
	burst := float64(max(r.Burst, 1))
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.m[account]
	if k == nil {
		k = &bucket{tokens: burst, last: now}
		b.m[account] = k
	}
	if now.Before(k.paused) {
		return k.paused.Sub(now)
	}
	if el := now.Sub(k.last).Seconds(); el > 0 {
		k.tokens = min(burst, k.tokens+el*r.PerSecond)
		k.last = now
	}
	if k.tokens >= 1 {
		k.tokens--
		return 0
	}
	return time.Duration((1 - k.tokens) / r.PerSecond * float64(time.Second))
}

// pause stops account's sends until until.
func (b *buckets) pause(account int, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := b.m[account]
	if k == nil {
		k = &bucket{last: until}
		b.m[account] = k
	}
	if until.After(k.paused) {
		k.paused = until
	}
}
