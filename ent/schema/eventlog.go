package schema

import (
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// EventLog is the durable stream of realtime events: one row per event and
// topic, written in the transaction that caused the event, so that an event
// exists exactly when its change committed. Seq is the event's place in one
// workspace-wide order that is also commit order (see EventCounter), and
// the cursor clients resume from; Prev is the seq of the previous event on
// the same topic, so a receiver can tell that it missed one.
type EventLog struct{ ent.Schema }

// Fields of the EventLog.
func (EventLog) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("seq"),
		field.String("topic").NotEmpty().MaxLen(100),
		field.Int64("prev").Default(0),
		field.String("kind").NotEmpty().MaxLen(50),
		field.Int("conversation_id").Default(0),
		field.Int("message_id").Default(0),
		// AgentIDs are the agents the event concerns, comma-separated.
		field.String("agent_ids").Default(""),
		field.Time("at").Default(time.Now),
	}
}

// Indexes of the EventLog.
func (EventLog) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("topic", "seq").Unique(),
		index.Fields("seq"),
		index.Fields("at"),
	}
}

// Annotations of the EventLog.
func (EventLog) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// EventCounter is a single row: the last seq handed out, and the highest
// seq pruned from the log. Transactions that write events take its row
// lock last, just before they commit, so seqs are gap-free and in commit
// order: when an event is visible, every event before it is too.
type EventCounter struct{ ent.Schema }

// Fields of the EventCounter.
func (EventCounter) Fields() []ent.Field {
	return []ent.Field{
		// Name is always "events": unique, so that instances starting at
		// once create one row.
		field.String("name").NotEmpty().Unique(),
		field.Int64("seq").Default(0),
		field.Int64("pruned").Default(0),
	}
}

// Annotations of the EventCounter.
func (EventCounter) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
