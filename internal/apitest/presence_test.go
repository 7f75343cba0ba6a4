package apitest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent/offer"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

type presenceEvent struct {
	PresenceEvents struct {
		Agent struct {
			ID, Name, Status string
			Online           bool
		}
	}
}

// nextPresence reads presence events of operation id until one about
// agentID matches want.
func nextPresence(t testing.TB, ws *apitest.WS, id, agentID string, want func(status string, online bool) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		data := result(t, ws, id, time.Until(deadline))
		var ev presenceEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("presence event %s: %v", data, err)
		}
		a := ev.PresenceEvents.Agent
		if a.ID == agentID && want(a.Status, a.Online) {
			return
		}
	}
	t.Fatalf("no matching presence event for agent %s", agentID)
}

// TestPresence: an agent is online while they have a websocket or recent
// API activity, and offline once both are gone for the grace period;
// every status and online change reaches presenceEvents subscribers on
// another instance; routing offers only online agents, and the live offers
// of an agent gone offline move on while their status stays.
func TestPresence(t *testing.T) {
	db := storetest.Open(t, storetest.Postgres)
	prefix := fmt.Sprintf("parley-test-presence-%d:", time.Now().UnixNano())
	opts := apitest.Options{Backend: storetest.Postgres, DB: db, Redis: true, RedisPrefix: prefix,
		Env: map[string]string{"PARLEY_PRESENCE_GRACE": "1500ms"}}
	a := apitest.Start(t, opts)
	b := apitest.Start(t, opts)
	w := apitest.NewWorkspace(t, a, apitest.WorkspaceOption{})

	watch := dialAs(t, b, apitest.TransportWS, w.Ben.Token)
	watch.SubscribeOp(t, "p", "PresenceEvents", nil)
	waitSubscribed(t, b, 1)

	// A status change made on A reaches B.
	start := time.Now()
	w.Cleo.C.MustOp(t, "SetStatus", map[string]any{"status": "AWAY"}, nil)
	nextPresence(t, watch, "p", w.Cleo.ID, func(st string, _ bool) bool { return st == "AWAY" })
	t.Logf("status change from A to a subscriber on B in %v", time.Since(start).Round(time.Millisecond))

	// An agent who never made a request is offline; a websocket brings
	// them online, and they go offline once it is gone for the grace.
	ctx := context.Background()
	var eve struct{ CreateAgent struct{ ID string } }
	w.Admin.C.MustOp(t, "CreateAgent", map[string]any{"input": map[string]any{
		"name": "Eve", "email": "eve@test.parley", "extension": "240", "role": "AGENT", "password": "password-240",
	}}, &eve)
	eveToken, _, err := a.App.Auth.IssueAgentToken(ctx, apitest.Atoi(t, eve.CreateAgent.ID))
	if err != nil {
		t.Fatal(err)
	}
	agentNode := func(id string) (status string, online bool) {
		r := w.Admin.C.Query(t, `query($id: ID!) { node(id: $id) { ... on Agent { status online } } }`, map[string]any{"id": id})
		var out struct {
			Node struct {
				Status string
				Online bool
			}
		}
		if len(r.Errors) > 0 || json.Unmarshal(r.Data, &out) != nil {
			t.Fatalf("agent %s: %s", id, r.Raw)
		}
		return out.Node.Status, out.Node.Online
	}
	online := func(id string) bool { _, on := agentNode(id); return on }
	if online(eve.CreateAgent.ID) {
		t.Fatal("an agent who never connected is online")
	}
	eveWS := dialAs(t, a, apitest.TransportWS, eveToken)
	nextPresence(t, watch, "p", eve.CreateAgent.ID, func(_ string, on bool) bool { return on })
	if !online(eve.CreateAgent.ID) {
		t.Fatal("an agent with a websocket is not online")
	}
	_ = eveWS.Conn.CloseNow()
	nextPresence(t, watch, "p", eve.CreateAgent.ID, func(_ string, on bool) bool { return !on })

	// Ana is offered a conversation, then loses her connection: once the
	// grace has passed her offer is withdrawn, her status unchanged.
	anaWS := dialAs(t, a, apitest.TransportWS, w.Ana.Token)
	w.Ana.C.MustOp(t, "SetStatus", map[string]any{"status": "AVAILABLE"}, nil)
	conv := w.Inbound(t, w.WhatsApp, "34600100009", "hola")
	anaID := apitest.Atoi(t, w.Ana.ID)
	activeOffers := func() int {
		n, err := db.Client.Offer.Query().Where(offer.AgentID(anaID), offer.Active(true), offer.ConversationID(apitest.Atoi(t, conv))).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if activeOffers() != 1 {
		t.Fatal("Ana, online and AVAILABLE, was not offered the conversation")
	}
	_ = anaWS.Conn.CloseNow()
	apitest.Eventually(t, 15*time.Second, func() bool { return activeOffers() == 0 }, "Ana's offer withdrawn after she went offline")
	if st, on := agentNode(w.Ana.ID); st != "AVAILABLE" || on {
		t.Fatalf("Ana after going away: status %s online %v, want AVAILABLE and offline", st, on)
	}
}
