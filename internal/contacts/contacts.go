// Package contacts answers who a customer is: a contact with its identities
// per channel and its interaction history across all agents and queues,
// and the directory that agents search, edit, merge, block and delete.
//
// The rules, by operation:
//
//   - Reading (contact, contacts, history), createContact and updateContact:
//     any agent. Contacts are shared across the workspace: any agent may
//     look one up and read its history, whoever handled its conversations.
//     Visitors may not, even for the contact they are (a contact's history
//     names agents and queues).
//   - deleteContact and mergeContacts: ADMIN and SYSTEM_OWNER only; both
//     are audited (internal/audit) in their own transaction. A deleted
//     contact's conversations stay, with their messages, anonymised: no
//     contact, no identity, no visitor details, contactDeleted set (shown
//     as "deleted contact"). Its identities and history go with it, so the
//     next message from that sender makes a new unknown contact.
//   - blockContact: admins, and the agents who may manage one of the
//     contact's conversations (who may see it, internal/conversations
//     access.go). unblockContact: admins only; once blocked, the contact's
//     conversations are hidden from agents, so only admins can judge them.
//     A blocked contact's messages are stored but not routed, and its
//     conversations are in no inbox (for admins neither; they reach them
//     through the contact's history and by id). Unblocking shows them
//     again and routes the open, unowned ones as if they had just arrived.
//
// One phone number is one contact (phone_key, unique): a sender on a
// phone-number channel joins the contact with that number, whichever
// channel wrote first (internal/conversations inbound.go), and an agent
// cannot give a second contact a number another has (CONFLICT: merge them).
//
// Whatever moves a contact's identities or conversations, or changes its
// blocked flag, locks the contact row first (Lock): merges, deletes,
// blocks and inbound messages of one contact take turns, so concurrent
// merges and messages arriving during a merge lose nothing.
package contacts

import (
	"context"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/contact"
	"github.com/parleyhq/parley/ent/contactidentity"
	"github.com/parleyhq/parley/ent/contactmerge"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/interaction"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/audit"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/labels"
	"github.com/parleyhq/parley/internal/paging"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/textsearch"
)

// Conversations is what changes of contacts need from the conversation
// workflow (internal/conversations.Service implements it): the access
// rules, routing and realtime events of the contacts' conversations. Each
// method runs inside the caller's transaction.
type Conversations interface {
	// MayManageAnyOf reports whether p may manage one of contact id's
	// conversations.
	MayManageAnyOf(ctx context.Context, tx *ent.Tx, p auth.Principal, contactID int) (bool, error)
	// ContactBlocked brings contact id's conversations in line with its
	// blocked flag: hidden and without offers when blocked (their viewers
	// are told they are gone), shown and routed again when not.
	ContactBlocked(ctx context.Context, tx *ent.Tx, after *store.After, contactID int, blocked bool) error
	// ConversationsChanged tells the viewers of the open conversations ids
	// that their customer changed (details, merge, deletion).
	ConversationsChanged(ctx context.Context, tx *ent.Tx, after *store.After, ids []int) error
}

// Service reads and changes contacts.
type Service struct {
	client *ent.Client
	convs  Conversations
	now    func() time.Time
}

// NewService returns the contacts service.
func NewService(client *ent.Client, convs Conversations) *Service {
	return &Service{client: client, convs: convs, now: time.Now}
}

// Get returns a contact, with the edges the GraphQL selection asks for
// loaded in the same go. An unknown id, or the id of anything but a
// contact, is NOT_FOUND.
func (s *Service) Get(ctx context.Context, id int) (*ent.Contact, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	c, err := s.client.Contact.Query().Where(contact.ID(id)).CollectFields(ctx)
	if err != nil {
		return nil, err
	}
	out, err := c.Only(ctx)
	return out, store.Coded(err, "contact")
}

// byName orders the directory alphabetically (ent adds the id as the
// tie-break, so cursors stay stable).
var byName = &ent.ContactOrder{Direction: entgql.OrderDirectionAsc, Field: ent.ContactOrderFieldDisplayName}

// List is the directory: every contact, by name, or those whose name,
// email, phone, or an identity's external id or profile name contains
// search, case and accents aside.
func (s *Service) List(ctx context.Context, search *string, after *entgql.Cursor[int], first *int, before *entgql.Cursor[int], last *int) (*ent.ContactConnection, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	q := s.client.Contact.Query()
	if search != nil && *search != "" {
		if err := textsearch.CheckQuery(*search); err != nil {
			return nil, err
		}
		q.Where(func(sel *sql.Selector) { textsearch.Match(contact.FieldSearchKey, *search)(sel) })
	}
	first, last = paging.Clamp(first, last)
	return q.Paginate(ctx, after, first, before, last, ent.WithContactOrder(byName))
}

