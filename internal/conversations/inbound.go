package conversations

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/attachment"
	"github.com/parleyhq/parley/ent/contactidentity"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/predicate"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/channels/provider"
	"github.com/parleyhq/parley/internal/contacts"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/routing"
	"github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/textsearch"
)

// Inbound is a customer message as a channel adapter hands it over.
type Inbound struct {
	// ChannelAccountID is the account the message arrived on.
	ChannelAccountID int
	// SenderID is the customer's id on the channel: a WhatsApp wa_id, a
	// Messenger PSID, an E.164 number, a live-chat visitor key.
	SenderID string
	// SenderName is what the provider says the sender is called.
	SenderName string
	// ProviderMessageID deduplicates redeliveries; empty for none.
	ProviderMessageID string
	Body              string
	// AttachmentIDs are files already stored (see attachments).
	AttachmentIDs []int
	// At is the provider's timestamp; zero means now.
	At time.Time
	// Visitor details, for live chat.
	VisitorIP, VisitorUserAgent, VisitorPageURL string

	// visitorConversation is set by VisitorSend: the visitor's own uploads
	// in that conversation may be attached. Channel adapters attach files
	// they stored themselves (no uploader).
	visitorConversation int
}

// Received is the outcome of Receive.
type Received struct {
	Message      *ent.Message
	Conversation *ent.Conversation
	// Duplicate is true when the provider message id was seen before: the
	// stored message is returned and nothing changes.
	Duplicate bool
	// NewConversation is true when this message opened a conversation.
	NewConversation bool
}

// maxAttempts bounds the retries of Receive when concurrent first messages
// race on the unique identity, conversation or message indexes.
const maxAttempts = 5

// Receive is the inbound entry point every channel adapter uses. It finds or
// creates the sender's identity (an unknown sender gets a contact flagged
// for the Add contact / Reply / Ignore prompt), appends the message to the
// sender's open conversation or opens a new one and routes it, logs the
// interaction and publishes events after the commit.
//
// It is idempotent on (channel account, provider message id), and race-free:
// unique indexes, not read-then-insert checks, decide between concurrent
// first messages of one new sender, and the loser retries and finds the
// winner's rows.
func (s *Service) Receive(ctx context.Context, in Inbound) (*Received, error) {
	if in.ChannelAccountID == 0 || strings.TrimSpace(in.SenderID) == "" {
		return nil, apperr.Invalid("sender", "a channel account and a sender are required")
	}
	if utf8.RuneCountInString(in.Body) > MaxBodyLen {
		return nil, apperr.Invalid("body", "the message is longer than %d characters", MaxBodyLen)
	}
	if strings.TrimSpace(in.Body) == "" && len(in.AttachmentIDs) == 0 {
		return nil, apperr.Invalid("body", "a message needs a body or attachments")
	}
	if in.At.IsZero() {
		in.At = s.now()
	}
	var lastErr error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		r, err := s.receiveOnce(ctx, in)
		if err == nil {
			r.Message, r.Conversation = r.Message.Unwrap(), r.Conversation.Unwrap()
			return r, nil
		}
		if !ent.IsConstraintError(err) && !isSerialization(err) && !errors.Is(err, errContactMoved) {
			return nil, err
		}
		lastErr = err
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return nil, lastErr
}

