package conversations

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/block"
	"github.com/parleyhq/parley/ent/channelaccount"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/textsearch"
)

// VisitorSession is what StartVisitorSession needs: the live-chat account,
// what the pre-chat form said, and what the HTTP layer saw.
type VisitorSession struct {
	ChannelAccountID int
	Name, Email      string
	PageURL          string
	IP, UserAgent    string
}

// StartVisitorSession opens a live-chat conversation for a new visitor and
// returns it with the visitor's key (its identity on the account). Routing
// waits for the visitor's first message, so agents are not offered empty
// chats. issue creates the visitor token inside the same transaction.
func (s *Service) StartVisitorSession(ctx context.Context, in VisitorSession, issue func(tx *ent.Tx, conversationID int) (string, error)) (*ent.Conversation, string, error) {
	var (
		out   *ent.Conversation
		token string
	)
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		acct, err := tx.ChannelAccount.Get(ctx, in.ChannelAccountID)
		if ent.IsNotFound(err) || (err == nil && acct.Channel != schematype.ChannelLiveChat) {
			return apperr.NotFoundf("live-chat account")
		}
		if err != nil {
			return err
		}
		if !acct.Enabled {
			return apperr.New(apperr.Forbidden, "chat is not available")
		}
		key := make([]byte, 16)
		_, _ = rand.Read(key)
		visitorKey := "v_" + hex.EncodeToString(key)
		name := strings.TrimSpace(in.Name)
		if name == "" {
			name = "Visitor " + visitorKey[2:8]
		}
		cc := tx.Contact.Create().SetDisplayName(truncate(name, 200)).SetKnown(false).
			SetSearchKey(textsearch.Key(name, in.Email))
		if in.Email != "" {
			cc.SetEmail(in.Email)
		}
		contact, err := cc.Save(ctx)
		if err != nil {
			return err
		}
		ident, err := tx.ContactIdentity.Create().SetChannel(schematype.ChannelLiveChat).SetExternalID(visitorKey).
			SetProfileName(truncate(name, 200)).SetChannelAccountID(acct.ID).SetContactID(contact.ID).Save(ctx)
		if err != nil {
			return err
		}
		now := s.now()
		c, err := tx.Conversation.Create().SetChannel(schematype.ChannelLiveChat).
			SetStatus(schematype.ConversationOpen).SetUnknownContact(true).SetOpenKey(openKey(acct.ID, ident.ID)).
			SetChannelAccountID(acct.ID).SetContactID(contact.ID).SetIdentityID(ident.ID).
			SetNillableQueueID(acct.QueueID).SetLastMessageAt(now).SetCreatedAt(now).
			SetVisitorIP(in.IP).SetVisitorUserAgent(truncate(in.UserAgent, 500)).SetVisitorPageURL(truncate(in.PageURL, 2000)).
			Save(ctx)
		if err != nil {
			return err
		}
		if err := logInteraction(ctx, tx, c, schematype.InteractionCreated, nil, "live chat started", now); err != nil {
			return err
		}
		if token, err = issue(tx, c.ID); err != nil {
			return err
		}
		out = c
		return nil
	})
	if err != nil {
		// The visitor's email is the input ent measures (at most 320 bytes).
		return nil, "", store.Coded(err, "live chat")
	}
	return out.Unwrap(), token, nil
}

