package pubsub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// errConnLost makes a PING barrier retry: the connection it was sent on
// broke before the reply came.
var errConnLost = errors.New("pubsub: redis pub/sub connection lost")

// errNoPong makes a PING barrier retry when its reply is overdue.
var errNoPong = errors.New("pubsub: no reply to pub/sub PING")

// redisBroker shares events between instances through Redis, over a single
// pub/sub connection per process (see the package doc).
//
// Invariant: a Redis channel is in go-redis's subscription set (which it
// re-subscribes after reconnecting) exactly when its topic has local
// references; per-topic changes are serialized by redisTopic.sem.
type redisBroker struct {
	client redis.UniversalClient
	ps     *redis.PubSub
	hub    *Hub
	prefix string
	log    *slog.Logger
	opts   options

	mu     sync.Mutex
	topics map[string]*redisTopic
	closed bool

	done       chan struct{} // closed by Close, first thing
	readerDone chan struct{} // closed when the reader goroutine returns
	closeOnce  sync.Once
	releases   sync.WaitGroup // releases started by the reader (slow consumers)
	readerDown atomic.Bool    // the pub/sub connection is failing

	waitMu  sync.Mutex
	waiters map[string]chan bool // PING barrier token -> reply (true) or retry (false)
	seq     atomic.Uint64
}

// redisTopic is the Redis side of one topic.
type redisTopic struct {
	sem        chan struct{} // capacity 1; held while the Redis subscription of the topic changes
	refs       int           // local subscriptions, including ones being set up; guarded by redisBroker.mu
	subscribed bool          // SUBSCRIBE confirmed and not undone; guarded by sem
}

// NewRedis returns a Broker that shares events with every instance using the
// same Redis and prefix. It opens one pub/sub connection and starts one
// reader goroutine, so a process should create one and share it. ctx only
// bounds this setup. It honours all options. The client stays the caller's:
// Close does not close it.
//
// Local subscribers receive local publishes through Redis as well, so every
// instance sees the events of a topic in the same order.
func NewRedis(ctx context.Context, client redis.UniversalClient, opts ...Option) (Broker, error) {
	if client == nil {
		return nil, errors.New("pubsub: nil redis client")
	}
	o := buildOptions(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("pubsub: redis ping: %w", err)
	}
	b := &redisBroker{
		client:     client,
		ps:         client.Subscribe(ctx), // no channels yet: they come and go with local subscribers
		hub:        newHub(o),
		prefix:     o.prefix,
		log:        o.logger,
		opts:       o,
		topics:     make(map[string]*redisTopic),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		waiters:    make(map[string]chan bool),
	}
	go b.read()
	// Establish the pub/sub connection now, so a broken setup fails here and
	// not on the first subscription.
	if err := b.roundTrip(ctx, ""); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("pubsub: redis pub/sub connection: %w", err)
	}
	return b, nil
}

func (b *redisBroker) isClosed() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

func (b *redisBroker) Publish(ctx context.Context, topic string, ev Event) error {
	if b.isClosed() {
		return ErrClosed
	}
	if topic == "" {
		return errNoTopic
	}
	ev, err := prepare(ev)
	if err != nil {
		return err
	}
	data, err := encode(ev)
	if err != nil {
		return err
	}
	if err := b.client.Publish(ctx, b.prefix+topic, data).Err(); err != nil {
		return fmt.Errorf("pubsub: publish %s: %w", topic, err)
	}
	return nil
}

func (b *redisBroker) PublishBatch(ctx context.Context, msgs []Message) error {
	if b.isClosed() {
		return ErrClosed
	}
	if len(msgs) == 1 {
		return b.Publish(ctx, msgs[0].Topic, msgs[0].Event)
	}
	pipe := b.client.Pipeline()
	for _, m := range msgs {
		if m.Topic == "" {
			return errNoTopic
		}
		ev, err := prepare(m.Event)
		if err != nil {
			return err
		}
		data, err := encode(ev)
		if err != nil {
			return err
		}
		pipe.Publish(ctx, b.prefix+m.Topic, data)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("pubsub: publish %d events: %w", len(msgs), err)
	}
	return nil
}

