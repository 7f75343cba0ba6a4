package pubsub

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

const (
	fanoutSubscribers = 5000
	fanoutWindow      = 64 // publishes between catch-ups; well under the buffer
)

// BenchmarkFanout measures one in-memory publish to 5000 subscribers of one
// topic; ns/op is per publish, ns/delivery per subscriber reached.
//
//   - readers: each subscription is drained by its own goroutine, as a
//     GraphQL subscription would be, so the cost includes waking the
//     readers. The publisher waits for them to catch up every 64 events, so
//     nobody is dropped and the figure is for full delivery.
//   - publish-only: nobody reads during the timed part (buffers are emptied
//     with the timer stopped), which isolates the hub's own cost.
func BenchmarkFanout(b *testing.B) {
	b.Run("readers", benchFanoutReaders)
	b.Run("publish-only", benchFanoutPublishOnly)
}

func benchFanoutReaders(b *testing.B) {
	br := NewInMemory(WithBuffer(4*fanoutWindow), WithLogger(quietLogger()))
	defer func() { _ = br.Close() }()
	ctx := context.Background()
	topic := ConversationTopic(1)

	var received atomic.Int64
	var wg sync.WaitGroup
	for range fanoutSubscribers {
		s, err := br.Subscribe(ctx, topic)
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for range s.C() {
				received.Add(1)
			}
		})
	}
	ev := Event{Kind: KindMessageAdded, ConversationID: 1, MessageID: 1}
	catchUp := func(published int) {
		for received.Load() < int64(published)*fanoutSubscribers {
			runtime.Gosched()
		}
	}

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := br.Publish(ctx, topic, ev); err != nil {
			b.Fatal(err)
		}
		if (i+1)%fanoutWindow == 0 {
			catchUp(i + 1)
		}
	}
	catchUp(b.N)
	b.StopTimer()
	checkNoneDropped(b, br, topic)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fanoutSubscribers), "ns/delivery")
	_ = br.Close()
	wg.Wait()
}

func benchFanoutPublishOnly(b *testing.B) {
	br := NewInMemory(WithBuffer(fanoutWindow), WithLogger(quietLogger()))
	defer func() { _ = br.Close() }()
	ctx := context.Background()
	topic := ConversationTopic(1)
	subs := make([]*Subscription, fanoutSubscribers)
	for i := range subs {
		s, err := br.Subscribe(ctx, topic)
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = s
	}
	ev := Event{Kind: KindMessageAdded, ConversationID: 1, MessageID: 1}

	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := br.Publish(ctx, topic, ev); err != nil {
			b.Fatal(err)
		}
		if (i+1)%fanoutWindow == 0 {
			b.StopTimer()
			for _, s := range subs {
				for len(s.C()) > 0 {
					<-s.C()
				}
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	checkNoneDropped(b, br, topic)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*fanoutSubscribers), "ns/delivery")
}

func checkNoneDropped(b *testing.B, br Broker, topic string) {
	if n := hubOf(br).Subscribers(topic); n != fanoutSubscribers {
		b.Fatalf("%d subscribers were dropped", fanoutSubscribers-n)
	}
}

// BenchmarkRedisRoundTrip measures publish-to-receive latency through a real
// Redis, one event at a time: PUBLISH, the server, the broker's reader,
// decoding and the hub. It is skipped without Redis.
func BenchmarkRedisRoundTrip(b *testing.B) {
	c := newRedisClient(b)
	br, err := NewRedis(context.Background(), c, WithPrefix(uniquePrefix(b)), WithLogger(quietLogger()))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = br.Close() }()
	ctx := context.Background()
	topic := ConversationTopic(1)
	s, err := br.Subscribe(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	ev := Event{Kind: KindMessageAdded, ConversationID: 1, MessageID: 1}

	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := br.Publish(ctx, topic, ev); err != nil {
			b.Fatal(err)
		}
		if _, ok := <-s.C(); !ok {
			b.Fatalf("subscription ended: %v", s.Err())
		}
	}
}
