package contacts

// A contact's details (name, email, phone, notes): their validation, the
// phone key that links senders by number, and the search key, kept in one
// place for every writer of contacts (this package, the inbound entry point
// and the unknown-sender prompt in internal/conversations).

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"unicode/utf8"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/contact"
	"github.com/parleyhq/parley/ent/contactidentity"
	"github.com/parleyhq/parley/ent/contactmerge"
	"github.com/parleyhq/parley/ent/predicate"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/channels/provider"
	"github.com/parleyhq/parley/internal/phone"
	"github.com/parleyhq/parley/internal/textsearch"
)

// Limits of a contact's details.
const (
	MaxNameLen  = 200
	MaxEmailLen = 320
	MaxNotesLen = 5000
)

// Details are what createContact and updateContact write. A nil field is
// left as it is; "" clears email, phone and notes (a name cannot be
// cleared).
type Details struct {
	DisplayName, Email, Phone, Notes *string
}

// checked is Details validated and normalised: trimmed, the phone in E.164.
type checked struct {
	name, email, phone, notes *string
}

// check validates d, naming the first field at fault (BAD_USER_INPUT).
func (d Details) check() (checked, error) {
	var c checked
	if d.DisplayName != nil {
		n := strings.TrimSpace(*d.DisplayName)
		if n == "" || utf8.RuneCountInString(n) > MaxNameLen {
			return c, apperr.Invalid("displayName", "displayName must have 1 to %d characters", MaxNameLen)
		}
		c.name = &n
	}
	if d.Email != nil {
		e := strings.TrimSpace(*d.Email)
		if e != "" {
			if len(e) > MaxEmailLen {
				return c, apperr.Invalid("email", "email is longer than %d characters", MaxEmailLen)
			}
			if a, err := mail.ParseAddress(e); err != nil || a.Address != e || !strings.Contains(e, "@") {
				return c, apperr.Invalid("email", "%q is not an email address", e)
			}
		}
		c.email = &e
	}
	if d.Phone != nil {
		p := strings.TrimSpace(*d.Phone)
		if p != "" {
			n, err := phone.Normalize(p)
			if err != nil {
				return c, apperr.Invalid("phone", "%q is %v", p, err)
			}
			p = n
		}
		c.phone = &p
	}
	if d.Notes != nil {
		n := strings.TrimSpace(*d.Notes)
		if utf8.RuneCountInString(n) > MaxNotesLen {
			return c, apperr.Invalid("notes", "notes are longer than %d characters", MaxNotesLen)
		}
		c.notes = &n
	}
	return c, nil
}

// Check validates d without writing anything (BAD_USER_INPUT naming the
// field at fault).
func (d Details) Check() error {
	_, err := d.check()
	return err
}

// apply sets the checked details on an update of a contact. The phone key
// follows the phone.
func (c checked) apply(u *ent.ContactUpdateOne) {
	if c.name != nil {
		u.SetDisplayName(*c.name)
	}
	if c.email != nil {
		if *c.email == "" {
			u.ClearEmail()
		} else {
			u.SetEmail(*c.email)
		}
	}
	if c.phone != nil {
		if *c.phone == "" {
			u.ClearPhone().ClearPhoneKey()
		} else {
			u.SetPhone(*c.phone).SetPhoneKey(*c.phone)
		}
	}
	if c.notes != nil {
		if *c.notes == "" {
			u.ClearNotes()
		} else {
			u.SetNotes(*c.notes)
		}
	}
}

// Apply validates d and writes it on contact id inside tx, with the phone
// key and the search key. A phone another contact has is CONFLICT on
// "phone" (one number is one contact: merge them instead). known marks
// the contact as added by an agent.
func Apply(ctx context.Context, tx *ent.Tx, id int, d Details, known bool) error {
	c, err := d.check()
	if err != nil {
		return err
	}
	if err := phoneFree(ctx, tx, c.phone, id); err != nil {
		return err
	}
	u := tx.Contact.UpdateOneID(id)
	c.apply(u)
	if known {
		u.SetKnown(true)
	}
	if err := u.Exec(ctx); err != nil {
		return phoneConflict(err)
	}
	return Rekey(ctx, tx, id)
}

// phoneFree refuses a phone number another contact than self has.
func phoneFree(ctx context.Context, tx *ent.Tx, p *string, self int) error {
	if p == nil || *p == "" {
		return nil
	}
	taken, err := tx.Contact.Query().Where(contact.PhoneKey(*p), contact.IDNEQ(self)).Exist(ctx)
	if err != nil {
		return err
	}
	if taken {
		return apperr.Taken("phone", "another contact has the phone number %s: merge the two instead", *p)
	}
	return nil
}

