package conversations

import (
	"context"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/attachment"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/interaction"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/offer"
	"github.com/parleyhq/parley/ent/readstate"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/textsearch"
)

// claim makes agentID the owner of the unowned, open conversation c in one
// conditional update: of concurrent claims exactly one changes a row, and
// the others get CONFLICT. Claiming a conversation one already owns is a
// no-op. before is who saw c until now; claim returns those who lost sight
// of it.
func (s *Service) claim(ctx context.Context, tx *ent.Tx, c *ent.Conversation, agentID int, before *Viewers) (lost []int, err error) {
	if c.OwnerID != nil {
		if *c.OwnerID == agentID {
			return nil, nil
		}
		return nil, apperr.New(apperr.Conflict, "another agent owns this conversation")
	}
	if c.Channel == schematype.ChannelInternal {
		return nil, apperr.Invalid("id", "internal chats have no owner")
	}
	now := s.now()
	n, err := tx.Conversation.Update().
		Where(conversation.ID(c.ID), conversation.OwnerIDIsNil(), conversation.StatusEQ(schematype.ConversationOpen)).
		SetOwnerID(agentID).SetTakenAt(now).ClearRouteAt().Save(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		cur, err := tx.Conversation.Get(ctx, c.ID)
		if err != nil {
			return nil, err
		}
		if cur.OwnerID != nil && *cur.OwnerID == agentID {
			return nil, nil
		}
		if cur.OwnerID == nil {
			return nil, apperr.Invalid("id", "the conversation is closed")
		}
		return nil, apperr.New(apperr.Conflict, "another agent took this conversation first")
	}
	if _, err := tx.Offer.Update().Where(offer.ConversationID(c.ID), offer.Active(true)).SetActive(false).Save(ctx); err != nil {
		return nil, err
	}
	if err := tx.Agent.UpdateOneID(agentID).SetLastAssignedAt(now).Exec(ctx); err != nil {
		return nil, err
	}
	c.OwnerID = &agentID
	if err := logInteraction(ctx, tx, c, schematype.InteractionTaken, &agentID, "", now); err != nil {
		return nil, err
	}
	return without(before.Agents(), []int{agentID}), nil
}

// Take makes the caller the owner of an unowned conversation ("Tomar").
func (s *Service) Take(ctx context.Context, id int) (*ent.Conversation, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	var out *ent.Conversation
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		c, acc, err := s.load(ctx, tx.Client(), p, id)
		if err != nil {
			return err
		}
		if c.OwnerID == nil && !acc.Reply && !p.IsAdmin() {
			return apperr.NotFoundf("conversation")
		}
		lost, err := s.claim(ctx, tx, c, p.AgentID, acc.viewers)
		if err != nil {
			return err
		}
		s.emitOwnerChange(after, c.ID, p.AgentID, lost)
		out, err = tx.Conversation.Get(ctx, id)
		return err
	})
	return unwrap(out, err)
}

