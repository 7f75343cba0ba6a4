package pubsub

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitFor is how long a test waits for something that should be quick. It
// is generous because CI runs every package's tests at once on two cores;
// passing tests never wait for it.
const waitFor = 5 * time.Second

func redisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// newRedisClient connects to the test Redis, or skips the test when there is
// none (fails instead with PARLEY_REQUIRE_SERVICES=1). The client is closed
// when the test ends.
func newRedisClient(tb testing.TB, mutate ...func(*redis.Options)) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(redisURL())
	if err != nil {
		tb.Fatalf("TEST_REDIS_URL %q: %v", redisURL(), err)
	}
	if err := redisReachable(); err != nil {
		if os.Getenv("PARLEY_REQUIRE_SERVICES") == "1" {
			tb.Fatalf("redis at %s unreachable: %v", redisURL(), err)
		}
		tb.Skipf("redis at %s unreachable (%v); set PARLEY_REQUIRE_SERVICES=1 to fail instead", redisURL(), err)
	}
	for _, f := range mutate {
		f(opt)
	}
	c := redis.NewClient(opt)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// redisReachable probes the test Redis once per run, without retries, so
// that a machine without Redis skips every Redis test quickly.
var redisReachable = sync.OnceValue(func() error {
	opt, err := redis.ParseURL(redisURL())
	if err != nil {
		return err
	}
	opt.MaxRetries = -1
	c := redis.NewClient(opt)
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
})

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_/-]`)

// uniquePrefix isolates a test's Redis channels from every other test and
// run. It contains no glob characters, so prefix+"*" is a safe pattern.
func uniquePrefix(tb testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "parleytest:" + unsafeChars.ReplaceAllString(tb.Name(), "_") + ":" + hex.EncodeToString(b[:]) + ":"
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// logBuffer collects log output from the broker's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// factory builds a broker for one test and closes it when the test ends.
type factory func(t *testing.T, opts ...Option) Broker

func newMemoryBroker(t *testing.T, opts ...Option) Broker {
	b := NewInMemory(append([]Option{WithLogger(quietLogger())}, opts...)...)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func newRedisBroker(t *testing.T, opts ...Option) Broker {
	c := newRedisClient(t)
	return newRedisBrokerOn(t, c, append([]Option{WithPrefix(uniquePrefix(t))}, opts...)...)
}

// newRedisBrokerOn builds a Redis broker on an existing client; the broker
// is closed before the client (cleanups run last-in first-out).
func newRedisBrokerOn(t *testing.T, c redis.UniversalClient, opts ...Option) Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := NewRedis(ctx, c, append([]Option{WithLogger(quietLogger())}, opts...)...)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func mustSubscribe(t *testing.T, b Broker, ctx context.Context, topic string) *Subscription {
	t.Helper()
	s, err := b.Subscribe(ctx, topic)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", topic, err)
	}
	return s
}

func mustPublish(t *testing.T, b Broker, topic string, ev Event) {
	t.Helper()
	if err := b.Publish(context.Background(), topic, ev); err != nil {
		t.Fatalf("Publish(%q): %v", topic, err)
	}
}

// recv returns the next event, failing the test if none comes in time or
// the subscription ends.
func recv(t *testing.T, s *Subscription) Event {
	t.Helper()
	select {
	case ev, ok := <-s.C():
		if !ok {
			t.Fatalf("subscription %q ended early: %v", s.Topic(), s.Err())
		}
		return ev
	case <-time.After(waitFor):
		t.Fatalf("no event on %q within %v", s.Topic(), waitFor)
	}
	return Event{}
}

// expectNothing fails if an event arrives on s within d.
func expectNothing(t *testing.T, s *Subscription, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-s.C():
		if ok {
			t.Fatalf("unexpected event on %q: %+v", s.Topic(), ev)
		}
		t.Fatalf("subscription %q ended unexpectedly: %v", s.Topic(), s.Err())
	case <-time.After(d):
	}
}

// drainUntilClosed reads s until its channel is closed and returns what was
// still buffered, failing if that takes too long.
func drainUntilClosed(t *testing.T, s *Subscription) []Event {
	t.Helper()
	var got []Event
	deadline := time.After(waitFor)
	for {
		select {
		case ev, ok := <-s.C():
			if !ok {
				return got
			}
			got = append(got, ev)
		case <-deadline:
			t.Fatalf("subscription %q still open after %v (err=%v)", s.Topic(), waitFor, s.Err())
		}
	}
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gauge records WithActiveGauge calls.
type gauge struct {
	mu       sync.Mutex
	value    int
	min      int
	calls    int
	badDelta bool
}

func (g *gauge) add(delta int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if delta != 1 && delta != -1 {
		g.badDelta = true
	}
	g.value += delta
	g.calls++
	g.min = min(g.min, g.value)
}

func (g *gauge) get() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.value
}

func (g *gauge) check(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.badDelta {
		t.Error("gauge was called with a delta other than +1/-1")
	}
	if g.min < 0 {
		t.Errorf("gauge went negative (min %d)", g.min)
	}
}

// hubOf reaches into a broker for white-box checks.
func hubOf(b Broker) *Hub {
	switch b := b.(type) {
	case *memoryBroker:
		return b.hub
	case *redisBroker:
		return b.hub
	}
	panic("unknown broker")
}

// hubTopics counts the topics the hub still has an entry for.
func hubTopics(h *Hub) int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		n += len(sh.topics)
		sh.mu.RUnlock()
	}
	return n
}

// redisTopics counts the topics a Redis broker still keeps a reference
// count for; 0 for other brokers.
func redisTopics(b Broker) int {
	rb, ok := b.(*redisBroker)
	if !ok {
		return 0
	}
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return len(rb.topics)
}
