package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/parleyhq/parley/ent/schema/schematype"
)

// ChannelAccount is one connected provider account (a WhatsApp number, a
// Facebook page, a Twilio number, a website's live chat). It routes its
// conversations to a queue or to one agent.
type ChannelAccount struct{ ent.Schema }

// Mixin of the ChannelAccount.
func (ChannelAccount) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the ChannelAccount.
func (ChannelAccount) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("channel").GoType(schematype.Channel("")).Immutable().
			Annotations(entgql.Type("Channel")),
		field.String("name").NotEmpty().MaxRuneLen(200),
		// ExternalID is the provider's id of our side (WhatsApp phone number
		// id, Facebook page id, Twilio number), used to route webhooks.
		field.String("external_id").Optional().Annotations(skip()),
		// Config holds credentials: never exposed, never logged.
		field.JSON("config", schematype.ChannelConfig{}).Sensitive().Annotations(skip()),
		field.Int("queue_id").Optional().Nillable().Annotations(skip()),
		field.Int("agent_id").Optional().Nillable().Annotations(skip()),
		// FallbackQueueID is where an agent-routed account's conversations
		// go when that agent is not available within the offer timeout.
		field.Int("fallback_queue_id").Optional().Nillable().Annotations(skip()),
		// Enabled accounts take traffic; a disabled one acknowledges its
		// webhooks and stores nothing, and its widget starts no chats.
		field.Bool("enabled").Default(true),
	}
}

// Edges of the ChannelAccount.
func (ChannelAccount) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("queue", Queue.Type).Field("queue_id").Unique(),
		edge.To("agent", Agent.Type).Field("agent_id").Unique(),
		edge.To("fallback_queue", Queue.Type).Field("fallback_queue_id").Unique(),
	}
}

// Indexes of the ChannelAccount.
func (ChannelAccount) Indexes() []ent.Index {
	return []ent.Index{index.Fields("channel", "external_id")}
}
