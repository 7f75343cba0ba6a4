package conversations

// Outbound: an agent reaches a customer first (Start), and the rules every
// agent message to a provider obeys: the providers' reply windows, WhatsApp
// templates and Messenger's HUMAN_AGENT tag (outboundRule, shape).
//
// Who may start a conversation: any agent, on any enabled provider
// account, whatever the account's queue. Reaching out is not routing: the
// new conversation is the starting agent's own from the first message (as
// a 3CX agent may message any customer), so nobody else sees it but the
// admins. An open conversation with the same customer on the account is
// continued instead, when the agent may reply in it (their own, or an
// unowned one they see, which the message claims); one that another agent
// owns, or that waits in a queue the agent is not a member of, is
// CONFLICT: two agents never write to one customer at cross purposes.

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/contact"
	"github.com/parleyhq/parley/ent/contactidentity"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/ent/whatsapptemplate"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/channels/provider"
	"github.com/parleyhq/parley/internal/contacts"
	"github.com/parleyhq/parley/internal/phone"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/textsearch"
)

// TemplateInput names a registered WhatsApp template and the values of its
// body placeholders, {{1}} first; for a template with a header, the
// header's parameter (HeaderParameter: a TEXT header's {{1}}; HeaderMediaURL
// or the message's one attachment: a media header's file); and the
// parameters of its buttons.
type TemplateInput struct {
	Name, Language   string
	Parameters       []string
	HeaderParameter  string
	HeaderMediaURL   string
	ButtonParameters []ButtonParameter
}

// ButtonParameter fills in a template's button by index (from 0): a URL
// button's {{1}} suffix, or a QUICK_REPLY button's payload.
type ButtonParameter struct {
	Index int
	Value string
}

// StartInput is an agent's first message to a customer: to a contact
// (ContactID) or a phone number (To, E.164, SMS and WhatsApp), a body (with
// attachments) or a WhatsApp template.
type StartInput struct {
	ChannelAccountID int
	ContactID        int
	To               string
	Body             string
	Template         *TemplateInput
	AttachmentIDs    []int
	ClientMutationID string
}

