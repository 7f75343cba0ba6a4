package pubsub

import (
	"context"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
)

// hubShards spreads topics over independent locks so that publishing on one
// busy conversation does not contend with subscribing to another.
const hubShards = 32

// Hub is the in-memory fan-out shared by both brokers: it keeps the local
// subscribers of each topic and hands every published event to each of them
// without ever blocking (see the package doc for the drop-slow-subscriber
// policy). It is exported so that other transports can reuse it; most code
// should use a [Broker].
type Hub struct {
	seed   maphash.Seed
	shards [hubShards]hubShard
	closed atomic.Bool
	buffer int
	gauge  func(delta int)
	log    *slog.Logger
}

type hubShard struct {
	mu     sync.RWMutex
	topics map[string]*topicSubs
}

// topicSubs is a slice rather than a set so that the publish loop, which
// runs for every event and every subscriber, is a plain walk over memory.
type topicSubs struct {
	subs []*Subscription
}

// Subscription is one subscriber's view of a topic: a channel of events and,
// once that channel is closed, the reason it was closed. It exists so that a
// GraphQL resolver can tell "the client was too slow" from "the server is
// shutting down" from "the client went away".
type Subscription struct {
	topic   string
	ch      chan Event
	hub     *Hub
	onClose func(error) // broker hook, called once after removal

	dropping atomic.Bool           // a delivery found the buffer full; removal pending
	err      atomic.Pointer[error] // set just before ch is closed

	// Guarded by the shard lock.
	idx     int         // position in topicSubs.subs
	removed bool        // ch is closed
	stop    func() bool // unregisters the context.AfterFunc
}

// NewHub returns an empty hub. It honours [WithBuffer], [WithLogger] and
// [WithActiveGauge].
func NewHub(opts ...Option) *Hub {
	return newHub(buildOptions(opts))
}

func newHub(o options) *Hub {
	h := &Hub{
		seed:   maphash.MakeSeed(),
		buffer: o.buffer,
		gauge:  o.gauge,
		log:    o.logger,
	}
	for i := range h.shards {
		h.shards[i].topics = make(map[string]*topicSubs)
	}
	return h
}

func (h *Hub) shard(topic string) *hubShard {
	return &h.shards[maphash.String(h.seed, topic)%hubShards]
}

// Subscribe adds a local subscriber to topic. The subscription ends when ctx
// is done, when it is closed, when it is dropped for being slow, or when the
// hub is closed.
func (h *Hub) Subscribe(ctx context.Context, topic string) (*Subscription, error) {
	return h.subscribe(ctx, topic, nil)
}