func (s *Service) receiveOnce(ctx context.Context, in Inbound) (*Received, error) {
	out := &Received{}
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		if in.ProviderMessageID != "" {
			m, err := tx.Message.Query().Where(
				message.ChannelAccountID(in.ChannelAccountID), message.ProviderMessageID(in.ProviderMessageID),
			).Only(ctx)
			if err == nil {
				out.Message, out.Duplicate = m, true
				out.Conversation, err = tx.Conversation.Get(ctx, m.ConversationID)
				return err
			}
			if !ent.IsNotFound(err) {
				return err
			}
		}
		acct, err := tx.ChannelAccount.Get(ctx, in.ChannelAccountID)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("channel account")
		}
		if err != nil {
			return err
		}
		ident, contact, err := s.identity(ctx, tx, acct, in)
		if err != nil {
			return err
		}
		key := openKey(acct.ID, ident.ID)
		conv, err := tx.Conversation.Query().Where(conversation.OpenKey(key)).Only(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return err
		}
		var decision routing.Decision
		if conv == nil {
			c := tx.Conversation.Create().
				SetChannel(acct.Channel).SetStatus(schematype.ConversationOpen).
				SetUnknownContact(!contact.Known).SetContactBlocked(contact.Blocked).SetOpenKey(key).
				SetChannelAccountID(acct.ID).SetContactID(contact.ID).SetIdentityID(ident.ID).
				SetNillableQueueID(acct.QueueID).SetLastMessageAt(in.At).SetCustomerLastMessageAt(in.At).
				SetCreatedAt(s.now())
			if in.VisitorIP != "" {
				c.SetVisitorIP(in.VisitorIP).SetVisitorUserAgent(in.VisitorUserAgent).SetVisitorPageURL(in.VisitorPageURL)
			}
			if conv, err = c.Save(ctx); err != nil {
				return err
			}
			out.NewConversation = true
			if err := logInteraction(ctx, tx, conv, schematype.InteractionCreated, nil, "", s.now()); err != nil {
				return err
			}
		}
		m, err := tx.Message.Create().
			SetConversationID(conv.ID).SetDirection(schematype.DirectionInbound).
			SetBody(in.Body).SetSearchBody(textsearch.Fold(in.Body)).SetCreatedAt(in.At).
			SetChannelAccountID(acct.ID).SetNillableProviderMessageID(nonEmpty(in.ProviderMessageID)).
			SetSenderContactID(contact.ID).Save(ctx)
		if err != nil {
			return err
		}
		if err := attachInbound(ctx, tx, m.ID, in.AttachmentIDs, in.visitorConversation); err != nil {
			return err
		}
		hadMessages := conv.LastMessageID != nil
		u := tx.Conversation.UpdateOneID(conv.ID)
		if !in.At.Before(conv.LastMessageAt) || out.NewConversation || !hadMessages {
			u.SetLastMessageAt(in.At).SetLastMessageID(m.ID)
		}
		if conv.CustomerLastMessageAt == nil || in.At.After(*conv.CustomerLastMessageAt) {
			u.SetCustomerLastMessageAt(in.At)
		}
		unarchived := false
		if conv.Archived && conv.Status == schematype.ConversationOpen {
			// A new message brings an archived, not-dealt-with conversation
			// back into the inbox.
			u.SetArchived(false)
			unarchived = true
		}
		if conv, err = u.Save(ctx); err != nil {
			return err
		}
		if unarchived {
			if err := logInteraction(ctx, tx, conv, schematype.InteractionUnarchived, nil, "new message", s.now()); err != nil {
				return err
			}
		}
		// Routing starts with the first message (a live chat exists from
		// the moment the visitor opens it, but nobody is offered an empty
		// chat) and again when a message brings an archived one back. A
		// blocked contact's messages are stored, never routed.
		firstMessage := out.NewConversation || !hadMessages
		if conv.OwnerID == nil && !conv.ContactBlocked && (firstMessage || unarchived) {
			if conv.QueueID != nil && conv.QueuedAt == nil {
				// It enters its queue now: its statistics' period and its
				// service-level clock start here.
				if err := stats.Queued(ctx, tx, conv, *conv.QueueID, s.now()); err != nil {
					return err
				}
			}
			if decision, err = s.router.Route(ctx, tx, conv); err != nil {
				return err
			}
		}
		v, err := viewersOf(ctx, tx.Client(), conv)
		if err != nil {
			return err
		}
		out.Message, out.Conversation = m, conv
		kind := pubsub.KindMessageAdded
		if out.NewConversation {
			kind = pubsub.KindConversationCreated
		}
		// Offered agents learn of it from the routing decision; everyone
		// else who sees it from this event.
		s.emit(after, pubsub.Event{Kind: kind, ConversationID: conv.ID, MessageID: m.ID}, without(v.Agents(), decision.Offered), false)
		s.router.Record(after, decision)
		return nil
	})
	return out, err
}

// errContactMoved: the sender's contact was merged into another or
// deleted between finding its identity and locking it; Receive tries again
// and finds where the identity is now.
var errContactMoved = contacts.ErrMoved

