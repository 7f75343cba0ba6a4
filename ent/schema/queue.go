package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/parleyhq/parley/ent/schema/schematype"
)

// Queue is a department that conversations are routed to. Its polling
// strategy decides which of its members are offered a conversation.
type Queue struct{ ent.Schema }

// Mixin of the Queue.
func (Queue) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the Queue.
func (Queue) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxRuneLen(200).Unique(),
		field.Enum("strategy").GoType(schematype.PollingStrategy("")).
			Annotations(entgql.Type("PollingStrategy")),
		// OfferTimeoutSeconds: an offer not taken within it moves on.
		field.Int("offer_timeout_seconds").Default(30).Positive(),
		field.String("description").Default("").MaxRuneLen(1000),
		// OwnerAwayTimeoutSeconds, when set, releases an owner's open
		// conversations of this queue once the owner has been OFFLINE or
		// without a connection that long.
		field.Int("owner_away_timeout_seconds").Optional().Nillable().Positive(),
		// ServiceLevelSeconds is the first-reply target; 0 = none (GraphQL
		// serviceLevelSeconds, null when none, is resolved by hand).
		field.Int("service_level_seconds").Default(0).NonNegative().Annotations(skip()),
	}
}

// Edges of the Queue.
func (Queue) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("agents", Agent.Type).Ref("queues").Through("members", QueueMember.Type).
			Annotations(skip()),
		edge.From("channel_accounts", ChannelAccount.Type).Ref("queue").Annotations(skip()),
		edge.From("conversations", Conversation.Type).Ref("queue").Annotations(skip()),
	}
}

// QueueMember places an agent in a queue at a priority (1 = first).
type QueueMember struct{ ent.Schema }

// Fields of the QueueMember.
func (QueueMember) Fields() []ent.Field {
	return []ent.Field{
		field.Int("priority").Positive(),
		field.Int("agent_id").Annotations(skip()),
		field.Int("queue_id").Annotations(skip()),
	}
}

// Edges of the QueueMember.
func (QueueMember) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("agent", Agent.Type).Field("agent_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("queue", Queue.Type).Field("queue_id").Unique().Required().
			Annotations(skip(), entsql.OnDelete(entsql.Cascade)),
	}
}

// Indexes of the QueueMember.
func (QueueMember) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("queue_id", "agent_id").Unique(),
		index.Fields("agent_id"),
	}
}
