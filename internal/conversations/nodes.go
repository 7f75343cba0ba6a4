package conversations

import (
	"context"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/nodes"
)

// RegisterNodes makes node(id) answer conversations, messages and their
// attachments with the same visibility as every other query; contacts and
// their identities are workspace-wide, like ContactInfo.
func (s *Service) RegisterNodes(n *nodes.Service) {
	n.Register("Conversation", func(ctx context.Context, p auth.Principal, x ent.Noder) (bool, error) {
		a, err := s.access(ctx, s.client, p, x.(*ent.Conversation))
		return a.View, err
	})
	n.Register("Message", func(ctx context.Context, p auth.Principal, x ent.Noder) (bool, error) {
		return s.canSeeConversation(ctx, p, x.(*ent.Message).ConversationID)
	})
	n.Register("Attachment", func(ctx context.Context, p auth.Principal, x ent.Noder) (bool, error) {
		a := x.(*ent.Attachment)
		m, err := a.QueryMessage().Only(ctx)
		if ent.IsNotFound(err) {
			return a.UploaderAgentID != nil && *a.UploaderAgentID == p.AgentID, nil
		}
		if err != nil {
			return false, err
		}
		return s.canSeeConversation(ctx, p, m.ConversationID)
	})
	anyAgent := func(context.Context, auth.Principal, ent.Noder) (bool, error) { return true, nil }
	n.Register("Contact", anyAgent)
	n.Register("ContactIdentity", anyAgent)
	n.Register("Interaction", anyAgent)
}

func (s *Service) canSeeConversation(ctx context.Context, p auth.Principal, id int) (bool, error) {
	c, err := s.client.Conversation.Get(ctx, id)
	if ent.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	a, err := s.access(ctx, s.client, p, c)
	return a.View, err
}
