// Package schematype holds the value types shared by several ent schemas and
// by the GraphQL schema: enums used by more than one entity (a Channel is a
// field of channel accounts, identities, conversations and interactions) must
// be one Go type so that gqlgen can bind one GraphQL enum to it.
//
// The package imports nothing of Parley's own, so the ent schema stays a leaf.
package schematype

import (
	"fmt"
	"io"
	"strconv"
)

// Role is an agent's permission level, from least to most privileged.
type Role string

// Roles, in the order of privilege.
const (
	RoleAgent       Role = "AGENT"
	RoleGroupOwner  Role = "GROUP_OWNER"
	RoleAdmin       Role = "ADMIN"
	RoleSystemOwner Role = "SYSTEM_OWNER"
)

// Values lists the roles for ent's enum column.
func (Role) Values() []string {
	return []string{string(RoleAgent), string(RoleGroupOwner), string(RoleAdmin), string(RoleSystemOwner)}
}

// AgentStatus says whether an agent is offered new conversations.
type AgentStatus string

// Agent statuses: only AVAILABLE agents are offered conversations.
const (
	StatusAvailable AgentStatus = "AVAILABLE"
	StatusAway      AgentStatus = "AWAY"
	StatusOffline   AgentStatus = "OFFLINE"
)

// Values lists the statuses for ent's enum column.
func (AgentStatus) Values() []string {
	return []string{string(StatusAvailable), string(StatusAway), string(StatusOffline)}
}

// Channel is where a conversation takes place.
type Channel string

// Channels. INTERNAL is a chat between agents.
const (
	ChannelLiveChat Channel = "LIVE_CHAT"
	ChannelWhatsApp Channel = "WHATSAPP"
	ChannelFacebook Channel = "FACEBOOK"
	ChannelSMS      Channel = "SMS"
	ChannelInternal Channel = "INTERNAL"
)

// Values lists the channels for ent's enum column.
func (Channel) Values() []string {
	return []string{string(ChannelLiveChat), string(ChannelWhatsApp), string(ChannelFacebook), string(ChannelSMS), string(ChannelInternal)}
}

// ConversationStatus is the life-cycle state of a conversation.
type ConversationStatus string

// Conversation states: OPEN until dealt with (agent closed it) or ended
// (live chat session ended by an agent).
const (
	ConversationOpen      ConversationStatus = "OPEN"
	ConversationDealtWith ConversationStatus = "DEALT_WITH"
	ConversationEnded     ConversationStatus = "ENDED"
)

// Values lists the states for ent's enum column.
func (ConversationStatus) Values() []string {
	return []string{string(ConversationOpen), string(ConversationDealtWith), string(ConversationEnded)}
}

// MessageDirection says who wrote a message: the customer (INBOUND), an
// agent (OUTBOUND) or Parley itself (SYSTEM).
type MessageDirection string

// Message directions.
const (
	DirectionInbound  MessageDirection = "INBOUND"
	DirectionOutbound MessageDirection = "OUTBOUND"
	DirectionSystem   MessageDirection = "SYSTEM"
)

// Values lists the directions for ent's enum column.
func (MessageDirection) Values() []string {
	return []string{string(DirectionInbound), string(DirectionOutbound), string(DirectionSystem)}
}

// MessageKind says whether a message belongs to the conversation with the
// customer (MESSAGE) or is a private note between agents (NOTE): a note is
// never sent to a provider or shown to a visitor.
type MessageKind string

// Message kinds.
const (
	KindMessage MessageKind = "MESSAGE"
	KindNote    MessageKind = "NOTE"
)

// Values lists the kinds for ent's enum column.
func (MessageKind) Values() []string { return []string{string(KindMessage), string(KindNote)} }

// DeliveryStatus tracks an outbound message through the provider. Statuses
// only move forward (see Rank); FAILED is final unless a retry succeeds.
type DeliveryStatus string

