// Package ratelimit counts attempts per key in fixed windows: login attempts
// per email and per IP, visitor calls per IP. The in-memory limiter serves
// one process; the Redis limiter makes the limit hold across instances.
package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limiter decides whether one more attempt under key is allowed.
type Limiter interface {
	// Allow counts an attempt and reports whether it is within limit per
	// window; when it is not, retryAfter says when the window ends.
	Allow(ctx context.Context, key string, limit int, window time.Duration) (ok bool, retryAfter time.Duration, err error)
}

// Memory is an in-process Limiter.
type Memory struct {
	mu      sync.Mutex
	now     func() time.Time
	buckets map[string]*bucket
	sweeps  int
}

type bucket struct {
	start time.Time
	n     int
	win   time.Duration
}

// NewMemory returns an empty in-process limiter.
func NewMemory() *Memory { return &Memory{now: time.Now, buckets: map[string]*bucket{}} }

// Allow implements Limiter.
func (m *Memory) Allow(_ context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	m.sweep(now)
	b := m.buckets[key]
	if b == nil || now.Sub(b.start) >= window {
		b = &bucket{start: now, win: window}
		m.buckets[key] = b
	}
	b.n++
	if b.n > limit {
		return false, b.start.Add(window).Sub(now), nil
	}
	return true, 0, nil
}

// sweep drops expired buckets every so often, so the map cannot grow
// without bound under a spray of distinct keys.
func (m *Memory) sweep(now time.Time) {
	m.sweeps++
	if m.sweeps%1024 != 0 {
		return
	}
	for k, b := range m.buckets {
		if now.Sub(b.start) >= b.win {
			delete(m.buckets, k)
		}
	}
}

// Redis is a Limiter shared by every instance through Redis.
type Redis struct {
	client redis.UniversalClient
	prefix string
}

// NewRedis returns a limiter keeping its counters in Redis under prefix.
func NewRedis(client redis.UniversalClient, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

// Allow implements Limiter with INCR and a window-long expiry.
func (r *Redis) Allow(ctx context.Context, key string, limit int, window time.Duration) (bool, time.Duration, error) {
	k := r.prefix + key
	pipe := r.client.TxPipeline()
	incr := pipe.Incr(ctx, k)
	pipe.ExpireNX(ctx, k, window)
	ttl := pipe.PTTL(ctx, k)
	if _, err := pipe.Exec(ctx); err != nil {
		return false, 0, err
	}
	if incr.Val() > int64(limit) {
		return false, ttl.Val(), nil
	}
	return true, 0, nil
}
