package conversations

// Read markers.

import (
	"context"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/readstate"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/store"
)

// MarkRead marks everything in the conversation read for the caller.
func (s *Service) MarkRead(ctx context.Context, id int) (*ent.Conversation, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	var out *ent.Conversation
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		c, _, err := s.load(ctx, tx.Client(), p, id)
		if err != nil {
			return err
		}
		out = c
		return s.markReadTx(ctx, tx, id, p.AgentID)
	})
	return unwrap(out, err)
}

// markReadTx moves the agent's read marker to the conversation's newest
// message.
func (s *Service) markReadTx(ctx context.Context, tx *ent.Tx, convID, agentID int) error {
	last, err := tx.Message.Query().Where(message.ConversationID(convID)).Order(ent.Desc(message.FieldID)).FirstID(ctx)
	if ent.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return tx.ReadState.Create().SetConversationID(convID).SetAgentID(agentID).
		SetLastReadMessageID(last).SetReadAt(s.now()).
		OnConflictColumns(readstate.FieldConversationID, readstate.FieldAgentID).
		UpdateLastReadMessageID().UpdateReadAt().Exec(ctx)
}
