package conversations

// Contact editing: the unknown-sender prompt's "Add contact".

import (
	"context"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/textsearch"
)

// ContactInput is what "Add contact" saves.
type ContactInput struct {
	DisplayName string
	Email       *string
	Phone       *string
}

var phoneRe = regexp.MustCompile(`^\+?[0-9][0-9 ().-]{3,30}$`)

// AddContact answers the unknown-sender prompt with "Add contact": the
// sender becomes a known contact with these details, in this and every other
// conversation of theirs.
func (s *Service) AddContact(ctx context.Context, id int, in ContactInput) (*ent.Conversation, error) {
	name := strings.TrimSpace(in.DisplayName)
	if name == "" || utf8.RuneCountInString(name) > 200 {
		return nil, apperr.Invalid("displayName", "displayName must have 1 to 200 characters")
	}
	var email, phone string
	if in.Email != nil && strings.TrimSpace(*in.Email) != "" {
		email = strings.TrimSpace(*in.Email)
		if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
			return nil, apperr.Invalid("email", "%q is not an email address", email)
		}
	}
	if in.Phone != nil && strings.TrimSpace(*in.Phone) != "" {
		phone = strings.TrimSpace(*in.Phone)
		if !phoneRe.MatchString(phone) {
			return nil, apperr.Invalid("phone", "%q is not a phone number", phone)
		}
	}
	return s.change(ctx, id, func(tx *ent.Tx, _ *store.After, _ auth.Principal, c *ent.Conversation, _ *Viewers) error {
		if c.ContactID == nil {
			return apperr.Invalid("id", "this conversation has no customer")
		}
		ct, err := tx.Contact.Get(ctx, *c.ContactID)
		if err != nil {
			return err
		}
		u := tx.Contact.UpdateOneID(ct.ID).SetDisplayName(name).SetKnown(true)
		if email != "" {
			u.SetEmail(email)
		}
		if phone != "" {
			u.SetPhone(phone)
		}
		e, ph := email, phone
		if e == "" && ct.Email != nil {
			e = *ct.Email
		}
		if ph == "" && ct.Phone != nil {
			ph = *ct.Phone
		}
		u.SetSearchKey(textsearch.Key(name, e, ph))
		if err := u.Exec(ctx); err != nil {
			return err
		}
		_, err = tx.Conversation.Update().Where(conversation.ContactID(ct.ID)).SetUnknownContact(false).Save(ctx)
		return err
	})
}
