package apitest_test

// Routing, complete (issue 11): direct-agent routing with a fallback queue,
// transfer to a queue, release, owner away, and ReturnOwned.

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent/interaction"
	"github.com/parleyhq/parley/ent/offer"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// historyEntry is one entry of ContactHistory.
type historyEntry struct {
	Kind, Detail string
	Conversation *struct{ ID string }
	Agent        *struct{ ID, Name string }
	Queue        *struct{ ID, Name string }
}

// history returns the entries of conversation id in its contact's history,
// newest first, as a reads them.
func history(t *testing.T, a *apitest.Agent, id string) []historyEntry {
	t.Helper()
	c := mustConv(t, a, id)
	var out struct {
		Contact struct {
			History struct{ Edges []struct{ Node historyEntry } }
		}
	}
	a.C.MustOp(t, "ContactHistory", map[string]any{"id": c.Contact.ID}, &out)
	var es []historyEntry
	for _, e := range out.Contact.History.Edges {
		if e.Node.Conversation != nil && e.Node.Conversation.ID == id {
			es = append(es, e.Node)
		}
	}
	return es
}

// lastEntry is the newest entry of kind for conversation id.
func lastEntry(t *testing.T, a *apitest.Agent, id, kind string) historyEntry {
	t.Helper()
	for _, e := range history(t, a, id) {
		if e.Kind == kind {
			return e
		}
	}
	t.Fatalf("no %s entry in the history of %s: %+v", kind, id, history(t, a, id))
	return historyEntry{}
}

// newQueue creates a RING_ALL queue with the given members (priority by
// order) and returns its id.
func newQueue(t *testing.T, w *apitest.Workspace, name string, extra map[string]any, members ...*apitest.Agent) string {
	t.Helper()
	var ms []map[string]any
	for i, m := range members {
		ms = append(ms, map[string]any{"agentID": m.ID, "priority": i + 1})
	}
	in := map[string]any{"name": name, "strategy": "RING_ALL", "offerTimeoutSeconds": 30, "members": ms}
	for k, v := range extra {
		in[k] = v
	}
	var q struct{ CreateQueue struct{ ID string } }
	w.Admin.C.MustOp(t, "CreateQueue", map[string]any{"input": in}, &q)
	return q.CreateQueue.ID
}

var directSeq atomic.Int64

// directAccount creates an SMS account routed to agent, with the fallback
// queue when given.
func directAccount(t *testing.T, w *apitest.Workspace, agent *apitest.Agent, fallback string) string {
	t.Helper()
	n := directSeq.Add(1)
	in := map[string]any{
		"channel": "SMS", "name": fmt.Sprintf("Direct %d", n), "agentID": agent.ID,
		"sms": map[string]any{"accountSID": "AC1", "authToken": "t", "fromNumber": fmt.Sprintf("+1415777%04d", n)},
	}
	if fallback != "" {
		in["fallbackQueueID"] = fallback
	}
	var out struct {
		CreateChannelAccount struct {
			ID            string
			Agent         struct{ ID string }
			FallbackQueue *struct{ ID string }
		}
	}
	w.Admin.C.MustOp(t, "CreateDirectChannelAccount", map[string]any{"input": in}, &out)
	got := out.CreateChannelAccount
	if got.Agent.ID != agent.ID || (fallback == "") != (got.FallbackQueue == nil) || (got.FallbackQueue != nil && got.FallbackQueue.ID != fallback) {
		t.Fatalf("created %+v, want agent %s fallback %q", got, agent.ID, fallback)
	}
	return got.ID
}

func owner(t *testing.T, a *apitest.Agent, id string) string {
	t.Helper()
	c := mustConv(t, a, id)
	if c.Owner == nil {
		return ""
	}
	return c.Owner.ID
}

func queueOf(t *testing.T, a *apitest.Agent, id string) string {
	t.Helper()
	c := mustConv(t, a, id)
	if c.Queue == nil {
		return ""
	}
	return c.Queue.ID
}

