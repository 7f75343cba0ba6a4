package conversations

// Moving a queue's conversations to another queue (a queue deleted with
// moveTo).

import (
	"context"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/store"
)

// MoveOpenToQueue moves every open conversation of queue from into queue to
// inside tx, the caller's transaction (the workspace service deleting from).
// Each gets a TRANSFERRED interaction in the new queue, saying detail, and
// starts a new routing round there: an unowned one is offered to the new
// queue's agents (the old queue's offers withdrawn); an owned one keeps its
// owner (sticky ownership). Agents who lose sight of a conversation (the
// old queue's members) are told REMOVED, those who keep it
// CONVERSATION_UPDATED, newly offered ones CONVERSATION_CREATED. It returns
// how many conversations moved.
func (s *Service) MoveOpenToQueue(ctx context.Context, tx *ent.Tx, after *store.After, from, to int, detail string) (int, error) {
	convs, err := tx.Conversation.Query().
		Where(conversation.QueueID(from), conversation.StatusEQ(schematype.ConversationOpen)).
		Order(ent.Asc(conversation.FieldID)).All(ctx)
	if err != nil {
		return 0, err
	}
	now := s.now()
	for _, c := range convs {
		before, err := viewersOf(ctx, tx.Client(), c)
		if err != nil {
			return 0, err
		}
		c, err = tx.Conversation.UpdateOneID(c.ID).SetQueueID(to).SetRoundStartedAt(now).ClearRouteAt().Save(ctx)
		if err != nil {
			return 0, err
		}
		if c.QueuedAt != nil {
			// It was waiting in the old queue: it enters the new one now.
			if err := stats.Queued(ctx, tx, c, to, now); err != nil {
				return 0, err
			}
		}
		if err := logInteraction(ctx, tx, c, schematype.InteractionTransferred, nil, detail, now); err != nil {
			return 0, err
		}
		d, err := s.router.Route(ctx, tx, c)
		if err != nil {
			return 0, err
		}
		if c, err = tx.Conversation.Get(ctx, c.ID); err != nil {
			return 0, err
		}
		v, err := viewersOf(ctx, tx.Client(), c)
		if err != nil {
			return 0, err
		}
		kept := v.Agents()
		if lost := without(before.Agents(), kept); len(lost) > 0 {
			s.emit(after, pubsub.Event{Kind: pubsub.KindConversationRemoved, ConversationID: c.ID, AgentIDs: lost}, lost, false)
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationUpdated, ConversationID: c.ID}, without(kept, d.Offered), false)
		s.router.Record(after, d)
	}
	if len(convs) > 0 {
		after.Do(func() { s.wake() })
	}
	return len(convs), nil
}