func (b *redisBroker) Subscribe(ctx context.Context, topic string) (*Subscription, error) {
	if topic == "" {
		return nil, errNoTopic
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := b.acquire(topic)
	if err != nil {
		return nil, err
	}
	if err := b.ensureSubscribed(ctx, topic, t); err != nil {
		b.release(topic, t)
		return nil, err
	}
	s, err := b.hub.subscribe(ctx, topic, func(reason error) {
		if errors.Is(reason, ErrSlowConsumer) {
			// We are on the reader goroutine. Releasing may have to wait
			// for a Subscribe of the same topic, which waits for this
			// reader: hand it off.
			b.releases.Go(func() { b.release(topic, t) })
			return
		}
		b.release(topic, t)
	})
	if err != nil {
		b.release(topic, t)
		return nil, err
	}
	return s, nil
}

func (b *redisBroker) Ping(ctx context.Context) error {
	if b.isClosed() {
		return ErrClosed
	}
	if b.readerDown.Load() {
		return errConnLost
	}
	return b.client.Ping(ctx).Err()
}

func (b *redisBroker) Close() error {
	var err error
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.done)
		err = b.ps.Close() // unblocks the reader
		<-b.readerDone
		b.hub.Close()
		b.releases.Wait()
	})
	return err
}

// acquire takes a reference on topic.
func (b *redisBroker) acquire(topic string) (*redisTopic, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	t := b.topics[topic]
	if t == nil {
		t = &redisTopic{sem: make(chan struct{}, 1)}
		b.topics[topic] = t
	}
	t.refs++
	return t, nil
}

// ensureSubscribed returns once Redis has processed a SUBSCRIBE of topic's
// channel on our pub/sub connection, so that anything published afterwards,
// from any connection, reaches us.
func (b *redisBroker) ensureSubscribed(ctx context.Context, topic string, t *redisTopic) error {
	// ctx is the subscription's lifetime, possibly unbounded: bound the wait.
	ctx, cancel := context.WithTimeout(ctx, b.opts.subscribeTimeout)
	defer cancel()
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.done:
		return ErrClosed
	}
	defer func() { <-t.sem }()
	if t.subscribed {
		return nil
	}
	channel := b.prefix + topic
	if err := b.roundTrip(ctx, channel); err != nil {
		// go-redis keeps the channel in the set it re-subscribes after a
		// reconnect even when the write failed: take it out again.
		b.unsubscribe(channel)
		return fmt.Errorf("pubsub: subscribe %s: %w", channel, err)
	}
	t.subscribed = true
	return nil
}

// release drops a reference on topic; the last one unsubscribes its channel.
func (b *redisBroker) release(topic string, t *redisTopic) {
	b.mu.Lock()
	t.refs--
	last := t.refs == 0
	b.mu.Unlock()
	if !last {
		return
	}

	t.sem <- struct{}{}
	defer func() { <-t.sem }()
	b.mu.Lock()
	idle, closed := t.refs == 0, b.closed
	b.mu.Unlock()
	if !idle {
		return // someone subscribed meanwhile; they own the subscription now
	}
	if t.subscribed && !closed {
		b.unsubscribe(b.prefix + topic)
	}
	t.subscribed = false
	// Forget the topic only now: a Subscribe that arrives after this point
	// creates a new redisTopic and its SUBSCRIBE is written after our
	// UNSUBSCRIBE on the same connection, so Redis ends up subscribed.
	b.mu.Lock()
	if t.refs == 0 && b.topics[topic] == t {
		delete(b.topics, topic)
	}
	b.mu.Unlock()
}

// unsubscribe removes channel from the pub/sub connection. go-redis removes
// it from its re-subscribe set even if the write fails, and a failed write
// means that connection is replaced anyway, so there is nothing to retry.
func (b *redisBroker) unsubscribe(channel string) {
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.pongTimeout)
	defer cancel()
	if err := b.ps.Unsubscribe(ctx, channel); err != nil && !b.isClosed() {
		b.log.Warn("pubsub: redis unsubscribe failed", "channel", channel, "err", err)
	}
}

// roundTrip writes a SUBSCRIBE of channel (unless channel is empty) followed
// by a PING carrying a unique token, and waits for that PING's reply. Redis
// answers a connection's commands in order, so the reply proves the
// SUBSCRIBE was processed. The token, unlike a subscribe confirmation,
// cannot be mistaken for the reply to an earlier, abandoned attempt or for
// go-redis re-subscribing after a reconnect. It retries across reconnects
// until ctx is done or the broker closes.
func (b *redisBroker) roundTrip(ctx context.Context, channel string) error {
	delay := 20 * time.Millisecond
	for {
		err := b.tryRoundTrip(ctx, channel)
		if err == nil {
			return nil
		}
		if b.isClosed() {
			return ErrClosed
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.log.Debug("pubsub: redis pub/sub round trip failed; retrying", "channel", channel, "err", err)
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-b.done:
			timer.Stop()
			return ErrClosed
		}
		delay = min(2*delay, time.Second)
	}
}