// TestRoutingDirectFallback: an account routed to one agent offers to that
// agent only when they can take it, and moves to its fallback queue when
// they do not within the fallback queue's offer timeout (at once when they
// are deactivated); the timer is the database's, so another instance runs
// it after a restart. Without a fallback it waits for the agent.
func TestRoutingDirectFallback(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		s := apitest.Start(t, apitest.Options{Backend: b, DB: db, NoWorkers: true})
		clk := &clock{t: time.Now()}
		s.App.Router.SetClock(clk.now)
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		ctx := context.Background()

		// The input: a fallback only with agentID, and only an existing
		// queue; a refused account is not created.
		before := db.Client.ChannelAccount.Query().CountX(ctx)
		sms := map[string]any{"accountSID": "AC1", "authToken": "t", "fromNumber": "+14157770999"}
		wantCode(t, w.Admin.C.Op(t, "CreateDirectChannelAccount", map[string]any{"input": map[string]any{
			"channel": "SMS", "name": "Bad", "queueID": w.QueueID, "fallbackQueueID": w.QueueID, "sms": sms,
		}}), "BAD_USER_INPUT", "a fallback for a queue-routed account")
		wantCode(t, w.Admin.C.Op(t, "CreateDirectChannelAccount", map[string]any{"input": map[string]any{
			"channel": "SMS", "name": "Bad", "agentID": w.Dan.ID, "fallbackQueueID": "999999", "sms": sms,
		}}), "BAD_USER_INPUT", "a fallback queue that does not exist")
		wantCode(t, w.Dan.C.Op(t, "CreateDirectChannelAccount", map[string]any{"input": map[string]any{
			"channel": "SMS", "name": "Bad", "agentID": w.Dan.ID, "fallbackQueueID": w.QueueID, "sms": sms,
		}}), "FORBIDDEN", "an agent creates an account")
		if n := db.Client.ChannelAccount.Query().CountX(ctx); n != before {
			t.Fatalf("refused inputs created accounts: %d, want %d", n, before)
		}

		// Support (the fallback) has a 30 s offer timeout.
		acct := directAccount(t, w, w.Dan, w.QueueID)
		support := []*apitest.Agent{w.Ana, w.Ben, w.Cleo, w.Dan}

		t.Run("not taken in time", func(t *testing.T) {
			id := w.Inbound(t, acct, "+14155550101", "for Dan")
			if got := offered(t, id, support...); !slices.Equal(got, []string{"Dan"}) {
				t.Fatalf("offered to %v, want Dan only", got)
			}
			clk.add(29 * time.Second)
			if n := routeDue(t, s.App.Router); n != 0 {
				t.Fatalf("routed %d before the timeout", n)
			}
			clk.add(2 * time.Second)
			if n := routeDue(t, s.App.Router); n != 1 {
				t.Fatalf("routed %d after the timeout, want 1", n)
			}
			if got := offered(t, id, support...); !slices.Equal(got, []string{"Ana", "Ben", "Cleo"}) {
				t.Fatalf("after the fallback offered to %v", got)
			}
			_, r := getConv(t, w.Dan, id)
			wantCode(t, r, "NOT_FOUND", "Dan after his offer moved on")
			if q := queueOf(t, w.Ana, id); q != w.QueueID {
				t.Fatalf("queue %q, want the fallback %s", q, w.QueueID)
			}
			e := lastEntry(t, w.Ana, id, "RELEASED")
			if e.Detail != "Dan did not take it within 30s: moved to the fallback queue Support" || e.Queue == nil || e.Queue.ID != w.QueueID || e.Agent == nil || e.Agent.ID != w.Dan.ID {
				t.Fatalf("RELEASED entry %+v", e)
			}
			w.Ben.C.MustOp(t, "TakeConversation", map[string]any{"id": id}, nil)
		})

		t.Run("unavailable, across a restart", func(t *testing.T) {
			w.Dan.C.MustOp(t, "SetStatus", map[string]any{"status": "AWAY"}, nil)
			defer w.Dan.C.MustOp(t, "SetStatus", map[string]any{"status": "AVAILABLE"}, nil)
			id := w.Inbound(t, acct, "+14155550102", "Dan is busy")
			if got := offered(t, id, support...); len(got) != 0 {
				t.Fatalf("offered to %v while Dan is AWAY", got)
			}
			// A second instance on the same database runs the timer.
			other := apitest.Start(t, apitest.Options{Backend: b, DB: db, NoWorkers: true})
			other.App.Router.SetClock(clk.now)
			clk.add(25 * time.Second)
			if n := routeDue(t, other.App.Router); n != 0 {
				t.Fatalf("routed %d before the timeout", n)
			}
			clk.add(6 * time.Second)
			if n := routeDue(t, other.App.Router); n != 1 {
				t.Fatalf("routed %d after the timeout, want 1", n)
			}
			if got := offered(t, id, support...); !slices.Equal(got, []string{"Ana", "Ben", "Cleo"}) {
				t.Fatalf("after the fallback offered to %v", got)
			}
			if e := lastEntry(t, w.Ana, id, "RELEASED"); e.Detail != "Dan was not available within 30s: moved to the fallback queue Support" {
				t.Fatalf("RELEASED entry %+v", e)
			}
		})

		t.Run("at capacity", func(t *testing.T) {
			if err := db.Client.Agent.UpdateOneID(apitest.Atoi(t, w.Dan.ID)).SetMaxConcurrentChats(1).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			busy := w.Inbound(t, acct, "+14155550103", "first")
			w.Dan.C.MustOp(t, "TakeConversation", map[string]any{"id": busy}, nil)
			id := w.Inbound(t, acct, "+14155550104", "second")
			if got := offered(t, id, support...); len(got) != 0 {
				t.Fatalf("offered to %v while Dan is full", got)
			}
			// Dan frees his slot before the deadline: it is his again.
			w.Dan.C.MustOp(t, "MarkDealtWith", map[string]any{"id": busy}, nil)
			routeDue(t, s.App.Router)
			if got := offered(t, id, support...); !slices.Equal(got, []string{"Dan"}) {
				t.Fatalf("after Dan freed a slot offered to %v", got)
			}
			w.Dan.C.MustOp(t, "TakeConversation", map[string]any{"id": id}, nil)
			if q := queueOf(t, w.Dan, id); q != "" {
				t.Fatalf("a conversation Dan took in time is in queue %s", q)
			}
			w.Dan.C.MustOp(t, "MarkDealtWith", map[string]any{"id": id}, nil)
			if err := db.Client.Agent.UpdateOneID(apitest.Atoi(t, w.Dan.ID)).SetMaxConcurrentChats(5).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("deactivated: at once", func(t *testing.T) {
			eve, eveTok := w.Admin.C.CreateAgent(t, "Eve", "eve@test.parley", "205", "AGENT")
			evAgent := &apitest.Agent{ID: eve, Name: "Eve", Token: eveTok, C: s.Client().As(eveTok)}
			eacct := directAccount(t, w, evAgent, w.QueueID)
			if err := db.Client.Agent.UpdateOneID(apitest.Atoi(t, eve)).SetActive(false).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			id := w.Inbound(t, eacct, "+14155550105", "Eve left")
			// No clock moves: the customer does not wait for a leaver.
			if got := offered(t, id, support...); !slices.Equal(got, []string{"Ana", "Ben", "Cleo"}) {
				t.Fatalf("offered to %v, want the fallback queue at once", got)
			}
			if e := lastEntry(t, w.Ana, id, "RELEASED"); e.Detail != "Eve is deactivated: moved to the fallback queue Support" {
				t.Fatalf("RELEASED entry %+v", e)
			}
		})

		t.Run("offline: at once", func(t *testing.T) {
			w.Dan.C.MustOp(t, "SetStatus", map[string]any{"status": "OFFLINE"}, nil)
			defer w.Dan.C.MustOp(t, "SetStatus", map[string]any{"status": "AVAILABLE"}, nil)
			id := w.Inbound(t, acct, "+14155550107", "Dan went home")
			// No clock moves: nobody is there to take it.
			if got := offered(t, id, support...); !slices.Equal(got, []string{"Ana", "Ben", "Cleo"}) {
				t.Fatalf("offered to %v, want the fallback queue at once", got)
			}
			if e := lastEntry(t, w.Ana, id, "RELEASED"); e.Detail != "Dan is offline: moved to the fallback queue Support" {
				t.Fatalf("RELEASED entry %+v", e)
			}
			w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": id}, nil)
		})

		t.Run("no fallback: waits for the agent", func(t *testing.T) {
			plain := directAccount(t, w, w.Dan, "")
			w.Dan.C.MustOp(t, "SetStatus", map[string]any{"status": "AWAY"}, nil)
			id := w.Inbound(t, plain, "+14155550106", "only Dan")
			clk.add(2 * time.Hour)
			routeDue(t, s.App.Router)
			if err := s.App.Router.WakeWaiting(ctx); err != nil {
				t.Fatal(err)
			}
			routeDue(t, s.App.Router)
			if got := offered(t, id, support...); len(got) != 0 {
				t.Fatalf("offered to %v while Dan is AWAY", got)
			}
			if q := queueOf(t, w.Admin, id); q != "" {
				t.Fatalf("moved to queue %s without a fallback", q)
			}
			w.Dan.C.MustOp(t, "SetStatus", map[string]any{"status": "AVAILABLE"}, nil)
			routeDue(t, s.App.Router)
			if got := offered(t, id, support...); !slices.Equal(got, []string{"Dan"}) {
				t.Fatalf("once Dan is AVAILABLE offered to %v", got)
			}
			// It stays his while he can take it, however long.
			clk.add(10 * time.Minute)
			for range 3 {
				routeDue(t, s.App.Router)
			}
			if got := offered(t, id, support...); !slices.Equal(got, []string{"Dan"}) {
				t.Fatalf("later offered to %v", got)
			}
			n, err := db.Client.Interaction.Query().Where(interaction.KindEQ(schematype.InteractionOffered),
				interaction.ConversationID(apitest.Atoi(t, id))).Count(ctx)
			if err != nil || n != 1 {
				t.Fatalf("%d offers logged (%v), want 1: renewing an offer is not a new one", n, err)
			}
		})
	})
}

