package conversations

// Contact editing: the unknown-sender prompt's "Add contact".

import (
	"context"
	"strings"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/contacts"
	"github.com/parleyhq/parley/internal/store"
)

// ContactInput is what "Add contact" saves.
type ContactInput struct {
	DisplayName string
	Email       *string
	Phone       *string
}

// AddContact answers the unknown-sender prompt with "Add contact": the
// sender becomes a known contact with these details, in this and every other
// conversation of theirs. An empty email or phone leaves the one the
// contact has; the details are validated as updateContact validates them
// (contacts.Apply: the phone normalised to E.164, one contact per number).
func (s *Service) AddContact(ctx context.Context, id int, in ContactInput) (*ent.Conversation, error) {
	d := contacts.Details{DisplayName: &in.DisplayName, Email: given(in.Email), Phone: given(in.Phone)}
	if err := d.Check(); err != nil {
		return nil, err
	}
	return s.change(ctx, id, func(tx *ent.Tx, _ *store.After, _ auth.Principal, c *ent.Conversation, _ *Viewers) error {
		if c.ContactID == nil {
			return apperr.Invalid("id", "this conversation has no customer")
		}
		if err := contacts.Apply(ctx, tx, *c.ContactID, d, true); err != nil {
			return err
		}
		_, err := tx.Conversation.Update().Where(conversation.ContactID(*c.ContactID)).SetUnknownContact(false).Save(ctx)
		return err
	})
}

// given is s unless it is nil or blank.
func given(s *string) *string {
	if s == nil || strings.TrimSpace(*s) == "" {
		return nil
	}
	return s
}
