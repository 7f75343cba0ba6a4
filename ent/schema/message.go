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

// Message is one message in a conversation.
type Message struct{ ent.Schema }

// Fields of the Message.
func (Message) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("direction").GoType(schematype.MessageDirection("")).Immutable().
			Annotations(entgql.Type("MessageDirection")),
		// Kind: a NOTE is agents' own (addNote): the outbox, the visitor
		// and the first-reply log never see it. Exposed by the hand-written
		// Message.kind.
		field.Enum("kind").GoType(schematype.MessageKind("")).Default(string(schematype.KindMessage)).
			Immutable().Annotations(skip()),
		field.Text("body").Default(""),
		// SearchBody is the folded body for search (see Contact.search_key).
		field.Text("search_body").Default("").Annotations(skip()),
		// CreatedAt is the provider's timestamp for inbound messages: it
		// orders a conversation, arrival order does not.
		field.Time("created_at").Default(time.Now).Immutable().
			Annotations(entgql.OrderField("CREATED_AT")),
		field.Enum("delivery_status").GoType(schematype.DeliveryStatus("")).Optional().Nillable().
			Annotations(entgql.Type("DeliveryStatus")),
		field.String("failure_reason").Optional().Nillable(),
		field.Int("conversation_id").Immutable().Annotations(skip()),
		// ChannelAccountID and ProviderMessageID deduplicate provider
		// deliveries with a unique index.
		field.Int("channel_account_id").Optional().Nillable().Annotations(skip()),
		field.String("provider_message_id").Optional().Nillable().Annotations(skip()),
		field.Int("sender_agent_id").Optional().Nillable().Annotations(skip()),
		field.Int("sender_contact_id").Optional().Nillable().Annotations(skip()),
		// ClientMutationID makes an agent's retried send idempotent.
		field.String("client_mutation_id").Optional().Nillable().Annotations(skip()),
		// Outbox: an outbound message to a provider is PENDING with a
		// next_attempt_at until the delivery worker hands it over; a worker
		// claims it by setting lease_until with a conditional update, so
		// that with several instances each message is sent once.
		field.Time("next_attempt_at").Optional().Nillable().Annotations(skip()),
		field.Time("lease_until").Optional().Nillable().Annotations(skip()),
		field.Int("attempts").Default(0).Annotations(skip()),
		// WhatsAppTemplate is set on a message sent as a WhatsApp template
		// (body holds the rendered text): the outbox sends the template.
		field.JSON("whatsapp_template", &schematype.TemplateMessage{}).Optional().Annotations(skip()),
		// MessagingTag is the Messenger message tag a message outside the
		// standard window is sent with ("HUMAN_AGENT"); empty for none.
		field.String("messaging_tag").Optional().Annotations(skip()),
	}
}

// Edges of the Message.
func (Message) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("conversation", Conversation.Type).Ref("messages").Field("conversation_id").
			Unique().Required().Immutable().Annotations(skip()),
		edge.To("sender_agent", Agent.Type).Field("sender_agent_id").Unique().
			Annotations(skip(), entsql.OnDelete(entsql.SetNull)),
		edge.To("sender_contact", Contact.Type).Field("sender_contact_id").Unique().
			Annotations(skip(), entsql.OnDelete(entsql.SetNull)),
		edge.To("attachments", Attachment.Type),
		// Mentions are the agents a note names; while the conversation is
		// open each may read it (internal/conversations/access.go).
		// Exposed by the hand-written Message.mentions.
		edge.To("mentions", Agent.Type).Annotations(skip()),
	}
}

// Annotations of the Message.
func (Message) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// Indexes of the Message.
func (Message) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("conversation_id", "created_at"),
		index.Fields("conversation_id", "id"),
		index.Fields("channel_account_id", "provider_message_id").Unique(),
		index.Fields("sender_agent_id", "client_mutation_id").Unique(),
		index.Fields("next_attempt_at"),
	}
}

// Attachment is an uploaded file, stored content-addressed under the data
// directory and linked to a message once sent.
type Attachment struct{ ent.Schema }

// Fields of the Attachment.
func (Attachment) Fields() []ent.Field {
	return []ent.Field{
		field.String("filename").NotEmpty().MaxLen(255),
		field.String("content_type").NotEmpty(),
		field.Int64("size").NonNegative(),
		field.String("sha256").NotEmpty().Annotations(skip()),
		field.Time("created_at").Default(time.Now).Immutable(),
		field.Int("uploader_agent_id").Optional().Nillable().Annotations(skip()),
		// UploaderConversationID is set for a visitor's upload.
		field.Int("uploader_conversation_id").Optional().Nillable().Annotations(skip()),
	}
}

// Edges of the Attachment.
func (Attachment) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("message", Message.Type).Ref("attachments").Unique().Annotations(skip()),
	}
}

// Indexes of the Attachment.
func (Attachment) Indexes() []ent.Index {
	return []ent.Index{index.Fields("sha256"), index.Fields("created_at")}
}
