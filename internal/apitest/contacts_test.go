package apitest_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/stretchr/testify/require"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

type contactInfoOut struct {
	Contact struct {
		ID, DisplayName string
		Email, Phone    *string
		Blocked         bool
		Identities      []struct{ Channel, ExternalID string }
		History         struct {
			Edges []struct{ Node historyNode }
		}
	}
}

type historyNode struct {
	At           time.Time
	Kind         string
	Channel      string
	Conversation *struct{ ID, Status string }
	Agent        *struct{ ID, Name, Extension string }
	Queue        *struct{ ID, Name string }
}

// step is one Interaction row a test writes, as the conversation workflow
// would.
type step struct {
	at           time.Duration // after the test's base time
	kind         schematype.InteractionKind
	channel      schematype.Channel
	conversation *ent.Conversation
	agent        *ent.Agent
	queue        *ent.Queue
}

func writeHistory(t *testing.T, client *ent.Client, contact *ent.Contact, base time.Time, steps []step) {
	t.Helper()
	ctx := context.Background()
	for _, st := range steps {
		c := client.Interaction.Create().SetContactID(contact.ID).
			SetAt(base.Add(st.at)).SetKind(st.kind).SetChannel(st.channel)
		if st.conversation != nil {
			c.SetConversationID(st.conversation.ID)
		}
		if st.agent != nil {
			c.SetAgentID(st.agent.ID)
		}
		if st.queue != nil {
			c.SetQueueID(st.queue.ID)
		}
		require.NoError(t, c.Exec(ctx))
	}
}

func agentByEmail(t *testing.T, client *ent.Client, email string) *ent.Agent {
	t.Helper()
	for _, a := range client.Agent.Query().AllX(context.Background()) {
		if a.Email == email {
			return a
		}
	}
	t.Fatalf("no agent %s", email)
	return nil
}

