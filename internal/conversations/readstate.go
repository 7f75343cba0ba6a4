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
	var out *ent.Conversation
	err := s.act(ctx, id, OpView, func(tx *ent.Tx, after *store.After, p auth.Principal, sub *subject) error {
		out = sub.c
		// The owner reading tells the customer (read receipts); a
		// supervisor looking in does not.
		if s.Signals != nil && sub.c.OwnerID != nil && *sub.c.OwnerID == p.AgentID {
			after.Do(func() { s.Signals(id, "read") })
		}
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
