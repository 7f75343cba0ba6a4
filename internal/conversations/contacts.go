package conversations

// What changes of contacts (internal/contacts) need of the workflow: the
// access rule over a contact's conversations, blocking, and telling their
// viewers. The service implements contacts.Conversations.

import (
	"context"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/store"
)

// MayManageAnyOf reports whether p may manage one of the contact's
// conversations: every relation that lets an agent see a conversation lets
// it manage it (Decide), so this is whether p sees one.
func (s *Service) MayManageAnyOf(ctx context.Context, tx *ent.Tx, p auth.Principal, contactID int) (bool, error) {
	return tx.Conversation.Query().Where(conversation.ContactID(contactID), visibleVia(p, seeing)).Exist(ctx)
}

// ContactBlocked brings the contact's conversations in line with its
// blocked flag, inside tx (the contact row locked by the caller). Blocked:
// each is hidden, its offers are withdrawn and whoever saw it is told it
// is gone (REMOVED). Unblocked: each shows again to its owner, offered
// agents and queue members (CONVERSATION_CREATED with its newest message),
// and routing offers the open, unowned ones that have messages.
func (s *Service) ContactBlocked(ctx context.Context, tx *ent.Tx, after *store.After, contactID int, blocked bool) error {
	convs, err := tx.Conversation.Query().
		Where(conversation.ContactID(contactID), conversation.ContactBlocked(!blocked)).All(ctx)
	if err != nil {
		return err
	}
	for _, c := range convs {
		before, err := viewersOf(ctx, tx.Client(), c)
		if err != nil {
			return err
		}
		u := tx.Conversation.UpdateOneID(c.ID).SetContactBlocked(blocked)
		if blocked {
			u.ClearRouteAt()
		}
		if c, err = u.Save(ctx); err != nil {
			return err
		}
		var offered []int
		if c.OwnerID == nil && c.LastMessageID != nil {
			d, err := s.router.Route(ctx, tx, c)
			if err != nil {
				return err
			}
			s.router.Record(after, d)
			offered = d.Offered
		}
		if blocked {
			gone := before.Agents()
			s.emit(after, pubsub.Event{Kind: pubsub.KindConversationRemoved, ConversationID: c.ID, AgentIDs: gone}, gone, false)
			continue
		}
		now, err := viewersOf(ctx, tx.Client(), c)
		if err != nil {
			return err
		}
		// Back in their inboxes: new to them, as to agents who gain sight
		// of a released conversation (offered agents learn of it from the
		// routing decision).
		ev := pubsub.Event{Kind: pubsub.KindConversationCreated, ConversationID: c.ID}
		if c.LastMessageID != nil {
			ev.MessageID = *c.LastMessageID
		}
		s.emit(after, ev, without(now.Agents(), offered), false)
	}
	return nil
}

// ConversationsChanged tells the viewers of the open conversations among
// ids that their customer changed (details, merge, deletion), inside tx.
func (s *Service) ConversationsChanged(ctx context.Context, tx *ent.Tx, after *store.After, ids []int) error {
	if len(ids) == 0 {
		return nil
	}
	convs, err := tx.Conversation.Query().
		Where(conversation.IDIn(ids...), conversation.StatusEQ(schematype.ConversationOpen)).All(ctx)
	if err != nil {
		return err
	}
	for _, c := range convs {
		v, err := viewersOf(ctx, tx.Client(), c)
		if err != nil {
			return err
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationUpdated, ConversationID: c.ID}, v.Agents(), false)
	}
	return nil
}