// Delivery statuses.
const (
	DeliveryPending   DeliveryStatus = "PENDING"
	DeliverySent      DeliveryStatus = "SENT"
	DeliveryDelivered DeliveryStatus = "DELIVERED"
	DeliveryRead      DeliveryStatus = "READ"
	DeliveryFailed    DeliveryStatus = "FAILED"
)

// Values lists the delivery statuses for ent's enum column.
func (DeliveryStatus) Values() []string {
	return []string{string(DeliveryPending), string(DeliverySent), string(DeliveryDelivered), string(DeliveryRead), string(DeliveryFailed)}
}

// Rank orders the non-failed statuses so that an update never moves a
// message backwards (delivered must not become sent).
func (s DeliveryStatus) Rank() int {
	switch s {
	case DeliveryPending:
		return 0
	case DeliverySent:
		return 1
	case DeliveryDelivered:
		return 2
	case DeliveryRead:
		return 3
	}
	return -1
}

// PollingStrategy decides which queue members are offered a conversation.
type PollingStrategy string

// Polling strategies, as the contract describes them.
const (
	StrategyHunt                PollingStrategy = "HUNT"
	StrategyRingAll             PollingStrategy = "RING_ALL"
	StrategyHuntRandomStart     PollingStrategy = "HUNT_RANDOM_START"
	StrategyRoundRobin          PollingStrategy = "ROUND_ROBIN"
	StrategyLongestWaiting      PollingStrategy = "LONGEST_WAITING"
	StrategyLeastHandlingTime   PollingStrategy = "LEAST_HANDLING_TIME"
	StrategyFewestAnswered      PollingStrategy = "FEWEST_ANSWERED"
	StrategyHuntByThrees        PollingStrategy = "HUNT_BY_THREES"
	StrategyFirstThreeAvailable PollingStrategy = "FIRST_THREE_AVAILABLE"
)

// Values lists the strategies for ent's enum column.
func (PollingStrategy) Values() []string {
	return []string{
		string(StrategyHunt), string(StrategyRingAll), string(StrategyHuntRandomStart),
		string(StrategyRoundRobin), string(StrategyLongestWaiting), string(StrategyLeastHandlingTime),
		string(StrategyFewestAnswered), string(StrategyHuntByThrees), string(StrategyFirstThreeAvailable),
	}
}

// InteractionKind is one step in a contact's history.
type InteractionKind string

// Interaction kinds, as the contract lists them.
const (
	InteractionCreated     InteractionKind = "CREATED"
	InteractionOffered     InteractionKind = "OFFERED"
	InteractionTaken       InteractionKind = "TAKEN"
	InteractionReplied     InteractionKind = "REPLIED"
	InteractionTransferred InteractionKind = "TRANSFERRED"
	InteractionDealtWith   InteractionKind = "DEALT_WITH"
	InteractionArchived    InteractionKind = "ARCHIVED"
	InteractionUnarchived  InteractionKind = "UNARCHIVED"
	InteractionEnded       InteractionKind = "ENDED"
	InteractionBlocked     InteractionKind = "BLOCKED"
	// InteractionReleased: the conversation went back to a queue without an
	// owner (released, transferred to a queue, owner away or deactivated);
	// the detail says why.
	InteractionReleased InteractionKind = "RELEASED"
	// InteractionLinked: two identities of one person (the same phone
	// number on two channels) were linked to one contact.
	InteractionLinked InteractionKind = "LINKED"
	// InteractionMerged: another contact was merged into this one.
	InteractionMerged InteractionKind = "MERGED"
	// InteractionUnblocked: the contact was unblocked (blockContact logs
	// BLOCKED); its stored messages show and route again.
	InteractionUnblocked InteractionKind = "UNBLOCKED"
	// InteractionLabeled and InteractionUnlabeled: an agent put a label on
	// the conversation, or took it off; the detail is the label's name.
	InteractionLabeled   InteractionKind = "LABELED"
	InteractionUnlabeled InteractionKind = "UNLABELED"
)