// Start sends an agent's message to a customer on a channel account: in
// the customer's open conversation there, or in a new one the agent owns.
// Concurrent starts for one customer on one account meet in one
// conversation (the unique open key and identity indexes decide; the loser
// retries and finds the winner's rows). A contact merged into another,
// before or during the start, is reached as the survivor (its id forwards
// to it; a merge under way makes the start try again). A retried start
// with the same clientMutationID returns the first message.
func (s *Service) Start(ctx context.Context, in StartInput) (*Sent, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	if (in.ContactID != 0) == (strings.TrimSpace(in.To) != "") {
		return nil, apperr.Invalid("to", "give exactly one of contactID and to")
	}
	body, err := checkContent(in.Body, in.Template, in.AttachmentIDs, in.ClientMutationID)
	if err != nil {
		return nil, err
	}
	if in.ClientMutationID != "" {
		if out, err := s.previousStart(ctx, p, in); out != nil || err != nil {
			return out, err
		}
	}
	var lastErr error
	for attempt := 0; attempt < maxAttempts; attempt++ {
		out, err := s.startOnce(ctx, p, in, body)
		if err == nil {
			out.Message, out.Conversation = out.Message.Unwrap(), out.Conversation.Unwrap()
			return out, nil
		}
		if ent.IsConstraintError(err) && in.ClientMutationID != "" {
			if prev, perr := s.previousStart(ctx, p, in); prev != nil || perr != nil {
				return prev, perr
			}
		}
		// A constraint or serialization failure, or the contact merged
		// away meanwhile: the next attempt finds the winner's rows, or the
		// surviving contact.
		if !ent.IsConstraintError(err) && !isSerialization(err) && !errors.Is(err, contacts.ErrMoved) {
			return nil, store.Coded(err, "conversation")
		}
		lastErr = err
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return nil, lastErr
}

func (s *Service) startOnce(ctx context.Context, p auth.Principal, in StartInput, body string) (*Sent, error) {
	out := &Sent{}
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		acct, err := tx.ChannelAccount.Get(ctx, in.ChannelAccountID)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("channel account")
		}
		if err != nil {
			return err
		}
		f, _ := provider.For(acct.Channel)
		if acct.Channel == schematype.ChannelLiveChat || f.Name == "" {
			return apperr.Invalid("channelAccountID", "a live chat is started by the website visitor, not by an agent")
		}
		if !acct.Enabled {
			return apperr.Invalid("channelAccountID", "the channel account is disabled")
		}
		ident, ct, err := s.recipient(ctx, tx, acct, f, in)
		if err != nil {
			return err
		}
		if ct.Blocked {
			field := "contactID"
			if in.To != "" {
				field = "to"
			}
			return apperr.Invalid(field, "the contact is blocked")
		}
		conv, err := tx.Conversation.Query().Where(conversation.OpenKey(openKey(acct.ID, ident.ID))).Only(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return err
		}
		var sub *subject
		last, err := customerLastMessage(ctx, tx, ident.ID)
		if err != nil {
			return err
		}
		if conv != nil {
			if sub, err = judge(ctx, tx.Client(), p, conv.ID); err != nil {
				return err
			}
			if !sub.access.Reply {
				return apperr.New(apperr.Conflict,
					"the customer has an open conversation on this account that you may not write in (another agent owns it, or it waits in a queue you are not a member of)")
			}
		}
		d := draft{body: body, attachmentIDs: in.AttachmentIDs, clientMutationID: in.ClientMutationID}
		if err := s.shape(ctx, tx, acct, acct.Channel, last, in.Template, "channelAccountID", &d); err != nil {
			return err
		}
		now := s.now()
		var lost []int
		created, claimed := false, false
		if conv == nil {
			conv, err = tx.Conversation.Create().
				SetChannel(acct.Channel).SetStatus(schematype.ConversationOpen).
				SetUnknownContact(!ct.Known).SetOpenKey(openKey(acct.ID, ident.ID)).
				SetChannelAccountID(acct.ID).SetContactID(ct.ID).SetIdentityID(ident.ID).
				SetNillableQueueID(acct.QueueID).SetOwnerID(p.AgentID).SetTakenAt(now).
				SetLastMessageAt(now).SetNillableCustomerLastMessageAt(last).SetCreatedAt(now).
				Save(ctx)
			if err != nil {
				return err
			}
			created = true
			if err := logInteraction(ctx, tx, conv, schematype.InteractionCreated, &p.AgentID, "started by an agent", now); err != nil {
				return err
			}
			if err := logInteraction(ctx, tx, conv, schematype.InteractionTaken, &p.AgentID, "", now); err != nil {
				return err
			}
		} else if conv.OwnerID == nil {
			if lost, err = s.claim(ctx, tx, conv, p.AgentID, sub.viewer); err != nil {
				return err
			}
			claimed = true
		}
		m, err := s.storeOutbound(ctx, tx, p, conv, d)
		if err != nil {
			return err
		}
		if err := stats.Replied(ctx, tx, conv, p.AgentID, s.now()); err != nil {
			return err
		}
		switch {
		case created:
			s.emit(after, pubsub.Event{Kind: pubsub.KindConversationCreated, ConversationID: conv.ID, MessageID: m.ID},
				[]int{p.AgentID}, false)
		case claimed:
			s.emitOwnerChange(after, conv.ID, p.AgentID, lost)
			s.emit(after, pubsub.Event{Kind: pubsub.KindMessageAdded, ConversationID: conv.ID, MessageID: m.ID},
				[]int{p.AgentID}, false)
		default:
			s.emit(after, pubsub.Event{Kind: pubsub.KindMessageAdded, ConversationID: conv.ID, MessageID: m.ID},
				sub.viewer.Agents(), false)
		}
		out.Message = m
		out.Conversation, err = tx.Conversation.Get(ctx, conv.ID)
		return err
	})
	return out, err
}

// previousStart returns the message an earlier start with the same
// clientMutationID stored, if it is still visible to the caller.
func (s *Service) previousStart(ctx context.Context, p auth.Principal, in StartInput) (*Sent, error) {
	m, err := s.client.Message.Query().Where(
		message.SenderAgentID(p.AgentID), message.ClientMutationID(in.ClientMutationID),
	).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if m.ChannelAccountID == nil || *m.ChannelAccountID != in.ChannelAccountID {
		return nil, apperr.Invalid("clientMutationID", "clientMutationID was already used for another message")
	}
	c, _, err := s.load(ctx, s.client, p, m.ConversationID)
	if err != nil {
		return nil, err
	}
	return &Sent{Message: m, Conversation: c}, nil
}