// TestRoutingTransferToQueue: the owner sends a conversation to another
// queue; over real websockets she gets REMOVED at once and the agent
// offered it there CONVERSATION_CREATED with the newest message; the
// contact's history says so. Bad input changes nothing.
func TestRoutingTransferToQueue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		sales := newQueue(t, w, "Sales", nil, w.Dan)
		const first, reply = "quiero comprar", "Te paso con ventas"
		id := w.Inbound(t, w.WhatsApp, "34600111222", first)
		if r := w.Ana.Send(t, id, reply); len(r.Errors) > 0 {
			t.Fatal(string(r.Raw))
		}

		for _, tc := range []struct {
			what string
			vars map[string]any
			code string
		}{
			{"neither", map[string]any{"id": id}, "BAD_USER_INPUT"},
			{"both", map[string]any{"id": id, "agentID": w.Dan.ID, "queueID": sales}, "BAD_USER_INPUT"},
			{"no such queue", map[string]any{"id": id, "queueID": "999999"}, "BAD_USER_INPUT"},
		} {
			r := w.Ana.C.Query(t, `mutation($id: ID!, $agentID: ID, $queueID: ID) {
				transferConversation(id: $id, agentID: $agentID, queueID: $queueID) { id } }`, tc.vars)
			wantCode(t, r, tc.code, tc.what)
		}
		wantCode(t, w.Dan.C.Op(t, "TransferConversationToQueue", map[string]any{"id": id, "queueID": sales}), "NOT_FOUND", "Dan transfers Ana's")
		if o := owner(t, w.Ana, id); o != w.Ana.ID {
			t.Fatalf("after refused transfers the owner is %q", o)
		}

		ana := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
		ana.SubscribeOp(t, "inbox", "InboxEvents", nil)
		ana.SubscribeOp(t, "conv", "ConversationEvents", map[string]any{"id": id})
		dan := dialAs(t, s, apitest.TransportWS, w.Dan.Token)
		dan.SubscribeOp(t, "inbox", "InboxEvents", nil)
		waitSubscribed(t, s, 3)

		var out struct {
			TransferConversation struct {
				ID    string
				Owner *struct{ ID string }
				Queue struct{ ID, Name string }
			}
		}
		w.Ana.C.MustOp(t, "TransferConversationToQueue", map[string]any{"id": id, "queueID": sales}, &out)
		if got := out.TransferConversation; got.Owner != nil || got.Queue.ID != sales {
			t.Fatalf("transfer to Sales: %+v", got)
		}
		_, raw := nextInbox(t, ana, "inbox", eventTimeout)
		requireRemoved(t, raw, "inboxEvents", map[string]any{
			"kind": "REMOVED", "conversationID": id, "conversation": nil, "message": nil,
		}, first, reply)
		_, raw = nextConv(t, ana, "conv", eventTimeout)
		requireRemoved(t, raw, "conversationEvents", map[string]any{
			"kind": "REMOVED", "message": nil, "conversation": nil,
		}, first, reply)
		ev, raw := nextInbox(t, dan, "inbox", eventTimeout)
		if ev.Kind != "CONVERSATION_CREATED" || ev.ConversationID != id || ev.Message == nil || ev.Message.Body != reply || ev.Conversation.Owner != nil {
			t.Fatalf("Dan's inbox after the transfer: %s", raw)
		}
		_, r := getConv(t, w.Ana, id)
		wantCode(t, r, "NOT_FOUND", "Ana after transferring it away")
		if got := offered(t, id, w.Dan, w.Ben); !slices.Equal(got, []string{"Dan"}) {
			t.Fatalf("offered to %v in Sales", got)
		}
		e := lastEntry(t, w.Dan, id, "TRANSFERRED")
		if e.Detail != "to the queue Sales by Ana" || e.Queue == nil || e.Queue.ID != sales || e.Agent == nil || e.Agent.ID != w.Ana.ID {
			t.Fatalf("TRANSFERRED entry %+v", e)
		}
		wantCode(t, w.Dan.C.Op(t, "TransferConversationToQueue", map[string]any{"id": id, "queueID": sales}), "BAD_USER_INPUT", "to the queue it waits in")

		// The agent form of the contract is unchanged.
		var to struct {
			TransferConversation struct{ Owner struct{ ID string } }
		}
		w.Dan.C.MustOp(t, "TransferConversation", map[string]any{"id": id, "agentID": w.Cleo.ID}, &to)
		if to.TransferConversation.Owner.ID != w.Cleo.ID {
			t.Fatalf("agent transfer: %+v", to)
		}
	})
}

