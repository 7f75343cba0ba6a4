package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/parleyhq/parley/ent/schema/schematype"
)

// Agent is a person who answers conversations: an agent, a group owner, an
// admin or the system owner.
type Agent struct{ ent.Schema }

// Mixin of the Agent.
func (Agent) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the Agent.
func (Agent) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxRuneLen(200),
		// Email is stored lower-cased; it is the login name.
		field.String("email").NotEmpty().MaxLen(320).Unique(),
		// Extension is the agent's phone extension, unique in the workspace.
		field.String("extension").NotEmpty().MaxLen(20).Unique(),
		field.Enum("role").GoType(schematype.Role("")).Default(string(schematype.RoleAgent)).
			Annotations(entgql.Type("Role")),
		field.Enum("status").GoType(schematype.AgentStatus("")).Default(string(schematype.StatusOffline)).
			Annotations(entgql.Type("AgentStatus")),
		// StatusChangedAt feeds the LONGEST_WAITING strategy.
		field.Time("status_changed_at").Optional().Nillable().Annotations(skip()),
		// LastAssignedAt is when the agent last became owner of a
		// conversation; with StatusChangedAt it says who idled longest.
		field.Time("last_assigned_at").Optional().Nillable().Annotations(skip()),
		field.Int("max_concurrent_chats").Default(5).Positive(),
		field.JSON("chat_options", schematype.ChatOptions{}).
			Default(schematype.DefaultChatOptions()).
			Annotations(entgql.Type("ChatOptions")),
		field.String("password_hash").Sensitive().Annotations(skip()),
		// Active agents log in and are found by SearchAgents; deactivated
		// ones keep their history.
		field.Bool("active").Default(true),
		// MustChangePassword is set by an admin's password reset: the
		// one-time password works until the agent chooses a new one.
		field.Bool("must_change_password").Default(false).Annotations(skip()),
		// LastSeenAt is the agent's last sign of life: a request, or an
		// open websocket (refreshed while it stays open). Online says
		// whether the presence sweep last found it recent; see
		// internal/presence.
		field.Time("last_seen_at").Optional().Nillable().Annotations(skip()),
		field.Bool("online").Default(false).Annotations(skip()),
		// SearchKey is the folded name and extension (see textsearch).
		field.String("search_key").Default("").Annotations(skip()),
	}
}

// Edges of the Agent.
func (Agent) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("queues", Queue.Type).Through("memberships", QueueMember.Type).
			Annotations(entgql.Skip(entgql.SkipAll)),
		edge.To("tokens", AuthToken.Type).Annotations(skip(), entsql.OnDelete(entsql.Cascade)),
		edge.From("owned_conversations", Conversation.Type).Ref("owner").Annotations(skip()),
		edge.From("internal_chats", Conversation.Type).Ref("participants").Annotations(skip()),
		// MentionedIn makes Message.mentions many-to-many (message_mentions).
		edge.From("mentioned_in", Message.Type).Ref("mentions").Annotations(skip()),
	}
}

// Annotations of the Agent.
func (Agent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// Indexes of the Agent.
func (Agent) Indexes() []ent.Index {
	return []ent.Index{index.Fields("active", "name")}
}