// historyOrder is newest first: by `at`, then by id (ent adds the id as the
// tie-break, in the same direction), so rows written in the same instant
// keep their order and cursors stay stable.
var historyOrder = &ent.InteractionOrder{Direction: entgql.OrderDirectionDesc, Field: ent.InteractionOrderFieldAt}

// History returns a contact's interactions, newest first. The edges the
// selection asks for (conversation, agent, queue) are loaded with one query
// each per page, not per row.
func (s *Service) History(ctx context.Context, c *ent.Contact, after *entgql.Cursor[int], first *int, before *entgql.Cursor[int], last *int) (*ent.InteractionConnection, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	first, last = paging.Clamp(first, last)
	conn, err := c.QueryInteractions().Paginate(ctx, after, first, before, last, ent.WithInteractionOrder(historyOrder))
	if err != nil {
		return nil, err
	}
	// The page's conversations show their labels, loaded for the page.
	ids := make([]int, 0, len(conn.Edges))
	for _, e := range conn.Edges {
		if e.Node.ConversationID != nil {
			ids = append(ids, *e.Node.ConversationID)
		}
	}
	labels.Prime(ctx, ids)
	return conn, nil
}

// Create adds a known contact; displayName is required. A phone number
// links the senders that will write from it.
func (s *Service) Create(ctx context.Context, d Details) (*ent.Contact, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	if d.DisplayName == nil {
		return nil, apperr.Invalid("displayName", "a contact needs a displayName")
	}
	if _, err := d.check(); err != nil {
		return nil, err
	}
	var out *ent.Contact
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		c, err := tx.Contact.Create().SetDisplayName(*d.DisplayName).SetKnown(true).Save(ctx)
		if err != nil {
			return err
		}
		if err := Apply(ctx, tx, c.ID, d, true); err != nil {
			return err
		}
		out, err = tx.Contact.Get(ctx, c.ID)
		return err
	})
	return unwrap(out, err)
}

// Update changes a contact's details (nil fields stay, "" clears email,
// phone and notes) and marks it known.
func (s *Service) Update(ctx context.Context, id int, d Details) (*ent.Contact, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	if _, err := d.check(); err != nil {
		return nil, err
	}
	var out *ent.Contact
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		if err := Apply(ctx, tx, id, d, true); err != nil {
			return err
		}
		// Its conversations no longer ask who the sender is.
		ids, err := tx.Conversation.Query().Where(conversation.ContactID(id)).IDs(ctx)
		if err != nil {
			return err
		}
		if err := tx.Conversation.Update().Where(conversation.ContactID(id), conversation.UnknownContact(true)).
			SetUnknownContact(false).Exec(ctx); err != nil {
			return err
		}
		if err := s.convs.ConversationsChanged(ctx, tx, after, ids); err != nil {
			return err
		}
		out, err = tx.Contact.Get(ctx, id)
		return err
	})
	return unwrap(out, err)
}

// Delete removes a contact (admins): its identities and history go, its
// conversations stay, anonymised (see the package comment).
func (s *Service) Delete(ctx context.Context, id int) (int, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return 0, err
	}
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		locked, err := Lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(locked) == 0 {
			return apperr.NotFoundf("contact")
		}
		idents, err := tx.ContactIdentity.Query().Where(contactidentity.ContactID(id)).All(ctx)
		if err != nil {
			return err
		}
		convIDs, err := tx.Conversation.Query().Where(conversation.ContactID(id)).IDs(ctx)
		if err != nil {
			return err
		}
		// Anonymised: no contact, no identity (and so no open key a next
		// message could land on), no visitor details.
		if err := tx.Conversation.Update().Where(conversation.ContactID(id)).
			ClearContactID().ClearIdentityID().ClearOpenKey().SetContactDeleted(true).SetUnknownContact(false).
			SetVisitorIP("").SetVisitorUserAgent("").SetVisitorPageURL("").Exec(ctx); err != nil {
			return err
		}
		if err := tx.Message.Update().Where(message.SenderContactID(id)).ClearSenderContactID().Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.Interaction.Delete().Where(interaction.ContactID(id)).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.ContactIdentity.Delete().Where(contactidentity.ContactID(id)).Exec(ctx); err != nil {
			return err
		}
		// The audit entry keeps what was removed, not who it was.
		channels := make([]schematype.Channel, 0, len(idents))
		for _, i := range idents {
			channels = append(channels, i.Channel)
		}
		if err := audit.Record(ctx, tx, audit.Change{Action: "contact.delete", TargetID: id, Before: map[string]any{
			"identities": channels, "conversations": len(convIDs),
		}}); err != nil {
			return err
		}
		if err := tx.Contact.DeleteOneID(id).Exec(ctx); err != nil {
			return err
		}
		return s.convs.ConversationsChanged(ctx, tx, after, convIDs)
	})
	return id, store.Coded(err, "contact")
}

