package conversations

// Sending: an agent's reply, its idempotent retry and the providers' reply
// window.

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/attachment"
	"github.com/parleyhq/parley/ent/channelaccount"
	"github.com/parleyhq/parley/ent/interaction"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/textsearch"
)

// SendInput is an agent's message: a body (with attachments), or a
// WhatsApp template instead.
type SendInput struct {
	ConversationID   int
	Body             string
	AttachmentIDs    []int
	ClientMutationID string
	// Template, instead of Body, sends an approved WhatsApp template: the
	// one kind of message WhatsApp delivers outside the 24-hour window.
	Template *TemplateInput
}

// Sent is the outcome of Send.
type Sent struct {
	Message      *ent.Message
	Conversation *ent.Conversation
}

// Send stores an agent's reply. The first reply to an unowned conversation
// claims it in the same transaction: of concurrent first replies exactly one
// wins; the others get CONFLICT and nothing of theirs is stored. A retried
// send with the same clientMutationID returns the first message. The
// provider's window rules (outboundRule) decide whether free text may go
// out, or only a template, or a tagged message.
func (s *Service) Send(ctx context.Context, in SendInput) (*Sent, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	body, err := checkContent(in.Body, in.Template, in.AttachmentIDs, in.ClientMutationID)
	if err != nil {
		return nil, err
	}
	if in.ClientMutationID != "" {
		if out, err := s.previousSend(ctx, p, in); out != nil || err != nil {
			return out, err
		}
	}
	out := &Sent{}
	err = s.act(ctx, in.ConversationID, OpReply, func(tx *ent.Tx, after *store.After, p auth.Principal, sub *subject) error {
		c := sub.c
		if c.Status != schematype.ConversationOpen {
			return apperr.Invalid("conversationID", "the conversation is %s", strings.ToLower(strings.ReplaceAll(string(c.Status), "_", " ")))
		}
		d := draft{body: body, attachmentIDs: in.AttachmentIDs, clientMutationID: in.ClientMutationID}
		if c.Channel != schematype.ChannelInternal && c.Channel != schematype.ChannelLiveChat {
			var acct *ent.ChannelAccount
			if c.ChannelAccountID != nil {
				var err error
				if acct, err = tx.ChannelAccount.Get(ctx, *c.ChannelAccountID); err != nil && !ent.IsNotFound(err) {
					return err
				}
			}
			if err := s.shape(ctx, tx, acct, c.Channel, c.CustomerLastMessageAt, in.Template, "conversationID", &d); err != nil {
				return err
			}
		} else if in.Template != nil {
			return apperr.Invalid("whatsappTemplate", "only WhatsApp conversations take WhatsApp templates")
		}
		if err := checkAccountOn(ctx, tx, c); err != nil {
			return err
		}
		var lost []int
		claimed := false
		if c.Channel != schematype.ChannelInternal && c.OwnerID == nil {
			var err error
			if lost, err = s.claim(ctx, tx, c, p.AgentID, sub.viewer); err != nil {
				return err
			}
			claimed = true
		}
		m, err := s.storeOutbound(ctx, tx, p, c, d)
		if err != nil {
			return err
		}
		// A customer-facing reply (never a private note, which does not
		// come through Send) may be the first one.
		if err := stats.Replied(ctx, tx, c, p.AgentID, s.now()); err != nil {
			return err
		}
		if claimed {
			s.emitOwnerChange(after, c.ID, p.AgentID, lost)
		}
		// Who sees the message: after a claim, its new owner alone.
		to := sub.viewer.Agents()
		if claimed {
			to = []int{p.AgentID}
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindMessageAdded, ConversationID: c.ID, MessageID: m.ID},
			to, c.Channel == schematype.ChannelLiveChat)
		out.Message = m
		out.Conversation, err = tx.Conversation.Get(ctx, c.ID)
		return err
	})
	if ent.IsConstraintError(err) && in.ClientMutationID != "" {
		// A concurrent retry with the same clientMutationID won the race.
		if prev, perr := s.previousSend(ctx, p, in); prev != nil || perr != nil {
			return prev, perr
		}
	}
	if err != nil {
		return nil, err
	}
	out.Message, out.Conversation = out.Message.Unwrap(), out.Conversation.Unwrap()
	return out, nil
}

// draft is an agent's message as it is stored: the body the timeline shows
// (a template's rendered text), and for the outbox the template or tag to
// send it with.
type draft struct {
	body             string
	template         *schematype.TemplateMessage
	tag              string
	attachmentIDs    []int
	clientMutationID string
}