// subscribe is Subscribe with a hook that the Redis broker uses to release
// its reference on the topic. onClose runs exactly once, after the
// subscription has been removed and its channel closed, on the goroutine
// that ended it (the publisher's, for a slow consumer).
func (h *Hub) subscribe(ctx context.Context, topic string, onClose func(error)) (*Subscription, error) {
	if topic == "" {
		return nil, errNoTopic
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &Subscription{
		topic:   topic,
		ch:      make(chan Event, h.buffer),
		hub:     h,
		onClose: onClose,
	}
	sh := h.shard(topic)

	sh.mu.Lock()
	if h.closed.Load() { // checked under the lock: Close sets the flag before sweeping shards
		sh.mu.Unlock()
		return nil, ErrClosed
	}
	ts := sh.topics[topic]
	if ts == nil {
		ts = &topicSubs{}
		sh.topics[topic] = ts
	}
	s.idx = len(ts.subs)
	ts.subs = append(ts.subs, s)
	if h.gauge != nil {
		h.gauge(+1) // under the lock, so it always precedes the matching -1
	}
	sh.mu.Unlock()

	// Registered after insertion so the callback always finds s in place.
	// AfterFunc starts no goroutine until ctx is done.
	stop := context.AfterFunc(ctx, func() { h.remove(s, ctx.Err()) })
	sh.mu.Lock()
	if s.removed {
		sh.mu.Unlock()
		stop()
	} else {
		s.stop = stop
		sh.mu.Unlock()
	}
	return s, nil
}

// Publish hands ev to every local subscriber of topic and returns how many
// accepted it. It never blocks: subscribers whose buffer is full are dropped
// with [ErrSlowConsumer]. Events from one goroutine reach each subscriber in
// the order they were published. ev is delivered as is: validation and
// defaults are the broker's job.
func (h *Hub) Publish(topic string, ev Event) int {
	sh := h.shard(topic)
	var slow []*Subscription
	delivered := 0

	sh.mu.RLock()
	if ts := sh.topics[topic]; ts != nil {
		for _, s := range ts.subs {
			if s.dropping.Load() {
				continue // already missed an event: do not deliver past the gap
			}
			select {
			case s.ch <- ev: // safe: channels are only closed under the write lock
				delivered++
			default:
				if s.dropping.CompareAndSwap(false, true) {
					slow = append(slow, s)
				}
			}
		}
	}
	sh.mu.RUnlock()

	for _, s := range slow {
		if h.remove(s, ErrSlowConsumer) {
			h.log.Info("pubsub: dropped slow subscriber", "topic", topic, "buffer", cap(s.ch))
		}
	}
	return delivered
}

// Subscribers returns how many local subscribers topic has, for metrics and
// tests.
func (h *Hub) Subscribers(topic string) int {
	sh := h.shard(topic)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if ts := sh.topics[topic]; ts != nil {
		return len(ts.subs)
	}
	return 0
}

// Close ends every subscription with [ErrClosed]; later Subscribe calls fail
// with ErrClosed. It is safe to call more than once.
func (h *Hub) Close() {
	h.closed.Store(true)
	for i := range h.shards {
		sh := &h.shards[i]
		var ended []*Subscription
		sh.mu.Lock()
		for topic, ts := range sh.topics {
			for _, s := range ts.subs {
				s.finish(ErrClosed)
				ended = append(ended, s)
			}
			delete(sh.topics, topic)
		}
		sh.mu.Unlock()
		for _, s := range ended {
			h.afterRemove(s, ErrClosed)
		}
	}
}

// remove takes s out of its topic and closes its channel with err as the
// reason. Only the first call for a subscription does anything; it reports
// whether this call was that one.
func (h *Hub) remove(s *Subscription, err error) bool {
	sh := h.shard(s.topic)
	sh.mu.Lock()
	if s.removed {
		sh.mu.Unlock()
		return false
	}
	ts := sh.topics[s.topic]
	last := len(ts.subs) - 1
	moved := ts.subs[last]
	ts.subs[s.idx] = moved
	moved.idx = s.idx
	ts.subs[last] = nil
	ts.subs = ts.subs[:last]
	if len(ts.subs) == 0 {
		delete(sh.topics, s.topic)
	}
	s.finish(err)
	sh.mu.Unlock()

	h.afterRemove(s, err)
	return true
}

// finish records why s ended and closes its channel. Caller holds the shard
// write lock, which is what makes closing safe against concurrent sends.
func (s *Subscription) finish(err error) {
	s.removed = true
	s.err.Store(&err)
	close(s.ch)
}

// afterRemove runs the side effects of a removal outside the shard lock.
// s.stop is read without the lock: it is only written under the lock before
// s.removed is set, and s.removed was set before we got here.
func (h *Hub) afterRemove(s *Subscription, err error) {
	if s.stop != nil {
		s.stop()
	}
	if h.gauge != nil {
		h.gauge(-1)
	}
	if s.onClose != nil {
		s.onClose(err)
	}
}

// C is the stream of events. It is closed when the subscription ends; then
// [Subscription.Err] says why.
func (s *Subscription) C() <-chan Event { return s.ch }

// Err is nil while the subscription is open. Once C is closed it is
// [ErrSlowConsumer], [ErrClosed], or the error of the subscription's
// context.
func (s *Subscription) Err() error {
	if p := s.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Topic is the topic subscribed to, for logs.
func (s *Subscription) Topic() string { return s.topic }

// Close unsubscribes early, e.g. when a resolver stops caring before its
// context ends. C is closed and Err becomes [ErrClosed]. Calling it again,
// or after the subscription already ended, does nothing.
func (s *Subscription) Close() {
	s.hub.remove(s, ErrClosed)
}