func (b *redisBroker) tryRoundTrip(ctx context.Context, channel string) error {
	if channel != "" {
		// Re-sending SUBSCRIBE on retry is harmless: Redis ignores a
		// channel already subscribed.
		if err := b.ps.Subscribe(ctx, channel); err != nil {
			return err
		}
	}
	token := "parley-barrier-" + strconv.FormatUint(b.seq.Add(1), 10)
	reply := make(chan bool, 1)
	b.waitMu.Lock()
	b.waiters[token] = reply
	b.waitMu.Unlock()
	defer func() {
		b.waitMu.Lock()
		delete(b.waiters, token)
		b.waitMu.Unlock()
	}()
	if err := b.ps.Ping(ctx, token); err != nil {
		return err
	}
	timer := time.NewTimer(b.opts.pongTimeout)
	defer timer.Stop()
	select {
	case ok := <-reply:
		if ok {
			return nil
		}
		return errConnLost
	case <-timer.C:
		return errNoPong
	case <-ctx.Done():
		return ctx.Err()
	case <-b.done:
		return ErrClosed
	}
}

// wake answers the barrier waiting for token, if any.
func (b *redisBroker) wake(token string) {
	b.waitMu.Lock()
	reply := b.waiters[token]
	b.waitMu.Unlock()
	if reply != nil {
		select {
		case reply <- true:
		default:
		}
	}
}

// retryAll tells every waiting barrier that its PING may have been lost with
// the connection.
func (b *redisBroker) retryAll() {
	b.waitMu.Lock()
	defer b.waitMu.Unlock()
	for _, reply := range b.waiters {
		select {
		case reply <- false:
		default:
		}
	}
}

// read is the one reader goroutine. It fans messages out to the hub, answers
// PING barriers, and keeps the connection honest: when idle it pings Redis,
// and if that gets no reply in time the next read times out, which go-redis
// treats as a broken connection and replaces, re-subscribing every channel
// in its set.
func (b *redisBroker) read() {
	defer close(b.readerDone)
	bg := context.Background()
	failures := 0
	probing := false
	for {
		var msg any
		var err error
		if probing {
			// A deadline on the context (not a read timeout) makes go-redis
			// count a timeout as a broken connection.
			ctx, cancel := context.WithTimeout(bg, b.opts.pongTimeout)
			msg, err = b.ps.Receive(ctx)
			cancel()
		} else {
			msg, err = b.ps.ReceiveTimeout(bg, b.opts.healthInterval)
		}
		if err != nil {
			if b.isClosed() {
				return
			}
			if !probing && isTimeout(err) {
				ctx, cancel := context.WithTimeout(bg, b.opts.pongTimeout)
				// A failed write already made go-redis replace the connection.
				probing = b.ps.Ping(ctx) == nil
				cancel()
				continue
			}
			probing = false
			failures++
			b.readerDown.Store(true)
			if failures == 1 {
				b.log.Warn("pubsub: redis pub/sub connection lost; reconnecting", "err", err)
			}
			b.retryAll()
			if !b.sleep(min(time.Duration(failures)*50*time.Millisecond, time.Second)) {
				return
			}
			continue
		}
		probing = false
		if failures > 0 {
			b.log.Info("pubsub: redis pub/sub connection restored", "failed_reads", failures)
			failures = 0
			b.readerDown.Store(false)
		}
		switch m := msg.(type) {
		case *redis.Message:
			b.dispatch(m)
		case *redis.Pong:
			b.wake(m.Payload)
		case *redis.Subscription:
			// Confirmations; Subscribe relies on PING barriers instead.
		}
	}
}

// dispatch decodes one message and fans it out locally. Events this build
// cannot read (garbage, or a newer envelope version during a rolling
// deploy) are dropped with a log line.
func (b *redisBroker) dispatch(m *redis.Message) {
	topic, ok := strings.CutPrefix(m.Channel, b.prefix)
	if !ok {
		return
	}
	ev, err := decode([]byte(m.Payload))
	if err != nil {
		b.log.Warn("pubsub: dropping event", "channel", m.Channel, "err", err)
		return
	}
	b.hub.Publish(topic, ev)
}

// sleep waits d, or returns false early when the broker closes.
func (b *redisBroker) sleep(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-b.done:
		return false
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
