package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// ContactMerge remembers where a merged contact went: mergeContacts
// removes the contact it merges, and a client still holding its id (an
// agent starting a conversation from a contact page opened before the
// merge) reaches the survivor instead. Chains are kept flat: a later
// merge of the survivor moves its forwards along.
type ContactMerge struct{ ent.Schema }

// Fields of the ContactMerge.
func (ContactMerge) Fields() []ent.Field {
	return []ent.Field{
		// FromContactID is the removed contact's id (no longer a row).
		field.Int("from_contact_id").Unique().Immutable(),
		field.Int("into_contact_id"),
		field.Time("merged_at").Immutable(),
	}
}

// Edges of the ContactMerge: the survivor; its deletion ends the forward.
func (ContactMerge) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("into", Contact.Type).Field("into_contact_id").Unique().Required().
			Annotations(entsql.OnDelete(entsql.Cascade)),
	}
}

// Annotations of the ContactMerge.
func (ContactMerge) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