// TestRoutingRelease: the owner or an admin gives a conversation back to
// its queue; others cannot; a direct-agent conversation goes to its
// account's fallback queue, or is refused without one.
func TestRoutingRelease(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		id := w.Inbound(t, w.WhatsApp, "34600333444", "hola")
		wantCode(t, w.Ana.C.Op(t, "ReleaseConversation", map[string]any{"id": id}), "BAD_USER_INPUT", "release an unowned one")
		w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": id}, nil)

		wantCode(t, w.Ben.C.Op(t, "ReleaseConversation", map[string]any{"id": id}), "FORBIDDEN", "Ben (a queue member) releases Ana's")
		wantCode(t, w.Dan.C.Op(t, "ReleaseConversation", map[string]any{"id": id}), "NOT_FOUND", "Dan (a stranger) releases Ana's")
		if o := owner(t, w.Ana, id); o != w.Ana.ID {
			t.Fatalf("after refused releases the owner is %q", o)
		}

		var out struct {
			ReleaseConversation struct {
				Owner *struct{ ID string }
				Queue struct{ ID string }
			}
		}
		w.Ana.C.MustOp(t, "ReleaseConversation", map[string]any{"id": id}, &out)
		if out.ReleaseConversation.Owner != nil || out.ReleaseConversation.Queue.ID != w.QueueID {
			t.Fatalf("released: %+v", out)
		}
		if got := offered(t, id, w.Ana, w.Ben, w.Cleo); !slices.Equal(got, []string{"Ana", "Ben", "Cleo"}) {
			t.Fatalf("after the release offered to %v", got)
		}
		if e := lastEntry(t, w.Ben, id, "RELEASED"); e.Detail != "released by its owner to the queue Support" || e.Agent == nil || e.Agent.ID != w.Ana.ID {
			t.Fatalf("RELEASED entry %+v", e)
		}

		// An admin releases Ben's.
		w.Ben.C.MustOp(t, "TakeConversation", map[string]any{"id": id}, nil)
		w.Admin.C.MustOp(t, "ReleaseConversation", map[string]any{"id": id}, nil)
		if o := owner(t, w.Ana, id); o != "" {
			t.Fatalf("after the admin's release the owner is %q", o)
		}
		if e := lastEntry(t, w.Ana, id, "RELEASED"); e.Detail != "released by System owner to the queue Support" || e.Agent.ID != w.Ben.ID {
			t.Fatalf("RELEASED entry %+v", e)
		}

		// Straight to Dan: without a fallback refused, with one it goes
		// there.
		plain := w.Inbound(t, directAccount(t, w, w.Dan, ""), "+14155550201", "Dan?")
		w.Dan.C.MustOp(t, "TakeConversation", map[string]any{"id": plain}, nil)
		r := w.Dan.C.Op(t, "ReleaseConversation", map[string]any{"id": plain})
		wantCode(t, r, "BAD_USER_INPUT", "release a direct conversation without a fallback")
		if !strings.Contains(string(r.Raw), "fallback") {
			t.Fatalf("the refusal does not say why: %s", r.Raw)
		}
		if o := owner(t, w.Dan, plain); o != w.Dan.ID {
			t.Fatalf("after the refused release the owner is %q", o)
		}
		direct := w.Inbound(t, directAccount(t, w, w.Dan, w.QueueID), "+14155550202", "Dan!")
		w.Dan.C.MustOp(t, "TakeConversation", map[string]any{"id": direct}, nil)
		w.Dan.C.MustOp(t, "ReleaseConversation", map[string]any{"id": direct}, nil)
		if q := queueOf(t, w.Ana, direct); q != w.QueueID {
			t.Fatalf("released direct conversation in queue %q, want the fallback", q)
		}
		_, r = getConv(t, w.Dan, direct)
		wantCode(t, r, "NOT_FOUND", "Dan after releasing it to a queue he is not in")
	})
}

