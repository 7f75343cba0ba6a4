package pubsub

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestNoGoroutineLeaks opens and ends many subscriptions in every way they
// can end, closes the broker, and checks that nothing is left running.
func TestNoGoroutineLeaks(t *testing.T) {
	t.Run("InMemory", func(t *testing.T) {
		ignore := goleak.IgnoreCurrent()
		b := NewInMemory(WithLogger(quietLogger()), WithBuffer(1))
		churn(t, b)
		require.NoError(t, b.Close())
		goleak.VerifyNone(t, ignore)
	})
	t.Run("Redis", func(t *testing.T) {
		newRedisClient(t) // skip early without Redis
		ignore := goleak.IgnoreCurrent()
		opt, err := redis.ParseURL(redisURL())
		require.NoError(t, err)
		c := redis.NewClient(opt)
		b, err := NewRedis(t.Context(), c, WithPrefix(uniquePrefix(t)), WithLogger(quietLogger()), WithBuffer(1))
		require.NoError(t, err)
		churn(t, b)
		require.NoError(t, b.Close())
		// Checked with the client still open: the broker must clean up
		// after itself, not rely on the client's Close tearing its
		// connection down. The go-redis pool runs no background goroutines.
		goleak.VerifyNone(t, ignore)
		require.NoError(t, c.Close())
	})
}

// churn opens 1000 subscriptions over 50 topics and ends them by Close,
// by context, by being slow, and by leaving the rest to the broker's Close.
func churn(t *testing.T, b Broker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subs := make([]*Subscription, 0, 1000)
	for i := range 1000 {
		sctx := context.Background()
		if i%4 == 1 {
			sctx = ctx
		}
		subs = append(subs, mustSubscribe(t, b, sctx, ConversationTopic(i%50)))
	}
	for i, s := range subs {
		if i%4 == 0 {
			s.Close()
		}
	}
	cancel()
	// Buffer 1 and nobody reading: a few events drop the slow ones on these topics.
	for range 2 {
		for topic := range 10 {
			mustPublish(t, b, ConversationTopic(topic), Event{Kind: KindMessageAdded})
		}
	}
}