// recipient finds the customer's identity on the account, creating it (and,
// for a new phone number, its contact) when the customer never wrote there.
// A phone number's identity carries the id inbound messages from that
// number carry (provider.Facts.SenderIDOf), so that the customer's answer
// lands in the conversation started here.
func (s *Service) recipient(ctx context.Context, tx *ent.Tx, acct *ent.ChannelAccount, f provider.Facts, in StartInput) (*ent.ContactIdentity, *ent.Contact, error) {
	if in.To != "" {
		if !f.PhoneSenders || f.SenderIDOf == nil {
			return nil, nil, apperr.Invalid("to", "%s customers are not reached by phone number: give contactID", f.Label)
		}
		e164, err := phone.Normalize(in.To)
		if err != nil {
			return nil, nil, apperr.Invalid("to", "to must be an international phone number in E.164 form, such as +14155550100")
		}
		ext := f.SenderIDOf(e164)
		ident, err := tx.ContactIdentity.Query().Where(contactidentity.ChannelAccountID(acct.ID), contactidentity.ExternalID(ext)).Only(ctx)
		if err == nil {
			ct, err := lockContact(ctx, tx, ident.ContactID)
			return ident, ct, err
		}
		if !ent.IsNotFound(err) {
			return nil, nil, err
		}
		// A contact who has this number already (from another channel, or
		// typed in by an agent) gets the new identity; else a new one.
		// (contacts.ByPhone locks it; one number is one contact.)
		ct, err := contacts.ByPhone(ctx, tx, e164)
		if err != nil {
			return nil, nil, err
		}
		if ct == nil {
			ct, err = tx.Contact.Create().SetDisplayName(e164).SetPhone(e164).SetPhoneKey(e164).SetKnown(false).
				SetSearchKey(textsearch.Key(e164, e164)).Save(ctx)
			if err != nil {
				return nil, nil, err
			}
		}
		ident, err = newIdentity(ctx, tx, acct, ext, ct.ID)
		return ident, ct, err
	}
	id, err := contactNow(ctx, tx, in.ContactID)
	if err != nil {
		return nil, nil, err
	}
	ct, err := lockContact(ctx, tx, id)
	if err != nil {
		return nil, nil, err
	}
	ident, err := tx.ContactIdentity.Query().Where(contactidentity.ChannelAccountID(acct.ID), contactidentity.ContactID(ct.ID)).
		Order(ent.Asc(contactidentity.FieldID)).First(ctx)
	if err == nil {
		return ident, ct, nil
	}
	if !ent.IsNotFound(err) {
		return nil, nil, err
	}
	if !f.PhoneSenders || f.SenderIDOf == nil {
		return nil, nil, apperr.Invalid("contactID", "the contact has never written to this %s account: its customers can only be reached after they wrote", f.Label)
	}
	if ct.Phone == nil || *ct.Phone == "" {
		return nil, nil, apperr.Invalid("contactID", "the contact has no phone number to reach on %s", f.Label)
	}
	e164, err := phone.Normalize(*ct.Phone)
	if err != nil {
		return nil, nil, apperr.Invalid("contactID", "the contact's phone number is not in international (E.164) form")
	}
	ext := f.SenderIDOf(e164)
	other, err := tx.ContactIdentity.Query().Where(contactidentity.ChannelAccountID(acct.ID), contactidentity.ExternalID(ext)).Only(ctx)
	if err == nil && other.ContactID != ct.ID {
		return nil, nil, apperr.Taken("contactID", "the number %s belongs to another contact on this account; merge the two first", e164)
	}
	if err != nil && !ent.IsNotFound(err) {
		return nil, nil, err
	}
	ident, err = newIdentity(ctx, tx, acct, ext, ct.ID)
	return ident, ct, err
}

// contactNow is where contact id is now: id itself, or the contact it was
// merged into (an agent may start from a contact page opened before the
// merge); NOT_FOUND when it was deleted.
func contactNow(ctx context.Context, tx *ent.Tx, id int) (int, error) {
	if n, err := tx.Contact.Query().Where(contact.ID(id)).Count(ctx); err != nil || n == 1 {
		return id, err
	}
	into, err := contacts.Survivor(ctx, tx, id)
	if err != nil {
		return 0, err
	}
	if into == 0 {
		return 0, apperr.NotFoundf("contact")
	}
	return into, nil
}

