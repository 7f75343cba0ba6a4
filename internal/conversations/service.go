// Package conversations holds the rules that make Parley more than a chat
// server: the inbound entry point every channel uses, exclusive ownership
// (the first reply or Take claims an unowned conversation in one atomic
// step), transfer, dealt-with, archive, delete, the unknown-sender prompt,
// live-chat end and block, internal chats, read state, the inbox views, the
// interaction log behind a contact's history, and the realtime events.
//
// Who may see and reply is decided in access.go and nowhere else.
package conversations

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
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
	broker pubsub.Broker
	router *routing.Router
	log    *slog.Logger
	now    func() time.Time
	unread *unreadBatcher
	events *eventCache
}

// NewService returns the workflow service.
func NewService(client *ent.Client, broker pubsub.Broker, router *routing.Router, log *slog.Logger) *Service {
	s := &Service{client: client, broker: broker, router: router, log: log, now: time.Now}
	s.unread = newUnreadBatcher(client, log)
	s.events = newEventCache()
	return s
}

// SetClock replaces time.Now (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// load returns a conversation and the caller's access; a conversation the
// caller may not see answers NOT_FOUND, exactly like a missing one.
func (s *Service) load(ctx context.Context, client *ent.Client, p auth.Principal, id int) (*ent.Conversation, Access, error) {
	c, err := client.Conversation.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, Access{}, apperr.NotFoundf("conversation")
	}
	if err != nil {
		return nil, Access{}, err
	}
	a, err := s.access(ctx, client, p, c)
	if err != nil {
		return nil, Access{}, err
	}
	if !a.View {
		return nil, Access{}, apperr.NotFoundf("conversation")
	}
	return c, a, nil
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

// emit publishes ev, after the commit, to the conversation's topic, to the
// topics of the given agents, and to the visitor's topic when asked.
func (s *Service) emit(after *store.After, ev pubsub.Event, agents []int, visitor bool) {
	after.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		topics := []string{pubsub.ConversationTopic(ev.ConversationID)}
		seen := map[int]bool{}
		for _, id := range agents {
			if !seen[id] {
				seen[id] = true
				topics = append(topics, pubsub.AgentTopic(id))
			}
		}
		if visitor {
			topics = append(topics, pubsub.VisitorTopic(ev.ConversationID))
		}
		for _, t := range topics {
			if err := s.broker.Publish(ctx, t, ev); err != nil {
				s.log.Warn("publish", "topic", t, "kind", ev.Kind, "err", err)
			}
		}
	})
}

// openKey is the value of a conversation's unique open_key while it is open:
// one open conversation per identity per channel account.
func openKey(accountID, identityID int) string {
	return strconv.Itoa(accountID) + ":" + strconv.Itoa(identityID)
}
