package apitest_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent/interaction"
	"github.com/parleyhq/parley/ent/offer"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/routing"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// clock is a controllable time for the routers under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func routeDue(t *testing.T, r *routing.Router) int {
	t.Helper()
	n, err := r.RouteDue(context.Background())
	if err != nil {
		t.Fatalf("route: %v", err)
	}
	return n
}

// offered returns which of the agents have the conversation in RECENT
// (that is, are offered it).
func offered(t *testing.T, id string, agents ...*apitest.Agent) []string {
	t.Helper()
	var out []string
	for _, a := range agents {
		if slices.Contains(a.InboxIDs(t, "RECENT", nil), id) {
			out = append(out, a.Name)
		}
	}
	return out
}

func TestRoutingHuntMovesOnAfterTimeout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		clk := &clock{t: time.Now()}
		s.App.Router.SetClock(clk.now)
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{Strategy: "HUNT", OfferTimeout: 20})
		id := w.Inbound(t, w.WhatsApp, "1", "hello")
		all := []*apitest.Agent{w.Ana, w.Ben, w.Cleo}
		for _, want := range []string{"Ana", "Ben", "Cleo", "Ana"} {
			if got := offered(t, id, all...); !slices.Equal(got, []string{want}) {
				t.Fatalf("offered to %v, want %s", got, want)
			}
			// Not yet due: nothing moves.
			clk.add(10 * time.Second)
			if n := routeDue(t, s.App.Router); n != 0 {
				t.Fatalf("routed %d before the timeout", n)
			}
			clk.add(11 * time.Second)
			if n := routeDue(t, s.App.Router); n != 1 {
				t.Fatalf("routed %d after the timeout, want 1", n)
			}
		}
		// Ben is in QUEUE all along, and may take it though not offered.
		if !slices.Contains(w.Ben.InboxIDs(t, "QUEUE", nil), id) {
			t.Fatal("Ben's QUEUE lacks it")
		}
		w.Ben.C.MustOp(t, "TakeConversation", map[string]any{"id": id}, nil)
		clk.add(time.Minute)
		if n := routeDue(t, s.App.Router); n != 0 {
			t.Fatalf("an owned conversation was routed (%d)", n)
		}
		if got := offered(t, id, w.Ana, w.Cleo); len(got) != 0 {
			t.Fatalf("still offered to %v after Ben took it", got)
		}
	})
}

func TestRoutingWaitsForAvailableAgentsOldestFirst(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{Strategy: "HUNT", Unavailable: true})
		older := w.Inbound(t, w.WhatsApp, "1", "first")
		newer := w.Inbound(t, w.WhatsApp, "2", "second")
		if got := offered(t, older, w.Ana, w.Ben, w.Cleo); len(got) != 0 {
			t.Fatalf("offered to unavailable agents: %v", got)
		}
		// Cleo becomes AVAILABLE: both waiting conversations are offered to
		// her, the older one first.
		w.Cleo.C.MustOp(t, "SetStatus", map[string]any{"status": "AVAILABLE"}, nil)
		routeDue(t, s.App.Router)
		ids := w.Cleo.InboxIDs(t, "RECENT", nil)
		if !slices.Contains(ids, older) || !slices.Contains(ids, newer) {
			t.Fatalf("Cleo's RECENT after becoming available: %v", ids)
		}
		ctx := context.Background()
		offers, err := s.App.DB.Client.Interaction.Query().
			Where(interaction.KindEQ(schematype.InteractionOffered)).
			Order(interaction.ByID()).All(ctx)
		if err != nil || len(offers) != 2 || offers[0].ConversationID == nil || *offers[0].ConversationID != apitest.Atoi(t, older) {
			t.Fatalf("offers %v (err %v): the older conversation must be offered first", offers, err)
		}
	})
}

func TestRoutingRespectsMaxConcurrentChats(t *testing.T) {
	s := apitest.Start(t, apitest.Options{NoWorkers: true})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{Strategy: "RING_ALL"})
	ctx := context.Background()
	if err := s.App.DB.Client.Agent.UpdateOneID(apitest.Atoi(t, w.Ana.ID)).SetMaxConcurrentChats(1).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	first := w.Inbound(t, w.WhatsApp, "1", "one")
	if r := w.Ana.Send(t, first, "mine"); len(r.Errors) > 0 {
		t.Fatal(string(r.Raw))
	}
	second := w.Inbound(t, w.WhatsApp, "2", "two")
	if got := offered(t, second, w.Ana, w.Ben, w.Cleo); !slices.Equal(got, []string{"Ben", "Cleo"}) {
		t.Fatalf("a full agent was offered more: %v", got)
	}
	// Dealing with the first frees Ana's slot: the next routing turn
	// offers her the waiting work.
	w.Ana.C.MustOp(t, "MarkDealtWith", map[string]any{"id": first}, nil)
	third := w.Inbound(t, w.WhatsApp, "3", "three")
	if got := offered(t, third, w.Ana, w.Ben, w.Cleo); !slices.Equal(got, []string{"Ana", "Ben", "Cleo"}) {
		t.Fatalf("after freeing a slot: %v", got)
	}
}

