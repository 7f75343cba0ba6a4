package conversations

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/eventlog"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/routing"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// world is a service on a fresh database whose SQL statements are counted.
type world struct {
	t      *testing.T
	ctx    context.Context
	client *ent.Client
	svc    *Service
	// statements counts the statements sent inside transactions and
	// outside them (BEGIN and COMMIT not included).
	statements atomic.Int64
	seq        int
}

func newWorld(t *testing.T, b storetest.Backend) *world {
	t.Helper()
	db := storetest.Open(t, b)
	w := &world{t: t, ctx: context.Background()}
	drv := dialect.DebugWithContext(entsql.OpenDB(db.Dialect, db.SQL), func(_ context.Context, v ...any) {
		if len(v) == 0 {
			return
		}
		s := fmt.Sprint(v[0])
		if strings.Contains(s, ".Query:") || strings.Contains(s, ".Exec:") {
			w.statements.Add(1)
			if testing.Verbose() {
				t.Log(s)
			}
		}
	})
	w.client = ent.NewClient(ent.Driver(drv))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	events := eventlog.New(w.client, pubsub.NewInMemory(), log)
	w.svc = NewService(w.client, events, routing.New(w.client, events, log), log)
	return w
}

func (w *world) agent(role schematype.Role) auth.Principal {
	w.t.Helper()
	w.seq++
	a := w.client.Agent.Create().SetName(fmt.Sprintf("Agent %d", w.seq)).
		SetEmail(fmt.Sprintf("a%d@test.parley", w.seq)).SetExtension(fmt.Sprint(100 + w.seq)).
		SetPasswordHash("x").SetRole(role).SaveX(w.ctx)
	return auth.Principal{AgentID: a.ID, Role: role}
}

func (w *world) queue(members ...auth.Principal) int {
	w.t.Helper()
	w.seq++
	q := w.client.Queue.Create().SetName(fmt.Sprintf("Queue %d", w.seq)).SetStrategy(schematype.StrategyRingAll).SaveX(w.ctx)
	for i, m := range members {
		w.client.QueueMember.Create().SetQueueID(q.ID).SetAgentID(m.AgentID).SetPriority(i + 1).ExecX(w.ctx)
	}
	return q.ID
}

// conv makes a conversation with the given facts: channel, queue (0 for
// none), owner (zero principal for none), offers (active and expired) and,
// for an internal chat, participants.
type convSpec struct {
	channel      schematype.Channel
	queue        int
	owner        auth.Principal
	offered      []auth.Principal
	expired      []auth.Principal
	participants []auth.Principal
	// blocked: the conversation's contact is blocked.
	blocked bool
	// mentioned: agents a note of the conversation mentions; closed: it
	// was dealt with.
	mentioned []auth.Principal
	closed    bool
}

func (w *world) conv(s convSpec) *ent.Conversation {
	w.t.Helper()
	now := time.Now()
	cc := w.client.Conversation.Create().SetChannel(s.channel).SetLastMessageAt(now).SetContactBlocked(s.blocked)
	if s.queue != 0 {
		cc.SetQueueID(s.queue)
	}
	if s.owner.AgentID != 0 {
		cc.SetOwnerID(s.owner.AgentID).SetTakenAt(now)
	}
	for _, p := range s.participants {
		cc.AddParticipantIDs(p.AgentID)
	}
	c := cc.SaveX(w.ctx)
	offer := func(p auth.Principal, active bool) {
		w.client.Offer.Create().SetConversationID(c.ID).SetAgentID(p.AgentID).
			SetOfferedAt(now).SetExpiresAt(now.Add(time.Minute)).SetActive(active).ExecX(w.ctx)
	}
	for _, p := range s.offered {
		offer(p, true)
	}
	for _, p := range s.expired {
		offer(p, false)
	}
	if len(s.mentioned) > 0 {
		w.client.Message.Create().SetConversationID(c.ID).SetKind(schematype.KindNote).
			SetDirection(schematype.DirectionOutbound).SetBody("note").AddMentionIDs(agentIDs(s.mentioned)...).ExecX(w.ctx)
		c = c.Update().SetHasMentions(true).SaveX(w.ctx)
	}
	if s.closed {
		c = c.Update().SetStatus(schematype.ConversationDealtWith).SaveX(w.ctx)
	}
	return c
}

// as returns a context carrying the principal.
func (w *world) as(p auth.Principal) context.Context { return auth.WithPrincipal(w.ctx, p) }
