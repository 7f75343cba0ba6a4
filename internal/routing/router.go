package routing

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/channelaccount"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/interaction"
	"github.com/parleyhq/parley/ent/offer"
	"github.com/parleyhq/parley/ent/queuemember"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/eventlog"
	"github.com/parleyhq/parley/internal/pubsub"
	qstats "github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/worker"
)

// DirectTimeout is how long a conversation of an account routed to one
// agent waits for that agent when the account has no fallback queue (with
// one, the fallback queue's offer timeout applies). Without a fallback it
// keeps waiting after that; the timeout only paces how often its offer is
// looked at again.
const DirectTimeout = 30 * time.Second

// Router offers conversations to agents and runs the offer timers.
type Router struct {
	client *ent.Client
	elog   *eventlog.Log
	// Online, when set, is the earliest last sign of life of an agent who
	// counts as online now (internal/presence): only online agents are
	// offered conversations.
	Online func() time.Time
	log    *slog.Logger
	clock  atomic.Pointer[func() time.Time]

	mu  sync.Mutex
	rnd *rand.Rand

	// Interval is how often the worker looks for due conversations.
	Interval time.Duration
	// SweepEvery is how often waiting conversations are made due again, as
	// a safety net under the event-driven wake-ups.
	SweepEvery time.Duration
	kick       chan struct{}
}

// New returns a router.
func New(client *ent.Client, elog *eventlog.Log, log *slog.Logger) *Router {
	r := &Router{
		client: client, elog: elog, log: log,
		rnd:      rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x9e3779b97f4a7c15)),
		Interval: time.Second, SweepEvery: 15 * time.Second,
		kick: worker.NewWake(),
	}
	r.SetClock(time.Now)
	return r
}

// SetClock replaces time.Now (tests of timeouts); safe while the worker runs.
func (r *Router) SetClock(now func() time.Time) { r.clock.Store(&now) }

func (r *Router) now() time.Time { return (*r.clock.Load())() }

// Now is the router's clock: the time its timers, and the owner-away
// releases of the conversations service, are judged by.
func (r *Router) Now() time.Time { return r.now() }

// Decision is the outcome of one routing turn, published after commit.
type Decision struct {
	ConversationID int
	// Offered are agents newly offered the conversation.
	Offered []int
	// Withdrawn are agents whose offer ended.
	Withdrawn []int
	// Lost are the withdrawn agents who no longer see the conversation at
	// all (not members of its queue): they are told it is gone.
	Lost []int
}

// Route decides the offers of conversation c inside tx. It withdraws the
// offers of a conversation that is owned, closed or archived, or whose
// contact is blocked.
func (r *Router) Route(ctx context.Context, tx *ent.Tx, c *ent.Conversation) (Decision, error) {
	now := r.now()
	d := Decision{ConversationID: c.ID}
	active, err := tx.Offer.Query().Where(offer.ConversationID(c.ID), offer.Active(true)).All(ctx)
	if err != nil {
		return d, err
	}
	if c.OwnerID == nil && c.Status == schematype.ConversationOpen && expired(active, now) {
		// A round timed out with nobody taking it.
		if err := qstats.Missed(ctx, tx, c, now); err != nil {
			return d, err
		}
	}
	if c.OwnerID != nil || c.Status != schematype.ConversationOpen || c.Archived || c.Channel == schematype.ChannelInternal ||
		c.ContactBlocked {
		return d, r.apply(ctx, tx, c, nil, active, nil, now, &d, false)
	}
	if c.QueueID == nil {
		return r.routeDirect(ctx, tx, c, active, now, &d)
	}
	q, err := tx.Queue.Get(ctx, *c.QueueID)
	if err != nil {
		return d, err
	}
	cands, members, err := r.candidates(ctx, tx, q, now)
	if err != nil {
		return d, err
	}
	roundStart := time.Time{}
	if c.RoundStartedAt != nil {
		roundStart = *c.RoundStartedAt
	}
	turn, err := r.turn(ctx, tx, c, q, roundStart, members)
	if err != nil {
		return d, err
	}
	r.mu.Lock()
	chosen, exhausted := Pick(q.Strategy, cands, turn, r.rnd)
	if exhausted {
		// Everyone eligible was tried: a new round starts from scratch.
		turn.Tried, turn.LastOffered = map[int]bool{}, 0
		chosen, _ = Pick(q.Strategy, cands, turn, r.rnd)
		roundStart = now
	}
	r.mu.Unlock()
	if c.RoundStartedAt == nil {
		roundStart = now
	}
	var routeAt *time.Time
	if len(chosen) > 0 {
		t := now.Add(time.Duration(q.OfferTimeoutSeconds) * time.Second)
		routeAt = &t
	}
	if err := r.apply(ctx, tx, c, chosen, active, routeAt, timeOr(routeAt, now), &d, true); err != nil {
		return d, err
	}
	for _, id := range d.Withdrawn {
		if !slices.Contains(members, id) {
			d.Lost = append(d.Lost, id)
		}
	}
	return d, tx.Conversation.UpdateOneID(c.ID).SetRoundStartedAt(roundStart).Exec(ctx)
}

