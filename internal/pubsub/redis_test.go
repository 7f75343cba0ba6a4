package pubsub

import (
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// channels lists the Redis channels under prefix that anyone is subscribed
// to, as Redis itself sees it.
func channels(t *testing.T, c redis.UniversalClient, prefix string) []string {
	t.Helper()
	chs, err := c.PubSubChannels(context.Background(), prefix+"*").Result()
	require.NoError(t, err)
	slices.Sort(chs)
	return chs
}

// TestRedisCrossInstanceDelivery runs two brokers on separate clients, as two
// server instances would, and checks that an event published on one right
// after Subscribe returned on the other is received: Subscribe must wait for
// Redis to have processed the SUBSCRIBE.
func TestRedisCrossInstanceDelivery(t *testing.T) {
	prefix := uniquePrefix(t)
	a := newRedisBrokerOn(t, newRedisClient(t), WithPrefix(prefix))
	b := newRedisBrokerOn(t, newRedisClient(t), WithPrefix(prefix))

	for i := range 50 {
		topic := ConversationTopic(i)
		s := mustSubscribe(t, a, t.Context(), topic)
		start := time.Now()
		mustPublish(t, b, topic, Event{Kind: KindMessageAdded, ConversationID: i, MessageID: i + 1})
		select {
		case ev := <-s.C():
			require.Equal(t, i+1, ev.MessageID)
		case <-time.After(time.Second):
			t.Fatalf("topic %s: event published on B right after Subscribe on A not received within 1s", topic)
		}
		require.Less(t, time.Since(start), time.Second)
		s.Close()
	}

	// And the other way round, with a local subscriber on the publishing side.
	onB := mustSubscribe(t, b, t.Context(), AgentTopic(1))
	onA := mustSubscribe(t, a, t.Context(), AgentTopic(1))
	mustPublish(t, a, AgentTopic(1), Event{Kind: KindSessionEnded, AgentIDs: []int{1}})
	assert.Equal(t, KindSessionEnded, recv(t, onB).Kind)
	assert.Equal(t, KindSessionEnded, recv(t, onA).Kind)
}

// TestRedisUnsubscribesWhenLastSubscriberLeaves checks the per-topic
// reference count against what Redis reports.
func TestRedisUnsubscribesWhenLastSubscriberLeaves(t *testing.T) {
	c := newRedisClient(t)
	prefix := uniquePrefix(t)
	g := &gauge{}
	b := newRedisBrokerOn(t, c, WithPrefix(prefix), WithBuffer(1), WithActiveGauge(g.add))
	other := newRedisBrokerOn(t, newRedisClient(t), WithPrefix(prefix))
	T, U := ConversationTopic(1), ConversationTopic(2)

	require.Empty(t, channels(t, c, prefix))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s1 := mustSubscribe(t, b, t.Context(), T)
	s2 := mustSubscribe(t, b, ctx, T)
	s3 := mustSubscribe(t, b, t.Context(), U)
	require.Equal(t, []string{prefix + T, prefix + U}, channels(t, c, prefix))

	s1.Close()
	require.Equal(t, []string{prefix + T, prefix + U}, channels(t, c, prefix), "one subscriber of T is left")
	mustPublish(t, other, T, Event{Kind: KindMessageAdded, MessageID: 1})
	require.Equal(t, 1, recv(t, s2).MessageID)

	cancel() // last subscriber of T leaves through its context
	eventually(t, "T unsubscribed", func() bool {
		return slices.Equal(channels(t, c, prefix), []string{prefix + U})
	})

	// Last subscriber of U is dropped as slow (buffer 1, never read).
	mustPublish(t, other, U, Event{Kind: KindMessageAdded, MessageID: 1})
	mustPublish(t, other, U, Event{Kind: KindMessageAdded, MessageID: 2})
	eventually(t, "U unsubscribed", func() bool { return len(channels(t, c, prefix)) == 0 })
	require.ErrorIs(t, s3.Err(), ErrSlowConsumer)
	require.Equal(t, 0, g.get())

	// The topic can be subscribed again from scratch.
	s4 := mustSubscribe(t, b, t.Context(), T)
	require.Equal(t, []string{prefix + T}, channels(t, c, prefix))
	mustPublish(t, other, T, Event{Kind: KindMessageAdded, MessageID: 5})
	require.Equal(t, 5, recv(t, s4).MessageID)
	s4.Close()
	require.Eventually(t, func() bool { return len(channels(t, c, prefix)) == 0 }, waitFor, 5*time.Millisecond)
	g.check(t)
}

// TestRedisDropsUndecodableEvents feeds the reader what a newer instance or
// a stray client could publish. It must log and carry on.
func TestRedisDropsUndecodableEvents(t *testing.T) {
	c := newRedisClient(t)
	prefix := uniquePrefix(t)
	logs := &logBuffer{}
	b := newRedisBrokerOn(t, c, WithPrefix(prefix), WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	topic := ConversationTopic(1)
	s := mustSubscribe(t, b, t.Context(), topic)

	ctx := t.Context()
	require.NoError(t, c.Publish(ctx, prefix+topic, `{"v":2,"k":"message.added","c":"an id of the future"}`).Err())
	require.NoError(t, c.Publish(ctx, prefix+topic, `not json`).Err())
	require.NoError(t, c.Publish(ctx, prefix+topic, `{"k":"message.added","c":1}`).Err()) // no version
	mustPublish(t, b, topic, Event{Kind: KindMessageAdded, ConversationID: 1, MessageID: 42})

	ev := recv(t, s)
	require.Equal(t, 42, ev.MessageID, "only the valid event is delivered")
	require.NoError(t, s.Err())
	out := logs.String()
	assert.Contains(t, out, "unsupported event version: 2")
	assert.Contains(t, out, "unsupported event version: 0")
	assert.Contains(t, out, "malformed event")
}

// TestRedisCloseLeavesClientOpen: the client belongs to the caller.
func TestRedisCloseLeavesClientOpen(t *testing.T) {
	c := newRedisClient(t)
	b, err := NewRedis(t.Context(), c, WithPrefix(uniquePrefix(t)), WithLogger(quietLogger()))
	require.NoError(t, err)
	mustSubscribe(t, b, t.Context(), ConversationTopic(1))
	require.NoError(t, b.Close())
	require.NoError(t, c.Ping(t.Context()).Err())
}

// TestRedisSurvivesReconnect kills the broker's pub/sub connection on the
// server side. go-redis reconnects and re-subscribes; existing subscriptions
// must keep receiving and the channel bookkeeping must stay right.
func TestRedisSurvivesReconnect(t *testing.T) {
	name := "parleytest-" + strings.TrimSuffix(strings.ReplaceAll(uniquePrefix(t), ":", "-"), "-")
	c := newRedisClient(t, func(o *redis.Options) { o.ClientName = name })
	prefix := uniquePrefix(t)
	logs := &logBuffer{}
	b := newRedisBrokerOn(t, c, WithPrefix(prefix), WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	other := newRedisBrokerOn(t, newRedisClient(t), WithPrefix(prefix))
	T := ConversationTopic(1)
	s := mustSubscribe(t, b, t.Context(), T)

	id := pubsubConnID(t, c, name)
	require.NotEmpty(t, id, "broker's pub/sub connection not found in CLIENT LIST")
	require.NoError(t, c.Do(t.Context(), "CLIENT", "KILL", "ID", id).Err())

	// Publish until the re-subscribed connection gets one.
	deadline := time.Now().Add(5 * time.Second)
	got := false
	for n := 1; !got && time.Now().Before(deadline); n++ {
		mustPublish(t, other, T, Event{Kind: KindMessageAdded, MessageID: n})
		select {
		case ev, ok := <-s.C():
			require.True(t, ok, "subscription ended across reconnect: %v", s.Err())
			require.Positive(t, ev.MessageID)
			got = true
		case <-time.After(50 * time.Millisecond):
		}
	}
	require.True(t, got, "no event after the pub/sub connection was killed")
	newID := pubsubConnID(t, c, name)
	require.NotEmpty(t, newID)
	require.NotEqual(t, id, newID, "connection was replaced")
	require.Eventually(t, func() bool { return b.Ping(t.Context()) == nil }, waitFor, 10*time.Millisecond)
	assert.Contains(t, logs.String(), "connection lost")

	// Bookkeeping still matches Redis after the reconnect.
	s2 := mustSubscribe(t, b, t.Context(), ConversationTopic(2))
	mustPublish(t, other, ConversationTopic(2), Event{Kind: KindMessageAdded, MessageID: 7})
	require.Equal(t, 7, recv(t, s2).MessageID)
	require.Equal(t, []string{prefix + ConversationTopic(1), prefix + ConversationTopic(2)}, channels(t, c, prefix))
	s.Close()
	s2.Close()
	require.Eventually(t, func() bool { return len(channels(t, c, prefix)) == 0 }, waitFor, 5*time.Millisecond)
}

// pubsubConnID finds the server-side id of the pub/sub connection of the
// client named name.
func pubsubConnID(t *testing.T, c redis.UniversalClient, name string) string {
	t.Helper()
	list, err := c.Do(t.Context(), "CLIENT", "LIST", "TYPE", "pubsub").Text()
	require.NoError(t, err)
	for line := range strings.SplitSeq(list, "\n") {
		fields := strings.Fields(line)
		if slices.Contains(fields, "name="+name) {
			for _, f := range fields {
				if v, ok := strings.CutPrefix(f, "id="); ok {
					return v
				}
			}
		}
	}
	return ""
}

// TestRedisDetectsSilentConnection puts a proxy between the broker and Redis
// and makes it swallow traffic on the established connection without closing
// it, like a dead NAT entry or a half-open TCP connection. The reader's idle
// PING gets no reply, so it must replace the connection by itself.
func TestRedisDetectsSilentConnection(t *testing.T) {
	newRedisClient(t) // skip early without Redis
	opt, err := redis.ParseURL(redisURL())
	require.NoError(t, err)
	proxy := startProxy(t, opt.Addr)
	opt.Addr = proxy.addr()
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })

	prefix := uniquePrefix(t)
	logs := &logBuffer{}
	// Short enough to test quickly, long enough that a loaded CI machine
	// does not mistake a slow reply for a dead connection.
	fast := func(o *options) { o.healthInterval = 100 * time.Millisecond; o.pongTimeout = 750 * time.Millisecond }
	b := newRedisBrokerOn(t, c, WithPrefix(prefix), fast, WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	other := newRedisBrokerOn(t, newRedisClient(t), WithPrefix(prefix))
	s := mustSubscribe(t, b, t.Context(), ConversationTopic(1))

	time.Sleep(350 * time.Millisecond) // idle for a few health intervals: pings must be answered
	require.NotContains(t, logs.String(), "connection lost", "an idle but healthy connection was replaced")
	mustPublish(t, other, ConversationTopic(1), Event{Kind: KindMessageAdded, MessageID: 1})
	require.Equal(t, 1, recv(t, s).MessageID)

	proxy.freeze()
	deadline := time.Now().Add(10 * time.Second)
	got := false
	for n := 2; !got && time.Now().Before(deadline); n++ {
		mustPublish(t, other, ConversationTopic(1), Event{Kind: KindMessageAdded, MessageID: n})
		select {
		case _, ok := <-s.C():
			require.True(t, ok, "subscription ended: %v", s.Err())
			got = true
		case <-time.After(100 * time.Millisecond):
		}
	}
	require.True(t, got, "silent connection was never replaced")
	assert.Contains(t, logs.String(), "connection lost")
	assert.Contains(t, logs.String(), "connection restored")
}

// TestRedisSubscribeWaitsForRedis slows the broker's link to Redis down, so
// that a SUBSCRIBE takes a while to reach the server, and publishes from a
// direct connection the moment Subscribe returns. Only a Subscribe that
// waits until Redis has processed the SUBSCRIBE gets the event.
func TestRedisSubscribeWaitsForRedis(t *testing.T) {
	newRedisClient(t) // skip early without Redis
	opt, err := redis.ParseURL(redisURL())
	require.NoError(t, err)
	proxy := startProxy(t, opt.Addr)
	opt.Addr = proxy.addr()
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	prefix := uniquePrefix(t)
	slow := newRedisBrokerOn(t, c, WithPrefix(prefix))
	direct := newRedisClient(t)

	const lag = 40 * time.Millisecond
	proxy.setDelay(lag)
	for i := range 3 {
		topic := ConversationTopic(i)
		start := time.Now()
		s := mustSubscribe(t, slow, t.Context(), topic)
		require.GreaterOrEqual(t, time.Since(start), lag, "Subscribe returned before its SUBSCRIBE could reach Redis")
		data, err := encode(Event{V: Version, Kind: KindMessageAdded, MessageID: i + 1, At: time.Now().UTC()})
		require.NoError(t, err)
		require.NoError(t, direct.Publish(t.Context(), prefix+topic, data).Err())
		require.Equal(t, i+1, recv(t, s).MessageID)
	}
}

// tcpProxy forwards connections to a target and can silence the ones open
// at a given moment.
type tcpProxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool // value: frozen
	closed bool
	delay  time.Duration // added to traffic from clients to the target
	client map[net.Conn]bool
}

func startProxy(t *testing.T, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]bool{}, client: map[net.Conn]bool{}}
	p.wg.Go(p.accept)
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = down.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = down.Close()
			_ = up.Close()
			return
		}
		p.conns[down], p.conns[up] = false, false
		p.client[down] = true
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(up, down) })
		p.wg.Go(func() { p.pipe(down, up) })
	}
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		frozen := p.conns[src]
		delay := 0 * time.Second
		if p.client[src] {
			delay = p.delay
		}
		p.mu.Unlock()
		if frozen {
			continue // swallow
		}
		time.Sleep(delay)
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// setDelay slows down everything clients send from now on.
func (p *tcpProxy) setDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// freeze silences every connection open now; new ones work normally.
func (p *tcpProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		p.conns[c] = true
	}
}

func (p *tcpProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

var _ io.Writer = (*logBuffer)(nil)
