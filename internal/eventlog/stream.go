package eventlog

import (
	"context"
	"errors"

	"github.com/parleyhq/parley/internal/pubsub"
)

// streamBuffer is how many events a stream holds for its reader.
const streamBuffer = 64

// stream is one subscriber's ordered view of a topic.
type stream struct {
	l     *Log
	topic string
	out   chan pubsub.Event
	kick  chan struct{} // the poll saw new events of the topic
	last  int64         // seq of the last event delivered (or skipped as before the start)
}

func (st *stream) nudge() {
	select {
	case st.kick <- struct{}{}:
	default:
	}
}

// Subscribe streams topic's events, in seq order, each once: with a cursor,
// every event after it first (from the log), then live ones; without, live
// ones from now on. A cursor the log cannot serve (malformed, unknown, or
// older than the retention) yields one [KindResync] event first, whose Seq
// is where the stream goes on from. Events without a seq (never logged)
// pass through as they come, with the stream's position as their Prev. The channel closes when ctx ends or the broker
// closes.
func (l *Log) Subscribe(ctx context.Context, topic, cursor string) (<-chan pubsub.Event, error) {
	sub, err := l.broker.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	st := &stream{l: l, topic: topic, out: make(chan pubsub.Event, streamBuffer), kick: make(chan struct{}, 1)}
	resync := false
	if cursor == "" {
		st.last, err = l.topicHead(ctx, topic)
	} else {
		head, pruned, herr := l.Head(ctx)
		err = herr
		if err == nil {
			seq, ok := ParseCursor(cursor)
			if !ok || seq > head || seq < pruned {
				resync, st.last = true, head
			} else {
				st.last = seq
			}
		}
	}
	if err != nil {
		sub.Close()
		return nil, err
	}
	l.mu.Lock()
	if l.streams[topic] == nil {
		l.streams[topic] = map[*stream]struct{}{}
	}
	l.streams[topic][st] = struct{}{}
	l.mu.Unlock()
	go st.run(ctx, sub, resync)
	return st.out, nil
}

func (st *stream) run(ctx context.Context, sub *pubsub.Subscription, resync bool) {
	defer func() {
		sub.Close()
		st.l.mu.Lock()
		delete(st.l.streams[st.topic], st)
		if len(st.l.streams[st.topic]) == 0 {
			delete(st.l.streams, st.topic)
		}
		st.l.mu.Unlock()
		close(st.out)
	}()
	if resync && !st.send(ctx, pubsub.Event{V: pubsub.Version, Kind: KindResync, Seq: st.last}) {
		return
	}
	if !st.fill(ctx) {
		return
	}
	for {
		select {
		case ev, ok := <-sub.C():
			if !ok {
				if ctx.Err() != nil || errors.Is(sub.Err(), pubsub.ErrClosed) {
					return
				}
				// Dropped for falling behind: subscribe again and read what
				// was missed from the log.
				var err error
				if sub, err = st.l.broker.Subscribe(ctx, st.topic); err != nil {
					st.l.log.Warn("event stream resubscribe", "topic", st.topic, "err", err)
					sub = nil
					return
				}
				if !st.fill(ctx) {
					return
				}
				continue
			}
			if !st.live(ctx, ev) {
				return
			}
		case <-st.kick:
			if !st.fill(ctx) {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// live delivers a published event, first reading from the log whatever it
// shows was missed.
func (st *stream) live(ctx context.Context, ev pubsub.Event) bool {
	switch {
	case ev.Seq == 0:
		// Not logged (a typing indicator): it carries the stream's
		// position as Prev, so that whoever resumes from it misses nothing.
		ev.Prev = st.last
		return st.send(ctx, ev)
	case ev.Seq <= st.last:
		return true // already delivered, or from before the start
	case ev.Prev > st.last:
		if !st.fill(ctx) {
			return false
		}
		if ev.Seq <= st.last {
			return true
		}
	}
	st.last = ev.Seq
	return st.send(ctx, ev)
}

// fill delivers every logged event of the topic after st.last.
func (st *stream) fill(ctx context.Context) bool {
	for {
		evs, err := st.l.read(ctx, st.topic, st.last)
		if err != nil {
			if ctx.Err() == nil {
				st.l.log.Warn("event stream read", "topic", st.topic, "err", err)
			}
			return ctx.Err() == nil // try again at the next event or poll
		}
		for _, ev := range evs {
			st.last = ev.Seq
			if !st.send(ctx, ev) {
				return false
			}
		}
		if len(evs) < replayPage {
			return true
		}
	}
}

func (st *stream) send(ctx context.Context, ev pubsub.Event) bool {
	select {
	case st.out <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}
