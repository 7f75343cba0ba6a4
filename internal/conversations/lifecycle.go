package conversations

// Lifecycle: status changes of a conversation the caller may manage (dealt
// with, archive, ignore, end, block) and deleting it.

import (
	"context"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/interaction"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/offer"
	"github.com/parleyhq/parley/ent/readstate"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/store"
)

// change runs one status change on a conversation the caller may manage,
// then lets routing reconsider it and tells who saw it.
func (s *Service) change(ctx context.Context, id int, fn func(tx *ent.Tx, after *store.After, p auth.Principal, c *ent.Conversation, v *Viewers) error) (*ent.Conversation, error) {
	var out *ent.Conversation
	err := s.act(ctx, id, OpManage, func(tx *ent.Tx, after *store.After, p auth.Principal, sub *subject) error {
		if err := fn(tx, after, p, sub.c, sub.viewer); err != nil {
			return err
		}
		var err error
		if out, err = tx.Conversation.Get(ctx, id); err != nil {
			return err
		}
		// Routing reconsiders the conversation (an unarchived one may need
		// offers, a closed one none).
		if out.OwnerID == nil {
			d, err := s.router.Route(ctx, tx, out)
			if err != nil {
				return err
			}
			s.router.Record(after, d)
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationUpdated, ConversationID: id}, sub.viewer.Agents(), false)
		if err := s.emitMentionsEnded(ctx, tx, after, sub.viewer, out); err != nil {
			return err
		}
		after.Do(func() { s.wake() })
		return nil
	})
	return unwrap(out, err)
}

// wake lets routing offer waiting conversations to agents who freed a slot.
func (s *Service) wake() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.router.WakeWaiting(ctx); err != nil {
		s.log.Warn("wake routing", "err", err)
	}
}

// MarkDealtWith closes and archives a conversation ("Atendido"). The
// customer's next message opens a new conversation through routing.
func (s *Service) MarkDealtWith(ctx context.Context, id int) (*ent.Conversation, error) {
	return s.change(ctx, id, func(tx *ent.Tx, _ *store.After, p auth.Principal, c *ent.Conversation, _ *Viewers) error {
		if c.Channel == schematype.ChannelInternal {
			return apperr.Invalid("id", "internal chats cannot be marked dealt with")
		}
		if c.Status == schematype.ConversationDealtWith {
			return nil
		}
		now := s.now()
		if err := stats.Closed(ctx, tx, c, now); err != nil {
			return err
		}
		if err := tx.Conversation.UpdateOneID(c.ID).SetStatus(schematype.ConversationDealtWith).
			SetArchived(true).ClearOpenKey().SetClosedAt(now).ClearRouteAt().Exec(ctx); err != nil {
			return err
		}
		return logInteraction(ctx, tx, c, schematype.InteractionDealtWith, &p.AgentID, "", now)
	})
}

// Archive files a conversation away; it stays open, and a new message from
// the customer brings it back.
func (s *Service) Archive(ctx context.Context, id int) (*ent.Conversation, error) {
	return s.setArchived(ctx, id, true, schematype.InteractionArchived)
}

// Unarchive brings a conversation back into the inbox.
func (s *Service) Unarchive(ctx context.Context, id int) (*ent.Conversation, error) {
	return s.setArchived(ctx, id, false, schematype.InteractionUnarchived)
}

func (s *Service) setArchived(ctx context.Context, id int, archived bool, kind schematype.InteractionKind) (*ent.Conversation, error) {
	return s.change(ctx, id, func(tx *ent.Tx, _ *store.After, p auth.Principal, c *ent.Conversation, _ *Viewers) error {
		if c.Archived == archived {
			return nil
		}
		if err := tx.Conversation.UpdateOneID(c.ID).SetArchived(archived).Exec(ctx); err != nil {
			return err
		}
		return logInteraction(ctx, tx, c, kind, &p.AgentID, "", s.now())
	})
}

// Ignore answers the unknown-sender prompt with "Ignore": the conversation
// is archived and nobody is offered it.
func (s *Service) Ignore(ctx context.Context, id int) (*ent.Conversation, error) {
	return s.change(ctx, id, func(tx *ent.Tx, _ *store.After, p auth.Principal, c *ent.Conversation, _ *Viewers) error {
		if !c.UnknownContact {
			return apperr.Invalid("id", "only conversations with an unknown sender can be ignored")
		}
		if c.Archived {
			return nil
		}
		if err := tx.Conversation.UpdateOneID(c.ID).SetArchived(true).Exec(ctx); err != nil {
			return err
		}
		return logInteraction(ctx, tx, c, schematype.InteractionArchived, &p.AgentID, "ignored", s.now())
	})
}

