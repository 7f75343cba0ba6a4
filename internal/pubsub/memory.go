package pubsub

import (
	"context"
	"sync/atomic"
)

// memoryBroker delivers straight to the local hub. It has no network and no
// goroutine of its own.
type memoryBroker struct {
	hub    *Hub
	closed atomic.Bool
}

// NewInMemory returns a Broker that only reaches subscribers in this
// process: for a single-instance deployment, development and tests. It
// honours [WithBuffer], [WithLogger] and [WithActiveGauge].
func NewInMemory(opts ...Option) Broker {
	return &memoryBroker{hub: newHub(buildOptions(opts))}
}

func (b *memoryBroker) Publish(ctx context.Context, topic string, ev Event) error {
	if b.closed.Load() {
		return ErrClosed
	}
	if topic == "" {
		return errNoTopic
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ev, err := prepare(ev)
	if err != nil {
		return err
	}
	b.hub.Publish(topic, ev)
	return nil
}

func (b *memoryBroker) PublishBatch(ctx context.Context, msgs []Message) error {
	for _, m := range msgs {
		if err := b.Publish(ctx, m.Topic, m.Event); err != nil {
			return err
		}
	}
	return nil
}

func (b *memoryBroker) Subscribe(ctx context.Context, topic string) (*Subscription, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	return b.hub.subscribe(ctx, topic, nil)
}

func (b *memoryBroker) Ping(ctx context.Context) error {
	if b.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

func (b *memoryBroker) Close() error {
	if b.closed.CompareAndSwap(false, true) {
		b.hub.Close()
	}
	return nil
}
