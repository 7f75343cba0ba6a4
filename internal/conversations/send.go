package conversations

// Sending: an agent's reply, its idempotent retry and the providers' reply
// window.

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/attachment"
	"github.com/parleyhq/parley/ent/channelaccount"
	"github.com/parleyhq/parley/ent/interaction"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/channels/provider"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/textsearch"
)

// SendInput is an agent's message.
type SendInput struct {
	ConversationID   int
	Body             string
	AttachmentIDs    []int
	ClientMutationID string
}

// Sent is the outcome of Send.
type Sent struct {
	Message      *ent.Message
	Conversation *ent.Conversation
}

// Send stores an agent's reply. The first reply to an unowned conversation
// claims it in the same transaction: of concurrent first replies exactly one
// wins; the others get CONFLICT and nothing of theirs is stored. A retried
// send with the same clientMutationID returns the first message.
func (s *Service) Send(ctx context.Context, in SendInput) (*Sent, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	body := strings.TrimRight(in.Body, " \t\r\n")
	if strings.TrimSpace(body) == "" && len(in.AttachmentIDs) == 0 {
		return nil, apperr.Invalid("body", "a message needs a body or attachments")
	}
	if utf8.RuneCountInString(body) > MaxBodyLen {
		return nil, apperr.Invalid("body", "the message is longer than %d characters", MaxBodyLen)
	}
	if len(in.ClientMutationID) > MaxClientMutation {
		return nil, apperr.Invalid("clientMutationID", "clientMutationID is longer than %d characters", MaxClientMutation)
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
		if err := s.checkReplyWindow(c); err != nil {
			return err
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
		now := s.now()
		mc := tx.Message.Create().SetConversationID(c.ID).SetDirection(schematype.DirectionOutbound).
			SetBody(body).SetSearchBody(textsearch.Fold(body)).SetCreatedAt(now).
			SetSenderAgentID(p.AgentID).SetNillableClientMutationID(nonEmpty(in.ClientMutationID))
		switch c.Channel {
		case schematype.ChannelInternal:
		case schematype.ChannelLiveChat:
			mc.SetDeliveryStatus(schematype.DeliverySent)
		default:
			// Provider channels hand the message to the delivery outbox:
			// stored PENDING and due now, in the same transaction, so a
			// crash between "stored" and "sent" loses nothing.
			mc.SetDeliveryStatus(schematype.DeliveryPending).SetNillableChannelAccountID(c.ChannelAccountID).
				SetNextAttemptAt(now)
		}
		m, err := mc.Save(ctx)
		if err != nil {
			return err
		}
		if err := attach(ctx, tx, m.ID, in.AttachmentIDs, attachment.UploaderAgentID(p.AgentID)); err != nil {
			return err
		}
		upd := tx.Conversation.UpdateOneID(c.ID).SetLastMessageAt(now).SetLastMessageID(m.ID)
		if c.Archived {
			upd.SetArchived(false)
		}
		if err := upd.Exec(ctx); err != nil {
			return err
		}
		if err := s.markReadTx(ctx, tx, c.ID, p.AgentID); err != nil {
			return err
		}
		if c.Channel != schematype.ChannelInternal {
			replied, err := tx.Interaction.Query().Where(interaction.ConversationID(c.ID),
				interaction.AgentID(p.AgentID), interaction.KindEQ(schematype.InteractionReplied)).Exist(ctx)
			if err != nil {
				return err
			}
			if !replied {
				if err := logInteraction(ctx, tx, c, schematype.InteractionReplied, &p.AgentID, "", now); err != nil {
					return err
				}
			}
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

// checkReplyWindow refuses a free-form reply that the provider would
// reject: later after the customer's last message than its reply window
// (provider.Facts.ReplyWindow: 24 hours for WhatsApp and Messenger).
func (s *Service) checkReplyWindow(c *ent.Conversation) error {
	f, ok := provider.For(c.Channel)
	if !ok || f.ReplyWindow == 0 {
		return nil
	}
	if c.CustomerLastMessageAt != nil && s.now().Sub(*c.CustomerLastMessageAt) <= f.ReplyWindow {
		return nil
	}
	return apperr.Invalid("conversationID",
		"more than %d hours have passed since the customer's last message: %s only accepts template messages outside the customer service window",
		int(f.ReplyWindow/time.Hour), f.Label)
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