// VisitorConversation returns the calling visitor's conversation.
func (s *Service) VisitorConversation(ctx context.Context) (*ent.Conversation, error) {
	p, err := auth.Visitor(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.client.Conversation.Get(ctx, p.ConversationID)
	return c, store.Coded(err, "conversation")
}

// VisitorSend stores a visitor's message through the inbound entry point,
// like any channel's customer message. An ended chat takes no more.
func (s *Service) VisitorSend(ctx context.Context, body string, attachmentIDs []int) (*ent.Message, error) {
	c, err := s.VisitorConversation(ctx)
	if err != nil {
		return nil, err
	}
	if c.Status != schematype.ConversationOpen {
		return nil, apperr.New(apperr.Forbidden, "this chat has ended")
	}
	if c.IdentityID == nil || c.ChannelAccountID == nil {
		return nil, apperr.New(apperr.Forbidden, "this chat has ended")
	}
	if err := s.checkVisitorAccount(ctx, c); err != nil {
		return nil, err
	}
	ident, err := s.client.ContactIdentity.Get(ctx, *c.IdentityID)
	if err != nil {
		return nil, store.Coded(err, "conversation")
	}
	r, err := s.Receive(ctx, Inbound{
		ChannelAccountID: *c.ChannelAccountID, SenderID: ident.ExternalID, Body: body,
		AttachmentIDs: attachmentIDs, VisitorIP: c.VisitorIP, VisitorUserAgent: c.VisitorUserAgent,
		VisitorPageURL: c.VisitorPageURL, visitorConversation: c.ID,
	})
	if err != nil {
		return nil, store.Coded(err, "message")
	}
	if r.Conversation.ID != c.ID {
		// The chat ended between the check and the store: the message went
		// to a new conversation the visitor has no token for. Refuse.
		return nil, apperr.New(apperr.Forbidden, "this chat has ended")
	}
	return r.Message, nil
}

// CheckVisitorChat refuses the calling visitor's chat when it takes no
// more messages: ended, or its account disabled or deleted (FORBIDDEN, what
// the widget shows as a polite refusal).
func (s *Service) CheckVisitorChat(ctx context.Context) error {
	c, err := s.VisitorConversation(ctx)
	if err != nil {
		return err
	}
	if c.Status != schematype.ConversationOpen {
		return apperr.New(apperr.Forbidden, "this chat has ended")
	}
	return s.checkVisitorAccount(ctx, c)
}

// checkVisitorAccount refuses a live chat whose account was disabled or
// deleted since it started.
func (s *Service) checkVisitorAccount(ctx context.Context, c *ent.Conversation) error {
	if c.ChannelAccountID == nil {
		return apperr.New(apperr.Forbidden, "this chat has ended")
	}
	on, err := s.client.ChannelAccount.Query().Where(channelaccount.ID(*c.ChannelAccountID), channelaccount.Enabled(true)).Exist(ctx)
	if err != nil {
		return err
	}
	if !on {
		return apperr.New(apperr.Forbidden, "chat is not available")
	}
	return nil
}

// SubscribeVisitor streams agents' replies to the calling visitor, after
// the cursor when one is given, and SESSION_ENDED, after which the stream
// completes.
func (s *Service) SubscribeVisitor(ctx context.Context, after string) (<-chan *Event, error) {
	p, err := auth.Visitor(ctx)
	if err != nil {
		return nil, err
	}
	in, err := s.elog.Subscribe(ctx, pubsub.VisitorTopic(p.ConversationID), after)
	if err != nil {
		return nil, err
	}
	return s.pump(ctx, in, "visitor", false, func(ev pubsub.Event) (*Event, error) {
		switch ev.Kind {
		case pubsub.KindSessionEnded:
			return &Event{Kind: EventSessionEnded, ConversationID: p.ConversationID}, nil
		case pubsub.KindTyping:
			return s.visitorTypingEvent(ctx, p, ev)
		case pubsub.KindMessageAdded:
			m, err := s.client.Message.Get(ctx, ev.MessageID)
			if ent.IsNotFound(err) {
				return nil, nil
			}
			if err != nil {
				return nil, err
			}
			if m.ConversationID != p.ConversationID || m.Direction == schematype.DirectionInbound || m.Kind != schematype.KindMessage {
				return nil, nil
			}
			return &Event{Kind: EventMessageAdded, ConversationID: p.ConversationID, Message: m}, nil
		}
		return nil, nil
	}), nil
}

// VisitorIsBlocked reports whether an IP address was blocked.
func (s *Service) VisitorIsBlocked(ctx context.Context, ip string) (bool, error) {
	if ip == "" {
		return false, nil
	}
	return s.client.Block.Query().Where(block.IP(ip)).Exist(ctx)
}

// VisitorEnd is the visitor ending their own live chat (visitorEndChat): as
// an agent's endChatSession, with no agent in the history. Ending an ended
// chat changes nothing.
func (s *Service) VisitorEnd(ctx context.Context) (*ent.Conversation, error) {
	p, err := auth.Visitor(ctx)
	if err != nil {
		return nil, err
	}
	var out *ent.Conversation
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		c, err := tx.Conversation.Get(ctx, p.ConversationID)
		if err != nil {
			return err
		}
		if c.Status != schematype.ConversationOpen || c.Channel != schematype.ChannelLiveChat {
			out = c
			return nil
		}
		before, err := viewersOf(ctx, tx.Client(), c)
		if err != nil {
			return err
		}
		if err := s.endSession(ctx, tx, after, c, nil, s.now()); err != nil {
			return err
		}
		if out, err = tx.Conversation.Get(ctx, c.ID); err != nil {
			return err
		}
		if out.OwnerID == nil {
			// Its offers end.
			d, err := s.router.Route(ctx, tx, out)
			if err != nil {
				return err
			}
			s.router.Record(after, d)
		}
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationUpdated, ConversationID: c.ID}, before.Agents(), false)
		after.Do(func() { s.wake() })
		return nil
	})
	return unwrap(out, store.Coded(err, "conversation"))
}