// expired says whether any of the active offers timed out by now.
func expired(active []*ent.Offer, now time.Time) bool {
	for _, o := range active {
		if !o.ExpiresAt.After(now) {
			return true
		}
	}
	return false
}

func timeOr(t *time.Time, def time.Time) time.Time {
	if t == nil {
		return def
	}
	return *t
}

// apply makes the active offers exactly chosen, expiring at expires, and
// sets the conversation's next routing time.
func (r *Router) apply(ctx context.Context, tx *ent.Tx, c *ent.Conversation, chosen []int, active []*ent.Offer, routeAt *time.Time, expires time.Time, d *Decision, setRoute bool) error {
	now := r.now()
	want := map[int]bool{}
	for _, id := range chosen {
		want[id] = true
	}
	have := map[int]bool{}
	for _, o := range active {
		if want[o.AgentID] {
			have[o.AgentID] = true
			if err := tx.Offer.UpdateOneID(o.ID).SetExpiresAt(expires).Exec(ctx); err != nil {
				return err
			}
			continue
		}
		if err := tx.Offer.UpdateOneID(o.ID).SetActive(false).Exec(ctx); err != nil {
			return err
		}
		d.Withdrawn = append(d.Withdrawn, o.AgentID)
	}
	for _, id := range chosen {
		if have[id] {
			continue
		}
		if err := tx.Offer.Create().SetConversationID(c.ID).SetAgentID(id).SetOfferedAt(now).SetExpiresAt(expires).Exec(ctx); err != nil {
			return err
		}
		ic := tx.Interaction.Create().SetAt(now).SetKind(schematype.InteractionOffered).SetChannel(c.Channel).
			SetConversationID(c.ID).SetAgentID(id).SetNillableContactID(c.ContactID).SetNillableQueueID(c.QueueID)
		if err := ic.Exec(ctx); err != nil {
			return err
		}
		d.Offered = append(d.Offered, id)
	}
	u := tx.Conversation.UpdateOneID(c.ID)
	if setRoute && routeAt != nil {
		u.SetRouteAt(*routeAt)
	} else {
		u.ClearRouteAt()
	}
	return u.Exec(ctx)
}

// candidates returns the queue's members who may be offered a conversation
// now (active, AVAILABLE, below their maximum of open conversations), and
// all members by priority.
func (r *Router) candidates(ctx context.Context, tx *ent.Tx, q *ent.Queue, now time.Time) ([]Candidate, []int, error) {
	ms, err := tx.QueueMember.Query().Where(queuemember.QueueID(q.ID)).
		Order(ent.Asc(queuemember.FieldPriority), ent.Asc(queuemember.FieldAgentID)).WithAgent().All(ctx)
	if err != nil {
		return nil, nil, err
	}
	members := make([]int, 0, len(ms))
	var ids []int
	for _, m := range ms {
		members = append(members, m.AgentID)
		if a := m.Edges.Agent; r.eligible(a) {
			ids = append(ids, a.ID)
		}
	}
	if len(ids) == 0 {
		return nil, members, nil
	}
	load, err := openLoad(ctx, tx, ids)
	if err != nil {
		return nil, nil, err
	}
	dayStart := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	stats, err := dayStats(ctx, tx, q.Strategy, ids, dayStart, now)
	if err != nil {
		return nil, nil, err
	}
	var out []Candidate
	for _, m := range ms {
		a := m.Edges.Agent
		if !r.eligible(a) || load[a.ID] >= a.MaxConcurrentChats {
			continue
		}
		c := Candidate{AgentID: a.ID, Priority: m.Priority}
		for _, t := range []*time.Time{a.LastAssignedAt, a.StatusChangedAt} {
			if t != nil && t.Unix() > c.IdleSinceUnix {
				c.IdleSinceUnix = t.Unix()
			}
		}
		c.HandledSecondsToday = stats.handled[a.ID]
		c.AnsweredToday = stats.answered[a.ID]
		out = append(out, c)
	}
	return out, members, nil
}