// lockContact locks contact id for the rest of tx (contacts.Lock: a merge,
// delete or block of it waits for this start, or this start for them);
// contacts.ErrMoved when it went in between, and Start tries again.
func lockContact(ctx context.Context, tx *ent.Tx, id int) (*ent.Contact, error) {
	locked, err := contacts.Lock(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if len(locked) == 0 {
		return nil, contacts.ErrMoved
	}
	return locked[0], nil
}

func newIdentity(ctx context.Context, tx *ent.Tx, acct *ent.ChannelAccount, ext string, contactID int) (*ent.ContactIdentity, error) {
	return tx.ContactIdentity.Create().SetChannel(acct.Channel).SetExternalID(ext).
		SetChannelAccountID(acct.ID).SetContactID(contactID).Save(ctx)
}

// customerLastMessage is when the customer last wrote from this identity,
// in any of its conversations (a conversation dealt with an hour ago still
// leaves the window open for a new one).
func customerLastMessage(ctx context.Context, tx *ent.Tx, identityID int) (*time.Time, error) {
	c, err := tx.Conversation.Query().
		Where(conversation.IdentityID(identityID), conversation.CustomerLastMessageAtNotNil()).
		Order(ent.Desc(conversation.FieldCustomerLastMessageAt)).First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return c.CustomerLastMessageAt, nil
}

// shape applies the window rules to an agent's message d to a customer who
// last wrote at last, on account acct (nil when it was removed) of channel
// ch, and completes d: the template to send (its rendered text as the
// body), or the tag. field names the input a window refusal is about.
func (s *Service) shape(ctx context.Context, tx *ent.Tx, acct *ent.ChannelAccount, ch schematype.Channel, last *time.Time, tpl *TemplateInput, field string, d *draft) error {
	f, _ := provider.For(ch)
	var cfg schematype.ChannelConfig
	if acct != nil {
		cfg = acct.Config
	}
	tag, err := outboundRule(f, cfg, last, s.now(), tpl != nil, field)
	if err != nil {
		return err
	}
	d.tag = tag
	if tpl == nil {
		return nil
	}
	if acct == nil {
		return apperr.Invalid("whatsappTemplate", "the conversation's WhatsApp account was removed")
	}
	d.template, d.body, err = resolveTemplate(ctx, tx, acct.ID, tpl, d.attachmentIDs)
	return err
}

// outboundRule is the providers' window rule for one agent message: a
// customer who last wrote at last (nil: never) may be sent
//
//   - on SMS: anything, at any time;
//   - on WhatsApp: free text within 24 hours, an approved template always;
//   - on Messenger: free text within 24 hours, and up to 7 days with the
//     HUMAN_AGENT tag when the account's humanAgentTag enables it.
//
// It returns the message tag to send with ("" for none).
func outboundRule(f provider.Facts, cfg schematype.ChannelConfig, last *time.Time, now time.Time, template bool, field string) (string, error) {
	if template && !f.Templates {
		return "", apperr.Invalid("whatsappTemplate", "only WhatsApp accounts send WhatsApp templates")
	}
	if template || f.ReplyWindow == 0 {
		return "", nil
	}
	since := time.Duration(-1)
	if last != nil {
		since = now.Sub(*last)
	}
	if since >= 0 && since <= f.ReplyWindow {
		return "", nil
	}
	hours := int(f.ReplyWindow / time.Hour)
	switch {
	case f.Templates:
		return "", apperr.Invalid(field,
			"more than %d hours have passed since the customer's last message (or they never wrote): %s only accepts template messages outside the customer service window; send a whatsappTemplate",
			hours, f.Label)
	case f.TagWindow > 0 && since >= 0 && since <= f.TagWindow && cfg.HumanAgentTag:
		return f.Tag, nil
	case f.TagWindow > 0 && since >= 0 && since <= f.TagWindow:
		return "", apperr.Invalid(field,
			"more than %d hours have passed since the customer's last message: %s takes an agent's message for %d days only with the %s tag, which this account does not enable (humanAgentTag)",
			hours, f.Label, int(f.TagWindow/(24*time.Hour)), f.Tag)
	case f.TagWindow > 0:
		return "", apperr.Invalid(field,
			"%s takes messages only within %d hours of the customer's last message (%d days with the %s tag where the account enables it), and the customer has not written for longer (or never wrote)",
			f.Label, hours, int(f.TagWindow/(24*time.Hour)), f.Tag)
	}
	return "", apperr.Invalid(field, "more than %d hours have passed since the customer's last message: %s does not accept the message",
		hours, f.Label)
}

// resolveTemplate checks a template request against the account's
// registered templates (the name and language must match one, APPROVED,
// with one parameter per placeholder of its body, header and buttons) and
// returns what the outbox sends and the rendered text the timeline shows.
// attachmentIDs are the message's: one at most, the file of a media header
// that no headerMediaURL gives.
func resolveTemplate(ctx context.Context, tx *ent.Tx, accountID int, in *TemplateInput, attachmentIDs []int) (*schematype.TemplateMessage, string, error) {
	name := strings.TrimSpace(in.Name)
	lang, ok := provider.TemplateLanguage(in.Language)
	if !ok {
		return nil, "", apperr.Invalid("whatsappTemplate.language", "language must be a WhatsApp language code such as en, en_US or pt_BR")
	}
	t, err := tx.WhatsAppTemplate.Query().Where(whatsapptemplate.ChannelAccountID(accountID),
		whatsapptemplate.Name(name), whatsapptemplate.Language(lang)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, "", apperr.Invalid("whatsappTemplate", "the account has no WhatsApp template %q in %s", name, lang)
	}
	if err != nil {
		return nil, "", err
	}
	if t.Status != "APPROVED" {
		return nil, "", apperr.Invalid("whatsappTemplate", "the WhatsApp template %q in %s is %s, not APPROVED", name, lang, t.Status)
	}
	if len(in.Parameters) != t.Placeholders {
		return nil, "", apperr.Invalid("whatsappTemplate.parameters", "the WhatsApp template %q takes %d parameters, %d given", name, t.Placeholders, len(in.Parameters))
	}
	params := make([]string, len(in.Parameters))
	for i, v := range in.Parameters {
		v = strings.TrimSpace(v)
		if v == "" || utf8.RuneCountInString(v) > provider.MaxTemplateParameter {
			return nil, "", apperr.Invalid("whatsappTemplate.parameters", "parameter %d must have 1 to %d characters", i+1, provider.MaxTemplateParameter)
		}
		params[i] = v
	}
	out := &schematype.TemplateMessage{Name: t.Name, Language: t.Language, Parameters: params}
	if out.Header, err = headerParameter(ctx, tx, t, in, attachmentIDs); err != nil {
		return nil, "", err
	}
	if out.Buttons, err = buttonParameters(t, in.ButtonParameters); err != nil {
		return nil, "", err
	}
	text := provider.RenderTemplate(t.Body, params)
	if h := t.HeaderComponent; h != nil && h.Format == "TEXT" {
		// The timeline shows the header above the body, as WhatsApp does.
		ht := h.Text
		if out.Header != nil {
			ht = provider.RenderTemplate(ht, []string{out.Header.Text})
		}
		text = ht + "\n" + text
	}
	return out, text, nil
}

// headerParameter checks the header parameter a template message gives
// against template t's header: a TEXT header with {{1}} takes
// headerParameter; a media header takes headerMediaURL (https) or the
// message's one attachment, of the header's kind; nothing else takes any.
func headerParameter(ctx context.Context, tx *ent.Tx, t *ent.WhatsAppTemplate, in *TemplateInput, attachmentIDs []int) (*schematype.TemplateHeaderParameter, error) {
	h := t.HeaderComponent
	text, link := strings.TrimSpace(in.HeaderParameter), strings.TrimSpace(in.HeaderMediaURL)
	media := h != nil && h.Format != "TEXT"
	switch {
	case len(attachmentIDs) > 0 && !media:
		return nil, apperr.Invalid("attachmentIDs", "the WhatsApp template %q has no media header: it takes no attachments", t.Name)
	case len(attachmentIDs) > 1:
		return nil, apperr.Invalid("attachmentIDs", "a template's media header takes one file")
	case link != "" && !media:
		return nil, apperr.Invalid("whatsappTemplate.headerMediaURL", "the WhatsApp template %q has no media header", t.Name)
	case text != "" && (h == nil || h.Placeholders() == 0 || media):
		return nil, apperr.Invalid("whatsappTemplate.headerParameter", "the WhatsApp template %q has no header placeholder", t.Name)
	case h == nil:
		return nil, nil
	case !media && h.Placeholders() == 0:
		return nil, nil
	case !media:
		if text == "" || utf8.RuneCountInString(text) > provider.MaxTemplateHeaderText {
			return nil, apperr.Invalid("whatsappTemplate.headerParameter",
				"the WhatsApp template %q takes a header parameter of 1 to %d characters", t.Name, provider.MaxTemplateHeaderText)
		}
		return &schematype.TemplateHeaderParameter{Format: h.Format, Text: text}, nil
	case link != "" && len(attachmentIDs) > 0:
		return nil, apperr.Invalid("whatsappTemplate.headerMediaURL", "give a headerMediaURL or an attachment, not both")
	case link != "":
		u, err := url.Parse(link)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, apperr.Invalid("whatsappTemplate.headerMediaURL", "headerMediaURL must be a public https URL")
		}
		return &schematype.TemplateHeaderParameter{Format: h.Format, Link: link}, nil
	case len(attachmentIDs) == 0:
		return nil, apperr.Invalid("whatsappTemplate.headerMediaURL",
			"the WhatsApp template %q has a %s header: give its headerMediaURL or attach the file", t.Name, h.Format)
	}
	a, err := tx.Attachment.Get(ctx, attachmentIDs[0])
	if ent.IsNotFound(err) {
		return nil, apperr.Invalid("attachmentIDs", "no such attachment")
	}
	if err != nil {
		return nil, err
	}
	if want := strings.ToLower(h.Format) + "/"; h.Format != "DOCUMENT" && !strings.HasPrefix(strings.ToLower(a.ContentType), want) {
		return nil, apperr.Invalid("attachmentIDs", "the template's %s header takes a %s file, not %s", h.Format, strings.TrimSuffix(want, "/"), a.ContentType)
	}
	return &schematype.TemplateHeaderParameter{Format: h.Format}, nil
}

