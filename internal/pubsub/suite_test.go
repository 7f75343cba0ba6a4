package pubsub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The same behavioural suite runs against both brokers: whatever the GraphQL
// layer relies on must hold whether instances share Redis or not.

func TestInMemoryBroker(t *testing.T) { runSuite(t, newMemoryBroker) }

func TestRedisBroker(t *testing.T) {
	newRedisClient(t) // skip the whole suite at once when Redis is absent
	runSuite(t, newRedisBroker)
}

func runSuite(t *testing.T, newBroker factory) {
	t.Run("DeliversToEverySubscriberOfTheTopicOnly", func(t *testing.T) { testDelivery(t, newBroker) })
	t.Run("FillsEnvelopeDefaults", func(t *testing.T) { testEnvelopeDefaults(t, newBroker) })
	t.Run("PreservesOrderPerPublisher", func(t *testing.T) { testOrdering(t, newBroker) })
	t.Run("DropsSlowSubscriberOnly", func(t *testing.T) { testSlowSubscriber(t, newBroker) })
	t.Run("ContextEndClosesWithContextError", func(t *testing.T) { testContextEnd(t, newBroker) })
	t.Run("CloseEndsAllSubscriptionsWithErrClosed", func(t *testing.T) { testBrokerClose(t, newBroker) })
	t.Run("SubscriptionCloseIsIdempotent", func(t *testing.T) { testSubscriptionClose(t, newBroker) })
	t.Run("ActiveGaugeReturnsToZero", func(t *testing.T) { testGauge(t, newBroker) })
	t.Run("RejectsInvalidInput", func(t *testing.T) { testInvalidInput(t, newBroker) })
	t.Run("ConcurrentChurn", func(t *testing.T) { testConcurrentChurn(t, newBroker) })
}

func testDelivery(t *testing.T, newBroker factory) {
	b := newBroker(t)
	ctx := t.Context()
	a1 := mustSubscribe(t, b, ctx, ConversationTopic(1))
	a2 := mustSubscribe(t, b, ctx, ConversationTopic(1))
	other := mustSubscribe(t, b, ctx, ConversationTopic(2))
	agent := mustSubscribe(t, b, ctx, AgentTopic(1))

	at := time.Date(2025, 3, 4, 5, 6, 7, 8000, time.UTC)
	want := Event{V: Version, Kind: KindMessageAdded, ConversationID: 1, MessageID: 99, AgentIDs: []int{3, 4}, At: at}
	mustPublish(t, b, ConversationTopic(1), want)
	for _, s := range []*Subscription{a1, a2} {
		got := recv(t, s)
		assert.Equal(t, want.Kind, got.Kind)
		assert.Equal(t, want.ConversationID, got.ConversationID)
		assert.Equal(t, want.MessageID, got.MessageID)
		assert.Equal(t, want.AgentIDs, got.AgentIDs)
		assert.Equal(t, Version, got.V)
		assert.True(t, got.At.Equal(at), "At = %v, want %v", got.At, at)
	}

	// Each broker delivers in publish order across topics on one instance, so
	// if the conv:1 event had leaked to the others they would see it before
	// their own marker.
	mustPublish(t, b, ConversationTopic(2), Event{Kind: KindConversationUpdated, ConversationID: 2})
	mustPublish(t, b, AgentTopic(1), Event{Kind: KindConversationCreated, ConversationID: 5})
	assert.Equal(t, 2, recv(t, other).ConversationID)
	assert.Equal(t, 5, recv(t, agent).ConversationID)
	expectNothing(t, a1, 50*time.Millisecond)
	expectNothing(t, a2, 0)
	expectNothing(t, other, 0)
}

func testEnvelopeDefaults(t *testing.T, newBroker factory) {
	b := newBroker(t)
	s := mustSubscribe(t, b, t.Context(), VisitorTopic(8))
	ids := []int{1, 2, 3}
	before := time.Now()
	mustPublish(t, b, VisitorTopic(8), Event{Kind: KindMessageAdded, ConversationID: 8, AgentIDs: ids})
	ids[0] = 100 // the publisher reusing its slice must not change what was sent
	got := recv(t, s)
	assert.Equal(t, Version, got.V)
	assert.Equal(t, []int{1, 2, 3}, got.AgentIDs)
	assert.Equal(t, time.UTC, got.At.Location())
	assert.False(t, got.At.Before(before.Add(-time.Second)) || got.At.After(time.Now().Add(time.Second)),
		"At = %v, not around now", got.At)
}

