package queuelive

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/stats"
)

// Hub defaults.
const (
	// DefaultMinInterval spaces one queue's computations: at most four a
	// second, however many nudges arrive; a burst ends with one more
	// computation, so the last update carries the final figures.
	DefaultMinInterval = 250 * time.Millisecond
	// DefaultPeriodEvery bounds how often one queue's period figures (the
	// day so far) are computed again.
	DefaultPeriodEvery = 10 * time.Second
	// DefaultRefresh is how often the figures are read again without a
	// nudge: a lost nudge, a change nothing announces (an agent's sign of
	// life lapsing before the presence sweep flips it), the day's turn.
	DefaultRefresh = 5 * time.Second
	// SubscriberBuffer is how many updates a subscriber may leave unread
	// before it is dropped (its stream completes).
	SubscriberBuffer = 8
	// passTimeout bounds one computation of a queue's figures.
	passTimeout = 10 * time.Second
)

// PeriodFunc gives a queue's figures over [from, to) (queueStats): the
// period part of a stream's updates.
type PeriodFunc[T any] func(ctx context.Context, queueID int, from, to time.Time) (T, error)

// RenderFunc builds the payload of an update from the live figures, the
// latest period figures (T's zero value while there are none) and the time
// the longest wait is counted at. It must not change period, which later
// updates reuse.
type RenderFunc[T any] func(l Live, period T, now time.Time) T

// Hub streams queues' live figures to local subscribers. One computation
// per queue serves every subscriber of that queue on this instance, its
// payload built once; a queue nobody watches costs nothing, and while
// nobody watches any, the hub holds no broker subscription.
//
// Nudges ([Topic]) from every instance wake the queues' computations; each
// runs at most every MinInterval, and a subscriber gets an update when
// the figures changed (and a first one when it subscribes). Subscribers
// are authorised again at every computation ([stats.Supervising]): one
// who may no longer see the queue has its stream completed, as has a
// subscriber whose buffer is full, and every subscriber of a deleted queue.
type Hub[T any] struct {
	live   *Service
	client *ent.Client
	broker pubsub.Broker
	log    *slog.Logger
	render RenderFunc[T]

	// Period, when set, fills the period part of the updates with the
	// figures of the current UTC day so far, computed at most every
	// PeriodEvery per queue. It is called without a caller in its context
	// (one computation serves every subscriber, each authorised here):
	// it must not check roles. Set it before the first Subscribe (app
	// wiring); nil leaves those fields zero.
	Period PeriodFunc[T]
	// MinInterval, PeriodEvery and Refresh: see the Default* constants.
	// Set before the first Subscribe.
	MinInterval, PeriodEvery, Refresh time.Duration

	mu       sync.Mutex
	feeds    map[int]*feed[T]
	listener context.CancelFunc // set while feeds is not empty
}

// NewHub returns a hub computing with live, authorising with client,
// listening for nudges on broker, building payloads with render.
func NewHub[T any](live *Service, client *ent.Client, broker pubsub.Broker, log *slog.Logger, render RenderFunc[T]) *Hub[T] {
	return &Hub[T]{
		live: live, client: client, broker: broker, log: log, render: render,
		MinInterval: DefaultMinInterval, PeriodEvery: DefaultPeriodEvery, Refresh: DefaultRefresh,
		feeds: map[int]*feed[T]{},
	}
}

// feed is one queue's computation and its local subscribers.
type feed[T any] struct {
	h      *Hub[T]
	id     int
	cancel context.CancelFunc
	kick   chan struct{} // capacity 1: "compute again"

	// Guarded by h.mu.
	subs     map[*subscriber[T]]struct{}
	has      bool // live and period are set
	live     Live
	period   T
	periodAt time.Time
}

type subscriber[T any] struct {
	agentID int
	ch      chan T
	primed  bool // got its first update
	stop    func() bool
	feed    *feed[T]
}

