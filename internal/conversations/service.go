// Package conversations holds the rules that make Parley more than a chat
// server: the inbound entry point every channel uses, exclusive ownership
// (the first reply or Take claims an unowned conversation in one atomic
// step), transfer (to an agent or a queue), release back to a queue (by
// the owner, when the owner is away, when the agent is deactivated: see
// release.go), dealt-with, archive, delete, the unknown-sender prompt,
// live-chat end and block, internal chats, read state, the inbox views, the
// interaction log behind a contact's history, and the realtime events.
//
// Who may see, reply, claim, manage and delete is decided in access.go;
// everything else asks it.
package conversations

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/eventlog"
	"github.com/parleyhq/parley/internal/presence"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/routing"
	"github.com/parleyhq/parley/internal/store"
)

// Limits on what agents and customers send.
const (
	MaxBodyLen        = 10000
	MaxAttachments    = 10
	MaxParticipants   = 20
	MaxClientMutation = 200
)

// Service runs the conversation workflow.
type Service struct {
	client *ent.Client
	elog   *eventlog.Log
	router *routing.Router
	log    *slog.Logger
	now    func() time.Time
	events *eventCache
	typing typingGate
	// PresenceGrace is how long an agent counts as online after their last
	// sign of life (internal/presence): the owner-away rule counts an
	// owner offline from then.
	PresenceGrace time.Duration
	// AwayEvery is how often Run looks for owners away. Set before Run.
	AwayEvery time.Duration
	// SLAEvery is how often Run looks for conversations at risk of missing
	// their service-level target. Set before Run.
	SLAEvery time.Duration
	// Signals, when set, forwards an agent's typing ("typing",
	// "typing_off") or reading ("read") of a conversation to the customer
	// where the provider can show it (internal/channels).
	Signals func(convID int, kind string)
}

// NewService returns the workflow service.
func NewService(client *ent.Client, elog *eventlog.Log, router *routing.Router, log *slog.Logger) *Service {
	s := &Service{
		client: client, elog: elog, router: router, log: log, now: time.Now,
		PresenceGrace: presence.DefaultGrace, AwayEvery: DefaultAwayEvery, SLAEvery: DefaultSLAEvery,
	}
	s.events = newEventCache()
	return s
}

// SetClock replaces time.Now (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// load returns a conversation the caller may see and what the caller may do
// with it; one the caller may not see answers NOT_FOUND, exactly like a
// missing one.
func (s *Service) load(ctx context.Context, client *ent.Client, p auth.Principal, id int) (*ent.Conversation, Access, error) {
	sub, err := judge(ctx, client, p, id)
	if err != nil {
		return nil, Access{}, err
	}
	if err := sub.access.Check(OpView); err != nil {
		return nil, Access{}, err
	}
	return sub.c, sub.access, nil
}

// act is the prologue of every action on one conversation: the calling
// agent, a transaction, the conversation judged inside it and refused unless
// the caller may do op; then fn, in the same transaction. What ent refuses
// in it is coded here, once, as about this conversation (a row gone under a
// concurrent delete is NOT_FOUND, a value the schema refuses BAD_USER_INPUT
// naming the field).
func (s *Service) act(ctx context.Context, id int, op Op, fn func(tx *ent.Tx, after *store.After, p auth.Principal, sub *subject) error) error {
	p, err := auth.Agent(ctx)
	if err != nil {
		return err
	}
	// What the operation judged of the conversation may change here.
	defer scopeOf(ctx).forget(id)
	return store.Coded(store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		sub, err := judge(ctx, tx.Client(), p, id)
		if err != nil {
			return err
		}
		if err := sub.access.Check(op); err != nil {
			return err
		}
		return fn(tx, after, p, sub)
	}), "conversation")
}

// unwrap detaches an entity loaded in a transaction from it, so that the
// resolvers can load its edges after the commit.
func unwrap(c *ent.Conversation, err error) (*ent.Conversation, error) {
	if err != nil || c == nil {
		return nil, err
	}
	return c.Unwrap(), nil
}

// logInteraction appends one entry to the interaction log.
func logInteraction(ctx context.Context, tx *ent.Tx, c *ent.Conversation, kind schematype.InteractionKind, agentID *int, detail string, at time.Time) error {
	ic := tx.Interaction.Create().SetAt(at).SetKind(kind).SetChannel(c.Channel).
		SetConversationID(c.ID).SetNillableContactID(c.ContactID).SetNillableQueueID(c.QueueID).
		SetNillableAgentID(agentID)
	if detail != "" {
		ic.SetDetail(detail)
	}
	return ic.Exec(ctx)
}

// emit records ev in the transaction's event log, for the conversation's
// topic, the topics of the given agents, and the visitor's topic when
// asked; it is published once the transaction commits.
func (s *Service) emit(after *store.After, ev pubsub.Event, agents []int, visitor bool) {
	topics := make([]string, 0, len(agents)+2)
	topics = append(topics, pubsub.ConversationTopic(ev.ConversationID))
	for _, id := range agents {
		topics = append(topics, pubsub.AgentTopic(id))
	}
	if visitor {
		topics = append(topics, pubsub.VisitorTopic(ev.ConversationID))
	}
	s.elog.Emit(after, ev, topics...)
}

// openKey is the value of a conversation's unique open_key while it is open:
// one open conversation per identity per channel account.
func openKey(accountID, identityID int) string {
	return strconv.Itoa(accountID) + ":" + strconv.Itoa(identityID)
}
