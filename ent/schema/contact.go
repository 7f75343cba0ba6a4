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

// Contact is a customer. One contact may write in from several channels;
// each of those is a ContactIdentity.
type Contact struct{ ent.Schema }

// Mixin of the Contact.
func (Contact) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the Contact.
func (Contact) Fields() []ent.Field {
	return []ent.Field{
		field.String("display_name").MaxRuneLen(200).
			Annotations(entgql.OrderField("DISPLAY_NAME")),
		field.String("email").Optional().Nillable().MaxLen(320),
		field.String("phone").Optional().Nillable().MaxLen(40),
		field.Text("notes").Optional().Nillable(),
		// Known is false for a contact made up from an unknown sender until
		// an agent adds it (the Add contact / Reply / Ignore prompt).
		field.Bool("known").Default(false).Annotations(skip()),
		// Blocked: the contact's messages, on every channel, are stored but
		// not routed and not shown in inboxes (blockContact). Conversations
		// mirror it in contact_blocked.
		field.Bool("blocked").Default(false),
		// PhoneKey is the contact's phone in E.164 when it is a valid
		// number, unique: one number is one contact, and a new sender on a
		// phone-number channel (WhatsApp, SMS) with that number joins it.
		field.String("phone_key").Optional().Nillable().Unique().Annotations(skip()),
		// SearchKey is the folded (lower-case, accent-free) name, email,
		// phone and identities (external ids, profile names): search
		// behaves the same on SQLite and PostgreSQL (contacts.SearchKey).
		field.String("search_key").Default("").Annotations(skip()),
	}
}

// Edges of the Contact.
func (Contact) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("identities", ContactIdentity.Type),
		edge.From("conversations", Conversation.Type).Ref("contact").Annotations(skip()),
		edge.From("interactions", Interaction.Type).Ref("contact").Annotations(skip()),
	}
}

// Annotations of the Contact.
func (Contact) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// Indexes of the Contact.
func (Contact) Indexes() []ent.Index {
	return []ent.Index{index.Fields("email"), index.Fields("phone")}
}

// ContactIdentity is a contact's address on one channel account: a WhatsApp
// wa_id, a Messenger page-scoped id, a phone number, a live-chat visitor.
type ContactIdentity struct{ ent.Schema }

// Fields of the ContactIdentity.
func (ContactIdentity) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("channel").GoType(schematype.Channel("")).Immutable().
			Annotations(entgql.Type("Channel")),
		field.String("external_id").NotEmpty().Immutable().
			Annotations(entgql.MapsTo("externalID")),
		// ProfileName is what the provider tells us the sender is called.
		field.String("profile_name").Optional(),
		field.Int("channel_account_id").Optional().Nillable().Annotations(skip()),
		field.Int("contact_id").Annotations(skip()),
	}
}

// Edges of the ContactIdentity.
func (ContactIdentity) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("contact", Contact.Type).Ref("identities").Field("contact_id").Unique().Required().
			Annotations(skip(), entsql.OnDelete(entsql.Cascade)),
		edge.To("channel_account", ChannelAccount.Type).Field("channel_account_id").Unique().
			Annotations(skip(), entsql.OnDelete(entsql.SetNull)),
	}
}

// Indexes of the ContactIdentity.
func (ContactIdentity) Indexes() []ent.Index {
	return []ent.Index{
		// One identity per sender per channel account: concurrent first
		// messages from one new sender find the same identity.
		index.Fields("channel_account_id", "external_id").Unique(),
		index.Fields("channel", "external_id"),
	}
}
