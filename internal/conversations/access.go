package conversations

import (
	"context"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/offer"
	"github.com/parleyhq/parley/ent/queue"
	"github.com/parleyhq/parley/ent/queuemember"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/auth"
)

// Access is what a caller may do with one conversation. This file is the
// one place that answers "who may see it" and "who may reply":
//
//   - An INTERNAL chat: its participants see it and write in it.
//   - An owned conversation: only its owner sees it and replies.
//   - An unowned conversation: the agents it is offered to, and the members
//     of its queue, see it; any of them may claim it by replying or taking
//     it, and the first to do so becomes the owner.
//   - ADMIN and SYSTEM_OWNER see every conversation and may transfer it,
//     but reply only when they own it (they may take an unowned one).
//
// Anyone else gets NOT_FOUND, exactly as for a conversation that does not
// exist, in queries, mutations and subscriptions alike.
type Access struct {
	// View: the caller may see the conversation and its messages.
	View bool
	// Reply: the caller may write in it (for an unowned one, by claiming it).
	Reply bool
	// Manage: the caller may transfer, close, archive or delete it.
	Manage bool
	// viewers is who sees the conversation, kept so that an action that
	// changes who sees it need not compute it again.
	viewers *Viewers
}

// Viewers is who can see a conversation, computed once per event and shared
// by every subscriber of an instance.
type Viewers struct {
	conv *ent.Conversation
	// agents who may reply (owner, participants, or offered agents and
	// queue members of an unowned conversation).
	repliers map[int]bool
}

// viewersOf computes who sees c, with the given client (a transaction's or
// the root one).
func viewersOf(ctx context.Context, client *ent.Client, c *ent.Conversation) (*Viewers, error) {
	v := &Viewers{conv: c, repliers: map[int]bool{}}
	switch {
	case c.Channel == schematype.ChannelInternal:
		ids, err := client.Conversation.QueryParticipants(c).IDs(ctx)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			v.repliers[id] = true
		}
	case c.OwnerID != nil:
		v.repliers[*c.OwnerID] = true
	default:
		offered, err := client.Offer.Query().
			Where(offer.ConversationID(c.ID), offer.Active(true)).
			Select(offer.FieldAgentID).Ints(ctx)
		if err != nil {
			return nil, err
		}
		for _, id := range offered {
			v.repliers[id] = true
		}
		if c.QueueID != nil {
			members, err := client.QueueMember.Query().
				Where(queuemember.QueueID(*c.QueueID)).
				Select(queuemember.FieldAgentID).Ints(ctx)
			if err != nil {
				return nil, err
			}
			for _, id := range members {
				v.repliers[id] = true
			}
		}
	}
	return v, nil
}

// For says what principal p may do.
func (v *Viewers) For(p auth.Principal) Access {
	if !p.IsAgent() {
		return Access{}
	}
	if v.repliers[p.AgentID] {
		return Access{View: true, Reply: true, Manage: true}
	}
	if p.IsAdmin() {
		return Access{View: true, Manage: true}
	}
	return Access{}
}

// Agents lists the agents who may reply (and so receive inbox events).
func (v *Viewers) Agents() []int {
	out := make([]int, 0, len(v.repliers))
	for id := range v.repliers {
		out = append(out, id)
	}
	return out
}

// access loads the caller's rights on c.
func (s *Service) access(ctx context.Context, client *ent.Client, p auth.Principal, c *ent.Conversation) (Access, error) {
	v, err := viewersOf(ctx, client, c)
	if err != nil {
		return Access{}, err
	}
	a := v.For(p)
	a.viewers = v
	return a, nil
}

// visiblePredicate is the SQL form of the same rule, for listing: what the
// agent may see (ignoring the admin's see-all, which the ALL view covers).
func visiblePredicate(agentID int) func(*ent.ConversationQuery) {
	return func(q *ent.ConversationQuery) {
		q.Where(conversation.Or(
			conversation.OwnerID(agentID),
			conversation.And(
				conversation.ChannelEQ(schematype.ChannelInternal),
				conversation.HasParticipantsWith(agent.ID(agentID)),
			),
			conversation.And(
				conversation.OwnerIDIsNil(),
				conversation.ChannelNEQ(schematype.ChannelInternal),
				conversation.Or(
					conversation.HasOffersWith(offer.AgentID(agentID), offer.Active(true)),
					conversation.HasQueueWith(queue.HasMembersWith(queuemember.AgentID(agentID))),
				),
			),
		))
	}
}