// TestRoutingOwnerAway: a queue's ownerAwayTimeoutSeconds releases the
// conversations of owners OFFLINE, or offline, that long, by the router's
// clock; sticky ownership holds otherwise, and 0 turns it off.
func TestRoutingOwnerAway(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		clk := &clock{t: time.Now()}
		s.App.Router.SetClock(clk.now)
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		ctx := context.Background()
		away := func(t *testing.T) int {
			t.Helper()
			n, err := s.App.Convs.ReleaseAway(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		setting := func(t *testing.T, queue string) *int {
			t.Helper()
			var out struct {
				Queues []struct {
					ID                      string
					OwnerAwayTimeoutSeconds *int
				}
			}
			w.Admin.C.MustOp(t, "QueueRouting", nil, &out)
			for _, q := range out.Queues {
				if q.ID == queue {
					return q.OwnerAwayTimeoutSeconds
				}
			}
			t.Fatalf("queue %s not listed", queue)
			return nil
		}
		if v := setting(t, w.QueueID); v != nil {
			t.Fatalf("owner away is on by default: %d", *v)
		}
		for _, bad := range []int{-1, 59, 604801} {
			wantCode(t, w.Admin.C.Op(t, "UpdateQueue", map[string]any{"id": w.QueueID, "input": map[string]any{"ownerAwayTimeoutSeconds": bad}}),
				"BAD_USER_INPUT", fmt.Sprintf("ownerAwayTimeoutSeconds %d", bad))
			wantCode(t, w.Admin.C.Op(t, "CreateQueue", map[string]any{"input": map[string]any{"name": "Bad", "strategy": "HUNT", "ownerAwayTimeoutSeconds": bad}}),
				"BAD_USER_INPUT", fmt.Sprintf("a new queue's ownerAwayTimeoutSeconds %d", bad))
		}
		wantCode(t, w.Ana.C.Op(t, "UpdateQueue", map[string]any{"id": w.QueueID, "input": map[string]any{"ownerAwayTimeoutSeconds": 600}}), "FORBIDDEN", "an agent")
		if v := setting(t, w.QueueID); v != nil {
			t.Fatalf("refused updates changed it: %d", *v)
		}
		other := newQueue(t, w, "Quiet", map[string]any{"ownerAwayTimeoutSeconds": 3600}, w.Dan)
		if v := setting(t, other); v == nil || *v != 3600 {
			t.Fatalf("created with %v, want 3600", v)
		}
		w.Admin.C.MustOp(t, "UpdateQueue", map[string]any{"id": w.QueueID, "input": map[string]any{"ownerAwayTimeoutSeconds": 600}}, nil)
		if v := setting(t, w.QueueID); v == nil || *v != 600 {
			t.Fatalf("updated to %v, want 600", v)
		}

		// Ana goes OFFLINE with one; Ben stays AVAILABLE but loses his
		// connection; Cleo stays: only hers is sticky.
		anas := w.Inbound(t, w.WhatsApp, "1", "Ana's")
		w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": anas}, nil)
		bens := w.Inbound(t, w.WhatsApp, "2", "Ben's")
		w.Ben.C.MustOp(t, "TakeConversation", map[string]any{"id": bens}, nil)
		cleos := w.Inbound(t, w.WhatsApp, "3", "Cleo's")
		w.Cleo.C.MustOp(t, "TakeConversation", map[string]any{"id": cleos}, nil)
		w.Ana.C.MustOp(t, "SetStatus", map[string]any{"status": "OFFLINE"}, nil)
		// Ben's last sign of life: 13 minutes ago, so offline (after the
		// 2-minute grace) for 11.
		if err := s.App.DB.Client.Agent.UpdateOneID(apitest.Atoi(t, w.Ben.ID)).SetLastSeenAt(time.Now().Add(-13 * time.Minute)).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		clk.add(590 * time.Second)
		if n := away(t); n != 1 {
			t.Fatalf("released %d after 590 s, want Ben's only", n)
		}
		if o := owner(t, w.Admin, bens); o != "" {
			t.Fatalf("Ben's still owned by %s", o)
		}
		if e := lastEntry(t, w.Admin, bens, "RELEASED"); e.Detail != "owner away: Ben has been offline (no connection) for over 10m0s; back to the queue Support" || e.Agent.ID != w.Ben.ID {
			t.Fatalf("RELEASED entry %+v", e)
		}
		clk.add(11 * time.Second)
		if n := away(t); n != 1 {
			t.Fatalf("released %d after 601 s, want Ana's", n)
		}
		if e := lastEntry(t, w.Admin, anas, "RELEASED"); e.Detail != "owner away: Ana has been OFFLINE for over 10m0s; back to the queue Support" {
			t.Fatalf("RELEASED entry %+v", e)
		}
		// Routed again: to Cleo, the one AVAILABLE and online member left.
		if got := offered(t, anas, w.Cleo); !slices.Equal(got, []string{"Cleo"}) {
			t.Fatalf("Ana's released conversation offered to %v", got)
		}
		if o := owner(t, w.Cleo, cleos); o != w.Cleo.ID {
			t.Fatalf("Cleo's conversation lost its owner: %q", o)
		}
		if n := away(t); n != 0 {
			t.Fatalf("a second pass released %d", n)
		}

		// Off again: Cleo's stays hers however long she is OFFLINE.
		w.Admin.C.MustOp(t, "UpdateQueue", map[string]any{"id": w.QueueID, "input": map[string]any{"ownerAwayTimeoutSeconds": 0}}, nil)
		if v := setting(t, w.QueueID); v != nil {
			t.Fatalf("0 left it at %d", *v)
		}
		w.Cleo.C.MustOp(t, "SetStatus", map[string]any{"status": "OFFLINE"}, nil)
		clk.add(48 * time.Hour)
		if n := away(t); n != 0 {
			t.Fatalf("released %d with owner away off", n)
		}
		if o := owner(t, w.Cleo, cleos); o != w.Cleo.ID {
			t.Fatalf("Cleo's conversation lost its owner: %q", o)
		}
	})
}

