package pubsub

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Version is the envelope version this build writes and understands. It is
// on the wire so that a rolling deploy can introduce a new envelope shape:
// instances that do not know it drop such events with a log line instead of
// misreading them.
const Version = 1

// Event kinds. They are constants so that publishers (mutations, workers)
// and subscription resolvers cannot disagree on spelling.
const (
	// KindMessageAdded: a message was appended to ConversationID.
	KindMessageAdded = "message.added"
	// KindMessageUpdated: MessageID in ConversationID was edited, redacted
	// or changed delivery status.
	KindMessageUpdated = "message.updated"
	// KindConversationCreated: ConversationID is new.
	KindConversationCreated = "conversation.created"
	// KindConversationUpdated: ConversationID changed (status, assignee,
	// tags...).
	KindConversationUpdated = "conversation.updated"
	// KindConversationRemoved: ConversationID is no longer visible to
	// AgentIDs (reassigned, access revoked, deleted); their open
	// subscriptions must stop showing it.
	KindConversationRemoved = "conversation.removed"
	// KindSessionEnded: the session of the agents in AgentIDs (or of the
	// visitor of ConversationID) ended; their subscriptions should close.
	KindSessionEnded = "session.ended"
	// KindSessionsChanged: login tokens of the agents in AgentIDs were
	// revoked, or now authenticate differently (deactivation, password
	// change or reset, role change), published on [SessionsTopic]: every
	// instance rechecks its open websockets at once.
	KindSessionsChanged = "sessions.changed"
	// KindMentioned: note MessageID in ConversationID mentions the agents
	// in AgentIDs; published on their agent topics.
	KindMentioned = "mentioned"
	// KindTyping: AgentIDs[0] (or ContactID, the customer) started or
	// stopped typing in ConversationID (Typing says which). Ephemeral:
	// never logged, never replayed.
	KindTyping = "typing"
	// KindSLAAtRisk: ConversationID reached 80 % of its service-level
	// target without an agent reply (once per conversation).
	KindSLAAtRisk = "conversation.sla_at_risk"
)

// Event is the envelope published on a topic. It deliberately carries IDs
// only, never entity content: receivers reload what they need through the
// data layer, so access rules are applied when data is read and no content
// is ever stored in Redis.
//
// Subscribers of a topic share the same Event value; treat AgentIDs as
// read-only.
type Event struct {
	// V is the envelope version; Publish fills in [Version] when it is 0.
	V int `json:"v"`
	// Kind says what happened, one of the Kind* constants.
	Kind string `json:"k"`
	// ConversationID is the conversation concerned, if any.
	ConversationID int `json:"c,omitempty"`
	// MessageID is the message concerned, if any.
	MessageID int `json:"m,omitempty"`
	// AgentIDs are the agents concerned, e.g. those who lost access.
	AgentIDs []int `json:"a,omitempty"`
	// At is when it happened; Publish fills in the current time when it is
	// zero. It is always UTC once published.
	At time.Time `json:"t"`
	// Seq is the event's place in the event log (its cursor), and Prev
	// the seq of the event before it on the same topic: a receiver whose
	// last event on the topic is older than Prev missed one. Zero for
	// events that are not logged.
	Seq  int64 `json:"s,omitempty"`
	Prev int64 `json:"p,omitempty"`
	// ContactID is the contact concerned, if any (a typing customer).
	ContactID int `json:"ct,omitempty"`
	// Typing is the state of a KindTyping event.
	Typing bool `json:"y,omitempty"`
}

// Message is one event for one topic, for [Broker.PublishBatch].
type Message struct {
	Topic string
	Event Event
}

// ErrUnsupportedVersion is returned by Publish for an envelope version this
// build does not know, and is what the Redis reader logs when it drops such
// an event coming from another instance.
var ErrUnsupportedVersion = errors.New("pubsub: unsupported event version")

// errNoKind rejects events that would be meaningless to every receiver.
var errNoKind = errors.New("pubsub: event kind is empty")

// errNoTopic rejects the empty topic, which is always a caller bug.
var errNoTopic = errors.New("pubsub: empty topic")

// ConversationTopic is the topic of everything that happens inside one
// conversation (messages added or updated, status changes). Agents viewing
// the conversation subscribe to it.
func ConversationTopic(id int) string { return "conv:" + strconv.Itoa(id) }

// AgentTopic is the per-agent topic: inbox-level changes an agent must see
// (conversations created, assigned, removed from their view, session end).
func AgentTopic(id int) string { return "agent:" + strconv.Itoa(id) }

// SessionsTopic is the workspace-wide topic of token revocations and role
// changes ([KindSessionsChanged]); every instance listens to it to close the
// sockets of revoked tokens without waiting for the periodic recheck.
const SessionsTopic = "sessions"

// VisitorTopic is the topic the website visitor of a conversation listens
// on. It is separate from [ConversationTopic] so that agent-only events
// (internal notes, assignment changes) are never published where a visitor
// can subscribe.
func VisitorTopic(conversationID int) string { return "visitor:" + strconv.Itoa(conversationID) }

// prepare validates ev and fills in its defaults before it is published. The
// AgentIDs slice is copied so that a publisher reusing its slice cannot
// change what subscribers see.
func prepare(ev Event) (Event, error) {
	switch ev.V {
	case 0:
		ev.V = Version
	case Version:
	default:
		return Event{}, fmt.Errorf("%w: %d", ErrUnsupportedVersion, ev.V)
	}
	if ev.Kind == "" {
		return Event{}, errNoKind
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	ev.At = ev.At.UTC() // also strips the monotonic reading, like the wire does
	ev.AgentIDs = slices.Clone(ev.AgentIDs)
	return ev, nil
}

// encode is the wire encoding (JSON) of a prepared event.
func encode(ev Event) ([]byte, error) { return json.Marshal(ev) }

// decode parses a wire event. The version is read first so that an event of
// an unknown future version is reported as such even if its other fields no
// longer fit this build's Event.
func decode(data []byte) (Event, error) {
	var head struct {
		V int `json:"v"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return Event{}, fmt.Errorf("pubsub: malformed event: %w", err)
	}
	if head.V != Version {
		return Event{}, fmt.Errorf("%w: %d", ErrUnsupportedVersion, head.V)
	}
	var ev Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return Event{}, fmt.Errorf("pubsub: malformed event: %w", err)
	}
	return ev, nil
}