func TestRoutingDirectToAgent(t *testing.T) {
	s := apitest.Start(t, apitest.Options{NoWorkers: true})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{Unavailable: true})
	acct := w.Account(t, "SMS", map[string]any{"agentID": w.Dan.ID})
	id := w.Inbound(t, acct, "+14155550199", "text me")
	// Dan is OFFLINE: like a queue member, he is not offered it, and
	// without a fallback queue it waits for him.
	if got := offered(t, id, w.Ana, w.Ben, w.Dan); len(got) != 0 {
		t.Fatalf("direct routing offered to %v while Dan is OFFLINE", got)
	}
	wantCode(t, w.Dan.C.Op(t, "TakeConversation", map[string]any{"id": id}), "NOT_FOUND", "Dan takes before it is offered")
	// Dan becomes AVAILABLE: it is offered to him, and to nobody else.
	w.Dan.C.MustOp(t, "SetStatus", map[string]any{"status": "AVAILABLE"}, nil)
	routeDue(t, s.App.Router)
	if got := offered(t, id, w.Ana, w.Ben, w.Dan); !slices.Equal(got, []string{"Dan"}) {
		t.Fatalf("direct routing offered to %v", got)
	}
	wantCode(t, w.Ana.C.Op(t, "TakeConversation", map[string]any{"id": id}), "NOT_FOUND", "Ana takes Dan's conversation")
	w.Dan.C.MustOp(t, "TakeConversation", map[string]any{"id": id}, nil)
}

func TestRoutingRoundRobinAndFewestAnswered(t *testing.T) {
	for _, strategy := range []string{"ROUND_ROBIN", "FEWEST_ANSWERED"} {
		t.Run(strategy, func(t *testing.T) {
			s := apitest.Start(t, apitest.Options{NoWorkers: true})
			w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{Strategy: strategy})
			first := w.Inbound(t, w.WhatsApp, "1", "one")
			if got := offered(t, first, w.Ana, w.Ben, w.Cleo); len(got) != 1 {
				t.Fatalf("one at a time: %v", got)
			}
			// Ana takes it (though Ben may have been offered it first).
			w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": first}, nil)
			second := w.Inbound(t, w.WhatsApp, "2", "two")
			got := offered(t, second, w.Ana, w.Ben, w.Cleo)
			// ROUND_ROBIN: the member after the last taker (Ana) is Ben.
			// FEWEST_ANSWERED: Ana answered one today; Ben and Cleo none,
			// Ben first by priority.
			if !slices.Equal(got, []string{"Ben"}) {
				t.Fatalf("%s offered the second to %v, want Ben", strategy, got)
			}
		})
	}
}

// TestRoutingTimersSurviveRestartAndRunOnce: the offer timer lives in the
// database; a new instance picks it up, and two instances routing at once
// route each conversation once.
func TestRoutingTimersSurviveRestartAndRunOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		clk := &clock{t: time.Now()}
		first := apitest.Start(t, apitest.Options{Backend: b, DB: db, NoWorkers: true})
		first.App.Router.SetClock(clk.now)
		w := apitest.NewWorkspace(t, first, apitest.WorkspaceOption{Strategy: "HUNT", OfferTimeout: 15})
		var ids []string
		for i := 0; i < 6; i++ {
			ids = append(ids, w.Inbound(t, w.WhatsApp, string(rune('a'+i)), "hi"))
		}
		if err := first.Stop(); err != nil {
			t.Fatal(err)
		}
		// Two new instances on the same database, routing concurrently.
		a := apitest.Start(t, apitest.Options{Backend: b, DB: db, NoWorkers: true})
		c := apitest.Start(t, apitest.Options{Backend: b, DB: db, NoWorkers: true})
		clk.add(16 * time.Second)
		a.App.Router.SetClock(clk.now)
		c.App.Router.SetClock(clk.now)
		var wg sync.WaitGroup
		counts := make([]int, 2)
		for i, s := range []*apitest.Server{a, c} {
			wg.Add(1)
			go func(i int, s *apitest.Server) {
				defer wg.Done()
				n, err := s.App.Router.RouteDue(context.Background())
				if err != nil {
					t.Errorf("route: %v", err)
				}
				counts[i] = n
			}(i, s)
		}
		wg.Wait()
		if counts[0]+counts[1] != len(ids) {
			t.Fatalf("routed %v, want %d in all", counts, len(ids))
		}
		// Each conversation moved from Ana to Ben exactly once.
		ctx := context.Background()
		n, err := db.Client.Interaction.Query().Where(interaction.KindEQ(schematype.InteractionOffered)).Count(ctx)
		if err != nil || n != 2*len(ids) {
			t.Fatalf("%d offers logged, want %d (err %v)", n, 2*len(ids), err)
		}
		on := func(ag *apitest.Agent) *apitest.Agent {
			return &apitest.Agent{ID: ag.ID, Name: ag.Name, Token: ag.Token, C: a.Client().As(ag.Token)}
		}
		for _, id := range ids {
			if got := offered(t, id, on(w.Ana), on(w.Ben), on(w.Cleo)); !slices.Equal(got, []string{"Ben"}) {
				t.Fatalf("conversation %s offered to %v after one timeout, want Ben", id, got)
			}
		}
	})
}

// TestRoutingWorkerRuns checks the background worker moves offers on by
// itself, with real time.
func TestRoutingWorkerRuns(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{Strategy: "HUNT", OfferTimeout: 5})
	clk := &clock{t: time.Now()}
	s.App.Router.SetClock(clk.now)
	id := w.Inbound(t, w.WhatsApp, "1", "hello")
	clk.add(6 * time.Second)
	// The worker moves offers while this polls, so read the offers
	// directly rather than through two inbox queries that may disagree.
	apitest.Eventually(t, 5*time.Second, func() bool {
		offers, err := s.App.DB.Client.Offer.Query().Where(offer.Active(true), offer.ConversationID(apitest.Atoi(t, id))).All(context.Background())
		return err == nil && len(offers) == 1 && fmt.Sprint(offers[0].AgentID) == w.Ben.ID
	}, "the worker did not move the offer on to Ben")
}
