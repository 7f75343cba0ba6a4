package conversations

import (
	"context"

	"github.com/parleyhq/parley/internal/auth"
)

// MaySee reports whether p may see conversation id and its messages (and so
// download their attachments): the visitor whose token is bound to it, or
// an agent by the rule of access.go, judged on the full row. A conversation
// that does not exist answers false, like one the caller may not see.
func (s *Service) MaySee(ctx context.Context, p auth.Principal, id int) (bool, error) {
	switch {
	case p.IsVisitor():
		return p.ConversationID == id, nil
	case p.IsAgent():
		sub, err := judge(ctx, s.client, p, id)
		if err != nil {
			return false, err
		}
		return sub.access.View, nil
	}
	return false, nil
}
