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

// Template is a quick reply agents pick from, filed by category and language.
type Template struct{ ent.Schema }

// Mixin of the Template.
func (Template) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the Template.
func (Template) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxRuneLen(200).
			Annotations(entgql.OrderField("NAME")),
		field.String("category").NotEmpty().MaxRuneLen(100),
		field.String("language").NotEmpty().MaxLen(35),
		field.Text("body").NotEmpty(),
		// SearchKey is the folded name and body, for search.
		field.Text("search_key").Default("").Annotations(skip()),
		// NameKey is the lower-cased name: with the language, unique, so
		// that two templates an agent could not tell apart cannot exist
		// even under concurrent writes. Nil for rows older than the rule.
		field.String("name_key").Optional().Nillable().Annotations(skip()),
	}
}

// Annotations of the Template.
func (Template) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// Indexes of the Template.
func (Template) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("category"), index.Fields("language"), index.Fields("name"),
		index.Fields("language", "name_key").Unique(),
	}
}

// Block refuses an IP address (an anonymous live-chat visitor).
type Block struct{ ent.Schema }

// Fields of the Block.
func (Block) Fields() []ent.Field {
	return []ent.Field{
		field.String("ip").NotEmpty().Unique(),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Int("created_by_id").Optional().Nillable(),
		field.Int("conversation_id").Optional().Nillable(),
	}
}

// Annotations of the Block.
func (Block) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// Interaction is one entry of the append-only log behind a contact's
// history: who handled which conversation, in which queue, when, and how it
// ended. Rows are only ever inserted.
type Interaction struct{ ent.Schema }

// Fields of the Interaction.
func (Interaction) Fields() []ent.Field {
	return []ent.Field{
		field.Time("at").Default(time.Now).Immutable().
			Annotations(entgql.OrderField("AT")),
		field.Enum("kind").GoType(schematype.InteractionKind("")).Immutable().
			Annotations(entgql.Type("InteractionKind")),
		field.Enum("channel").GoType(schematype.Channel("")).Immutable().
			Annotations(entgql.Type("Channel")),
		field.String("detail").Optional().Immutable(),
		field.Int("conversation_id").Optional().Nillable().Annotations(skip()),
		field.Int("contact_id").Optional().Nillable().Annotations(skip()),
		field.Int("agent_id").Optional().Nillable().Annotations(skip()),
		field.Int("queue_id").Optional().Nillable().Annotations(skip()),
	}
}

// Edges of the Interaction.
func (Interaction) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("conversation", Conversation.Type).Field("conversation_id").Unique().
			Annotations(entsql.OnDelete(entsql.SetNull)),
		edge.To("contact", Contact.Type).Field("contact_id").Unique().
			Annotations(skip(), entsql.OnDelete(entsql.Cascade)),
		edge.To("agent", Agent.Type).Field("agent_id").Unique().
			Annotations(entsql.OnDelete(entsql.SetNull)),
		edge.To("queue", Queue.Type).Field("queue_id").Unique().
			Annotations(entsql.OnDelete(entsql.SetNull)),
	}
}

// Annotations of the Interaction.
func (Interaction) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// Indexes of the Interaction.
func (Interaction) Indexes() []ent.Index {
	return []ent.Index{index.Fields("contact_id", "at"), index.Fields("conversation_id")}
}

// AuthToken is an opaque bearer token. Only its SHA-256 is stored, so a
// database leak yields no usable token. A token belongs to an agent, or to a
// live-chat visitor bound to one conversation.
type AuthToken struct{ ent.Schema }

// Fields of the AuthToken.
func (AuthToken) Fields() []ent.Field {
	return []ent.Field{
		field.Bytes("token_hash").Sensitive().Unique(),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Time("expires_at"),
		field.Int("agent_id").Optional().Nillable(),
		field.Int("conversation_id").Optional().Nillable(),
	}
}

// Edges of the AuthToken.
func (AuthToken) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("agent", Agent.Type).Ref("tokens").Field("agent_id").Unique(),
	}
}

// Indexes of the AuthToken.
func (AuthToken) Indexes() []ent.Index {
	return []ent.Index{index.Fields("expires_at")}
}

// Annotations of the AuthToken.
func (AuthToken) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// PendingStatus keeps a provider delivery status that arrived before the
// message it is about was stored (a WhatsApp status can beat our own send
// call's answer); it is applied when the message appears.
type PendingStatus struct{ ent.Schema }

// Fields of the PendingStatus.
func (PendingStatus) Fields() []ent.Field {
	return []ent.Field{
		field.Int("channel_account_id"),
		field.String("provider_message_id").NotEmpty(),
		field.Enum("status").GoType(schematype.DeliveryStatus("")),
		field.String("reason").Optional(),
		field.Time("at"),
		field.Time("created_at").Default(time.Now).Immutable(),
	}
}

// Indexes of the PendingStatus.
func (PendingStatus) Indexes() []ent.Index {
	return []ent.Index{index.Fields("channel_account_id", "provider_message_id"), index.Fields("created_at")}
}

// Annotations of the PendingStatus.
func (PendingStatus) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// WebhookEvent is a provider webhook delivery, stored (after its signature
// was verified) before the provider gets its answer, and processed by a
// worker: slow work such as media downloads never delays the answer, and a
// crash loses nothing.
type WebhookEvent struct{ ent.Schema }

// Fields of the WebhookEvent.
func (WebhookEvent) Fields() []ent.Field {
	return []ent.Field{
		field.Int("channel_account_id"),
		// Provider is "whatsapp", "messenger" or "twilio".
		field.String("provider").NotEmpty(),
		field.Bytes("body"),
		field.Time("received_at").Default(time.Now).Immutable(),
		// NextAttemptAt is when the worker (next) processes it; nil once done.
		field.Time("next_attempt_at").Optional().Nillable(),
		field.Time("lease_until").Optional().Nillable(),
		field.Int("attempts").Default(0),
		field.String("last_error").Optional(),
		field.Time("processed_at").Optional().Nillable(),
		// OrderKey is the conversation the event's messages belong to
		// (the sender, and our number or page when not the account's
		// own): events of one key are processed one at a time, in id
		// order; nil for events with no order to keep (statuses alone).
		field.String("order_key").Optional().Nillable(),
		// Shard is the WebhookShard the event is processed under: the
		// order key's hash, so one customer's events share a shard.
		field.Int("shard").Default(0),
	}
}

// Indexes of the WebhookEvent.
func (WebhookEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("next_attempt_at"), index.Fields("received_at"),
		// A shard's due events, and its pending ones in order.
		index.Fields("shard", "next_attempt_at"),
	}
}

// Annotations of the WebhookEvent.
func (WebhookEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// WebhookShard is a lease over the webhook events of one shard (see
// WebhookEvent.shard): the instance holding it is the only one processing
// those events, so one customer's events never run on two instances at
// once, while the shards spread customers over workers and instances.
type WebhookShard struct{ ent.Schema }

// Fields of the WebhookShard.
func (WebhookShard) Fields() []ent.Field {
	return []ent.Field{
		field.Int("number").Unique(),
		// LeaseUntil is when the holder's lease ends; a released shard
		// keeps the time of its release, so that the least recently
		// served shard is claimed first.
		field.Time("lease_until"),
		field.String("lease_token").Optional(),
	}
}

// Annotations of the WebhookShard.
func (WebhookShard) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
