// Package presence decides who is online: an agent with a live websocket,
// or with API activity within a grace period (default 2 minutes).
//
// The database holds each agent's last sign of life (agents.last_seen_at),
// so every instance agrees: a request touches it (at most every
// TouchEvery per agent and instance), and each instance refreshes it for
// the agents whose websockets it holds. An agent is online while that is
// within Grace. The online flag beside it records what was last announced,
// so that exactly one instance announces each change (a conditional
// update) on the "presence" topic of the event log, and routing hears of
// an agent who went away: their live offers are withdrawn and moved on.
// Their status stays what they chose.
package presence

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/predicate"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/eventlog"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/worker"
)

// Defaults.
const (
	DefaultGrace = 2 * time.Minute
	// TouchEvery bounds how often one instance writes an agent's last
	// sign of life; it is also how often open sockets are refreshed (a
	// third of the grace when that is shorter).
	TouchEvery = 20 * time.Second
	// SweepEvery is how often agents past the grace are looked for.
	SweepEvery = time.Second
)

// Topic is where presence changes are announced.
const Topic = "presence"

// KindChanged is the event of a status or online change of AgentIDs[0].
const KindChanged = "presence.changed"

// Service tracks presence.
type Service struct {
	client *ent.Client
	elog   *eventlog.Log
	log    *slog.Logger
	// Grace is how long an agent stays online after their last sign of
	// life. Set before Run.
	Grace time.Duration
	// Away is called with the agents who went offline, after the change
	// committed (routing withdraws their offers).
	Away func(ctx context.Context, agentIDs []int)
	now  func() time.Time

	mu      sync.Mutex
	touched map[int]time.Time // last write per agent, on this instance
	sockets map[int]int       // open websockets per agent, on this instance
}

// New returns the presence service.
func New(client *ent.Client, elog *eventlog.Log, log *slog.Logger) *Service {
	return &Service{
		client: client, elog: elog, log: log, Grace: DefaultGrace, now: time.Now,
		touched: map[int]time.Time{}, sockets: map[int]int{},
	}
}

func (s *Service) touchEvery() time.Duration { return min(TouchEvery, s.Grace/3) }

// Online reports whether a is online by its last sign of life.
func (s *Service) Online(a *ent.Agent) bool {
	return a != nil && a.LastSeenAt != nil && s.now().Sub(*a.LastSeenAt) < s.Grace
}

// OnlineSince is the earliest last sign of life that still counts as
// online now, for queries (routing's candidates).
func (s *Service) OnlineSince() time.Time { return s.now().Add(-s.Grace) }

// Touch records a sign of life of agentID (a request), writing it at most
// every TouchEvery from this instance.
func (s *Service) Touch(ctx context.Context, agentID int) {
	now := s.now()
	s.mu.Lock()
	if last, ok := s.touched[agentID]; ok && now.Sub(last) < s.touchEvery() {
		s.mu.Unlock()
		return
	}
	s.touched[agentID] = now
	s.mu.Unlock()
	if err := s.seen(ctx, []int{agentID}, now); err != nil && ctx.Err() == nil {
		s.log.Warn("presence touch", "agent", agentID, "err", err)
	}
}

// Connected records an open websocket of agentID; call the returned func
// when it closes.
func (s *Service) Connected(ctx context.Context, agentID int) (closed func()) {
	s.mu.Lock()
	s.sockets[agentID]++
	s.touched[agentID] = s.now()
	s.mu.Unlock()
	if err := s.seen(ctx, []int{agentID}, s.now()); err != nil {
		s.log.Warn("presence connect", "agent", agentID, "err", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			if s.sockets[agentID]--; s.sockets[agentID] <= 0 {
				delete(s.sockets, agentID)
			}
			s.mu.Unlock()
		})
	}
}

// seen writes the sign of life of ids and announces those who were
// offline.
func (s *Service) seen(ctx context.Context, ids []int, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	if err := s.client.Agent.Update().Where(agent.IDIn(ids...)).SetLastSeenAt(now).Exec(ctx); err != nil {
		return err
	}
	_, err := s.flip(ctx, true, agent.IDIn(ids...), agent.Online(false))
	return err
}