// eligible says whether a may be offered conversations at all: active,
// AVAILABLE and online.
func (r *Router) eligible(a *ent.Agent) bool {
	if a == nil || !a.Active || a.Status != schematype.StatusAvailable {
		return false
	}
	return r.Online == nil || (a.LastSeenAt != nil && a.LastSeenAt.After(r.Online()))
}

// Withdraw moves on the live offers of agents who went offline: their
// conversations are routed again now (their status stays what it was).
func (r *Router) Withdraw(ctx context.Context, agentIDs []int) error {
	_, err := r.client.Conversation.Update().
		Where(conversation.HasOffersWith(offer.AgentIDIn(agentIDs...), offer.Active(true))).
		SetRouteAt(r.now()).Save(ctx)
	if err != nil {
		return err
	}
	r.Kick()
	return nil
}

// openLoad counts each agent's open, unarchived owned conversations.
func openLoad(ctx context.Context, tx *ent.Tx, ids []int) (map[int]int, error) {
	var rows []struct {
		OwnerID int `json:"owner_id"`
		Count   int `json:"count"`
	}
	err := tx.Conversation.Query().
		Where(conversation.OwnerIDIn(ids...), conversation.StatusEQ(schematype.ConversationOpen), conversation.Archived(false)).
		GroupBy(conversation.FieldOwnerID).Aggregate(ent.Count()).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("agent load: %w", err)
	}
	out := map[int]int{}
	for _, r := range rows {
		out[r.OwnerID] = r.Count
	}
	return out, nil
}

type stats struct {
	handled  map[int]int64
	answered map[int]int
}

// dayStats computes today's handling time and answered conversations, only
// for the strategies that use them.
func dayStats(ctx context.Context, tx *ent.Tx, s schematype.PollingStrategy, ids []int, dayStart, now time.Time) (stats, error) {
	st := stats{handled: map[int]int64{}, answered: map[int]int{}}
	switch s {
	case schematype.StrategyLeastHandlingTime:
		convs, err := tx.Conversation.Query().
			Where(conversation.OwnerIDIn(ids...), conversation.TakenAtGTE(dayStart)).
			Select(conversation.FieldOwnerID, conversation.FieldTakenAt, conversation.FieldClosedAt).All(ctx)
		if err != nil {
			return st, err
		}
		for _, c := range convs {
			end := now
			if c.ClosedAt != nil {
				end = *c.ClosedAt
			}
			st.handled[*c.OwnerID] += int64(end.Sub(*c.TakenAt).Seconds())
		}
	case schematype.StrategyFewestAnswered:
		var rows []struct {
			AgentID int `json:"agent_id"`
			Count   int `json:"count"`
		}
		err := tx.Interaction.Query().
			Where(interaction.AgentIDIn(ids...), interaction.KindEQ(schematype.InteractionTaken), interaction.AtGTE(dayStart)).
			GroupBy(interaction.FieldAgentID).Aggregate(ent.Count()).Scan(ctx, &rows)
		if err != nil {
			return st, err
		}
		for _, r := range rows {
			st.answered[r.AgentID] = r.Count
		}
	}
	return st, nil
}

// turn gathers who was offered the conversation in this round and who last
// took a conversation of the queue.
func (r *Router) turn(ctx context.Context, tx *ent.Tx, c *ent.Conversation, q *ent.Queue, roundStart time.Time, members []int) (Turn, error) {
	t := Turn{Tried: map[int]bool{}, Members: members}
	offers, err := tx.Offer.Query().
		Where(offer.ConversationID(c.ID), offer.OfferedAtGTE(roundStart)).
		Order(ent.Asc(offer.FieldOfferedAt), ent.Asc(offer.FieldID)).All(ctx)
	if err != nil {
		return t, err
	}
	for _, o := range offers {
		t.Tried[o.AgentID] = true
		t.LastOffered = o.AgentID
	}
	if q.Strategy == schematype.StrategyRoundRobin {
		last, err := tx.Conversation.Query().
			Where(conversation.QueueID(q.ID), conversation.OwnerIDNotNil(), conversation.TakenAtNotNil()).
			Order(ent.Desc(conversation.FieldTakenAt)).First(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return t, err
		}
		if last != nil {
			t.LastTaker = *last.OwnerID
		}
	}
	return t, nil
}

