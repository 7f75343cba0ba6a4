package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/parleyhq/parley/ent/schema/schematype"
)

// WhatsAppTemplate is a message template of one WhatsApp account, approved
// by Meta: the only kind of message WhatsApp delivers outside the 24-hour
// customer service window. Admins register templates by hand or sync them
// from the Graph API's message_templates list.
type WhatsAppTemplate struct{ ent.Schema }

// Mixin of the WhatsAppTemplate.
func (WhatsAppTemplate) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}} }

// Fields of the WhatsAppTemplate.
func (WhatsAppTemplate) Fields() []ent.Field {
	return []ent.Field{
		field.Int("channel_account_id").Immutable().Annotations(skip()),
		// Name is WhatsApp's: lower-case letters, digits and underscores.
		field.String("name").NotEmpty().MaxLen(512),
		// Language is WhatsApp's code: "en", "en_US", "pt_BR".
		field.String("language").NotEmpty().MaxLen(15),
		// Category is MARKETING, UTILITY or AUTHENTICATION.
		field.String("category").NotEmpty().MaxLen(40),
		// Body is the body component's text, with {{1}}..{{n}} placeholders.
		field.Text("body"),
		// Placeholders is how many parameters the body takes.
		field.Int("placeholders").Default(0).Annotations(skip()),
		// Header and Buttons are the provider's HEADER and BUTTONS
		// components as it gave them (JSON), kept as received.
		field.Text("header").Optional().Nillable().Annotations(skip()),
		field.Text("buttons").Optional().Nillable().Annotations(skip()),
		// HeaderComponent and ButtonComponents are the header and buttons
		// Parley sends with: checked at registration or sync, read when a
		// message fills in their parameters.
		field.JSON("header_component", &schematype.TemplateHeader{}).Optional().Annotations(skip()),
		field.JSON("button_components", []schematype.TemplateButton{}).Optional().Annotations(skip()),
		// Status is the provider's: APPROVED, PENDING, REJECTED, PAUSED, ...
		field.String("status").NotEmpty().MaxLen(40),
		// ProviderID is Meta's template id, once synced.
		field.String("provider_id").Optional().Nillable().Annotations(skip()),
	}
}

// Edges of the WhatsAppTemplate.
func (WhatsAppTemplate) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("channel_account", ChannelAccount.Type).Field("channel_account_id").Unique().Required().Immutable().
			Annotations(skip(), entsql.OnDelete(entsql.Cascade)),
	}
}

// Indexes of the WhatsAppTemplate: one template per name and language per
// account, as at Meta.
func (WhatsAppTemplate) Indexes() []ent.Index {
	return []ent.Index{index.Fields("channel_account_id", "name", "language").Unique()}
}