// flip sets the online flag of the agents matching where, each change
// once across instances (a conditional update per agent), recording an
// event for each, and returns the agents it changed.
func (s *Service) flip(ctx context.Context, online bool, where ...predicate.Agent) ([]int, error) {
	ids, err := s.client.Agent.Query().Where(where...).IDs(ctx)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	var changed []int
	for _, id := range ids {
		err := store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
			n, err := tx.Agent.Update().Where(append([]predicate.Agent{agent.ID(id)}, where...)...).SetOnline(online).Save(ctx)
			if err != nil || n == 0 {
				return err
			}
			changed = append(changed, id)
			s.elog.Emit(after, pubsub.Event{Kind: KindChanged, AgentIDs: []int{id}}, Topic)
			return nil
		})
		if err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// StatusChanged records that agentID chose another status, for the
// presence stream.
func (s *Service) StatusChanged(after *store.After, agentID int) {
	s.elog.Emit(after, pubsub.Event{Kind: KindChanged, AgentIDs: []int{agentID}}, Topic)
}

// Run refreshes the sign of life of the agents with sockets on this
// instance, and announces agents past the grace as offline (and tells
// routing), until ctx ends.
func (s *Service) Run(ctx context.Context) {
	worker.RunAll(ctx,
		worker.Loop{Name: "presence refresh", Every: s.touchEvery(), Log: s.log, Pass: worker.Once(s.refresh)},
		worker.Loop{Name: "presence sweep", Every: SweepEvery, Log: s.log, Pass: worker.Once(s.Sweep)},
	)
}

// refresh writes the sign of life of the agents whose websockets this
// instance holds.
func (s *Service) refresh(ctx context.Context) error {
	s.mu.Lock()
	ids := make([]int, 0, len(s.sockets))
	now := s.now()
	for id := range s.sockets {
		ids = append(ids, id)
		s.touched[id] = now
	}
	s.mu.Unlock()
	return s.seen(ctx, ids, now)
}

// Sweep announces the agents whose last sign of life is past the grace as
// offline and hands them to Away.
func (s *Service) Sweep(ctx context.Context) error {
	gone, err := s.flip(ctx, false, agent.Online(true), agent.Or(agent.LastSeenAtIsNil(), agent.LastSeenAtLT(s.OnlineSince())))
	if len(gone) > 0 && s.Away != nil {
		s.Away(ctx, gone)
	}
	return err
}

// Event is one presence change as a subscriber receives it: the agent as it
// is now (status, and online through [Service.Online]).
type Event struct {
	Agent *ent.Agent
	// Cursor is the change's place in the event log.
	Cursor string
}

// Subscribe streams every agent's status and online changes to an agent
// (colleagues and supervisors see who is there).
func (s *Service) Subscribe(ctx context.Context) (<-chan *Event, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	in, err := s.elog.Subscribe(ctx, Topic, "")
	if err != nil {
		return nil, err
	}
	out := make(chan *Event, 16)
	go func() {
		defer close(out)
		for ev := range in {
			if ev.Kind != KindChanged || len(ev.AgentIDs) == 0 {
				continue
			}
			a, err := s.client.Agent.Get(ctx, ev.AgentIDs[0])
			if err != nil {
				if !ent.IsNotFound(err) && ctx.Err() == nil {
					s.log.Warn("presence event", "agent", ev.AgentIDs[0], "err", err)
				}
				continue
			}
			select {
			case out <- &Event{Agent: a, Cursor: eventlog.Cursor(ev.Seq)}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Changed announces a change of agentID that happened outside a
// transaction of this package (a status chosen).
func (s *Service) Changed(ctx context.Context, agentID int) error {
	return store.Tx(ctx, s.client, func(_ *ent.Tx, after *store.After) error {
		s.StatusChanged(after, agentID)
		return nil
	})
}