// Merge moves everything of contact from into contact into (admins):
// identities, conversations, messages and history; from is gone, and into
// keeps its details, taking from's where it has none. The merged contact
// is blocked when either was. Merging a contact into itself is
// BAD_USER_INPUT; a contact that is gone (a concurrent merge or delete got
// there first) is NOT_FOUND.
func (s *Service) Merge(ctx context.Context, into, from int) (*ent.Contact, error) {
	p, err := auth.Admin(ctx)
	if err != nil {
		return nil, err
	}
	if into == from {
		return nil, apperr.Invalid("from", "a contact cannot be merged into itself")
	}
	var out *ent.Contact
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		locked, err := Lock(ctx, tx, into, from)
		if err != nil {
			return err
		}
		if len(locked) != 2 {
			return apperr.NotFoundf("contact")
		}
		a, b := locked[0], locked[1]
		if a.ID != into {
			a, b = b, a
		}
		convIDs, err := tx.Conversation.Query().Where(conversation.ContactID(b.ID)).IDs(ctx)
		if err != nil {
			return err
		}
		if err := tx.ContactIdentity.Update().Where(contactidentity.ContactID(b.ID)).SetContactID(a.ID).Exec(ctx); err != nil {
			return err
		}
		if err := tx.Conversation.Update().Where(conversation.ContactID(b.ID)).SetContactID(a.ID).Exec(ctx); err != nil {
			return err
		}
		if err := tx.Message.Update().Where(message.SenderContactID(b.ID)).SetSenderContactID(a.ID).Exec(ctx); err != nil {
			return err
		}
		if err := tx.Interaction.Update().Where(interaction.ContactID(b.ID)).SetContactID(a.ID).Exec(ctx); err != nil {
			return err
		}
		// from's phone key moves to into when into has none; it is freed
		// first, the index being unique.
		if b.PhoneKey != nil {
			if err := tx.Contact.UpdateOneID(b.ID).ClearPhoneKey().Exec(ctx); err != nil {
				return err
			}
		}
		u := tx.Contact.UpdateOneID(a.ID)
		if !a.Known && b.Known {
			u.SetDisplayName(b.DisplayName)
		}
		if a.Email == nil && b.Email != nil {
			u.SetEmail(*b.Email)
		}
		switch {
		case a.PhoneKey == nil && b.PhoneKey != nil && b.Phone != nil:
			u.SetPhone(*b.Phone).SetPhoneKey(*b.PhoneKey)
		case a.Phone == nil && b.Phone != nil:
			u.SetPhone(*b.Phone)
		}
		switch {
		case a.Notes == nil && b.Notes != nil:
			u.SetNotes(*b.Notes)
		case a.Notes != nil && b.Notes != nil:
			u.SetNotes(*a.Notes + "\n\n" + *b.Notes)
		}
		known, blocked := a.Known || b.Known, a.Blocked || b.Blocked
		if err := u.SetKnown(known).SetBlocked(blocked).Exec(ctx); err != nil {
			return err
		}
		if known {
			if err := tx.Conversation.Update().Where(conversation.ContactID(a.ID), conversation.UnknownContact(true)).
				SetUnknownContact(false).Exec(ctx); err != nil {
				return err
			}
		}
		if err := s.convs.ContactBlocked(ctx, tx, after, a.ID, blocked); err != nil {
			return err
		}
		if err := Rekey(ctx, tx, a.ID); err != nil {
			return err
		}
		if err := Log(ctx, tx, a.ID, schematype.InteractionMerged, "", &p.AgentID, "merged "+b.DisplayName, s.now()); err != nil {
			return err
		}
		if err := audit.Record(ctx, tx, audit.Change{Action: "contact.merge", TargetID: a.ID,
			Before: map[string]any{"from": b.ID, "conversations": len(convIDs)}, After: map[string]any{"into": a.ID}}); err != nil {
			return err
		}
		// Forwards: from's id (and the ids merged into from before) now
		// lead to into. Moved before from goes, whose deletion would end
		// them.
		if err := tx.ContactMerge.Update().Where(contactmerge.IntoContactID(b.ID)).SetIntoContactID(a.ID).Exec(ctx); err != nil {
			return err
		}
		if err := tx.ContactMerge.Create().SetFromContactID(b.ID).SetIntoContactID(a.ID).SetMergedAt(s.now()).Exec(ctx); err != nil {
			return err
		}
		if err := tx.Contact.DeleteOneID(b.ID).Exec(ctx); err != nil {
			return err
		}
		if err := s.convs.ConversationsChanged(ctx, tx, after, convIDs); err != nil {
			return err
		}
		out, err = tx.Contact.Get(ctx, a.ID)
		return err
	})
	return unwrap(out, err)
}