func testOrdering(t *testing.T, newBroker factory) {
	const perPublisher = 300
	b := newBroker(t, WithBuffer(2*perPublisher+10))
	topic := ConversationTopic(7)
	s := mustSubscribe(t, b, t.Context(), topic)

	// Two publishers interleave; each one's events must arrive in its order.
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for p := 1; p <= 2; p++ {
		wg.Go(func() {
			for i := 1; i <= perPublisher; i++ {
				if err := b.Publish(context.Background(), topic, Event{Kind: KindMessageAdded, ConversationID: p, MessageID: i}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish: %v", err)
	}
	last := map[int]int{}
	for range 2 * perPublisher {
		ev := recv(t, s)
		if ev.MessageID != last[ev.ConversationID]+1 {
			t.Fatalf("publisher %d: got message %d after %d", ev.ConversationID, ev.MessageID, last[ev.ConversationID])
		}
		last[ev.ConversationID] = ev.MessageID
	}
	assert.Equal(t, map[int]int{1: perPublisher, 2: perPublisher}, last)
	require.NoError(t, s.Err())
}

func testSlowSubscriber(t *testing.T, newBroker factory) {
	const buffer = 4
	b := newBroker(t, WithBuffer(buffer))
	topic := ConversationTopic(3)
	slow := mustSubscribe(t, b, t.Context(), topic) // never reads until the end
	fast := mustSubscribe(t, b, t.Context(), topic)

	// Lockstep with the fast reader, so only the slow one can overflow.
	const n = 20
	for i := 1; i <= n; i++ {
		mustPublish(t, b, topic, Event{Kind: KindMessageAdded, ConversationID: 3, MessageID: i})
		require.Equal(t, i, recv(t, fast).MessageID, "fast subscriber missed an event")
	}
	require.NoError(t, fast.Err(), "fast subscriber must stay open")

	got := drainUntilClosed(t, slow)
	require.ErrorIs(t, slow.Err(), ErrSlowConsumer)
	require.Len(t, got, buffer, "slow subscriber keeps exactly what fit in its buffer")
	for i, ev := range got {
		assert.Equal(t, i+1, ev.MessageID, "no delivery past the first missed event")
	}

	mustPublish(t, b, topic, Event{Kind: KindMessageAdded, MessageID: n + 1})
	assert.Equal(t, n+1, recv(t, fast).MessageID)
}

func testContextEnd(t *testing.T, newBroker factory) {
	b := newBroker(t)
	topic := ConversationTopic(4)
	ctx, cancel := context.WithCancel(t.Context())
	cancelled := mustSubscribe(t, b, ctx, topic)
	dctx, dcancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer dcancel()
	expiring := mustSubscribe(t, b, dctx, topic)
	survivor := mustSubscribe(t, b, t.Context(), topic)
	require.NoError(t, cancelled.Err(), "Err must be nil while open")

	cancel()
	drainUntilClosed(t, cancelled)
	require.ErrorIs(t, cancelled.Err(), context.Canceled)
	drainUntilClosed(t, expiring)
	require.ErrorIs(t, expiring.Err(), context.DeadlineExceeded)

	mustPublish(t, b, topic, Event{Kind: KindMessageAdded, MessageID: 1})
	assert.Equal(t, 1, recv(t, survivor).MessageID)
}

func testBrokerClose(t *testing.T, newBroker factory) {
	b := newBroker(t)
	var subs []*Subscription
	for i := range 5 {
		subs = append(subs, mustSubscribe(t, b, t.Context(), ConversationTopic(i%2)))
	}
	require.NoError(t, b.Ping(t.Context()))
	require.NoError(t, b.Close())
	for _, s := range subs {
		drainUntilClosed(t, s)
		require.ErrorIs(t, s.Err(), ErrClosed)
	}
	_, err := b.Subscribe(t.Context(), ConversationTopic(1))
	require.ErrorIs(t, err, ErrClosed)
	require.ErrorIs(t, b.Publish(t.Context(), ConversationTopic(1), Event{Kind: KindMessageAdded}), ErrClosed)
	require.ErrorIs(t, b.Ping(t.Context()), ErrClosed)
	require.NoError(t, b.Close(), "second Close")
}

func testSubscriptionClose(t *testing.T, newBroker factory) {
	g := &gauge{}
	b := newBroker(t, WithActiveGauge(g.add))
	topic := ConversationTopic(5)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s := mustSubscribe(t, b, ctx, topic)
	other := mustSubscribe(t, b, t.Context(), topic)
	require.Equal(t, 2, g.get())

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(s.Close)
	}
	wg.Wait()
	s.Close()
	cancel() // ending the context afterwards changes nothing
	drainUntilClosed(t, s)
	require.ErrorIs(t, s.Err(), ErrClosed)
	time.Sleep(20 * time.Millisecond) // let a (wrong) AfterFunc run if it were still registered
	require.ErrorIs(t, s.Err(), ErrClosed)
	require.Equal(t, 1, g.get(), "gauge decremented exactly once")

	mustPublish(t, b, topic, Event{Kind: KindMessageAdded, MessageID: 9})
	assert.Equal(t, 9, recv(t, other).MessageID)
	g.check(t)
}

func testGauge(t *testing.T, newBroker factory) {
	g := &gauge{}
	b := newBroker(t, WithActiveGauge(g.add), WithBuffer(2))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var closers, cancelled, rest []*Subscription
	for i := range 3 {
		closers = append(closers, mustSubscribe(t, b, t.Context(), ConversationTopic(i)))
		cancelled = append(cancelled, mustSubscribe(t, b, ctx, ConversationTopic(i)))
		rest = append(rest, mustSubscribe(t, b, t.Context(), AgentTopic(i)))
	}
	slow := mustSubscribe(t, b, t.Context(), VisitorTopic(1))
	require.Equal(t, 10, g.get())

	for _, s := range closers {
		s.Close()
	}
	require.Equal(t, 7, g.get(), "Close decrements synchronously")
	cancel()
	eventually(t, "cancelled subscriptions leave the gauge", func() bool { return g.get() == 4 })
	for i := 1; i <= 3; i++ { // buffer 2: the third event drops it
		mustPublish(t, b, VisitorTopic(1), Event{Kind: KindMessageAdded, MessageID: i})
	}
	// Redis delivers asynchronously: do not read before the drop happened.
	eventually(t, "slow subscriber dropped", func() bool { return slow.Err() != nil })
	drainUntilClosed(t, slow)
	require.ErrorIs(t, slow.Err(), ErrSlowConsumer)
	require.Equal(t, 3, g.get())
	require.NoError(t, b.Close())
	require.Equal(t, 0, g.get(), "gauge back to zero after Close")
	for _, s := range rest {
		require.ErrorIs(t, s.Err(), ErrClosed)
	}
	g.check(t)
}

func testInvalidInput(t *testing.T, newBroker factory) {
	b := newBroker(t)
	ctx := t.Context()
	require.ErrorIs(t, b.Publish(ctx, "conv:1", Event{V: Version + 1, Kind: KindMessageAdded}), ErrUnsupportedVersion)
	require.Error(t, b.Publish(ctx, "conv:1", Event{}), "empty kind")
	require.Error(t, b.Publish(ctx, "", Event{Kind: KindMessageAdded}), "empty topic")
	_, err := b.Subscribe(ctx, "")
	require.Error(t, err, "empty topic")
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = b.Subscribe(done, "conv:1")
	require.ErrorIs(t, err, context.Canceled)
}

// testConcurrentChurn subscribes, publishes and unsubscribes from many
// goroutines at once (run it with -race). Every subscriber must get the
// marker published right after its Subscribe returned, even while other
// goroutines are dropping the last reference to the same topic.
func testConcurrentChurn(t *testing.T, newBroker factory) {
	g := &gauge{}
	b := newBroker(t, WithActiveGauge(g.add), WithBuffer(1024))
	const workers, rounds = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				topic := ConversationTopic(r % 3) // few topics: lots of first/last transitions
				ctx, cancel := context.WithCancel(context.Background())
				s, err := b.Subscribe(ctx, topic)
				if err != nil {
					cancel()
					errs <- err
					return
				}
				marker := w*1000 + r + 1
				if err := b.Publish(context.Background(), topic, Event{Kind: KindMessageAdded, MessageID: marker}); err != nil {
					cancel()
					errs <- err
					return
				}
				if err := awaitMarker(s, marker); err != nil {
					cancel()
					errs <- fmt.Errorf("worker %d round %d: %w", w, r, err)
					return
				}
				// Still subscribed a moment later, after other workers had
				// time to release the topic concurrently.
				time.Sleep(time.Millisecond)
				marker = -marker
				if err := b.Publish(context.Background(), topic, Event{Kind: KindMessageAdded, MessageID: marker}); err != nil {
					cancel()
					errs <- err
					return
				}
				if err := awaitMarker(s, marker); err != nil {
					cancel()
					errs <- fmt.Errorf("worker %d round %d, second marker: %w", w, r, err)
					return
				}
				if r%2 == 0 {
					s.Close()
				}
				cancel()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	eventually(t, "all churned subscriptions closed", func() bool { return g.get() == 0 })
	g.check(t)
	eventually(t, "no topic bookkeeping left behind", func() bool {
		return hubTopics(hubOf(b)) == 0 && redisTopics(b) == 0
	})

	s := mustSubscribe(t, b, t.Context(), ConversationTopic(1))
	mustPublish(t, b, ConversationTopic(1), Event{Kind: KindMessageAdded, MessageID: 1 << 20})
	require.Equal(t, 1<<20, recv(t, s).MessageID)
}

func awaitMarker(s *Subscription, marker int) error {
	timeout := time.After(waitFor)
	for {
		select {
		case ev, ok := <-s.C():
			if !ok {
				return fmt.Errorf("subscription ended: %w", s.Err())
			}
			if ev.MessageID == marker {
				return nil
			}
		case <-timeout:
			return errors.New("marker not received")
		}
	}
}