// phoneConflict codes a unique violation of the phone key (a concurrent
// writer took the number between the check and the write).
func phoneConflict(err error) error {
	if ent.IsConstraintError(err) {
		e := apperr.Taken("phone", "another contact has this phone number: merge the two instead")
		e.Err = err
		return e
	}
	return err
}

// SearchKey is the folded text contacts(search) and the inbox search
// match for a contact: its name, email, phone, and each identity's
// external id and profile name.
func SearchKey(c *ent.Contact, idents []*ent.ContactIdentity) string {
	fields := []string{c.DisplayName}
	if c.Email != nil {
		fields = append(fields, *c.Email)
	}
	if c.Phone != nil {
		fields = append(fields, *c.Phone)
	}
	for _, i := range idents {
		fields = append(fields, i.ExternalID, i.ProfileName)
	}
	return textsearch.Key(fields...)
}

// Rekey recomputes contact id's search key from its row and identities,
// inside tx. Every change of a contact or of its identities calls it.
func Rekey(ctx context.Context, tx *ent.Tx, id int) error {
	c, err := tx.Contact.Get(ctx, id)
	if err != nil {
		return err
	}
	idents, err := tx.ContactIdentity.Query().Where(contactidentity.ContactID(id)).
		Order(ent.Asc(contactidentity.FieldID)).All(ctx)
	if err != nil {
		return err
	}
	if key := SearchKey(c, idents); key != c.SearchKey {
		return tx.Contact.UpdateOneID(id).SetSearchKey(key).Exec(ctx)
	}
	return nil
}

// PhoneOf returns the E.164 form of a sender id on a phone-number channel
// (a WhatsApp wa_id without "+", a Twilio From in E.164), or "" when it is
// not a phone number.
func PhoneOf(senderID string) string {
	p, err := phone.FromWhatsApp(senderID)
	if err != nil {
		return ""
	}
	return p
}

// ByPhone returns the contact with phone number p (E.164), locked for the
// rest of tx (see Lock), or nil when there is none: the contact whose
// phone key is p, else the one holding an identity with that number on a
// phone-number channel (a contact merged into another leaves its number
// there, not in the survivor's phone).
func ByPhone(ctx context.Context, tx *ent.Tx, p string) (*ent.Contact, error) {
	c, err := tx.Contact.Query().Where(contact.PhoneKey(p), forUpdate).Only(ctx)
	if err == nil || !ent.IsNotFound(err) {
		return c, err
	}
	var channels []schematype.Channel
	for _, f := range provider.All() {
		if f.PhoneSenders {
			channels = append(channels, f.Channel)
		}
	}
	// Senders' ids as the providers give them: with and without "+".
	id, err := tx.ContactIdentity.Query().
		Where(contactidentity.ChannelIn(channels...), contactidentity.ExternalIDIn(p, strings.TrimPrefix(p, "+"))).
		Order(ent.Asc(contactidentity.FieldID)).First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	locked, err := Lock(ctx, tx, id.ContactID)
	if err != nil {
		return nil, err
	}
	if len(locked) == 0 {
		return nil, ErrMoved
	}
	return locked[0], nil
}

// Survivor is the contact that contact id was merged into (following later
// merges), or 0 when id was not merged (or its survivor was deleted since).
func Survivor(ctx context.Context, tx *ent.Tx, id int) (int, error) {
	f, err := tx.ContactMerge.Query().Where(contactmerge.FromContactID(id)).Only(ctx)
	if ent.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return f.IntoContactID, nil
}

// ErrMoved says that a contact was merged into another or deleted between
// reading one of its identities and locking it: the caller runs its
// transaction again, and finds where the identity is now.
var ErrMoved = errors.New("contacts: the contact moved")

// Lock loads the contacts ids locked for the rest of tx, in id order (so
// that two transactions locking the same contacts cannot deadlock): FOR
// UPDATE on PostgreSQL; SQLite's transactions are immediate, which already
// serialises writers. Whatever changes a contact's identities,
// conversations or blocked flag (merge, delete, block, inbound messages)
// locks it first, so none of them works on a contact another is moving.
// Missing ids are simply absent from the result.
func Lock(ctx context.Context, tx *ent.Tx, ids ...int) ([]*ent.Contact, error) {
	return tx.Contact.Query().Where(contact.IDIn(ids...), forUpdate).Order(ent.Asc(contact.FieldID)).All(ctx)
}

// forUpdate locks the rows a contact query selects, on PostgreSQL (SQLite
// refuses the clause; its immediate transactions serialise writers).
var forUpdate = predicate.Contact(func(s *sql.Selector) {
	if s.Dialect() == dialect.Postgres {
		s.ForUpdate()
	}
})