// Block blocks a contact on every channel (see the package comment for who
// may). Blocking a blocked contact changes nothing.
func (s *Service) Block(ctx context.Context, id int) (*ent.Contact, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	return s.setBlocked(ctx, p, id, true)
}

// Unblock lifts a contact's block (admins): its conversations show and
// route again.
func (s *Service) Unblock(ctx context.Context, id int) (*ent.Contact, error) {
	p, err := auth.Admin(ctx)
	if err != nil {
		return nil, err
	}
	return s.setBlocked(ctx, p, id, false)
}

func (s *Service) setBlocked(ctx context.Context, p auth.Principal, id int, blocked bool) (*ent.Contact, error) {
	var out *ent.Contact
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		locked, err := Lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(locked) == 0 {
			return apperr.NotFoundf("contact")
		}
		if !p.IsAdmin() {
			ok, err := s.convs.MayManageAnyOf(ctx, tx, p, id)
			if err != nil {
				return err
			}
			if !ok {
				return apperr.New(apperr.Forbidden, "only admins and agents handling one of the contact's conversations may block it")
			}
		}
		if out = locked[0]; out.Blocked == blocked {
			return nil
		}
		if err := tx.Contact.UpdateOneID(id).SetBlocked(blocked).Exec(ctx); err != nil {
			return err
		}
		if err := s.convs.ContactBlocked(ctx, tx, after, id, blocked); err != nil {
			return err
		}
		kind := schematype.InteractionBlocked
		if !blocked {
			kind = schematype.InteractionUnblocked
		}
		if err := Log(ctx, tx, id, kind, "", &p.AgentID, "", s.now()); err != nil {
			return err
		}
		out, err = tx.Contact.Get(ctx, id)
		return err
	})
	return unwrap(out, err)
}

// Log appends a contact's own entry to its history (LINKED, MERGED,
// BLOCKED, UNBLOCKED: about the contact, not one conversation). Its
// channel is channel when given, else that of the contact's newest
// conversation, else of its first identity, else INTERNAL (a change made
// inside Parley, on no customer channel).
func Log(ctx context.Context, tx *ent.Tx, contactID int, kind schematype.InteractionKind, channel schematype.Channel, agentID *int, detail string, at time.Time) error {
	if channel == "" {
		var err error
		if channel, err = channelOf(ctx, tx, contactID); err != nil {
			return err
		}
	}
	ic := tx.Interaction.Create().SetAt(at).SetKind(kind).SetChannel(channel).
		SetContactID(contactID).SetNillableAgentID(agentID)
	if detail != "" {
		ic.SetDetail(detail)
	}
	return ic.Exec(ctx)
}

func channelOf(ctx context.Context, tx *ent.Tx, contactID int) (schematype.Channel, error) {
	c, err := tx.Conversation.Query().Where(conversation.ContactID(contactID)).
		Order(ent.Desc(conversation.FieldLastMessageAt), ent.Desc(conversation.FieldID)).First(ctx)
	if err == nil {
		return c.Channel, nil
	}
	if !ent.IsNotFound(err) {
		return "", err
	}
	i, err := tx.ContactIdentity.Query().Where(contactidentity.ContactID(contactID)).
		Order(ent.Asc(contactidentity.FieldID)).First(ctx)
	if err == nil {
		return i.Channel, nil
	}
	if !ent.IsNotFound(err) {
		return "", err
	}
	return schematype.ChannelInternal, nil
}

// unwrap detaches a contact loaded in a transaction from it, so that the
// resolvers can load its edges after the commit, and codes ent's errors.
func unwrap(c *ent.Contact, err error) (*ent.Contact, error) {
	if err != nil {
		return nil, store.Coded(err, "contact")
	}
	if c == nil {
		return nil, nil
	}
	return c.Unwrap(), nil
}