// identity finds the sender's identity on the account and its contact,
// locked for the rest of the transaction (contacts.Lock: merges, deletes
// and blocks of the contact wait for this message, or this message for
// them). A new sender on a phone-number channel joins the contact that has
// the number (one LINKED entry in its history says when); any other new
// sender gets a new contact flagged unknown.
func (s *Service) identity(ctx context.Context, tx *ent.Tx, acct *ent.ChannelAccount, in Inbound) (*ent.ContactIdentity, *ent.Contact, error) {
	id, err := tx.ContactIdentity.Query().Where(
		contactidentity.ChannelAccountID(acct.ID), contactidentity.ExternalID(in.SenderID),
	).Only(ctx)
	if err == nil {
		locked, err := contacts.Lock(ctx, tx, id.ContactID)
		if err != nil {
			return nil, nil, err
		}
		if len(locked) == 0 {
			return nil, nil, errContactMoved
		}
		if in.SenderName != "" && id.ProfileName != in.SenderName {
			if id, err = tx.ContactIdentity.UpdateOneID(id.ID).SetProfileName(in.SenderName).Save(ctx); err != nil {
				return nil, nil, err
			}
			if err := contacts.Rekey(ctx, tx, id.ContactID); err != nil {
				return nil, nil, err
			}
		}
		return id, locked[0], nil
	}
	if !ent.IsNotFound(err) {
		return nil, nil, err
	}
	var e164 string
	f, _ := provider.For(acct.Channel)
	if f.PhoneSenders {
		e164 = contacts.PhoneOf(in.SenderID)
	}
	if e164 != "" {
		c, err := contacts.ByPhone(ctx, tx, e164)
		if err != nil {
			return nil, nil, err
		}
		if c != nil {
			id, err := tx.ContactIdentity.Create().SetChannel(acct.Channel).SetExternalID(in.SenderID).
				SetProfileName(in.SenderName).SetChannelAccountID(acct.ID).SetContactID(c.ID).Save(ctx)
			if err != nil {
				return nil, nil, err
			}
			if err := contacts.Rekey(ctx, tx, c.ID); err != nil {
				return nil, nil, err
			}
			detail := fmt.Sprintf("%s %s linked by the phone number %s", acct.Channel, in.SenderID, e164)
			if err := contacts.Log(ctx, tx, c.ID, schematype.InteractionLinked, acct.Channel, nil, detail, s.now()); err != nil {
				return nil, nil, err
			}
			return id, c, nil
		}
	}
	name := in.SenderName
	if name == "" {
		name = in.SenderID
	}
	name = truncate(name, 200)
	cc := tx.Contact.Create().SetDisplayName(name).SetKnown(false)
	var ph string
	switch {
	case e164 != "":
		// The unique phone key decides between concurrent first messages
		// from one number on two channels: the loser retries and links.
		ph = e164
		cc.SetPhone(ph).SetPhoneKey(ph)
	case f.PhoneSenders:
		// Not a number in international form: shown, never linked.
		ph = in.SenderID
		if !strings.HasPrefix(ph, "+") {
			ph = "+" + ph
		}
		cc.SetPhone(ph)
	}
	cc.SetSearchKey(contacts.SearchKey(&ent.Contact{DisplayName: name, Phone: nonEmpty(ph)},
		[]*ent.ContactIdentity{{ExternalID: in.SenderID, ProfileName: in.SenderName}}))
	contact, err := cc.Save(ctx)
	if err != nil {
		return nil, nil, err
	}
	id, err = tx.ContactIdentity.Create().SetChannel(acct.Channel).SetExternalID(in.SenderID).
		SetProfileName(in.SenderName).SetChannelAccountID(acct.ID).SetContactID(contact.ID).Save(ctx)
	return id, contact, err
}

// attachInbound links a customer message's attachments: a visitor's own
// uploads in its conversation, or files a channel adapter stored (which
// have no uploader).
func attachInbound(ctx context.Context, tx *ent.Tx, messageID int, ids []int, visitorConversation int) error {
	if visitorConversation != 0 {
		return attach(ctx, tx, messageID, ids, attachment.UploaderConversationID(visitorConversation))
	}
	return attach(ctx, tx, messageID, ids, attachment.UploaderConversationIDIsNil(), attachment.UploaderAgentIDIsNil())
}

// attach links uploaded attachments to a message. Each must be unattached
// and match owner (whose upload it is).
func attach(ctx context.Context, tx *ent.Tx, messageID int, ids []int, owner ...predicate.Attachment) error {
	if len(ids) == 0 {
		return nil
	}
	if len(ids) > MaxAttachments {
		return apperr.Invalid("attachmentIDs", "at most %d attachments per message", MaxAttachments)
	}
	q := tx.Attachment.Update().Where(attachment.IDIn(ids...), attachment.Not(attachment.HasMessage())).Where(owner...)
	n, err := q.SetMessageID(messageID).Save(ctx)
	if err != nil {
		return err
	}
	if n != len(dedupe(ids)) {
		return apperr.Invalid("attachmentIDs", "an attachment is unknown, not yours, or already sent")
	}
	return nil
}

func dedupe(ids []int) []int {
	seen := map[int]bool{}
	var out []int
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

// isSerialization reports a PostgreSQL serialization or deadlock failure
// (SQLSTATE 40001/40P01) or SQLite's busy answer: worth one more try.
func isSerialization(err error) bool {
	var se interface{ SQLState() string }
	if errors.As(err, &se) {
		st := se.SQLState()
		return st == "40001" || st == "40P01"
	}
	msg := err.Error()
	return strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}

// without returns ids minus drop.
func without(ids, drop []int) []int {
	d := map[int]bool{}
	for _, id := range drop {
		d[id] = true
	}
	var out []int
	for _, id := range ids {
		if !d[id] {
			out = append(out, id)
		}
	}
	return out
}