// Record announces a routing decision in the transaction that made it
// (published once it commits): newly offered agents see the conversation
// appear; agents whose offer ended are told it changed (queue members still
// see it in their QUEUE view), and those of them who no longer see it at all
// that it is gone.
func (r *Router) Record(after *store.After, d Decision) {
	for _, id := range d.Offered {
		r.elog.Emit(after, pubsub.Event{Kind: pubsub.KindConversationCreated, ConversationID: d.ConversationID, AgentIDs: []int{id}}, pubsub.AgentTopic(id))
	}
	for _, id := range d.Withdrawn {
		r.elog.Emit(after, pubsub.Event{Kind: pubsub.KindConversationUpdated, ConversationID: d.ConversationID, AgentIDs: []int{id}}, pubsub.AgentTopic(id))
	}
	if len(d.Lost) > 0 {
		topics := []string{pubsub.ConversationTopic(d.ConversationID)}
		for _, id := range d.Lost {
			topics = append(topics, pubsub.AgentTopic(id))
		}
		r.elog.Emit(after, pubsub.Event{Kind: pubsub.KindConversationRemoved, ConversationID: d.ConversationID, AgentIDs: d.Lost}, topics...)
	}
}

// RouteDue routes every conversation whose routing time has come, oldest
// first, and returns how many it routed. Each turn is claimed with a
// conditional update inside its transaction, so concurrent instances never
// route the same conversation twice.
func (r *Router) RouteDue(ctx context.Context) (int, error) {
	now := r.now()
	due, err := r.client.Conversation.Query().
		Where(conversation.RouteAtLTE(now)).
		Order(ent.Asc(conversation.FieldCreatedAt), ent.Asc(conversation.FieldID)).
		Limit(100).IDs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range due {
		var d Decision
		claimed := false
		err := store.Tx(ctx, r.client, func(tx *ent.Tx, after *store.After) error {
			k, err := tx.Conversation.Update().
				Where(conversation.ID(id), conversation.RouteAtLTE(now)).
				ClearRouteAt().Save(ctx)
			if err != nil || k == 0 {
				return err
			}
			claimed = true
			c, err := tx.Conversation.Get(ctx, id)
			if err != nil {
				return err
			}
			d, err = r.Route(ctx, tx, c)
			r.Record(after, d)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("route conversation %d: %w", id, err)
		}
		if claimed {
			n++
		}
	}
	return n, nil
}

// WakeWaiting makes every waiting conversation (unowned, open, in a queue
// or waiting for the one agent of its account, offered to nobody) due now, and nudges the worker. Called when an agent
// becomes AVAILABLE or frees a slot, and by the periodic sweep.
func (r *Router) WakeWaiting(ctx context.Context) error {
	_, err := r.client.Conversation.Update().
		Where(
			// Nothing due, or a deadline pending with nobody offered (a
			// direct conversation waiting for its agent until it falls back).
			conversation.Or(conversation.RouteAtIsNil(), conversation.Not(conversation.HasOffersWith(offer.Active(true)))),
			conversation.OwnerIDIsNil(),
			conversation.Or(conversation.QueueIDNotNil(), conversation.HasChannelAccountWith(channelaccount.AgentIDNotNil())),
			conversation.StatusEQ(schematype.ConversationOpen), conversation.Archived(false),
			conversation.ChannelNEQ(schematype.ChannelInternal), conversation.ContactBlocked(false),
		).
		SetRouteAt(r.now()).Save(ctx)
	if err != nil {
		return err
	}
	r.Kick()
	return nil
}

// Kick makes the worker run a pass now.
func (r *Router) Kick() { worker.Kick(r.kick) }

// Run routes due conversations until ctx ends: every Interval, when
// kicked, and with a sweep of waiting conversations every SweepEvery.
func (r *Router) Run(ctx context.Context) {
	worker.RunAll(ctx,
		worker.Loop{Name: "routing", Every: r.Interval, Wake: r.kick, Log: r.log,
			Pass: worker.Once(func(ctx context.Context) error { _, err := r.RouteDue(ctx); return err })},
		worker.Loop{Name: "routing sweep", Every: r.SweepEvery, Log: r.log, Pass: worker.Once(r.WakeWaiting)},
	)
}