// TestRoutingOwnerAwayOnce: two instances releasing at once release each
// conversation once, and the worker loop runs the pass by itself.
func TestRoutingOwnerAwayOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		clk := &clock{t: time.Now()}
		s := apitest.Start(t, apitest.Options{Backend: b, DB: db, NoWorkers: true})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		w.Admin.C.MustOp(t, "UpdateQueue", map[string]any{"id": w.QueueID, "input": map[string]any{"ownerAwayTimeoutSeconds": 60}}, nil)
		var ids []string
		for i := range 5 {
			id := w.Inbound(t, w.WhatsApp, fmt.Sprint(100+i), "hi")
			w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": id}, nil)
			ids = append(ids, id)
		}
		w.Ana.C.MustOp(t, "SetStatus", map[string]any{"status": "OFFLINE"}, nil)
		clk.add(61 * time.Second)
		a := apitest.Start(t, apitest.Options{Backend: b, DB: db, NoWorkers: true})
		c := apitest.Start(t, apitest.Options{Backend: b, DB: db, NoWorkers: true})
		var wg sync.WaitGroup
		counts := make([]int, 2)
		for i, srv := range []*apitest.Server{a, c} {
			srv.App.Router.SetClock(clk.now)
			wg.Go(func() {
				n, err := srv.App.Convs.ReleaseAway(context.Background())
				if err != nil {
					t.Errorf("release: %v", err)
				}
				counts[i] = n
			})
		}
		wg.Wait()
		if counts[0]+counts[1] != len(ids) {
			t.Fatalf("released %v, want %d in all", counts, len(ids))
		}
		n, err := db.Client.Interaction.Query().Where(interaction.KindEQ(schematype.InteractionReleased)).Count(context.Background())
		if err != nil || n != len(ids) {
			t.Fatalf("%d RELEASED entries (%v), want %d", n, err, len(ids))
		}

		// The worker: Ben takes one, goes OFFLINE, and the loop (run by
		// Start, every 20 ms here) releases it once its clock says so.
		id := ids[0]
		w.Ben.C.MustOp(t, "TakeConversation", map[string]any{"id": id}, nil)
		w.Ben.C.MustOp(t, "SetStatus", map[string]any{"status": "OFFLINE"}, nil)
		s.App.Router.SetClock(clk.now)
		s.App.Convs.AwayEvery = 20 * time.Millisecond
		s.App.Start()
		clk.add(61 * time.Second)
		apitest.Eventually(t, 5*time.Second, func() bool {
			c, err := db.Client.Conversation.Get(context.Background(), apitest.Atoi(t, id))
			return err == nil && c.OwnerID == nil
		}, "the owner-away worker did not release Ben's conversation")
	})
}

