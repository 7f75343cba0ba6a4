package conversations

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/eventlog"
	"github.com/parleyhq/parley/internal/labels"
	"github.com/parleyhq/parley/internal/pubsub"
)

// EventKind is the kind of a realtime event delivered to a client; the
// GraphQL enums InboxEventKind, ConversationEventKind and VisitorEventKind
// bind to it.
type EventKind string

// Event kinds of the contract.
const (
	EventConversationCreated EventKind = "CONVERSATION_CREATED"
	EventMessageAdded        EventKind = "MESSAGE_ADDED"
	EventMessageUpdated      EventKind = "MESSAGE_UPDATED"
	EventConversationUpdated EventKind = "CONVERSATION_UPDATED"
	EventRemoved             EventKind = "REMOVED"
	EventSessionEnded        EventKind = "SESSION_ENDED"
	// EventMentioned: a note in the conversation mentions me (inbox only).
	EventMentioned EventKind = "MENTIONED"
	// EventTyping: someone who may write in the conversation started or
	// stopped typing (ephemeral; never replayed).
	EventTyping EventKind = "TYPING"
	// EventSLAAtRisk: the conversation is at 80 % of its service-level
	// target without an agent reply (inbox only; once per conversation).
	EventSLAAtRisk EventKind = "SLA_AT_RISK"
	// EventResync: the cursor subscribed after is unknown or older than the
	// event log keeps; refetch, then continue from this event's cursor.
	EventResync EventKind = "RESYNC"
)

// MarshalGQL implements graphql.Marshaler.
func (k EventKind) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(k))) }

// UnmarshalGQL implements graphql.Unmarshaler (event kinds are output only,
// but gqlgen asks for both).
func (k *EventKind) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("event kind must be a string")
	}
	*k = EventKind(s)
	return nil
}

// Event is one realtime event as a subscriber receives it. For REMOVED,
// Conversation and Message are nil: nothing of a conversation the
// subscriber can no longer see is sent.
type Event struct {
	Kind           EventKind
	ConversationID int
	Conversation   *ent.Conversation
	Message        *ent.Message
	// Cursor is where a client that saw this event resumes from.
	Cursor string
	// Typing is set on TYPING for agents: who, and whether they type.
	Typing *Typing
	// TypingAgentName and VisitorTyping are TYPING as a visitor sees it:
	// the agent's name only.
	TypingAgentName *string
	VisitorTyping   *bool
}

// Typing is who is typing in a conversation: an agent or the customer.
type Typing struct {
	Agent   *ent.Agent
	Contact *ent.Contact
	Typing  bool
	// ExpiresAt is when the indicator goes out unless renewed.
	ExpiresAt time.Time
}

// SubscriberBuffer is how many events a subscription's stream holds for
// its transport; the event log behind it never drops one.
const SubscriberBuffer = 32

