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

// Label is a workspace label (admins manage them) that agents put on
// conversations: "billing", "complaint". The inbox filters by them.
type Label struct{ ent.Schema }

// Fields of the Label.
func (Label) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxRuneLen(50),
		field.String("color").Comment("A CSS hex colour, #rrggbb."),
		// NameKey is the lower-cased name: unique, so that two labels an
		// agent could not tell apart cannot exist, even under concurrent
		// writes.
		field.String("name_key").Unique().Annotations(skip()),
		field.Time("created_at").Default(time.Now).Immutable().Annotations(skip()),
	}
}

// Edges of the Label.
func (Label) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("conversations", Conversation.Type).Ref("labels").
			Through("conversation_labels", ConversationLabel.Type).Annotations(skip()),
	}
}

// ConversationLabel puts a label on a conversation (the join table of
// Conversation.labels): at most once, with when it was put there.
type ConversationLabel struct{ ent.Schema }

// Annotations of the ConversationLabel: its key is the pair.
func (ConversationLabel) Annotations() []schema.Annotation {
	return []schema.Annotation{
		field.ID("conversation_id", "label_id"),
		entgql.Skip(entgql.SkipAll),
	}
}

// Fields of the ConversationLabel.
func (ConversationLabel) Fields() []ent.Field {
	return []ent.Field{
		field.Int("conversation_id"),
		field.Int("label_id"),
		field.Time("created_at").Default(time.Now).Immutable(),
	}
}

// Edges of the ConversationLabel.
func (ConversationLabel) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("conversation", Conversation.Type).Field("conversation_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
		edge.To("label", Label.Type).Field("label_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

// Indexes of the ConversationLabel: the conversations carrying a label
// (the inbox filter, deleting a label).
func (ConversationLabel) Indexes() []ent.Index {
	return []ent.Index{index.Fields("label_id")}
}