func (f *feed[T]) nudge() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Subscribe streams queueID's figures to the caller, who must be allowed
// to supervise it ([stats.Supervisor]: NOT_FOUND, FORBIDDEN): an update
// at once, then one whenever they change. The stream completes when ctx
// ends, when the caller may no longer see the queue, when the queue is
// deleted, or when the caller does not keep up.
func (h *Hub[T]) Subscribe(ctx context.Context, queueID int) (<-chan T, error) {
	p, err := stats.Supervisor(ctx, h.client, queueID)
	if err != nil {
		return nil, err
	}
	s := &subscriber[T]{agentID: p.AgentID, ch: make(chan T, SubscriberBuffer)}
	var started context.CancelFunc // a listener this call started
	for {
		h.mu.Lock()
		if h.listener != nil || started != nil {
			if h.listener == nil {
				h.listener, started = started, nil
			}
			f, cached := h.join(queueID, s)
			s.stop = context.AfterFunc(ctx, func() {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.drop(s)
			})
			h.mu.Unlock()
			if started != nil {
				started() // another call's listener came first
			}
			if cached {
				f.nudge() // the joiner's first update may be a little old: look again
			}
			break
		}
		h.mu.Unlock()
		// Nobody listens to nudges yet: subscribe first (outside the lock:
		// it waits for the broker's confirmation), so that no change made
		// after this subscription started goes unheard.
		if started, err = h.startListener(); err != nil {
			return nil, err
		}
	}
	return s.ch, nil
}

// join adds s to queueID's feed, starting the feed if it is the first, and
// gives s the latest figures when the feed has some (cached). Called with
// h.mu held.
func (h *Hub[T]) join(queueID int, s *subscriber[T]) (f *feed[T], cached bool) {
	f = h.feeds[queueID]
	if f == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f = &feed[T]{h: h, id: queueID, cancel: cancel, kick: make(chan struct{}, 1), subs: map[*subscriber[T]]struct{}{}}
		h.feeds[queueID] = f
		go f.run(ctx)
	}
	f.subs[s] = struct{}{}
	s.feed = f
	if f.has {
		s.ch <- h.render(f.live, f.period, time.Now()) // the buffer is empty
		s.primed = true
	}
	return f, f.has
}

// drop ends s's stream (once: only the hub closes it), the feed with its
// last subscriber, and the listener with the last feed. Called with h.mu
// held.
func (h *Hub[T]) drop(s *subscriber[T]) {
	f := s.feed
	if _, ok := f.subs[s]; !ok {
		return
	}
	delete(f.subs, s)
	close(s.ch)
	if s.stop != nil {
		s.stop()
	}
	if len(f.subs) > 0 {
		return
	}
	f.cancel()
	if h.feeds[f.id] == f {
		delete(h.feeds, f.id)
	}
	if len(h.feeds) == 0 && h.listener != nil {
		h.listener()
		h.listener = nil
	}
}

// startListener subscribes to nudges and wakes every feed at each one,
// until the returned func is called.
func (h *Hub[T]) startListener() (context.CancelFunc, error) {
	ctx, cancel := context.WithCancel(context.Background())
	sub, err := h.broker.Subscribe(ctx, Topic)
	if err != nil {
		cancel()
		return nil, err
	}
	go func() {
		for {
			for range sub.C() {
				h.nudgeAll()
			}
			sub.Close()
			if ctx.Err() != nil || errors.Is(sub.Err(), pubsub.ErrClosed) {
				return
			}
			// Dropped for falling behind (nudges are tiny; it takes a
			// stuck machine): look again, and listen again.
			h.nudgeAll()
			if sub, err = h.broker.Subscribe(ctx, Topic); err != nil {
				if ctx.Err() == nil {
					h.log.Warn("queue figures: listen to nudges", "err", err)
				}
				return // the feeds' refresh goes on
			}
		}
	}()
	return cancel, nil
}

func (h *Hub[T]) nudgeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range h.feeds {
		f.nudge()
	}
}