// emitOwnerChange tells the new owner and the conversation's subscribers it
// changed, and everyone who lost sight of it that it is gone.
func (s *Service) emitOwnerChange(after *store.After, convID, owner int, lost []int) {
	s.emit(after, pubsub.Event{Kind: pubsub.KindConversationUpdated, ConversationID: convID}, []int{owner}, false)
	if len(lost) > 0 {
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationRemoved, ConversationID: convID, AgentIDs: lost}, lost, false)
	}
}

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
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		c, acc, err := s.load(ctx, tx.Client(), p, in.ConversationID)
		if err != nil {
			return err
		}
		if !acc.Reply {
			if c.OwnerID == nil && p.IsAdmin() && c.Channel != schematype.ChannelInternal {
				acc.Reply = true // an admin may claim an unowned conversation
			} else {
				return apperr.New(apperr.Forbidden, "only the owner replies; take or transfer the conversation first")
			}
		}
		if c.Status != schematype.ConversationOpen {
			return apperr.Invalid("conversationID", "the conversation is %s", strings.ToLower(strings.ReplaceAll(string(c.Status), "_", " ")))
		}
		if err := s.checkReplyWindow(c); err != nil {
			return err
		}
		var lost []int
		claimed := false
		if c.Channel != schematype.ChannelInternal && c.OwnerID == nil {
			if lost, err = s.claim(ctx, tx, c, p.AgentID, acc.viewers); err != nil {
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
		v := acc.viewers
		if claimed {
			v = &Viewers{conv: c, repliers: map[int]bool{p.AgentID: true}}
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindMessageAdded, ConversationID: c.ID, MessageID: m.ID},
			v.Agents(), c.Channel == schematype.ChannelLiveChat)
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

// Transfer hands ownership to another agent; the caller loses access at once
// (unless an admin, who sees everything).
func (s *Service) Transfer(ctx context.Context, id, to int) (*ent.Conversation, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	var out *ent.Conversation
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		c, acc, err := s.load(ctx, tx.Client(), p, id)
		if err != nil {
			return err
		}
		if !acc.Manage {
			return apperr.New(apperr.Forbidden, "you may not transfer this conversation")
		}
		if c.Channel == schematype.ChannelInternal {
			return apperr.Invalid("id", "internal chats cannot be transferred")
		}
		if c.Status != schematype.ConversationOpen {
			return apperr.Invalid("id", "only open conversations can be transferred")
		}
		target, err := tx.Agent.Query().Where(agent.ID(to), agent.Active(true)).Only(ctx)
		if ent.IsNotFound(err) {
			return apperr.Invalid("agentID", "no such active agent")
		}
		if err != nil {
			return err
		}
		if c.OwnerID != nil && *c.OwnerID == target.ID {
			return apperr.Invalid("agentID", "the conversation already belongs to that agent")
		}
		before := acc.viewers
		now := s.now()
		if err := tx.Conversation.UpdateOneID(c.ID).SetOwnerID(target.ID).SetTakenAt(now).
			ClearRouteAt().SetArchived(false).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.Offer.Update().Where(offer.ConversationID(c.ID), offer.Active(true)).SetActive(false).Save(ctx); err != nil {
			return err
		}
		if err := tx.Agent.UpdateOneID(target.ID).SetLastAssignedAt(now).Exec(ctx); err != nil {
			return err
		}
		if err := logInteraction(ctx, tx, c, schematype.InteractionTransferred, &target.ID, "by agent "+strconv.Itoa(p.AgentID), now); err != nil {
			return err
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationCreated, ConversationID: c.ID}, []int{target.ID}, false)
		lost := without(before.Agents(), []int{target.ID})
		if len(lost) > 0 {
			s.emit(after, pubsub.Event{Kind: pubsub.KindConversationRemoved, ConversationID: c.ID, AgentIDs: lost}, lost, false)
		}
		after.Do(func() { s.wake() })
		out, err = tx.Conversation.Get(ctx, c.ID)
		return err
	})
	return unwrap(out, err)
}

// change runs one status change on a conversation the caller may manage.
func (s *Service) change(ctx context.Context, id int, fn func(tx *ent.Tx, after *store.After, p auth.Principal, c *ent.Conversation, v *Viewers) error) (*ent.Conversation, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	var out *ent.Conversation
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		c, acc, err := s.load(ctx, tx.Client(), p, id)
		if err != nil {
			return err
		}
		if !acc.Manage {
			return apperr.New(apperr.Forbidden, "you may not change this conversation")
		}
		v := acc.viewers
		if err := fn(tx, after, p, c, v); err != nil {
			return err
		}
		out, err = tx.Conversation.Get(ctx, id)
		if err != nil {
			return err
		}
		// Routing reconsiders the conversation (an unarchived one may need
		// offers, a closed one none).
		if out.OwnerID == nil {
			d, err := s.router.Route(ctx, tx, out)
			if err != nil {
				return err
			}
			s.router.Record(after, d)
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationUpdated, ConversationID: id}, v.Agents(), false)
		after.Do(func() { s.wake() })
		return nil
	})
	return unwrap(out, err)
}

// wake lets routing offer waiting conversations to agents who freed a slot.
func (s *Service) wake() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.router.WakeWaiting(ctx); err != nil {
		s.log.Warn("wake routing", "err", err)
	}
}

// MarkDealtWith closes and archives a conversation ("Atendido"). The
// customer's next message opens a new conversation through routing.
func (s *Service) MarkDealtWith(ctx context.Context, id int) (*ent.Conversation, error) {
	return s.change(ctx, id, func(tx *ent.Tx, _ *store.After, p auth.Principal, c *ent.Conversation, _ *Viewers) error {
		if c.Channel == schematype.ChannelInternal {
			return apperr.Invalid("id", "internal chats cannot be marked dealt with")
		}
		if c.Status == schematype.ConversationDealtWith {
			return nil
		}
		now := s.now()
		if err := tx.Conversation.UpdateOneID(c.ID).SetStatus(schematype.ConversationDealtWith).
			SetArchived(true).ClearOpenKey().SetClosedAt(now).ClearRouteAt().Exec(ctx); err != nil {
			return err
		}
		return logInteraction(ctx, tx, c, schematype.InteractionDealtWith, &p.AgentID, "", now)
	})
}

// Archive files a conversation away; it stays open, and a new message from
// the customer brings it back.
func (s *Service) Archive(ctx context.Context, id int) (*ent.Conversation, error) {
	return s.setArchived(ctx, id, true, schematype.InteractionArchived)
}

