package channels

import (
	"context"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
)

// Signals an agent's client gives that a provider can show the customer.
const (
	// SignalTyping: the agent started typing.
	SignalTyping = "typing"
	// SignalTypingOff: the agent stopped typing.
	SignalTypingOff = "typing_off"
	// SignalRead: the agent read the conversation.
	SignalRead = "read"
)

// Signal is a typing or read indicator for the customer.
type Signal struct {
	// Kind is one of the Signal* constants.
	Kind string
	// MessageID is the provider's id of the customer's newest message (the
	// one read, for providers that mark messages rather than chats).
	MessageID string
}

// Signaler is a Provider that can show the customer an agent's typing or
// reading. Signals are best effort: never retried, never stored.
type Signaler interface {
	// Signal makes the provider call for sig, or reports false when the
	// provider has nothing for this kind of signal.
	Signal(ctx context.Context, acct *Account, to string, sig Signal) (bool, error)
}

// SignalTimeout bounds one signal's provider call.
const SignalTimeout = 5 * time.Second

// Signal forwards an agent's typing or reading in conversation convID to the
// customer, where the provider supports it (Messenger's sender actions,
// WhatsApp's read receipts and typing indicator). It runs in the
// background and only logs failures: a missed indicator costs nothing.
func (s *Service) Signal(convID int, kind string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), SignalTimeout)
		defer cancel()
		if err := s.signal(ctx, convID, kind); err != nil {
			s.log.Info("provider signal", "conversation", convID, "signal", kind, "err", err)
		}
	}()
}

func (s *Service) signal(ctx context.Context, convID int, kind string) error {
	c, err := s.db.Conversation.Get(ctx, convID)
	if err != nil || c.ChannelAccountID == nil || c.IdentityID == nil {
		return err
	}
	// Only the adapters of providers that show signals implement Signaler.
	p, ok := s.byChannel[c.Channel].(Signaler)
	if !ok {
		return nil
	}
	acct, err := s.account(ctx, *c.ChannelAccountID)
	if err != nil || !acct.Enabled {
		return err
	}
	id, err := s.db.ContactIdentity.Get(ctx, *c.IdentityID)
	if err != nil {
		return err
	}
	sig := Signal{Kind: kind}
	last, err := s.db.Message.Query().
		Where(message.ConversationID(convID), message.DirectionEQ(schematype.DirectionInbound), message.ProviderMessageIDNotNil()).
		Order(ent.Desc(message.FieldCreatedAt), ent.Desc(message.FieldID)).First(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return err
	}
	if last != nil {
		sig.MessageID = *last.ProviderMessageID
	}
	_, err = p.Signal(ctx, acct, id.ExternalID, sig)
	return err
}