// buttonParameters checks a template message's button parameters against
// template t's buttons: every URL button with a {{1}} suffix takes one; a
// QUICK_REPLY button may take a payload; a PHONE_NUMBER button, or a URL
// without {{1}}, takes none; one per button.
func buttonParameters(t *ent.WhatsAppTemplate, given []ButtonParameter) ([]schematype.TemplateButtonParameter, error) {
	const field = "whatsappTemplate.buttonParameters"
	byIndex := map[int]string{}
	for _, g := range given {
		if g.Index < 0 || g.Index >= len(t.ButtonComponents) {
			return nil, apperr.Invalid(field, "the WhatsApp template %q has %d buttons: there is no button %d (buttons count from 0)",
				t.Name, len(t.ButtonComponents), g.Index)
		}
		if _, dup := byIndex[g.Index]; dup {
			return nil, apperr.Invalid(field, "button %d is given twice", g.Index)
		}
		v := strings.TrimSpace(g.Value)
		if v == "" || utf8.RuneCountInString(v) > provider.MaxTemplateButtonParameter {
			return nil, apperr.Invalid(field, "the parameter of button %d must have 1 to %d characters", g.Index, provider.MaxTemplateButtonParameter)
		}
		byIndex[g.Index] = v
	}
	var out []schematype.TemplateButtonParameter
	for i, b := range t.ButtonComponents {
		v, ok := byIndex[i]
		switch {
		case b.Placeholders() == 1 && !ok:
			return nil, apperr.Invalid(field, "the WhatsApp template %q's button %d (%s %q) takes its URL's {{1}}: none given", t.Name, i, b.Type, b.Text)
		case !ok:
			continue
		case b.Type == "QUICK_REPLY" || b.Placeholders() == 1:
			out = append(out, schematype.TemplateButtonParameter{Index: i, Type: b.Type, Value: v})
		default:
			return nil, apperr.Invalid(field, "the WhatsApp template %q's button %d (%s %q) takes no parameter", t.Name, i, b.Type, b.Text)
		}
	}
	return out, nil
}
