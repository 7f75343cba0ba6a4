package conversations

// Labels on conversations: any agent who may see a conversation puts a
// workspace label (internal/labels) on it or takes one off; its viewers
// are told (CONVERSATION_UPDATED) and the contact's history records who
// did it (LABELED, UNLABELED, the label's name as the detail).

import (
	"context"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/conversationlabel"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/labels"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/store"
)

// AddLabel puts label labelID on conversation id. Putting it there again
// changes nothing and tells nobody.
func (s *Service) AddLabel(ctx context.Context, id, labelID int) (*ent.Conversation, error) {
	return s.relabel(ctx, id, labelID, true)
}

// RemoveLabel takes label labelID off conversation id; taking off a label
// it does not carry changes nothing.
func (s *Service) RemoveLabel(ctx context.Context, id, labelID int) (*ent.Conversation, error) {
	return s.relabel(ctx, id, labelID, false)
}

func (s *Service) relabel(ctx context.Context, id, labelID int, add bool) (*ent.Conversation, error) {
	err := s.act(ctx, id, OpLabel, func(tx *ent.Tx, after *store.After, p auth.Principal, sub *subject) error {
		l, err := tx.Label.Get(ctx, labelID)
		if err != nil {
			return store.Coded(err, "label")
		}
		// Concurrent changes of one conversation's labels take turns on
		// PostgreSQL (SQLite's immediate transactions already do), so that
		// adding twice at once records one LABELED.
		if _, err := tx.Conversation.Query().Where(conversation.ID(id)).Modify(func(s *sql.Selector) {
			if s.Dialect() == dialect.Postgres {
				s.ForUpdate()
			}
		}).Select(conversation.FieldID).Ints(ctx); err != nil {
			return err
		}
		has, err := tx.ConversationLabel.Query().
			Where(conversationlabel.ConversationID(id), conversationlabel.LabelID(labelID)).Exist(ctx)
		if err != nil || has == add {
			return err
		}
		if add {
			err = tx.ConversationLabel.Create().SetConversationID(id).SetLabelID(labelID).Exec(ctx)
		} else {
			_, err = tx.ConversationLabel.Delete().
				Where(conversationlabel.ConversationID(id), conversationlabel.LabelID(labelID)).Exec(ctx)
		}
		if err != nil {
			return err
		}
		kind := schematype.InteractionUnlabeled
		if add {
			kind = schematype.InteractionLabeled
		}
		if err := logInteraction(ctx, tx, sub.c, kind, &p.AgentID, l.Name, s.now()); err != nil {
			return err
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationUpdated, ConversationID: id}, sub.viewer.Agents(), false)
		return nil
	})
	if err != nil {
		return nil, err
	}
	c, err := s.client.Conversation.Query().Where(conversation.ID(id)).WithLabels(labels.ByName).Only(ctx)
	return c, store.Coded(err, "conversation")
}

// LabelDeleted tells the viewers of the conversations ids that label name,
// deleted, left them, and records it in their contacts' histories, inside
// deleteLabel's transaction (labels.Service.Detached).
func (s *Service) LabelDeleted(ctx context.Context, tx *ent.Tx, after *store.After, name string, ids []int) error {
	p, err := auth.Agent(ctx)
	if err != nil {
		return err
	}
	convs, err := tx.Conversation.Query().Where(conversation.IDIn(ids...)).All(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	for _, c := range convs {
		v, err := viewersOf(ctx, tx.Client(), c)
		if err != nil {
			return err
		}
		if err := logInteraction(ctx, tx, c, schematype.InteractionUnlabeled, &p.AgentID, name, now); err != nil {
			return err
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationUpdated, ConversationID: c.ID}, v.Agents(), false)
	}
	return nil
}
