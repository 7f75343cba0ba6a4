package conversations

// Internal chats between agents.

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/textsearch"
)

// StartInternalChat opens a chat between the caller and colleagues.
func (s *Service) StartInternalChat(ctx context.Context, agentIDs []int, body string) (*ent.Conversation, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	others := without(dedupe(agentIDs), []int{p.AgentID})
	if len(others) == 0 {
		return nil, apperr.Invalid("agentIDs", "name at least one colleague")
	}
	if len(others)+1 > MaxParticipants {
		return nil, apperr.Invalid("agentIDs", "at most %d participants", MaxParticipants)
	}
	body = strings.TrimSpace(body)
	if body == "" || utf8.RuneCountInString(body) > MaxBodyLen {
		return nil, apperr.Invalid("body", "the first message must have 1 to %d characters", MaxBodyLen)
	}
	var out *ent.Conversation
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		n, err := tx.Agent.Query().Where(agent.IDIn(others...), agent.Active(true)).Count(ctx)
		if err != nil {
			return err
		}
		if n != len(others) {
			return apperr.Invalid("agentIDs", "every participant must be an active agent")
		}
		now := s.now()
		c, err := tx.Conversation.Create().SetChannel(schematype.ChannelInternal).
			SetStatus(schematype.ConversationOpen).SetLastMessageAt(now).SetCreatedAt(now).
			AddParticipantIDs(append([]int{p.AgentID}, others...)...).Save(ctx)
		if err != nil {
			return err
		}
		m, err := tx.Message.Create().SetConversationID(c.ID).SetDirection(schematype.DirectionOutbound).
			SetBody(body).SetSearchBody(textsearch.Fold(body)).SetCreatedAt(now).SetSenderAgentID(p.AgentID).Save(ctx)
		if err != nil {
			return err
		}
		if c, err = tx.Conversation.UpdateOneID(c.ID).SetLastMessageID(m.ID).Save(ctx); err != nil {
			return err
		}
		if err := s.markReadTx(ctx, tx, c.ID, p.AgentID); err != nil {
			return err
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationCreated, ConversationID: c.ID, MessageID: m.ID}, others, false)
		out = c
		return nil
	})
	// A colleague deleted meanwhile breaks a foreign key: CONFLICT.
	return unwrap(out, store.Coded(err, "internal chat"))
}
