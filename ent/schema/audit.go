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
)

// AuditEntry records one administrative change: who made it, when, what
// (an action name such as "agent.deactivate"), on which node, and the
// before/after values without secrets. Rows are only ever inserted.
type AuditEntry struct{ ent.Schema }

// Fields of the AuditEntry.
func (AuditEntry) Fields() []ent.Field {
	return []ent.Field{
		field.Time("at").Default(time.Now).Immutable().
			Annotations(entgql.OrderField("AT")),
		field.Int("actor_id").Optional().Nillable().Immutable().Annotations(skip()),
		field.String("action").NotEmpty().MaxLen(100).Immutable(),
		// TargetID is the global id of the node changed (an agent, a queue,
		// a channel account, ...); nil when the change has no single target.
		field.Int("target_id").Optional().Nillable().Immutable().
			Annotations(entgql.Type("ID")),
		// Detail is JSON: {"before": ..., "after": ...}; secrets are never
		// written here.
		field.Text("detail").Optional().Nillable().Immutable(),
	}
}

// Edges of the AuditEntry.
func (AuditEntry) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("actor", Agent.Type).Field("actor_id").Unique().Immutable().
			Annotations(entsql.OnDelete(entsql.SetNull)),
	}
}

// Annotations of the AuditEntry.
func (AuditEntry) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// Indexes of the AuditEntry.
func (AuditEntry) Indexes() []ent.Index {
	return []ent.Index{index.Fields("at")}
}
