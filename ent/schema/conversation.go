package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/parleyhq/parley/ent/schema/schematype"
)

// Conversation is one thread with a customer (or between agents, for
// INTERNAL chats). Until someone owns it, the agents it is offered to see it;
// once owned, only the owner does.
type Conversation struct{ ent.Schema }

// Mixin of the Conversation.
func (Conversation) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the Conversation.
func (Conversation) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("channel").GoType(schematype.Channel("")).Immutable().
			Annotations(entgql.Type("Channel")),
		field.Enum("status").GoType(schematype.ConversationStatus("")).
			Default(string(schematype.ConversationOpen)).
			Annotations(entgql.Type("ConversationStatus")),
		field.Bool("archived").Default(false),
		field.Bool("unknown_contact").Default(false),
		// ContactBlocked mirrors the contact's blocked flag (blockContact,
		// unblockContact, merges, inbound), so that the access rules and
		// the inbox read it from the conversation's own row.
		field.Bool("contact_blocked").Default(false).Annotations(skip()),
		// ContactDeleted: the customer was deleted (deleteContact); the
		// conversation stays, anonymised, with no contact: clients show it
		// as "deleted contact".
		field.Bool("contact_deleted").Default(false),
		// HasMentions: a note of this conversation mentions agents, so the
		// access rule looks for mentions (most conversations have none).
		field.Bool("has_mentions").Default(false).Annotations(skip()),
		// OpenKey is set while the conversation is open ("account:identity")
		// and cleared when it is dealt with or ended; its unique index makes
		// "at most one open conversation per identity per account" a
		// database guarantee rather than a read-then-insert hope.
		field.String("open_key").Optional().Nillable().Annotations(skip()),
		// LastMessageAt orders the inbox, newest activity first.
		field.Time("last_message_at").Default(time.Now).
			Annotations(entgql.OrderField("LAST_MESSAGE_AT")),
		// CustomerLastMessageAt opens the providers' 24-hour reply window.
		field.Time("customer_last_message_at").Optional().Nillable().Annotations(skip()),
		field.Time("taken_at").Optional().Nillable().Annotations(skip()),
		// RouteAt is when routing next looks at this unowned conversation
		// (an offer times out, or it waits for an agent); nil when nothing
		// is due. Claimed with a conditional update, so one instance acts.
		field.Time("route_at").Optional().Nillable().Annotations(skip()),
		// RoundStartedAt starts the current round of offers: members offered
		// since then are not offered again until every eligible one was.
		field.Time("round_started_at").Optional().Nillable().Annotations(skip()),
		field.Time("closed_at").Optional().Nillable().Annotations(skip()),
		// Visitor details, live chat only.
		field.String("visitor_ip").Optional().Annotations(skip()),
		field.String("visitor_user_agent").Optional().Annotations(skip()),
		field.String("visitor_page_url").Optional().Annotations(skip()),
		field.Int("channel_account_id").Optional().Nillable().Annotations(skip()),
		field.Int("contact_id").Optional().Nillable().Annotations(skip()),
		field.Int("identity_id").Optional().Nillable().Annotations(skip()),
		field.Int("queue_id").Optional().Nillable().Annotations(skip()),
		field.Int("owner_id").Optional().Nillable().Annotations(skip()),
		field.Int("last_message_id").Optional().Nillable().Annotations(skip()),

		// What the queue statistics (internal/stats) and service levels
		// are computed from, written by the workflow as it happens.
		//
		// QueuedAt: when the conversation last entered a queue (its first
		// routing in one, a move or a fall-back to another).
		field.Time("queued_at").Optional().Nillable().Annotations(skip()),
		// ClaimedAt and ClaimedByID: the first claim (first reply or Take);
		// never undone by a release or a transfer.
		field.Time("claimed_at").Optional().Nillable().Annotations(skip()),
		field.Int("claimed_by_id").Optional().Nillable().Annotations(skip()),
		// FirstReply*: the first customer-facing agent reply (a private
		// note is not one); seconds from QueuedAt (or creation).
		field.Time("first_reply_at").Optional().Nillable().Annotations(skip()),
		field.Int("first_reply_agent_id").Optional().Nillable().Annotations(skip()),
		field.Float("first_reply_seconds").Optional().Nillable().Annotations(skip()),
		// HandleSeconds: from ClaimedAt to the first close (dealt with or
		// ended); HandledByID is the owner then.
		field.Float("handle_seconds").Optional().Nillable().Annotations(skip()),
		field.Int("handled_by_id").Optional().Nillable().Annotations(skip()),
		// MissedAt: the first offer round that timed out with nobody
		// taking it.
		field.Time("missed_at").Optional().Nillable().Annotations(skip()),
		// Abandoned: closed (dealt with, or ended by the visitor or an
		// agent) without any agent reply.
		field.Bool("abandoned").Default(false).Annotations(skip()),
		// SLADueAt: QueuedAt + the queue's serviceLevelSeconds while no
		// agent replied; nil without a target, after the reply or close.
		field.Time("sla_due_at").Optional().Nillable().Annotations(skip()),
		// SLASortAt orders the inbox by SLA_DUE: SLADueAt, or
		// schematype.SLANever when nothing is due (non-null, so that keyset
		// paging works alike on both databases).
		// The column default gives rows older than the column the same key.
		field.Time("sla_sort_at").Default(slaNever).
			Annotations(entgql.OrderField("SLA_DUE"), entsql.Default("'9999-12-31 00:00:00'"),
				entgql.Skip(entgql.SkipType, entgql.SkipWhereInput, entgql.SkipMutationCreateInput, entgql.SkipMutationUpdateInput)),
		// SLARiskAt is the at-risk timer (80 % of the target): nil once
		// notified, replied or closed. Claimed with a conditional update,
		// so one instance notifies, once.
		field.Time("sla_risk_at").Optional().Nillable().Annotations(skip()),
	}
}