// TestReturnOwned: the primitive behind deactivating an agent gives every
// open conversation they own back (to its queue, to its account's fallback,
// or unowned waiting for its account's agent), tells them over their
// websocket, and withdraws their live offers.
func TestReturnOwned(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		ctx := context.Background()
		sales := newQueue(t, w, "Sales", nil, w.Dan)
		inQueue := w.Inbound(t, w.WhatsApp, "1", "queue")
		w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": inQueue}, nil)
		viaFallback := w.Inbound(t, directAccount(t, w, w.Ana, sales), "+14155550301", "fallback")
		w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": viaFallback}, nil)
		waiting := w.Inbound(t, directAccount(t, w, w.Ana, ""), "+14155550302", "nowhere")
		w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": waiting}, nil)
		dealt := w.Inbound(t, w.WhatsApp, "2", "done")
		w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": dealt}, nil)
		w.Ana.C.MustOp(t, "MarkDealtWith", map[string]any{"id": dealt}, nil)
		// Offered to Ana (and Ben, Cleo), not taken.
		offeredOnly := w.Inbound(t, w.WhatsApp, "3", "offered")

		ana := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
		ana.SubscribeOp(t, "inbox", "InboxEvents", nil)
		dan := dialAs(t, s, apitest.TransportWS, w.Dan.Token)
		dan.SubscribeOp(t, "inbox", "InboxEvents", nil)
		waitSubscribed(t, s, 2)

		// The administration part deactivates Ana, then calls the hook.
		if err := s.App.DB.Client.Agent.UpdateOneID(apitest.Atoi(t, w.Ana.ID)).SetActive(false).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		n, err := s.App.Convs.ReturnOwned(ctx, apitest.Atoi(t, w.Ana.ID), "Ana was deactivated")
		if err != nil || n != 3 {
			t.Fatalf("ReturnOwned = %d, %v; want 3", n, err)
		}
		// Ana is still a member of Support (deactivated agents' access is
		// the administration part's rule), so she sees that one change
		// hands; the other two she can no longer see.
		got := map[string]string{}
		for range 3 {
			ev, raw := nextInbox(t, ana, "inbox", eventTimeout)
			if (ev.Kind == "REMOVED") != (ev.Conversation == nil) {
				t.Fatalf("Ana's inbox: %s", raw)
			}
			got[ev.ConversationID] = ev.Kind
		}
		if want := map[string]string{inQueue: "CONVERSATION_UPDATED", viaFallback: "REMOVED", waiting: "REMOVED"}; !maps.Equal(got, want) {
			t.Fatalf("Ana's inbox events %v, want %v", got, want)
		}
		ev, raw := nextInbox(t, dan, "inbox", eventTimeout)
		if ev.Kind != "CONVERSATION_CREATED" || ev.ConversationID != viaFallback || ev.Message == nil || ev.Message.Body != "fallback" {
			t.Fatalf("Dan's inbox: %s", raw)
		}

		for _, tc := range []struct{ id, queue string }{{inQueue, w.QueueID}, {viaFallback, sales}, {waiting, ""}} {
			if o := owner(t, w.Admin, tc.id); o != "" {
				t.Fatalf("%s still owned by %s", tc.id, o)
			}
			if q := queueOf(t, w.Admin, tc.id); q != tc.queue {
				t.Fatalf("%s in queue %q, want %q", tc.id, q, tc.queue)
			}
			if e := lastEntry(t, w.Admin, tc.id, "RELEASED"); e.Detail != "Ana was deactivated" || e.Agent.ID != w.Ana.ID {
				t.Fatalf("%s: RELEASED entry %+v", tc.id, e)
			}
		}
		if got := offered(t, inQueue, w.Ben, w.Cleo); !slices.Equal(got, []string{"Ben", "Cleo"}) {
			t.Fatalf("back in Support offered to %v", got)
		}
		if o := owner(t, w.Admin, dealt); o != w.Ana.ID {
			t.Fatalf("a dealt-with conversation moved: owner %q", o)
		}
		// Nobody is offered the one waiting for Ana's account, but it waits
		// (admins see it) rather than vanishing.
		if n, err := s.App.DB.Client.Offer.Query().Where(offer.ConversationID(apitest.Atoi(t, waiting)), offer.Active(true)).Count(ctx); err != nil || n != 0 {
			t.Fatalf("%d live offers of the waiting one (%v)", n, err)
		}
		// Her live offer moves on at the next routing turn.
		routeDue(t, s.App.Router)
		if n, err := s.App.DB.Client.Offer.Query().Where(offer.ConversationID(apitest.Atoi(t, offeredOnly)), offer.AgentID(apitest.Atoi(t, w.Ana.ID)), offer.Active(true)).Count(ctx); err != nil || n != 0 {
			t.Fatalf("Ana still has %d live offers (%v)", n, err)
		}
		if got := offered(t, offeredOnly, w.Ben, w.Cleo); !slices.Equal(got, []string{"Ben", "Cleo"}) {
			t.Fatalf("the offered one is offered to %v", got)
		}
		// Nothing twice.
		if n, err := s.App.Convs.ReturnOwned(ctx, apitest.Atoi(t, w.Ana.ID), "again"); err != nil || n != 0 {
			t.Fatalf("a second ReturnOwned = %d, %v", n, err)
		}
	})
}
