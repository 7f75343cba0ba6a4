package pubsub

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Broker is what the GraphQL layer and the publishers depend on, so that a
// single instance can run on [NewInMemory] and a cluster on [NewRedis]
// without either side knowing which.
type Broker interface {
	// Publish sends ev to every subscriber of topic, on every instance
	// sharing the broker's backend. It fills in ev.V and ev.At when they are
	// zero. It does not wait for delivery.
	Publish(ctx context.Context, topic string, ev Event) error
	// PublishBatch publishes several events, in order, in one round trip
	// to the backend. It stops at the first error.
	PublishBatch(ctx context.Context, msgs []Message) error
	// Subscribe starts receiving topic's events. When it returns without
	// error, every event published after that moment, from any instance, is
	// delivered. ctx bounds the life of the subscription itself, not just
	// the call: when ctx is done the subscription ends with ctx.Err().
	Subscribe(ctx context.Context, topic string) (*Subscription, error)
	// Ping reports whether the broker can currently deliver, for readiness
	// probes.
	Ping(ctx context.Context) error
	// Close ends every subscription with [ErrClosed] and releases the
	// broker's resources. Later calls return nil.
	Close() error
}

// ErrSlowConsumer is what [Subscription.Err] returns after the subscription
// was dropped because its buffer was full when an event arrived. Delivery
// never waits for a slow reader; the client should resubscribe and refetch.
var ErrSlowConsumer = errors.New("pubsub: subscriber dropped: too slow")

// ErrClosed is returned by a closed broker, and is what [Subscription.Err]
// returns after the broker was closed or the subscription was closed with
// [Subscription.Close].
var ErrClosed = errors.New("pubsub: closed")

// DefaultBuffer is the per-subscriber buffer used unless [WithBuffer] says
// otherwise: big enough for a burst in a busy conversation, small enough
// that thousands of subscribers stay cheap.
const DefaultBuffer = 64

// DefaultPrefix is the Redis channel prefix used unless [WithPrefix] says
// otherwise, so that Parley's channels do not collide with other users of
// the same Redis.
const DefaultPrefix = "parley:"

// Option configures a broker or a [Hub]. Options that do not apply to a
// given constructor are ignored.
type Option func(*options)

type options struct {
	buffer int
	prefix string
	logger *slog.Logger
	gauge  func(delta int)

	// Redis tuning; not exported because nothing outside this package's
	// tests needs to change them.
	subscribeTimeout time.Duration // bound on waiting for a SUBSCRIBE to be confirmed
	pongTimeout      time.Duration // wait for one PING barrier reply before retrying
	healthInterval   time.Duration // idle time after which the reader pings Redis
}

func buildOptions(opts []Option) options {
	o := options{
		buffer:           DefaultBuffer,
		prefix:           DefaultPrefix,
		logger:           slog.Default(),
		subscribeTimeout: 10 * time.Second,
		pongTimeout:      2 * time.Second,
		healthInterval:   15 * time.Second,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// WithBuffer sets how many undelivered events a subscriber may have before
// it is dropped as slow (default [DefaultBuffer]). Values below 1 are
// ignored: an unbuffered subscriber would be dropped on almost every event.
func WithBuffer(n int) Option {
	return func(o *options) {
		if n >= 1 {
			o.buffer = n
		}
	}
}

// WithPrefix sets the prefix of Redis channel names (default
// [DefaultPrefix]); the channel of a topic is prefix+topic. It lets
// environments, and tests, share one Redis without seeing each other's
// events. The in-memory broker ignores it.
func WithPrefix(p string) Option {
	return func(o *options) { o.prefix = p }
}

// WithLogger sets where the broker reports dropped subscribers, undecodable
// events and Redis connection trouble (default [slog.Default]). nil is
// ignored.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.logger = l
		}
	}
}

// WithActiveGauge registers f to be called with +1 when a local
// subscription opens and -1 when it ends, for whatever reason. It lets the
// server export an "active subscriptions" gauge without this package
// depending on a metrics library. f must be fast, safe for concurrent use,
// and must not call back into the broker.
func WithActiveGauge(f func(delta int)) Option {
	return func(o *options) { o.gauge = f }
}