func slaNever() time.Time { return schematype.SLANever }

// Edges of the Conversation.
func (Conversation) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("channel_account", ChannelAccount.Type).Field("channel_account_id").Unique().
			Annotations(skip(), entsql.OnDelete(entsql.SetNull)),
		edge.To("contact", Contact.Type).Field("contact_id").Unique().
			Annotations(entsql.OnDelete(entsql.SetNull)),
		edge.To("identity", ContactIdentity.Type).Field("identity_id").Unique().
			Annotations(skip(), entsql.OnDelete(entsql.SetNull)),
		edge.To("queue", Queue.Type).Field("queue_id").Unique().
			Annotations(entsql.OnDelete(entsql.SetNull)),
		edge.To("owner", Agent.Type).Field("owner_id").Unique().
			Annotations(entsql.OnDelete(entsql.SetNull)),
		// Participants of an INTERNAL chat.
		edge.To("participants", Agent.Type),
		edge.To("messages", Message.Type).Annotations(skip(), entsql.OnDelete(entsql.Cascade)),
		edge.To("last_message", Message.Type).Field("last_message_id").Unique().
			Annotations(skip(), entsql.OnDelete(entsql.SetNull)),
		edge.To("read_states", ReadState.Type).Annotations(skip(), entsql.OnDelete(entsql.Cascade)),
		edge.To("offers", Offer.Type).Annotations(skip(), entsql.OnDelete(entsql.Cascade)),
		// Labels are resolved by hand (Conversation.labels in schema.graphql,
		// by name, loaded per inbox or history page).
		edge.To("labels", Label.Type).Through("conversation_labels", ConversationLabel.Type).
			Annotations(skip()),
	}
}

// Annotations of the Conversation.
func (Conversation) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// Indexes of the Conversation: the inbox views, newest activity first.
func (Conversation) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("open_key").Unique(),
		index.Fields("owner_id", "archived", "last_message_at"),
		index.Fields("queue_id", "owner_id", "archived", "last_message_at"),
		index.Fields("status", "archived", "last_message_at"),
		index.Fields("archived", "last_message_at"),
		index.Fields("contact_id"),
		index.Fields("route_at"),
		// Queue statistics over a period; the at-risk timer; SLA_DUE.
		index.Fields("queue_id", "queued_at"),
		index.Fields("sla_risk_at"),
		index.Fields("archived", "sla_sort_at"),
	}
}

// ReadState is how far one agent has read one conversation; it backs the
// per-agent unreadCount.
type ReadState struct{ ent.Schema }

// Fields of the ReadState.
func (ReadState) Fields() []ent.Field {
	return []ent.Field{
		field.Int("conversation_id"),
		field.Int("agent_id"),
		// LastReadMessageID: messages with a greater id are unread.
		field.Int("last_read_message_id").Default(0),
		field.Time("read_at").Optional().Nillable(),
	}
}

// Edges of the ReadState.
func (ReadState) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("conversation", Conversation.Type).Ref("read_states").Field("conversation_id").Unique().Required(),
		edge.To("agent", Agent.Type).Field("agent_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

// Indexes of the ReadState.
func (ReadState) Indexes() []ent.Index {
	return []ent.Index{index.Fields("conversation_id", "agent_id").Unique(), index.Fields("agent_id")}
}

// Annotations of the ReadState.
func (ReadState) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Offer records that a conversation was offered to an agent by routing. An
// open offer lets the agent see and take the conversation until it expires.
type Offer struct{ ent.Schema }

// Fields of the Offer.
func (Offer) Fields() []ent.Field {
	return []ent.Field{
		field.Int("conversation_id"),
		field.Int("agent_id"),
		field.Time("offered_at"),
		field.Time("expires_at"),
		// Active is true until the offer expires or the conversation is taken.
		field.Bool("active").Default(true),
	}
}

// Edges of the Offer.
func (Offer) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("conversation", Conversation.Type).Ref("offers").Field("conversation_id").Unique().Required(),
		edge.To("agent", Agent.Type).Field("agent_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

// Indexes of the Offer.
func (Offer) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("agent_id", "active"),
		index.Fields("conversation_id", "active"),
		index.Fields("active", "expires_at"),
	}
}

// Annotations of the Offer.
func (Offer) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
