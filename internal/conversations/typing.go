package conversations

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/store"
)

// Typing indicators: ephemeral (published on the broker, never logged or
// replayed), shown to those who may see the conversation, and coalesced so
// that a client calling on every keystroke sends at most one "typing" per
// TypingRenewEvery per typer and conversation.
const (
	// TypingTTL is how long an indicator stays on unless renewed.
	TypingTTL = 6 * time.Second
	// TypingRenewEvery is the most often a still-typing state is sent on.
	TypingRenewEvery = 2 * time.Second
)

// typingGate coalesces typing calls per typer and conversation.
type typingGate struct {
	mu   sync.Mutex
	last map[string]typingState
}

type typingState struct {
	at     time.Time
	typing bool
}

// pass reports whether a call is worth publishing: a change of state, or a
// renewal after TypingRenewEvery.
func (g *typingGate) pass(key string, typing bool, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		g.last = map[string]typingState{}
	}
	prev, ok := g.last[key]
	if ok && prev.typing == typing && (!typing || now.Sub(prev.at) < TypingRenewEvery) {
		return false
	}
	g.last[key] = typingState{at: now, typing: typing}
	if len(g.last) > 10000 { // forget stale entries now and then
		for k, st := range g.last {
			if now.Sub(st.at) > TypingTTL {
				delete(g.last, k)
			}
		}
	}
	return true
}

// SetTyping tells those who see the conversation that the calling agent,
// who may reply in it, started or stopped typing. The visitor of a live
// chat sees the agent's name.
func (s *Service) SetTyping(ctx context.Context, id int, typing bool) (bool, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return false, err
	}
	c, a, err := s.load(ctx, s.client, p, id)
	if err != nil {
		return false, err
	}
	if err := a.Check(OpReply); err != nil {
		return false, err
	}
	if !s.typing.pass("a"+strconv.Itoa(p.AgentID)+":"+strconv.Itoa(id), typing, s.now()) {
		return true, nil
	}
	if s.Signals != nil {
		kind := "typing_off"
		if typing {
			kind = "typing"
		}
		s.Signals(id, kind)
	}
	ev := pubsub.Event{Kind: pubsub.KindTyping, ConversationID: id, AgentIDs: []int{p.AgentID}, Typing: typing, At: s.now()}
	msgs := []pubsub.Message{{Topic: pubsub.ConversationTopic(id), Event: ev}}
	if c.Channel == schematype.ChannelLiveChat && c.Status == schematype.ConversationOpen {
		msgs = append(msgs, pubsub.Message{Topic: pubsub.VisitorTopic(id), Event: ev})
	}
	return true, s.publishEphemeral(ctx, msgs)
}

// VisitorSetTyping tells those who see the visitor's conversation that the
// visitor started or stopped typing.
func (s *Service) VisitorSetTyping(ctx context.Context, typing bool) (bool, error) {
	p, err := auth.Visitor(ctx)
	if err != nil {
		return false, err
	}
	c, err := s.client.Conversation.Get(ctx, p.ConversationID)
	if err != nil {
		return false, store.Coded(err, "conversation")
	}
	if c.Status != schematype.ConversationOpen {
		return false, apperr.New(apperr.Forbidden, "this chat has ended")
	}
	if !s.typing.pass("v"+strconv.Itoa(c.ID), typing, s.now()) {
		return true, nil
	}
	contact := 0
	if c.ContactID != nil {
		contact = *c.ContactID
	}
	ev := pubsub.Event{Kind: pubsub.KindTyping, ConversationID: c.ID, ContactID: contact, Typing: typing, At: s.now()}
	return true, s.publishEphemeral(ctx, []pubsub.Message{{Topic: pubsub.ConversationTopic(c.ID), Event: ev}})
}

func (s *Service) publishEphemeral(ctx context.Context, msgs []pubsub.Message) error {
	if err := s.elog.Broker().PublishBatch(ctx, msgs); err != nil {
		s.log.Warn("publish typing", "err", err)
		return apperr.New(apperr.Internal, "internal error")
	}
	return nil
}

// typingEvent is a typing indicator for agent p, who sees it only if they
// may see the conversation, and never their own.
func (s *Service) typingEvent(ctx context.Context, p auth.Principal, snap *snapshot, ev pubsub.Event) (*Event, error) {
	if snap.conv == nil || !snap.viewers.For(p).View {
		return nil, nil
	}
	t := &Typing{Typing: ev.Typing, ExpiresAt: ev.At.Add(TypingTTL)}
	switch {
	case len(ev.AgentIDs) > 0:
		if ev.AgentIDs[0] == p.AgentID {
			return nil, nil
		}
		a, err := s.client.Agent.Get(ctx, ev.AgentIDs[0])
		if err != nil {
			return nil, err
		}
		t.Agent = a
	case ev.ContactID != 0:
		c, err := s.client.Contact.Get(ctx, ev.ContactID)
		if err != nil {
			return nil, err
		}
		t.Contact = c
	default:
		return nil, nil
	}
	return &Event{Kind: EventTyping, ConversationID: ev.ConversationID, Conversation: snap.conv, Typing: t}, nil
}

// visitorTypingEvent is an agent's typing indicator as the visitor sees
// it: the agent's name only.
func (s *Service) visitorTypingEvent(ctx context.Context, p auth.Principal, ev pubsub.Event) (*Event, error) {
	if ev.ConversationID != p.ConversationID || len(ev.AgentIDs) == 0 {
		return nil, nil
	}
	a, err := s.client.Agent.Get(ctx, ev.AgentIDs[0])
	if err != nil {
		return nil, err
	}
	name, typing := a.Name, ev.Typing
	return &Event{Kind: EventTyping, ConversationID: p.ConversationID, TypingAgentName: &name, VisitorTyping: &typing}, nil
}