func TestContactInfo(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		ctx := context.Background()
		db := s.App.DB.Client
		c := s.Client()
		admin, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		ca := c.As(admin)
		ca.CreateAgent(t, "Ana García", "ana@test.parley", "201", "AGENT")
		ca.CreateAgent(t, "Ben Okafor", "ben@test.parley", "202", "AGENT")
		// Cleo never handled the contact: contacts are shared, she sees it all.
		_, cleoTok := ca.CreateAgent(t, "Cleo", "cleo@test.parley", "203", "AGENT")
		ana, ben := agentByEmail(t, db, "ana@test.parley"), agentByEmail(t, db, "ben@test.parley")
		sales := db.Queue.Create().SetName("Sales").SetStrategy(schematype.StrategyRingAll).SaveX(ctx)
		support := db.Queue.Create().SetName("Support").SetStrategy(schematype.StrategyHunt).SaveX(ctx)

		maria := db.Contact.Create().SetDisplayName("María López").SetEmail("maria@example.com").SetPhone("+34600111222").SaveX(ctx)
		db.ContactIdentity.Create().SetContactID(maria.ID).SetChannel(schematype.ChannelWhatsApp).SetExternalID("34600111222").ExecX(ctx)
		db.ContactIdentity.Create().SetContactID(maria.ID).SetChannel(schematype.ChannelLiveChat).SetExternalID("visitor-1").ExecX(ctx)
		wa := db.Conversation.Create().SetChannel(schematype.ChannelWhatsApp).SetContactID(maria.ID).
			SetStatus(schematype.ConversationDealtWith).SaveX(ctx)
		chat := db.Conversation.Create().SetChannel(schematype.ChannelLiveChat).SetContactID(maria.ID).SaveX(ctx)

		base := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
		writeHistory(t, db, maria, base, []step{
			{0, schematype.InteractionCreated, schematype.ChannelWhatsApp, wa, nil, sales},
			{time.Minute, schematype.InteractionOffered, schematype.ChannelWhatsApp, wa, ana, sales},
			{2 * time.Minute, schematype.InteractionTaken, schematype.ChannelWhatsApp, wa, ana, sales},
			{3 * time.Minute, schematype.InteractionTransferred, schematype.ChannelWhatsApp, wa, ben, support},
			{4 * time.Minute, schematype.InteractionDealtWith, schematype.ChannelWhatsApp, wa, ben, nil},
			{time.Hour, schematype.InteractionCreated, schematype.ChannelLiveChat, chat, nil, support},
			// Written last but earlier in time (a provider timestamp): the
			// history follows `at`, not insertion order.
			{90 * time.Second, schematype.InteractionReplied, schematype.ChannelWhatsApp, wa, ana, nil},
		})
		// Another contact's history stays out of María's.
		other := db.Contact.Create().SetDisplayName("Other").SaveX(ctx)
		writeHistory(t, db, other, base, []step{{5 * time.Hour, schematype.InteractionCreated, schematype.ChannelSMS, nil, nil, sales}})

		var out contactInfoOut
		c.As(cleoTok).MustOp(t, "ContactInfo", map[string]any{"id": maria.ID}, &out)
		got := out.Contact
		require.Equal(t, fmt.Sprint(maria.ID), got.ID)
		require.Equal(t, "María López", got.DisplayName)
		require.Equal(t, "maria@example.com", *got.Email)
		require.Equal(t, "+34600111222", *got.Phone)
		var ids []string
		for _, i := range got.Identities {
			ids = append(ids, i.Channel+":"+i.ExternalID)
		}
		require.ElementsMatch(t, []string{"WHATSAPP:34600111222", "LIVE_CHAT:visitor-1"}, ids)

		type row struct{ at, kind, channel, conv, status, agent, ext, queue string }
		want := []row{
			{"10:00:00", "CREATED", "LIVE_CHAT", fmt.Sprint(chat.ID), "OPEN", "", "", "Support"},
			{"09:04:00", "DEALT_WITH", "WHATSAPP", fmt.Sprint(wa.ID), "DEALT_WITH", "Ben Okafor", "202", ""},
			{"09:03:00", "TRANSFERRED", "WHATSAPP", fmt.Sprint(wa.ID), "DEALT_WITH", "Ben Okafor", "202", "Support"},
			{"09:02:00", "TAKEN", "WHATSAPP", fmt.Sprint(wa.ID), "DEALT_WITH", "Ana García", "201", "Sales"},
			{"09:01:30", "REPLIED", "WHATSAPP", fmt.Sprint(wa.ID), "DEALT_WITH", "Ana García", "201", ""},
			{"09:01:00", "OFFERED", "WHATSAPP", fmt.Sprint(wa.ID), "DEALT_WITH", "Ana García", "201", "Sales"},
			{"09:00:00", "CREATED", "WHATSAPP", fmt.Sprint(wa.ID), "DEALT_WITH", "", "", "Sales"},
		}
		var rows []row
		for _, e := range got.History.Edges {
			n := e.Node
			r := row{at: n.At.UTC().Format("15:04:05"), kind: n.Kind, channel: n.Channel}
			if n.Conversation != nil {
				r.conv, r.status = n.Conversation.ID, n.Conversation.Status
			}
			if n.Agent != nil {
				r.agent, r.ext = n.Agent.Name, n.Agent.Extension
				require.Equal(t, map[string]string{"Ana García": fmt.Sprint(ana.ID), "Ben Okafor": fmt.Sprint(ben.ID)}[n.Agent.Name], n.Agent.ID)
			}
			if n.Queue != nil {
				r.queue = n.Queue.Name
				require.Equal(t, map[string]string{"Sales": fmt.Sprint(sales.ID), "Support": fmt.Sprint(support.ID)}[n.Queue.Name], n.Queue.ID)
			}
			rows = append(rows, r)
		}
		require.Equal(t, want, rows, "history newest first, edges resolved")

		for _, tc := range []struct {
			name, token string
			id          any
			code        string
		}{
			{"unknown id", cleoTok, 999999999, "NOT_FOUND"},
			{"an agent's id", cleoTok, ana.ID, "NOT_FOUND"},
			{"a conversation's id", cleoTok, wa.ID, "NOT_FOUND"},
			{"no token", "", maria.ID, "UNAUTHENTICATED"},
			{"bad token", "plt_nope", maria.ID, "UNAUTHENTICATED"},
			{"visitor token", visitorToken(t, s), maria.ID, "FORBIDDEN"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := c.As(tc.token).Op(t, "ContactInfo", map[string]any{"id": tc.id})
				require.Equal(t, tc.code, r.Code(), "%s", r.Raw)
				require.NotContains(t, string(r.Data), "María", "%s", r.Raw)
			})
		}
	})
}

