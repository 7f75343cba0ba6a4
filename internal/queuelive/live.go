// Package queuelive computes a queue's live figures (how many wait now, how
// long the longest has waited, how many members are online and available)
// and streams them: to wallboards (the queueEvents subscription, through
// [Hub]) and to Prometheus (gauges computed at scrape time from [Service.All]).
//
// The figures are read from the database each time, never counted up from
// events: every instance agrees, and a lost event costs a late update, not
// a wrong figure. Events only say when to look again ([Nudges]).
package queuelive

import (
	"context"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/queue"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/stats"
)

// Live is one queue's live figures at At.
type Live struct {
	Queue *ent.Queue
	// WaitingNow counts the open, unowned, not archived conversations of
	// the queue whose contact is not blocked.
	WaitingNow int
	// OldestWaitingSince is when the longest-waiting of them entered the
	// queue (queued_at); zero when none waits.
	OldestWaitingSince time.Time
	// AgentsOnline counts the queue's active members who are online
	// (internal/presence: a sign of life within the grace); AgentsAvailable
	// those of them whose status is AVAILABLE.
	AgentsAvailable, AgentsOnline int
	// At is when the figures were read.
	At time.Time
}

// LongestWaitSeconds is how long the longest-waiting conversation has
// waited at now, in whole seconds (0 when none waits).
func (l Live) LongestWaitSeconds(now time.Time) int {
	if l.OldestWaitingSince.IsZero() || now.Before(l.OldestWaitingSince) {
		return 0
	}
	return int(now.Sub(l.OldestWaitingSince) / time.Second)
}

// Same reports whether l and o show the same figures. The longest wait
// grows with the clock alone; it counts as changed only when another
// conversation becomes the longest-waiting one (a client counts up from
// OldestWaitingSince between events).
func (l Live) Same(o Live) bool {
	return l.WaitingNow == o.WaitingNow && l.OldestWaitingSince.Equal(o.OldestWaitingSince) &&
		l.AgentsAvailable == o.AgentsAvailable && l.AgentsOnline == o.AgentsOnline &&
		l.Queue.Name == o.Queue.Name
}

// Service reads the live figures, by the statistics' rules
// (stats.Waiting, stats.Service.LiveOf), with the queues they belong to.
type Service struct {
	client *ent.Client
	stats  *stats.Service
	now    func() time.Time
}

// New returns the service reading figures through st.
func New(client *ent.Client, st *stats.Service) *Service {
	return &Service{client: client, stats: st, now: time.Now}
}

// Figures returns queueID's live figures (NOT_FOUND when it does not
// exist). It checks no role: callers do ([Hub.Subscribe]).
func (s *Service) Figures(ctx context.Context, queueID int) (Live, error) {
	out, err := s.compute(ctx, []int{queueID})
	if err != nil {
		return Live{}, err
	}
	if len(out) == 0 {
		return Live{}, apperr.NotFoundf("queue")
	}
	return out[0], nil
}

// All returns every queue's live figures, by name, in five queries
// whatever the number of queues (the Prometheus gauges).
func (s *Service) All(ctx context.Context) ([]Live, error) { return s.compute(ctx, nil) }

// compute reads the figures of the queues ids (every queue when nil).
func (s *Service) compute(ctx context.Context, ids []int) ([]Live, error) {
	now := s.now()
	qq := s.client.Queue.Query().Order(ent.Asc(queue.FieldName))
	if ids != nil {
		qq.Where(queue.IDIn(ids...))
	}
	queues, err := qq.All(ctx)
	if err != nil || len(queues) == 0 {
		return nil, err
	}
	ids = make([]int, len(queues))
	for i, q := range queues {
		ids[i] = q.ID
	}
	figs, err := s.stats.LiveOf(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Live, len(queues))
	for i, q := range queues {
		f := figs[q.ID]
		out[i] = Live{Queue: q, At: now, WaitingNow: f.WaitingNow,
			AgentsAvailable: f.AgentsAvailable, AgentsOnline: f.AgentsOnline}
		if f.OldestWaitingSince != nil {
			out[i].OldestWaitingSince = *f.OldestWaitingSince
		}
	}
	return out, nil
}