// pump delivers an event-log stream to a client: convert turns each logged
// event into the client's event (nil to skip it, though its cursor still
// moves on). The stream completes after SESSION_ENDED, and after REMOVED
// when endOnRemoved (a single conversation's stream; an inbox goes on).
func (s *Service) pump(ctx context.Context, in <-chan pubsub.Event, who string, endOnRemoved bool, convert func(pubsub.Event) (*Event, error)) <-chan *Event {
	out := make(chan *Event, SubscriberBuffer)
	go func() {
		defer close(out)
		for ev := range in {
			var e *Event
			if ev.Kind == eventlog.KindResync {
				e = &Event{Kind: EventResync}
			} else {
				var err error
				if e, err = convert(ev); err != nil {
					s.log.Warn("realtime event", "subscriber", who, "err", err, "conversation", ev.ConversationID)
					continue
				}
			}
			if e == nil {
				continue
			}
			if ev.Seq != 0 {
				e.Cursor = eventlog.Cursor(ev.Seq)
			} else {
				e.Cursor = eventlog.Cursor(ev.Prev) // not logged: the stream's position
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
			if (e.Kind == EventRemoved && endOnRemoved) || e.Kind == EventSessionEnded {
				return
			}
		}
	}()
	return out
}

// SubscribeInbox streams everything that changes the caller's inbox, after
// the cursor when one is given (see [eventlog.Log.Subscribe]). Access is
// checked at subscribe time and again at every delivery.
func (s *Service) SubscribeInbox(ctx context.Context, after string) (<-chan *Event, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	in, err := s.elog.Subscribe(ctx, pubsub.AgentTopic(p.AgentID), after)
	if err != nil {
		return nil, err
	}
	return s.pump(ctx, in, "inbox", false, func(ev pubsub.Event) (*Event, error) { return s.inboxEvent(ctx, p, ev) }), nil
}

func (s *Service) inboxEvent(ctx context.Context, p auth.Principal, ev pubsub.Event) (*Event, error) {
	snap, err := s.events.get(ctx, s.client, ev)
	if err != nil {
		return nil, err
	}
	visible := snap.conv != nil && snap.viewers.For(p).View
	scopeOf(ctx).note(p.AgentID, visible, ev.ConversationID) // for the payload's fields
	if ev.Kind == pubsub.KindConversationRemoved {
		if visible {
			return nil, nil
		}
		return &Event{Kind: EventRemoved, ConversationID: ev.ConversationID}, nil
	}
	if !visible {
		return nil, nil
	}
	e := &Event{ConversationID: ev.ConversationID, Conversation: snap.conv}
	switch ev.Kind {
	case pubsub.KindConversationCreated:
		e.Kind, e.Message = EventConversationCreated, snap.msg
	case pubsub.KindMessageAdded:
		e.Kind, e.Message = EventMessageAdded, snap.msg
	case pubsub.KindMessageUpdated:
		return nil, nil // delivery statuses matter to the open conversation only
	case pubsub.KindMentioned:
		if snap.msg == nil || !slices.Contains(ev.AgentIDs, p.AgentID) {
			return nil, nil
		}
		e.Kind, e.Message = EventMentioned, snap.msg
	case pubsub.KindSLAAtRisk:
		e.Kind = EventSLAAtRisk
	default:
		e.Kind = EventConversationUpdated
	}
	return e, nil
}

// SubscribeConversation streams one conversation's messages, delivery
// statuses and changes, after the cursor when one is given. When the
// subscriber loses access it receives one REMOVED event and the stream
// completes.
func (s *Service) SubscribeConversation(ctx context.Context, id int, after string) (<-chan *Event, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, err := s.load(ctx, s.client, p, id); err != nil {
		return nil, err
	}
	in, err := s.elog.Subscribe(ctx, pubsub.ConversationTopic(id), after)
	if err != nil {
		return nil, err
	}
	return s.pump(ctx, in, "conversation", true, func(ev pubsub.Event) (*Event, error) {
		snap, err := s.events.get(ctx, s.client, ev)
		if err != nil {
			return nil, err
		}
		if ev.Kind == pubsub.KindTyping {
			return s.typingEvent(ctx, p, snap, ev)
		}
		visible := snap.conv != nil && snap.viewers.For(p).View
		scopeOf(ctx).note(p.AgentID, visible, id) // for the payload's fields
		if !visible {
			return &Event{Kind: EventRemoved, ConversationID: id}, nil
		}
		e := &Event{ConversationID: id, Conversation: snap.conv}
		switch ev.Kind {
		case pubsub.KindMessageAdded, pubsub.KindConversationCreated:
			e.Kind, e.Message = EventMessageAdded, snap.msg
		case pubsub.KindMessageUpdated:
			e.Kind, e.Message = EventMessageUpdated, snap.msg
		default:
			e.Kind = EventConversationUpdated
		}
		if e.Message == nil && e.Kind != EventConversationUpdated {
			return nil, nil
		}
		return e, nil
	}), nil
}

// snapshot is what one event refers to, loaded once per instance and
// shared by every local subscriber.
type snapshot struct {
	conv    *ent.Conversation // nil when deleted
	viewers *Viewers
	msg     *ent.Message
}

type cacheEntry struct {
	once sync.Once
	at   time.Time
	snap *snapshot
	err  error
}

// eventCache loads each event's conversation, message and viewers once,
// however many subscribers of this instance receive it.
type eventCache struct {
	mu      sync.Mutex
	entries map[string]*cacheEntry
	inserts int
}

func newEventCache() *eventCache { return &eventCache{entries: map[string]*cacheEntry{}} }

const eventCacheTTL = 5 * time.Second

// eventLoadTimeout bounds loading what one event refers to.
const eventLoadTimeout = 10 * time.Second

func (c *eventCache) get(ctx context.Context, client *ent.Client, ev pubsub.Event) (*snapshot, error) {
	key := fmt.Sprintf("%s/%d/%d/%d/%d", ev.Kind, ev.ConversationID, ev.MessageID, ev.At.UnixNano(), ev.Seq)
	now := time.Now()
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		e = &cacheEntry{at: now}
		c.entries[key] = e
		c.inserts++
		if c.inserts%256 == 0 {
			for k, old := range c.entries {
				if now.Sub(old.at) > eventCacheTTL {
					delete(c.entries, k)
				}
			}
		}
	}
	c.mu.Unlock()
	e.once.Do(func() {
		// The load serves every local subscriber of the event, so it must
		// not end with the context of whichever one arrived first: the
		// others waiting on once would share its cancellation and miss
		// the event. Keep the values (request id, caller), drop the
		// cancellation, bound the time.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), eventLoadTimeout)
		defer cancel()
		e.snap, e.err = loadSnapshot(lctx, client, ev)
	})
	if e.err != nil {
		// A failed load (a subscriber's context ended, a database hiccup)
		// is not shared: the next subscriber tries again.
		c.mu.Lock()
		if c.entries[key] == e {
			delete(c.entries, key)
		}
		c.mu.Unlock()
	}
	return e.snap, e.err
}

func loadSnapshot(ctx context.Context, client *ent.Client, ev pubsub.Event) (*snapshot, error) {
	snap := &snapshot{}
	// The owner and the labels are what every subscriber's payload asks
	// for: load them once here rather than once per subscriber.
	c, err := client.Conversation.Query().Where(conversation.ID(ev.ConversationID)).
		WithOwner().WithLabels(labels.ByName).Only(ctx)
	if ent.IsNotFound(err) {
		return snap, nil
	}
	if err != nil {
		return nil, err
	}
	snap.conv = c
	if snap.viewers, err = viewersOf(ctx, client, c); err != nil {
		return nil, err
	}
	mid := ev.MessageID
	if mid == 0 && ev.Kind == pubsub.KindConversationCreated && c.LastMessageID != nil {
		// An offer (new, re-offered after a timeout, a waiting conversation
		// finding an agent, a transfer) shows the conversation's newest
		// message, so the agent does not open an empty chat.
		mid = *c.LastMessageID
	}
	if mid != 0 {
		m, err := client.Message.Get(ctx, mid)
		if err != nil && !ent.IsNotFound(err) {
			return nil, err
		}
		snap.msg = m
	}
	return snap, nil
}