// Values lists the interaction kinds for ent's enum column.
func (InteractionKind) Values() []string {
	return []string{
		string(InteractionCreated), string(InteractionOffered), string(InteractionTaken),
		string(InteractionReplied), string(InteractionTransferred), string(InteractionDealtWith),
		string(InteractionArchived), string(InteractionUnarchived), string(InteractionEnded),
		string(InteractionBlocked), string(InteractionReleased), string(InteractionLinked),
		string(InteractionMerged), string(InteractionUnblocked),
		string(InteractionLabeled), string(InteractionUnlabeled),
	}
}

// The GraphQL (un)marshalers below let gqlgen bind the GraphQL enums of the
// same names directly to these types.

func marshalEnum(w io.Writer, s string) { _, _ = io.WriteString(w, strconv.Quote(s)) }

func unmarshalEnum(v any, values []string, name string) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s must be a string", name)
	}
	for _, x := range values {
		if x == s {
			return s, nil
		}
	}
	return "", fmt.Errorf("%q is not a valid %s", s, name)
}

// MarshalGQL implements graphql.Marshaler.
func (e Role) MarshalGQL(w io.Writer) { marshalEnum(w, string(e)) }

// UnmarshalGQL implements graphql.Unmarshaler.
func (e *Role) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, e.Values(), "Role")
	*e = Role(s)
	return err
}

// MarshalGQL implements graphql.Marshaler.
func (e AgentStatus) MarshalGQL(w io.Writer) { marshalEnum(w, string(e)) }

// UnmarshalGQL implements graphql.Unmarshaler.
func (e *AgentStatus) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, e.Values(), "AgentStatus")
	*e = AgentStatus(s)
	return err
}

// MarshalGQL implements graphql.Marshaler.
func (e Channel) MarshalGQL(w io.Writer) { marshalEnum(w, string(e)) }

// UnmarshalGQL implements graphql.Unmarshaler.
func (e *Channel) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, e.Values(), "Channel")
	*e = Channel(s)
	return err
}

// MarshalGQL implements graphql.Marshaler.
func (e ConversationStatus) MarshalGQL(w io.Writer) { marshalEnum(w, string(e)) }

// UnmarshalGQL implements graphql.Unmarshaler.
func (e *ConversationStatus) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, e.Values(), "ConversationStatus")
	*e = ConversationStatus(s)
	return err
}

// MarshalGQL implements graphql.Marshaler.
func (e MessageDirection) MarshalGQL(w io.Writer) { marshalEnum(w, string(e)) }

// UnmarshalGQL implements graphql.Unmarshaler.
func (e *MessageDirection) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, e.Values(), "MessageDirection")
	*e = MessageDirection(s)
	return err
}

// MarshalGQL implements graphql.Marshaler.
func (e MessageKind) MarshalGQL(w io.Writer) { marshalEnum(w, string(e)) }

// UnmarshalGQL implements graphql.Unmarshaler.
func (e *MessageKind) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, e.Values(), "MessageKind")
	*e = MessageKind(s)
	return err
}

// MarshalGQL implements graphql.Marshaler.
func (e DeliveryStatus) MarshalGQL(w io.Writer) { marshalEnum(w, string(e)) }

// UnmarshalGQL implements graphql.Unmarshaler.
func (e *DeliveryStatus) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, e.Values(), "DeliveryStatus")
	*e = DeliveryStatus(s)
	return err
}

// MarshalGQL implements graphql.Marshaler.
func (e PollingStrategy) MarshalGQL(w io.Writer) { marshalEnum(w, string(e)) }

// UnmarshalGQL implements graphql.Unmarshaler.
func (e *PollingStrategy) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, e.Values(), "PollingStrategy")
	*e = PollingStrategy(s)
	return err
}

// MarshalGQL implements graphql.Marshaler.
func (e InteractionKind) MarshalGQL(w io.Writer) { marshalEnum(w, string(e)) }

// UnmarshalGQL implements graphql.Unmarshaler.
func (e *InteractionKind) UnmarshalGQL(v any) error {
	s, err := unmarshalEnum(v, e.Values(), "InteractionKind")
	*e = InteractionKind(s)
	return err
}