// checkContent validates what an agent sends and returns the body trimmed:
// a body or attachments, or a template (with its media header's file).
func checkContent(body string, tpl *TemplateInput, attachmentIDs []int, clientMutationID string) (string, error) {
	body = strings.TrimRight(body, " \t\r\n")
	blank := strings.TrimSpace(body) == ""
	switch {
	case tpl != nil && !blank:
		return "", apperr.Invalid("body", "give a body or a whatsappTemplate, not both")
	case tpl != nil && len(attachmentIDs) > 1:
		// One may be its media header's file (resolveTemplate decides).
		return "", apperr.Invalid("attachmentIDs", "a template message takes one attachment at most, its media header's file")
	case tpl == nil && blank && len(attachmentIDs) == 0:
		return "", apperr.Invalid("body", "a message needs a body or attachments")
	}
	if utf8.RuneCountInString(body) > MaxBodyLen {
		return "", apperr.Invalid("body", "the message is longer than %d characters", MaxBodyLen)
	}
	if len(clientMutationID) > MaxClientMutation {
		return "", apperr.Invalid("clientMutationID", "clientMutationID is longer than %d characters", MaxClientMutation)
	}
	if tpl == nil {
		return body, nil
	}
	return "", nil
}

// storeOutbound appends an agent's message to the open conversation c,
// which p owns or takes part in: for a provider channel PENDING in the
// delivery outbox, due now, in the same transaction (a crash between
// "stored" and "sent" loses nothing). It moves the conversation's last
// message, brings it back from the archive, marks it read for p and logs
// p's first reply. Events are the caller's.
func (s *Service) storeOutbound(ctx context.Context, tx *ent.Tx, p auth.Principal, c *ent.Conversation, d draft) (*ent.Message, error) {
	now := s.now()
	mc := tx.Message.Create().SetConversationID(c.ID).SetDirection(schematype.DirectionOutbound).
		SetBody(d.body).SetSearchBody(textsearch.Fold(d.body)).SetCreatedAt(now).
		SetSenderAgentID(p.AgentID).SetNillableClientMutationID(nonEmpty(d.clientMutationID))
	switch c.Channel {
	case schematype.ChannelInternal:
	case schematype.ChannelLiveChat:
		mc.SetDeliveryStatus(schematype.DeliverySent)
	default:
		mc.SetDeliveryStatus(schematype.DeliveryPending).SetNillableChannelAccountID(c.ChannelAccountID).
			SetNextAttemptAt(now)
		if d.template != nil {
			mc.SetWhatsappTemplate(d.template)
		}
		if d.tag != "" {
			mc.SetMessagingTag(d.tag)
		}
	}
	m, err := mc.Save(ctx)
	if err != nil {
		return nil, err
	}
	if err := attach(ctx, tx, m.ID, d.attachmentIDs, attachment.UploaderAgentID(p.AgentID)); err != nil {
		return nil, err
	}
	upd := tx.Conversation.UpdateOneID(c.ID).SetLastMessageAt(now).SetLastMessageID(m.ID)
	if c.Archived {
		upd.SetArchived(false)
	}
	if err := upd.Exec(ctx); err != nil {
		return nil, err
	}
	if err := s.markReadTx(ctx, tx, c.ID, p.AgentID); err != nil {
		return nil, err
	}
	if c.Channel != schematype.ChannelInternal {
		replied, err := tx.Interaction.Query().Where(interaction.ConversationID(c.ID),
			interaction.AgentID(p.AgentID), interaction.KindEQ(schematype.InteractionReplied)).Exist(ctx)
		if err != nil {
			return nil, err
		}
		if !replied {
			if err := logInteraction(ctx, tx, c, schematype.InteractionReplied, &p.AgentID, "", now); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// previousSend returns the message an earlier send with the same
// clientMutationID stored, if it is still visible to the caller.
func (s *Service) previousSend(ctx context.Context, p auth.Principal, in SendInput) (*Sent, error) {
	m, err := s.client.Message.Query().Where(
		message.SenderAgentID(p.AgentID), message.ClientMutationID(in.ClientMutationID),
	).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if m.ConversationID != in.ConversationID {
		return nil, apperr.Invalid("clientMutationID", "clientMutationID was already used for another conversation")
	}
	c, _, err := s.load(ctx, s.client, p, m.ConversationID)
	if err != nil {
		return nil, err
	}
	return &Sent{Message: m, Conversation: c}, nil
}

// checkAccountOn refuses a reply in a customer conversation whose channel
// account is disabled or deleted (CONFLICT): the provider would never get
// it, or the widget's visitor would answer into a chat that is off.
func checkAccountOn(ctx context.Context, tx *ent.Tx, c *ent.Conversation) error {
	if c.Channel == schematype.ChannelInternal {
		return nil
	}
	if c.ChannelAccountID == nil {
		return apperr.New(apperr.Conflict, "the channel account of this conversation was deleted: replies cannot be delivered")
	}
	on, err := tx.ChannelAccount.Query().Where(channelaccount.ID(*c.ChannelAccountID), channelaccount.Enabled(true)).Exist(ctx)
	if err != nil {
		return err
	}
	if !on {
		return apperr.New(apperr.Conflict, "the channel account of this conversation is disabled: replies cannot be delivered")
	}
	return nil
}
