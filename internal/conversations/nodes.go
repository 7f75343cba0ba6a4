package conversations

import (
	"context"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/attachment"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/nodes"
)

// RegisterNodes makes node(id) answer conversations, messages and their
// attachments with the same visibility as every other query, judged by id
// on what the rule needs (the node itself holds only the columns the client
// selected); contacts and their identities are workspace-wide, like
// ContactInfo.
func (s *Service) RegisterNodes(n *nodes.Service) {
	n.Register("Conversation", s.MaySee)
	n.Register("Message", func(ctx context.Context, p auth.Principal, id int) (bool, error) {
		conv, err := s.client.Message.Query().Where(message.ID(id)).Select(message.FieldConversationID).Int(ctx)
		if ent.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return s.MaySee(ctx, p, conv)
	})
	n.Register("Attachment", func(ctx context.Context, p auth.Principal, id int) (bool, error) {
		a, err := s.client.Attachment.Query().Where(attachment.ID(id)).WithMessage(func(q *ent.MessageQuery) {
			q.Select(message.FieldConversationID)
		}).Only(ctx)
		if ent.IsNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if a.Edges.Message == nil {
			return a.UploaderAgentID != nil && *a.UploaderAgentID == p.AgentID, nil
		}
		return s.MaySee(ctx, p, a.Edges.Message.ConversationID)
	})
	anyAgent := func(context.Context, auth.Principal, int) (bool, error) { return true, nil }
	n.Register("Contact", anyAgent)
	n.Register("ContactIdentity", anyAgent)
	n.Register("Interaction", anyAgent)
}