// EndChatSession ends a live chat: the visitor is told and can send no
// more in this conversation.
func (s *Service) EndChatSession(ctx context.Context, id int) (*ent.Conversation, error) {
	return s.change(ctx, id, func(tx *ent.Tx, after *store.After, p auth.Principal, c *ent.Conversation, _ *Viewers) error {
		return s.end(ctx, tx, after, p, c, schematype.InteractionEnded)
	})
}

func (s *Service) end(ctx context.Context, tx *ent.Tx, after *store.After, p auth.Principal, c *ent.Conversation, kind schematype.InteractionKind) error {
	if c.Channel != schematype.ChannelLiveChat {
		return apperr.Invalid("id", "only live chats have a session to end")
	}
	now := s.now()
	if c.Status != schematype.ConversationEnded {
		if err := s.endSession(ctx, tx, after, c, &p.AgentID, now); err != nil {
			return err
		}
	}
	if kind == schematype.InteractionBlocked {
		return logInteraction(ctx, tx, c, schematype.InteractionBlocked, &p.AgentID, c.VisitorIP, now)
	}
	return nil
}

// endSession ends the open live chat c, by agentID or (nil) its visitor:
// no more messages, the visitor told.
func (s *Service) endSession(ctx context.Context, tx *ent.Tx, after *store.After, c *ent.Conversation, agentID *int, now time.Time) error {
	if err := stats.Closed(ctx, tx, c, now); err != nil {
		return err
	}
	if err := tx.Conversation.UpdateOneID(c.ID).SetStatus(schematype.ConversationEnded).
		ClearOpenKey().SetClosedAt(now).ClearRouteAt().Exec(ctx); err != nil {
		return err
	}
	if err := logInteraction(ctx, tx, c, schematype.InteractionEnded, agentID, "", now); err != nil {
		return err
	}
	s.emit(after, pubsub.Event{Kind: pubsub.KindSessionEnded, ConversationID: c.ID}, nil, true)
	return nil
}

// BlockAnonymousUser ends a live chat and refuses its visitor's IP address
// from then on, on every live-chat account.
func (s *Service) BlockAnonymousUser(ctx context.Context, id int) (*ent.Conversation, error) {
	return s.change(ctx, id, func(tx *ent.Tx, after *store.After, p auth.Principal, c *ent.Conversation, _ *Viewers) error {
		if c.Channel != schematype.ChannelLiveChat {
			return apperr.Invalid("conversationID", "only live-chat visitors can be blocked")
		}
		if c.VisitorIP == "" {
			return apperr.Invalid("conversationID", "the visitor's IP address is unknown")
		}
		err := tx.Block.Create().SetIP(c.VisitorIP).SetCreatedByID(p.AgentID).SetConversationID(c.ID).
			OnConflictColumns("ip").Ignore().Exec(ctx)
		if err != nil {
			return err
		}
		// The contact is not blocked (Contact.blocked is blockContact's, on
		// every channel, and would hide this conversation): the address
		// is, in Block.
		return s.end(ctx, tx, after, p, c, schematype.InteractionBlocked)
	})
}

// Delete removes a conversation and its messages. Its interactions stay in
// the contacts' history, without the link.
func (s *Service) Delete(ctx context.Context, id int) (int, error) {
	err := s.act(ctx, id, OpDelete, func(tx *ent.Tx, after *store.After, _ auth.Principal, sub *subject) error {
		if err := tx.Conversation.UpdateOneID(id).ClearLastMessage().Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.Message.Delete().Where(message.ConversationID(id)).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.Offer.Delete().Where(offer.ConversationID(id)).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.ReadState.Delete().Where(readstate.ConversationID(id)).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.Interaction.Update().Where(interaction.ConversationID(id)).ClearConversationID().Save(ctx); err != nil {
			return err
		}
		if err := tx.Conversation.DeleteOneID(id).Exec(ctx); err != nil {
			return err
		}
		all := sub.viewer.Agents()
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationRemoved, ConversationID: id, AgentIDs: all}, all, false)
		after.Do(func() { s.wake() })
		return nil
	})
	return id, err
}
