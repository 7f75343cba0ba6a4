package stats

import (
	"context"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/predicate"
	"github.com/parleyhq/parley/ent/queuemember"
	"github.com/parleyhq/parley/ent/schema/schematype"
)

// LiveFigures are a queue's figures now, whatever the period: what
// queueStats, the queueEvents streams and the Prometheus gauges show.
type LiveFigures struct {
	// WaitingNow: conversations waiting in the queue ([Waiting]).
	WaitingNow int
	// LongestWaitSeconds: how long the oldest of them has waited (0 when
	// none), at the time the figures were read.
	LongestWaitSeconds int
	// OldestWaitingSince: when that one entered the queue (queued_at, or
	// its creation for a conversation older than that column); nil when
	// none waits. A wallboard counts the longest wait up from it.
	OldestWaitingSince *time.Time
	// AgentsAvailable: active members online and AVAILABLE.
	AgentsAvailable int
	// AgentsOnline: active members online, whatever their status.
	AgentsOnline int
}

// Waiting is what "waiting in a queue" means, for every figure that counts
// it: open, unowned, unarchived, a customer's (not an internal chat, not a
// blocked contact's), with a message (a live chat whose visitor has not
// written yet waits for nobody), in one of queueIDs (any queue when none
// is given).
func Waiting(queueIDs ...int) predicate.Conversation {
	q := conversation.QueueIDNotNil()
	if len(queueIDs) > 0 {
		q = conversation.QueueIDIn(queueIDs...)
	}
	return conversation.And(
		q, conversation.OwnerIDIsNil(),
		conversation.StatusEQ(schematype.ConversationOpen), conversation.Archived(false),
		conversation.ChannelNEQ(schematype.ChannelInternal), conversation.ContactBlocked(false),
		conversation.LastMessageIDNotNil(),
	)
}

// Live returns queueID's live figures (no access check: callers check
// [Service.Authorize] or [Supervising]).
func (s *Service) Live(ctx context.Context, queueID int) (LiveFigures, error) {
	m, err := s.LiveOf(ctx, []int{queueID})
	return m[queueID], err
}

// LiveOf returns the live figures of the queues queueIDs, in two queries
// whatever their number; a queue with nothing waiting and nobody online
// has zero figures.
func (s *Service) LiveOf(ctx context.Context, queueIDs []int) (map[int]LiveFigures, error) {
	out := make(map[int]LiveFigures, len(queueIDs))
	if len(queueIDs) == 0 {
		return out, nil
	}
	now := s.now()
	// Waiting conversations are few (they are what agents work through),
	// so their two timestamps are read rather than aggregated: the oldest
	// entry time needs a COALESCE that ent's aggregates do not express
	// alike on both databases.
	convs, err := s.client.Conversation.Query().Where(Waiting(queueIDs...)).
		Select(conversation.FieldQueueID, conversation.FieldQueuedAt, conversation.FieldCreatedAt).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range convs {
		f := out[*c.QueueID]
		since := c.CreatedAt
		if c.QueuedAt != nil {
			since = *c.QueuedAt
		}
		f.WaitingNow++
		if f.OldestWaitingSince == nil || since.Before(*f.OldestWaitingSince) {
			t := since.UTC()
			f.OldestWaitingSince = &t
		}
		out[*c.QueueID] = f
	}
	online := []predicate.Agent{agent.Active(true)}
	if s.OnlineSince != nil {
		online = append(online, agent.LastSeenAtGT(s.OnlineSince()))
	}
	members, err := s.client.QueueMember.Query().
		Where(queuemember.QueueIDIn(queueIDs...), queuemember.HasAgentWith(online...)).
		WithAgent(func(q *ent.AgentQuery) { q.Select(agent.FieldStatus) }).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		if m.Edges.Agent == nil {
			continue
		}
		f := out[m.QueueID]
		f.AgentsOnline++
		if m.Edges.Agent.Status == schematype.StatusAvailable {
			f.AgentsAvailable++
		}
		out[m.QueueID] = f
	}
	for id, f := range out {
		if f.OldestWaitingSince != nil {
			f.LongestWaitSeconds = max(0, int(now.Sub(*f.OldestWaitingSince)/time.Second))
			out[id] = f
		}
	}
	return out, nil
}