// Unarchive brings a conversation back into the inbox.
func (s *Service) Unarchive(ctx context.Context, id int) (*ent.Conversation, error) {
	return s.setArchived(ctx, id, false, schematype.InteractionUnarchived)
}

func (s *Service) setArchived(ctx context.Context, id int, archived bool, kind schematype.InteractionKind) (*ent.Conversation, error) {
	return s.change(ctx, id, func(tx *ent.Tx, _ *store.After, p auth.Principal, c *ent.Conversation, _ *Viewers) error {
		if c.Archived == archived {
			return nil
		}
		if err := tx.Conversation.UpdateOneID(c.ID).SetArchived(archived).Exec(ctx); err != nil {
			return err
		}
		return logInteraction(ctx, tx, c, kind, &p.AgentID, "", s.now())
	})
}

// Ignore answers the unknown-sender prompt with "Ignore": the conversation
// is archived and nobody is offered it.
func (s *Service) Ignore(ctx context.Context, id int) (*ent.Conversation, error) {
	return s.change(ctx, id, func(tx *ent.Tx, _ *store.After, p auth.Principal, c *ent.Conversation, _ *Viewers) error {
		if !c.UnknownContact {
			return apperr.Invalid("id", "only conversations with an unknown sender can be ignored")
		}
		if c.Archived {
			return nil
		}
		if err := tx.Conversation.UpdateOneID(c.ID).SetArchived(true).Exec(ctx); err != nil {
			return err
		}
		return logInteraction(ctx, tx, c, schematype.InteractionArchived, &p.AgentID, "ignored", s.now())
	})
}

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

// EndChatSession ends a live chat: the visitor is told and can send no
// more in this conversation.
func (s *Service) EndChatSession(ctx context.Context, id int) (*ent.Conversation, error) {
	return s.change(ctx, id, func(tx *ent.Tx, after *store.After, p auth.Principal, c *ent.Conversation, _ *Viewers) error {
		return s.end(ctx, tx, after, p, c, schematype.InteractionEnded)
	})
}

func (s *Service) end(ctx context.Context, tx *ent.Tx, after *store.After, p auth.Principal, c *ent.Conversation, kind schematype.InteractionKind) error {
	if c.Channel != schematype.ChannelLiveChat {
		return apperr.Invalid("id", "only live chats have a session to end")
	}
	now := s.now()
	if c.Status != schematype.ConversationEnded {
		if err := tx.Conversation.UpdateOneID(c.ID).SetStatus(schematype.ConversationEnded).
			ClearOpenKey().SetClosedAt(now).ClearRouteAt().Exec(ctx); err != nil {
			return err
		}
		if err := logInteraction(ctx, tx, c, schematype.InteractionEnded, &p.AgentID, "", now); err != nil {
			return err
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindSessionEnded, ConversationID: c.ID}, nil, true)
	}
	if kind == schematype.InteractionBlocked {
		return logInteraction(ctx, tx, c, schematype.InteractionBlocked, &p.AgentID, c.VisitorIP, now)
	}
	return nil
}

// BlockAnonymousUser ends a live chat and refuses its visitor's IP address
// from then on, on every live-chat account.
func (s *Service) BlockAnonymousUser(ctx context.Context, id int) (*ent.Conversation, error) {
	return s.change(ctx, id, func(tx *ent.Tx, after *store.After, p auth.Principal, c *ent.Conversation, _ *Viewers) error {
		if c.Channel != schematype.ChannelLiveChat {
			return apperr.Invalid("conversationID", "only live-chat visitors can be blocked")
		}
		if c.VisitorIP == "" {
			return apperr.Invalid("conversationID", "the visitor's IP address is unknown")
		}
		err := tx.Block.Create().SetIP(c.VisitorIP).SetCreatedByID(p.AgentID).SetConversationID(c.ID).
			OnConflictColumns("ip").Ignore().Exec(ctx)
		if err != nil {
			return err
		}
		if c.ContactID != nil {
			if err := tx.Contact.UpdateOneID(*c.ContactID).SetBlocked(true).Exec(ctx); err != nil {
				return err
			}
		}
		return s.end(ctx, tx, after, p, c, schematype.InteractionBlocked)
	})
}

// Delete removes a conversation and its messages. Its interactions stay in
// the contacts' history, without the link.
func (s *Service) Delete(ctx context.Context, id int) (int, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return 0, err
	}
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		_, acc, err := s.load(ctx, tx.Client(), p, id)
		if err != nil {
			return err
		}
		if !acc.Manage {
			return apperr.New(apperr.Forbidden, "you may not delete this conversation")
		}
		v := acc.viewers
		if err := tx.Conversation.UpdateOneID(id).ClearLastMessage().Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.Message.Delete().Where(message.ConversationID(id)).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.Offer.Delete().Where(offer.ConversationID(id)).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.ReadState.Delete().Where(readstate.ConversationID(id)).Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.Interaction.Update().Where(interaction.ConversationID(id)).ClearConversationID().Save(ctx); err != nil {
			return err
		}
		if err := tx.Conversation.DeleteOneID(id).Exec(ctx); err != nil {
			return err
		}
		all := v.Agents()
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationRemoved, ConversationID: id, AgentIDs: all}, all, false)
		after.Do(func() { s.wake() })
		return nil
	})
	return id, err
}