// run computes the feed's figures whenever nudged (at most every
// MinInterval), when its period figures are due, and every Refresh, until
// ctx ends.
func (f *feed[T]) run(ctx context.Context) {
	h := f.h
	refresh := time.NewTicker(h.Refresh)
	defer refresh.Stop()
	var last time.Time
	dirty, periodDirty := true, true
	for {
		if dirty {
			if wait := h.MinInterval - time.Since(last); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
			select { // what arrived until now, this pass sees
			case <-f.kick:
				periodDirty = true
			default:
			}
			last = time.Now()
			if f.pass(ctx, periodDirty) {
				periodDirty = false
			}
			dirty = false
		}
		var periodDue <-chan time.Time
		var pt *time.Timer
		if periodDirty && h.Period != nil {
			pt = time.NewTimer(h.PeriodEvery - time.Since(f.periodAtLocked()))
			periodDue = pt.C
		}
		select {
		case <-ctx.Done():
		case <-f.kick:
			dirty, periodDirty = true, true
		case <-periodDue:
			dirty = true
		case <-refresh.C:
			dirty = true
			periodDirty = periodDirty || f.dayTurned()
		}
		if pt != nil {
			pt.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func (f *feed[T]) periodAtLocked() time.Time {
	f.h.mu.Lock()
	defer f.h.mu.Unlock()
	return f.periodAt
}

// dayTurned reports whether the period figures are of an earlier UTC day.
func (f *feed[T]) dayTurned() bool {
	at := f.periodAtLocked()
	return !at.IsZero() && !dayStart(time.Now()).Equal(dayStart(at))
}

func dayStart(t time.Time) time.Time {
	return t.UTC().Truncate(24 * time.Hour)
}

// pass computes the figures once (the period figures too when wantPeriod
// and they are due), re-authorises the subscribers, and delivers an update
// to each when the figures changed or it has none yet. It reports whether
// the period figures were computed.
func (f *feed[T]) pass(ctx context.Context, wantPeriod bool) (periodDone bool) {
	h := f.h
	ctx, cancel := context.WithTimeout(ctx, passTimeout)
	defer cancel()
	l, err := h.live.Figures(ctx, f.id)
	if apperr.CodeOf(err) == apperr.NotFound {
		h.mu.Lock()
		for s := range f.subs {
			h.drop(s) // the queue is gone
		}
		h.mu.Unlock()
		return false
	}
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("queue figures", "queue", f.id, "err", err)
		}
		return false
	}
	h.mu.Lock()
	periodAt := f.periodAt
	ids := make([]int, 0, len(f.subs))
	checked := make(map[int]bool, len(f.subs))
	for s := range f.subs {
		if !checked[s.agentID] {
			checked[s.agentID] = true
			ids = append(ids, s.agentID)
		}
	}
	h.mu.Unlock()

	var period T
	if wantPeriod && h.Period != nil && time.Since(periodAt) >= h.PeriodEvery {
		now := time.Now()
		if period, err = h.Period(ctx, f.id, dayStart(now), now); err != nil {
			if ctx.Err() == nil {
				h.log.Warn("queue period figures", "queue", f.id, "err", err)
			}
			h.mu.Lock()
			f.periodAt = now // try again in PeriodEvery, not at once
			h.mu.Unlock()
		} else {
			periodDone = true
		}
	}
	allowed, err := stats.Supervising(ctx, h.client, f.id, ids)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Warn("queue figures: authorise", "queue", f.id, "err", err)
		}
		return periodDone
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	changed := !f.has || !l.Same(f.live) || periodDone
	f.live, f.has = l, true
	if periodDone {
		f.period, f.periodAt = period, time.Now()
	}
	var payload T
	built := false
	for s := range f.subs {
		if checked[s.agentID] && !allowed[s.agentID] {
			h.drop(s) // demoted, removed from the queue, deactivated
			continue
		}
		if !changed && s.primed {
			continue
		}
		if !built {
			payload, built = h.render(f.live, f.period, time.Now()), true
		}
		select {
		case s.ch <- payload:
			s.primed = true
		default:
			h.drop(s) // does not keep up
		}
	}
	return periodDone
}
