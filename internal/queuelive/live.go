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
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/interaction"
	"github.com/parleyhq/parley/ent/predicate"
	"github.com/parleyhq/parley/ent/queue"
	"github.com/parleyhq/parley/ent/queuemember"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
)

// Live is one queue's live figures at At.
type Live struct {
	Queue *ent.Queue
	// WaitingNow counts the open, unowned, not archived conversations of
	// the queue whose contact is not blocked.
	WaitingNow int
	// OldestWaitingSince is when the longest-waiting of them entered the
	// queue (see [entryKinds]); zero when none waits.
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

// entryKinds are the interactions that put an unowned conversation into its
// queue: created there, released back to it (by its owner, the owner-away
// rule, a deactivation, a direct account's fallback), transferred to it
// (also a deleted queue's conversations moving on), unarchived. A waiting
// conversation entered its queue at the latest of them, or when it was
// created. (round_started_at is no substitute: a new round of offers
// restarts it while the conversation goes on waiting.)
var entryKinds = []schematype.InteractionKind{
	schematype.InteractionCreated, schematype.InteractionReleased,
	schematype.InteractionTransferred, schematype.InteractionUnarchived,
}

// Service reads the live figures.
type Service struct {
	client *ent.Client
	// onlineSince is the earliest sign of life of an agent who is online
	// now (presence.Service.OnlineSince).
	onlineSince func() time.Time
	now         func() time.Time
}

// New returns the service; onlineSince is presence.Service.OnlineSince.
func New(client *ent.Client, onlineSince func() time.Time) *Service {
	return &Service{client: client, onlineSince: onlineSince, now: time.Now}
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

// waiting is the rule of a waiting conversation, of the given queues (all
// queues when ids is nil).
func waiting(ids []int) []predicate.Conversation {
	ps := []predicate.Conversation{
		conversation.StatusEQ(schematype.ConversationOpen), conversation.OwnerIDIsNil(),
		conversation.Archived(false), conversation.ContactBlocked(false), conversation.QueueIDNotNil(),
	}
	if ids != nil {
		ps = append(ps, conversation.QueueIDIn(ids...))
	}
	return ps
}

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
	if ids == nil {
		ids = make([]int, len(queues))
		for i, q := range queues {
			ids[i] = q.ID
		}
	}

	convs, err := s.client.Conversation.Query().Where(waiting(ids)...).
		Select(conversation.FieldID, conversation.FieldQueueID, conversation.FieldCreatedAt).All(ctx)
	if err != nil {
		return nil, err
	}
	entered := map[int]time.Time{}
	if len(convs) > 0 {
		var rows []struct {
			ConversationID int       `json:"conversation_id"`
			At             time.Time `json:"at"`
		}
		err := s.client.Interaction.Query().
			Where(interaction.KindIn(entryKinds...), interaction.HasConversationWith(waiting(ids)...)).
			Select(interaction.FieldConversationID, interaction.FieldAt).Scan(ctx, &rows)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if r.At.After(entered[r.ConversationID]) {
				entered[r.ConversationID] = r.At
			}
		}
	}

	byID := make(map[int]*Live, len(queues))
	out := make([]Live, len(queues))
	for i, q := range queues {
		out[i] = Live{Queue: q, At: now}
		byID[q.ID] = &out[i]
	}
	for _, c := range convs {
		l := byID[*c.QueueID]
		if l == nil {
			continue
		}
		since := c.CreatedAt
		if e, ok := entered[c.ID]; ok && e.After(since) {
			since = e
		}
		l.WaitingNow++
		if l.OldestWaitingSince.IsZero() || since.Before(l.OldestWaitingSince) {
			l.OldestWaitingSince = since
		}
	}

	members, err := s.client.QueueMember.Query().
		Where(queuemember.QueueIDIn(ids...),
			queuemember.HasAgentWith(agent.Active(true), agent.LastSeenAtGT(s.onlineSince()))).
		WithAgent(func(q *ent.AgentQuery) { q.Select(agent.FieldStatus) }).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		l := byID[m.QueueID]
		if l == nil || m.Edges.Agent == nil {
			continue
		}
		l.AgentsOnline++
		if m.Edges.Agent.Status == schematype.StatusAvailable {
			l.AgentsAvailable++
		}
	}
	for i := range out {
		out[i].OldestWaitingSince = out[i].OldestWaitingSince.UTC()
	}
	return out, nil
}
