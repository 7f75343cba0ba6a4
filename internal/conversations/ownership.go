package conversations

// Ownership: claiming an unowned conversation (Take, or the first reply) and
// handing it to another agent (Transfer).

import (
	"context"
	"strconv"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/offer"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/store"
)

// claim makes agentID the owner of the unowned, open conversation c in one
// conditional update: of concurrent claims exactly one changes a row, and
// the others get CONFLICT. Claiming a conversation one already owns is a
// no-op. before is who saw c until now; claim returns those who lost sight
// of it, and updates c to what it wrote.
func (s *Service) claim(ctx context.Context, tx *ent.Tx, c *ent.Conversation, agentID int, before *Viewers) (lost []int, err error) {
	if c.OwnerID != nil && *c.OwnerID == agentID {
		return nil, nil
	}
	now := s.now()
	u := tx.Conversation.Update().
		Where(conversation.ID(c.ID), conversation.OwnerIDIsNil(), conversation.StatusEQ(schematype.ConversationOpen)).
		SetOwnerID(agentID).SetTakenAt(now).ClearRouteAt().SetUpdatedAt(now)
	stats.Claimed(u.Mutation(), c, agentID, now)
	n, err := u.Save(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		cur, err := tx.Conversation.Get(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		if cur.OwnerID != nil && *cur.OwnerID == agentID {
			*c = *cur
			return nil, nil
		}
		if cur.OwnerID == nil {
			return nil, apperr.Invalid("id", "the conversation is closed")
		}
		return nil, apperr.New(apperr.Conflict, "another agent took this conversation")
	}
	if _, err := tx.Offer.Update().Where(offer.ConversationID(c.ID), offer.Active(true)).SetActive(false).Save(ctx); err != nil {
		return nil, err
	}
	if err := tx.Agent.Update().Where(agent.ID(agentID)).SetLastAssignedAt(now).Exec(ctx); err != nil {
		return nil, err
	}
	c.OwnerID, c.TakenAt, c.RouteAt, c.UpdatedAt = &agentID, &now, nil, now
	if err := logInteraction(ctx, tx, c, schematype.InteractionTaken, &agentID, "", now); err != nil {
		return nil, err
	}
	return without(before.Agents(), []int{agentID}), nil
}

// Take makes the caller the owner of an unowned conversation ("Tomar").
func (s *Service) Take(ctx context.Context, id int) (*ent.Conversation, error) {
	var out *ent.Conversation
	err := s.act(ctx, id, OpClaim, func(tx *ent.Tx, after *store.After, p auth.Principal, sub *subject) error {
		lost, err := s.claim(ctx, tx, sub.c, p.AgentID, sub.viewer)
		if err != nil {
			return err
		}
		s.emitOwnerChange(after, sub.c.ID, p.AgentID, lost)
		out = sub.c
		return nil
	})
	return unwrap(out, err)
}

// emitOwnerChange tells the new owner and the conversation's subscribers it
// changed, and everyone who lost sight of it that it is gone.
func (s *Service) emitOwnerChange(after *store.After, convID, owner int, lost []int) {
	s.emit(after, pubsub.Event{Kind: pubsub.KindConversationUpdated, ConversationID: convID}, []int{owner}, false)
	if len(lost) > 0 {
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationRemoved, ConversationID: convID, AgentIDs: lost}, lost, false)
	}
}

// Transfer hands ownership to another agent; the caller loses access at once
// (unless an admin, who sees everything).
func (s *Service) Transfer(ctx context.Context, id, to int) (*ent.Conversation, error) {
	var out *ent.Conversation
	err := s.act(ctx, id, OpManage, func(tx *ent.Tx, after *store.After, p auth.Principal, sub *subject) error {
		c := sub.c
		if c.Channel == schematype.ChannelInternal {
			return apperr.Invalid("id", "internal chats cannot be transferred")
		}
		if c.Status != schematype.ConversationOpen {
			return apperr.Invalid("id", "only open conversations can be transferred")
		}
		target, err := tx.Agent.Query().Where(targetable(to)).Only(ctx)
		if ent.IsNotFound(err) {
			return apperr.Invalid("agentID", "no such active agent")
		}
		if err != nil {
			return err
		}
		if c.OwnerID != nil && *c.OwnerID == target.ID {
			return apperr.Invalid("agentID", "the conversation already belongs to that agent")
		}
		now := s.now()
		u := tx.Conversation.UpdateOneID(c.ID).SetOwnerID(target.ID).SetTakenAt(now).
			ClearRouteAt().SetArchived(false)
		// Handing an unowned conversation to an agent is its first claim.
		stats.Claimed(u.Mutation(), c, target.ID, now)
		if err := u.Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.Offer.Update().Where(offer.ConversationID(c.ID), offer.Active(true)).SetActive(false).Save(ctx); err != nil {
			return err
		}
		if err := tx.Agent.Update().Where(agent.ID(target.ID)).SetLastAssignedAt(now).Exec(ctx); err != nil {
			return err
		}
		if err := logInteraction(ctx, tx, c, schematype.InteractionTransferred, &target.ID, "by agent "+strconv.Itoa(p.AgentID), now); err != nil {
			return err
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationCreated, ConversationID: c.ID}, []int{target.ID}, false)
		lost := without(sub.viewer.Agents(), []int{target.ID})
		if len(lost) > 0 {
			s.emit(after, pubsub.Event{Kind: pubsub.KindConversationRemoved, ConversationID: c.ID, AgentIDs: lost}, lost, false)
		}
		after.Do(func() { s.wake() })
		out, err = tx.Conversation.Get(ctx, c.ID)
		return err
	})
	return unwrap(out, err)
}