// StartInternalChat opens a chat between the caller and colleagues.
func (s *Service) StartInternalChat(ctx context.Context, agentIDs []int, body string) (*ent.Conversation, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	others := without(dedupe(agentIDs), []int{p.AgentID})
	if len(others) == 0 {
		return nil, apperr.Invalid("agentIDs", "name at least one colleague")
	}
	if len(others)+1 > MaxParticipants {
		return nil, apperr.Invalid("agentIDs", "at most %d participants", MaxParticipants)
	}
	body = strings.TrimSpace(body)
	if body == "" || utf8.RuneCountInString(body) > MaxBodyLen {
		return nil, apperr.Invalid("body", "the first message must have 1 to %d characters", MaxBodyLen)
	}
	var out *ent.Conversation
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		n, err := tx.Agent.Query().Where(agent.IDIn(others...), agent.Active(true)).Count(ctx)
		if err != nil {
			return err
		}
		if n != len(others) {
			return apperr.Invalid("agentIDs", "every participant must be an active agent")
		}
		now := s.now()
		c, err := tx.Conversation.Create().SetChannel(schematype.ChannelInternal).
			SetStatus(schematype.ConversationOpen).SetLastMessageAt(now).SetCreatedAt(now).
			AddParticipantIDs(append([]int{p.AgentID}, others...)...).Save(ctx)
		if err != nil {
			return err
		}
		m, err := tx.Message.Create().SetConversationID(c.ID).SetDirection(schematype.DirectionOutbound).
			SetBody(body).SetSearchBody(textsearch.Fold(body)).SetCreatedAt(now).SetSenderAgentID(p.AgentID).Save(ctx)
		if err != nil {
			return err
		}
		if c, err = tx.Conversation.UpdateOneID(c.ID).SetLastMessageID(m.ID).Save(ctx); err != nil {
			return err
		}
		if err := s.markReadTx(ctx, tx, c.ID, p.AgentID); err != nil {
			return err
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationCreated, ConversationID: c.ID, MessageID: m.ID}, others, false)
		out = c
		return nil
	})
	return unwrap(out, err)
}

// MarkRead marks everything in the conversation read for the caller.
func (s *Service) MarkRead(ctx context.Context, id int) (*ent.Conversation, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	var out *ent.Conversation
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		c, _, err := s.load(ctx, tx.Client(), p, id)
		if err != nil {
			return err
		}
		out = c
		return s.markReadTx(ctx, tx, id, p.AgentID)
	})
	return unwrap(out, err)
}

// markReadTx moves the agent's read marker to the conversation's newest
// message.
func (s *Service) markReadTx(ctx context.Context, tx *ent.Tx, convID, agentID int) error {
	last, err := tx.Message.Query().Where(message.ConversationID(convID)).Order(ent.Desc(message.FieldID)).FirstID(ctx)
	if ent.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return tx.ReadState.Create().SetConversationID(convID).SetAgentID(agentID).
		SetLastReadMessageID(last).SetReadAt(s.now()).
		OnConflictColumns(readstate.FieldConversationID, readstate.FieldAgentID).
		UpdateLastReadMessageID().UpdateReadAt().Exec(ctx)
}

// unwrap detaches an entity loaded in a transaction from it, so that the
// resolvers can load its edges after the commit.
func unwrap(c *ent.Conversation, err error) (*ent.Conversation, error) {
	if err != nil || c == nil {
		return nil, err
	}
	return c.Unwrap(), nil
}

// checkReplyWindow refuses a free-form reply that WhatsApp or Messenger
// would reject: more than 24 hours after the customer's last message.
func (s *Service) checkReplyWindow(c *ent.Conversation) error {
	if c.Channel != schematype.ChannelWhatsApp && c.Channel != schematype.ChannelFacebook {
		return nil
	}
	if c.CustomerLastMessageAt != nil && s.now().Sub(*c.CustomerLastMessageAt) <= ReplyWindow {
		return nil
	}
	name := "WhatsApp"
	if c.Channel == schematype.ChannelFacebook {
		name = "Messenger"
	}
	return apperr.Invalid("conversationID",
		"more than 24 hours have passed since the customer's last message: %s only accepts template messages outside the customer service window", name)
}