func TestContactHistoryPagination(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		ctx := context.Background()
		db := s.App.DB.Client
		c := s.Client()
		admin, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		ca := c.As(admin)

		contact := db.Contact.Create().SetDisplayName("Paged").SaveX(ctx)
		base := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
		var steps []step
		for i := 0; i < 7; i++ {
			steps = append(steps, step{at: time.Duration(i) * time.Minute, kind: schematype.InteractionReplied, channel: schematype.ChannelSMS})
		}
		// Two rows in the same instant: the newer id comes first.
		steps = append(steps, step{at: 6 * time.Minute, kind: schematype.InteractionDealtWith, channel: schematype.ChannelSMS})
		writeHistory(t, db, contact, base, steps)

		const q = `query($id: ID!, $after: Cursor, $first: Int, $before: Cursor, $last: Int) {
			contact(id: $id) {
				history(after: $after, first: $first, before: $before, last: $last) {
					pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
					edges { node { at kind } }
				}
			}
		}`
		type page struct {
			rows           []string
			next, prev     bool
			start, endCurs string
		}
		get := func(vars map[string]any) page {
			t.Helper()
			vars["id"] = contact.ID
			var out struct {
				Contact struct {
					History struct {
						PageInfo struct {
							HasNextPage, HasPreviousPage bool
							StartCursor, EndCursor       *string
						}
						Edges []struct{ Node historyNode }
					}
				}
			}
			r := ca.Query(t, q, vars)
			require.Empty(t, r.Errors, "%s", r.Raw)
			r.Decode(t, &out)
			h := out.Contact.History
			p := page{next: h.PageInfo.HasNextPage, prev: h.PageInfo.HasPreviousPage}
			for _, e := range h.Edges {
				p.rows = append(p.rows, e.Node.At.UTC().Format("15:04")+" "+e.Node.Kind)
			}
			if h.PageInfo.StartCursor != nil {
				p.start, p.endCurs = *h.PageInfo.StartCursor, *h.PageInfo.EndCursor
			}
			return p
		}

		p1 := get(map[string]any{"first": 3})
		require.Equal(t, []string{"09:06 DEALT_WITH", "09:06 REPLIED", "09:05 REPLIED"}, p1.rows)
		require.True(t, p1.next)
		p2 := get(map[string]any{"first": 3, "after": p1.endCurs})
		require.Equal(t, []string{"09:04 REPLIED", "09:03 REPLIED", "09:02 REPLIED"}, p2.rows)
		require.True(t, p2.next)
		require.True(t, p2.prev)
		p3 := get(map[string]any{"first": 3, "after": p2.endCurs})
		require.Equal(t, []string{"09:01 REPLIED", "09:00 REPLIED"}, p3.rows)
		require.False(t, p3.next)

		oldest := get(map[string]any{"last": 2})
		require.Equal(t, []string{"09:01 REPLIED", "09:00 REPLIED"}, oldest.rows)
		require.True(t, oldest.prev)
		back := get(map[string]any{"last": 2, "before": p2.start})
		require.Equal(t, []string{"09:06 REPLIED", "09:05 REPLIED"}, back.rows)

		// No arguments: the default page size; a huge first is capped.
		for i := 0; i < 110; i++ {
			writeHistory(t, db, contact, base, []step{{at: -time.Duration(i+1) * time.Second, kind: schematype.InteractionOffered, channel: schematype.ChannelSMS}})
		}
		require.Len(t, get(map[string]any{}).rows, 20)
		require.Len(t, get(map[string]any{"first": 1000}).rows, 100)
	})
}

// countingServer starts a server whose ent client counts the SQL queries
// it sends.
func countingServer(t *testing.T, b storetest.Backend) (*apitest.Server, *atomic.Int64) {
	t.Helper()
	db := storetest.Open(t, b)
	var n atomic.Int64
	drv := dialect.DebugWithContext(entsql.OpenDB(db.Dialect, db.SQL), func(_ context.Context, v ...any) {
		if len(v) > 0 && strings.HasPrefix(fmt.Sprint(v[0]), "driver.Query") {
			n.Add(1)
		}
	})
	counted := &store.DB{Client: ent.NewClient(ent.Driver(drv)), SQL: db.SQL, Dialect: db.Dialect}
	return apitest.Start(t, apitest.Options{Backend: b, DB: counted, NoWorkers: true}), &n
}

// TestContactInfoQueryCount checks that the history's agents, queues and
// conversations are loaded per page, not per row (no N+1).
func TestContactInfoQueryCount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s, queries := countingServer(t, b)
		ctx := context.Background()
		db := s.App.DB.Client
		c := s.Client()
		admin, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		ca := c.As(admin)
		contact := db.Contact.Create().SetDisplayName("Counted").SaveX(ctx)
		db.ContactIdentity.Create().SetContactID(contact.ID).SetChannel(schematype.ChannelSMS).SetExternalID("+15550100").ExecX(ctx)
		base := time.Now().Add(-time.Hour)

		// Each row has an agent, a queue and a conversation of its own.
		addRows := func(from, to int) {
			for i := from; i < to; i++ {
				a := db.Agent.Create().SetName(fmt.Sprintf("Agent %d", i)).SetEmail(fmt.Sprintf("a%d@test.parley", i)).
					SetExtension(fmt.Sprint(500 + i)).SetPasswordHash("x").SaveX(ctx)
				q := db.Queue.Create().SetName(fmt.Sprintf("Queue %d", i)).SetStrategy(schematype.StrategyHunt).SaveX(ctx)
				conv := db.Conversation.Create().SetChannel(schematype.ChannelSMS).SetContactID(contact.ID).SaveX(ctx)
				writeHistory(t, db, contact, base, []step{{time.Duration(i) * time.Minute, schematype.InteractionTaken, schematype.ChannelSMS, conv, a, q}})
			}
		}
		count := func() (int64, int) {
			var out contactInfoOut
			queries.Store(0)
			ca.MustOp(t, "ContactInfo", map[string]any{"id": contact.ID}, &out)
			return queries.Load(), len(out.Contact.History.Edges)
		}

		addRows(0, 2)
		few, rows := count()
		require.Equal(t, 2, rows)
		addRows(2, 30)
		many, rows := count()
		require.Equal(t, 30, rows)
		t.Logf("ContactInfo: %d SQL queries for 2 history rows, %d for 30", few, many)
		require.Equal(t, few, many, "queries grow with the history: N+1")
		require.LessOrEqual(t, many, int64(10))
	})
}
