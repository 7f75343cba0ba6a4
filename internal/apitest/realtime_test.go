package apitest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/conversations"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// The realtime tests drive the contract's InboxEvents and ConversationEvents
// subscriptions over real websockets, on both databases, with in-process
// pub/sub and with Redis, across two instances, and check that closed
// subscriptions leave nothing behind. Every subscription sends the whole
// contract document with operationName, as the clients do.

// eventTimeout bounds the wait for one event (generous: -race on 2 cores).
const eventTimeout = 5 * time.Second

// inboxEvent is the InboxEvents selection of the contract.
type inboxEvent struct {
	Kind           string
	ConversationID string
	Conversation   *struct {
		ID, Status  string
		Archived    bool
		Owner       *struct{ ID string }
		UnreadCount int
	}
	Message *struct{ ID, Body, Direction, CreatedAt string }
}

// convEvent is the ConversationEvents selection of the contract.
type convEvent struct {
	Kind    string
	Message *struct{ ID, Body, Direction, CreatedAt, DeliveryStatus string }
	// Conversation is null for REMOVED.
	Conversation *struct {
		ID, Status string
		Owner      *struct{ ID string }
	}
}

// dialAs opens a websocket, authenticates as token and waits for the ack.
func dialAs(t testing.TB, s *apitest.Server, proto, token string) *apitest.WS {
	t.Helper()
	ws := s.DialWS(t, proto)
	ws.Ack(t, token)
	return ws
}

// result reads the next message of operation id, requires it to be a
// result without errors and returns its data.
func result(t testing.TB, ws *apitest.WS, id string, timeout time.Duration) json.RawMessage {
	t.Helper()
	m := ws.ReadID(t, id, timeout)
	if !m.IsResult() {
		t.Fatalf("operation %s: want an event, got %s %s", id, m.Type, m.Payload)
	}
	r := m.Result(t)
	if len(r.Errors) > 0 {
		t.Fatalf("operation %s: event with errors: %s", id, m.Payload)
	}
	return r.Data
}

// nextInbox reads the next InboxEvents event of operation id.
func nextInbox(t testing.TB, ws *apitest.WS, id string, timeout time.Duration) (inboxEvent, json.RawMessage) {
	t.Helper()
	data := result(t, ws, id, timeout)
	var out struct{ InboxEvents *inboxEvent }
	if err := json.Unmarshal(data, &out); err != nil || out.InboxEvents == nil {
		t.Fatalf("operation %s: not an inboxEvents result: %s (%v)", id, data, err)
	}
	return *out.InboxEvents, data
}

// nextConv reads the next ConversationEvents event of operation id.
func nextConv(t testing.TB, ws *apitest.WS, id string, timeout time.Duration) (convEvent, json.RawMessage) {
	t.Helper()
	data := result(t, ws, id, timeout)
	var out struct{ ConversationEvents *convEvent }
	if err := json.Unmarshal(data, &out); err != nil || out.ConversationEvents == nil {
		t.Fatalf("operation %s: not a conversationEvents result: %s (%v)", id, data, err)
	}
	return *out.ConversationEvents, data
}

// expectComplete requires the next message of operation id to be complete.
func expectComplete(t testing.TB, ws *apitest.WS, id string) {
	t.Helper()
	if m := ws.ReadID(t, id, eventTimeout); m.Type != "complete" {
		t.Fatalf("operation %s: want complete, got %s %s", id, m.Type, m.Payload)
	}
}

// requireRemoved checks a REMOVED event carries nothing of the
// conversation: the exact payload, and none of the given texts anywhere.
func requireRemoved(t testing.TB, raw json.RawMessage, field string, want map[string]any, secrets ...string) {
	t.Helper()
	var got map[string]map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	if !mapsEqual(got[field], want) {
		t.Fatalf("REMOVED payload: want %v, got %s", want, raw)
	}
	for _, s := range secrets {
		if strings.Contains(string(raw), s) {
			t.Fatalf("REMOVED payload leaks %q: %s", s, raw)
		}
	}
}

func mapsEqual(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// metric scrapes /metrics, as Prometheus does, and returns the value of an
// unlabelled series. Keep-alives are off so that a scrape leaves no
// connection (and no goroutine) behind.
func metric(t testing.TB, s *apitest.Server, name string) float64 {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %q", name, v)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no series %s", name)
	return 0
}

// waitMetric polls a gauge on /metrics until it equals want.
func waitMetric(t testing.TB, s *apitest.Server, name string, want float64) {
	t.Helper()
	var got float64
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got = metric(t, s, name); got == want {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s = %v, want %v", name, got, want)
}

// waitSubscribed waits until the server has n live client subscriptions:
// an event published from then on reaches every subscriber (the gauge
// moves only once the subscription's broker SUBSCRIBE is confirmed).
func waitSubscribed(t testing.TB, s *apitest.Server, n int) {
	t.Helper()
	waitMetric(t, s, "parley_active_subscriptions", float64(n))
}

// TestRealtimeInboxEvents: an agent's inbox stream shows a new conversation
// of her queue and its messages, and loses it (REMOVED, nothing of it sent)
// when a colleague claims it by replying; the colleague sees his claim.
func TestRealtimeInboxEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		for _, tc := range []struct {
			name  string
			proto string
			redis bool
		}{
			{"graphql-transport-ws", apitest.TransportWS, false},
			{"graphql-ws legacy", apitest.LegacyWS, false},
			{"graphql-transport-ws redis", apitest.TransportWS, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s := apitest.Start(t, apitest.Options{Backend: b, Redis: tc.redis})
				w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})

				ana := dialAs(t, s, tc.proto, w.Ana.Token)
				ana.SubscribeOp(t, "inbox", "InboxEvents", nil)
				ben := dialAs(t, s, tc.proto, w.Ben.Token)
				ben.SubscribeOp(t, "inbox", "InboxEvents", nil)
				waitSubscribed(t, s, 2)

				const first, second = "hola, necesito ayuda", "¿hay alguien? pedido 4711"
				conv := w.Inbound(t, w.WhatsApp, "34600111222", first)

				for _, who := range []struct {
					name string
					ws   *apitest.WS
				}{{"Ana", ana}, {"Ben", ben}} {
					ev, raw := nextInbox(t, who.ws, "inbox", eventTimeout)
					if (ev.Kind != "CONVERSATION_CREATED" && ev.Kind != "MESSAGE_ADDED") ||
						ev.ConversationID != conv || ev.Conversation == nil || ev.Conversation.ID != conv {
						t.Fatalf("%s: new conversation %s: got %s", who.name, conv, raw)
					}
					if ev.Conversation.Owner != nil || ev.Conversation.Status != "OPEN" {
						t.Fatalf("%s: a new conversation is open and unowned: %s", who.name, raw)
					}
					if ev.Message != nil && ev.Message.Body != first {
						t.Fatalf("%s: wrong message: %s", who.name, raw)
					}
				}

				if again := w.Inbound(t, w.WhatsApp, "34600111222", second); again != conv {
					t.Fatalf("second message opened conversation %s, want %s", again, conv)
				}
				for _, who := range []struct {
					name string
					ws   *apitest.WS
				}{{"Ana", ana}, {"Ben", ben}} {
					ev, raw := nextInbox(t, who.ws, "inbox", eventTimeout)
					if ev.Kind != "MESSAGE_ADDED" || ev.ConversationID != conv || ev.Conversation == nil ||
						ev.Message == nil || ev.Message.Body != second || ev.Message.Direction != "INBOUND" {
						t.Fatalf("%s: second message: got %s", who.name, raw)
					}
				}

				const reply = "Soy Ben, lo miro ahora mismo"
				if r := w.Ben.Send(t, conv, reply); len(r.Errors) > 0 {
					t.Fatalf("Ben's first reply: %s", r.Raw)
				}

				// Ana lost it: one REMOVED with nothing of the conversation.
				_, raw := nextInbox(t, ana, "inbox", eventTimeout)
				requireRemoved(t, raw, "inboxEvents", map[string]any{
					"kind": "REMOVED", "conversationID": conv, "conversation": nil, "message": nil,
				}, first, second, reply, "34600111222")
				// ...and nothing after it: Ben's reply is not for her eyes.
				ana.ExpectNone(t, "inbox", 300*time.Millisecond)

				// Ben sees himself become the owner and his reply.
				var owned, replied bool
				for !owned || !replied {
					ev, raw := nextInbox(t, ben, "inbox", eventTimeout)
					if ev.ConversationID != conv || ev.Conversation == nil || ev.Conversation.Owner == nil ||
						ev.Conversation.Owner.ID != w.Ben.ID {
						t.Fatalf("Ben after his claim: %s", raw)
					}
					switch ev.Kind {
					case "CONVERSATION_UPDATED":
						owned = true
					case "MESSAGE_ADDED":
						if ev.Message == nil || ev.Message.Body != reply || ev.Message.Direction != "OUTBOUND" {
							t.Fatalf("Ben's reply event: %s", raw)
						}
						replied = true
					default:
						t.Fatalf("Ben after his claim: unexpected %s", raw)
					}
				}
			})
		}
	})
}

// TestRealtimeConversationEvents: one open conversation's stream shows its
// messages, ends with REMOVED and complete when a colleague takes it, and
// cannot be opened by an agent who may not see the conversation.
func TestRealtimeConversationEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		const first, second = "buenas tardes", "mi número de cliente es 99-1234"
		conv := w.Inbound(t, w.WhatsApp, "34600333444", first)
		missing := strconv.Itoa(apitest.Atoi(t, conv) + 1000)

		// Refused subscriptions answer NOT_FOUND, the same for a
		// conversation that exists and one that does not.
		var messages []string
		for _, tc := range []struct {
			name  string
			agent *apitest.Agent
			id    string
		}{
			{"Dan, in no queue", w.Dan, conv},
			{"Dan, no such conversation", w.Dan, missing},
			{"Ana, no such conversation", w.Ana, missing},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ws := dialAs(t, s, apitest.TransportWS, tc.agent.Token)
				ws.SubscribeOp(t, "c", "ConversationEvents", map[string]any{"id": tc.id})
				m := ws.ReadID(t, "c", eventTimeout)
				r := m.Result(t)
				if r.Code() != "NOT_FOUND" {
					t.Fatalf("want NOT_FOUND, got %s %s", m.Type, m.Payload)
				}
				if m.IsResult() {
					if d := strings.TrimSpace(string(r.Data)); d != "" && d != "null" {
						t.Fatalf("a refused subscription has data: %s", m.Payload)
					}
					expectComplete(t, ws, "c")
				}
				for _, s := range []string{first, "34600333444"} {
					if strings.Contains(string(m.Payload), s) {
						t.Fatalf("the refusal leaks %q: %s", s, m.Payload)
					}
				}
				messages = append(messages, r.Errors[0].Message)
				t.Logf("refused with %s %s", m.Type, m.Payload)
			})
		}
		if len(messages) == 3 && (messages[0] != messages[1] || messages[1] != messages[2]) {
			t.Fatalf("refusals differ, which tells a hidden conversation from a missing one: %q", messages)
		}
		waitSubscribed(t, s, 0)

		for _, tc := range []struct{ proto, sender string }{
			{apitest.TransportWS, "34600333444"}, // conv
			{apitest.LegacyWS, "34600333555"},    // a conversation of its own
		} {
			t.Run(tc.proto, func(t *testing.T) {
				conv := w.Inbound(t, w.WhatsApp, tc.sender, first)
				ana := dialAs(t, s, tc.proto, w.Ana.Token)
				ana.SubscribeOp(t, "c", "ConversationEvents", map[string]any{"id": conv})
				waitSubscribed(t, s, 1)

				if w.Inbound(t, w.WhatsApp, tc.sender, second) != conv {
					t.Fatal("the second message opened another conversation")
				}
				ev, raw := nextConv(t, ana, "c", eventTimeout)
				if ev.Kind != "MESSAGE_ADDED" || ev.Message == nil || ev.Message.Body != second ||
					ev.Message.Direction != "INBOUND" || ev.Conversation == nil || ev.Conversation.ID != conv ||
					ev.Conversation.Owner != nil {
					t.Fatalf("inbound message: %s", raw)
				}

				w.Ben.C.MustOp(t, "TakeConversation", map[string]any{"id": conv}, nil)
				_, raw = nextConv(t, ana, "c", eventTimeout)
				requireRemoved(t, raw, "conversationEvents", map[string]any{
					"kind": "REMOVED", "message": nil, "conversation": nil,
				}, first, second)
				expectComplete(t, ana, "c")
				// The server released the subscription.
				waitSubscribed(t, s, 0)
			})
		}
	})
}

// TestRealtimeTransfer: the owner transfers a conversation to Dan; both of
// her streams show REMOVED (the conversation stream then completes), Dan's
// inbox shows the conversation as his, and its next message reaches him
// alone.
func TestRealtimeTransfer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		const first, reply, later = "quiero cambiar mi plan", "Te ayudo, Ana aquí", "¿sigue ahí alguien?"
		conv := w.Inbound(t, w.WhatsApp, "34600555666", first)
		if r := w.Ana.Send(t, conv, reply); len(r.Errors) > 0 {
			t.Fatalf("Ana's reply: %s", r.Raw)
		}

		// Two operations on one connection, as the app does.
		ana := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
		ana.SubscribeOp(t, "conv", "ConversationEvents", map[string]any{"id": conv})
		ana.SubscribeOp(t, "inbox", "InboxEvents", nil)
		dan := dialAs(t, s, apitest.LegacyWS, w.Dan.Token)
		dan.SubscribeOp(t, "inbox", "InboxEvents", nil)
		waitSubscribed(t, s, 3)

		var out struct {
			TransferConversation struct {
				ID    string
				Owner struct{ ID string }
			}
		}
		w.Ana.C.MustOp(t, "TransferConversation", map[string]any{"id": conv, "agentID": w.Dan.ID}, &out)
		if out.TransferConversation.Owner.ID != w.Dan.ID {
			t.Fatalf("transfer: owner %s, want Dan %s", out.TransferConversation.Owner.ID, w.Dan.ID)
		}

		_, raw := nextConv(t, ana, "conv", eventTimeout)
		requireRemoved(t, raw, "conversationEvents", map[string]any{
			"kind": "REMOVED", "message": nil, "conversation": nil,
		}, first, reply)
		expectComplete(t, ana, "conv")

		_, raw = nextInbox(t, ana, "inbox", eventTimeout)
		requireRemoved(t, raw, "inboxEvents", map[string]any{
			"kind": "REMOVED", "conversationID": conv, "conversation": nil, "message": nil,
		}, first, reply)

		ev, raw := nextInbox(t, dan, "inbox", eventTimeout)
		if ev.ConversationID != conv || ev.Conversation == nil || ev.Conversation.Owner == nil ||
			ev.Conversation.Owner.ID != w.Dan.ID || ev.Kind == "REMOVED" {
			t.Fatalf("Dan's inbox after the transfer: %s", raw)
		}

		// The customer writes again: Dan sees it, Ana (still subscribed to
		// her inbox) does not.
		w.Inbound(t, w.WhatsApp, "34600555666", later)
		ev, raw = nextInbox(t, dan, "inbox", eventTimeout)
		if ev.Kind != "MESSAGE_ADDED" || ev.Message == nil || ev.Message.Body != later {
			t.Fatalf("Dan, next message: %s", raw)
		}
		ana.ExpectNone(t, "inbox", 300*time.Millisecond)
	})
}

// TestRealtimeMultiInstance: two instances share one PostgreSQL database and
// one Redis. An agent subscribed on instance A sees, within a second each,
// what happens on instance B: a new conversation, its next message, and its
// loss when a colleague claims it through B.
func TestRealtimeMultiInstance(t *testing.T) {
	db := storetest.Open(t, storetest.Postgres)
	prefix := fmt.Sprintf("parley-test-multi-%d:", time.Now().UnixNano())
	opts := apitest.Options{Backend: storetest.Postgres, DB: db, Redis: true, RedisPrefix: prefix}
	a := apitest.Start(t, opts)
	bsrv := apitest.Start(t, opts) // sees the system owner A created: no second bootstrap
	if n, err := db.Client.Agent.Query().Count(context.Background()); err != nil || n != 1 {
		t.Fatalf("%d agents after two instances started (err %v), want the one system owner", n, err)
	}
	w := apitest.NewWorkspace(t, a, apitest.WorkspaceOption{})
	onB := *w
	onB.S = bsrv
	benOnB := bsrv.Client().As(w.Ben.Token)

	ana := dialAs(t, a, apitest.TransportWS, w.Ana.Token)
	ana.SubscribeOp(t, "inbox", "InboxEvents", nil)
	waitSubscribed(t, a, 1)

	const first, second, reply = "hello from B", "anyone on B?", "Ben on B here"
	within := func(what string, act func(), check func(inboxEvent, json.RawMessage)) {
		t.Helper()
		start := time.Now()
		act()
		ev, raw := nextInbox(t, ana, "inbox", time.Second)
		check(ev, raw)
		t.Logf("%s: %v from instance B to Ana on instance A", what, time.Since(start).Round(time.Millisecond))
	}

	var conv string
	within("new conversation", func() { conv = onB.Inbound(t, w.WhatsApp, "34600777888", first) },
		func(ev inboxEvent, raw json.RawMessage) {
			if (ev.Kind != "CONVERSATION_CREATED" && ev.Kind != "MESSAGE_ADDED") || ev.ConversationID != conv || ev.Conversation == nil {
				t.Fatalf("new conversation on B: %s", raw)
			}
		})
	within("new message", func() { onB.Inbound(t, w.WhatsApp, "34600777888", second) },
		func(ev inboxEvent, raw json.RawMessage) {
			if ev.Kind != "MESSAGE_ADDED" || ev.ConversationID != conv || ev.Message == nil || ev.Message.Body != second {
				t.Fatalf("new message on B: %s", raw)
			}
		})
	within("claim", func() {
		r := benOnB.Op(t, "SendMessage", map[string]any{"input": map[string]any{"conversationID": conv, "body": reply}})
		if len(r.Errors) > 0 {
			t.Fatalf("Ben's reply on B: %s", r.Raw)
		}
	}, func(_ inboxEvent, raw json.RawMessage) {
		requireRemoved(t, raw, "inboxEvents", map[string]any{
			"kind": "REMOVED", "conversationID": conv, "conversation": nil, "message": nil,
		}, first, second, reply)
	})
}

// TestRealtimeSubscriptionLeak opens many subscriptions on both protocols,
// delivers an event to each, ends them every way a client can (unsubscribe,
// close handshake, dropped TCP connection) and checks that the server is
// back where it started: goroutines, and the subscription and websocket
// gauges.
func TestRealtimeSubscriptionLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 100 websockets")
	}
	const conns = 100 // two subscriptions each
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	conv := w.Inbound(t, w.WhatsApp, "34600999000", "hola")
	agents := []*apitest.Agent{w.Ana, w.Ben, w.Cleo}

	settle := func() int {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		time.Sleep(100 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	baseline := settle()

	wss := make([]*apitest.WS, conns)
	for i := range wss {
		proto := apitest.TransportWS
		if i%2 == 1 {
			proto = apitest.LegacyWS
		}
		wss[i] = dialAs(t, s, proto, agents[i%len(agents)].Token)
		wss[i].SubscribeOp(t, "inbox", "InboxEvents", nil)
		wss[i].SubscribeOp(t, "conv", "ConversationEvents", map[string]any{"id": conv})
	}
	waitSubscribed(t, s, 2*conns)
	waitMetric(t, s, "parley_websocket_connections", conns)
	t.Logf("goroutines: %d before, %d with %d websockets and %d subscriptions",
		baseline, runtime.NumGoroutine(), conns, 2*conns)

	// Every subscription delivers.
	w.Inbound(t, w.WhatsApp, "34600999000", "¿me leen?")
	for i, ws := range wss {
		if ev, raw := nextInbox(t, ws, "inbox", eventTimeout); ev.Kind != "MESSAGE_ADDED" {
			t.Fatalf("connection %d inbox: %s", i, raw)
		}
		if ev, raw := nextConv(t, ws, "conv", eventTimeout); ev.Kind != "MESSAGE_ADDED" {
			t.Fatalf("connection %d conversation: %s", i, raw)
		}
	}

	// A third unsubscribe one operation first; then half close with the
	// handshake and half just drop the TCP connection.
	var wg sync.WaitGroup
	for i, ws := range wss {
		if i%3 == 0 {
			ws.Unsubscribe(t, "conv")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_ = ws.Conn.Close(websocket.StatusNormalClosure, "bye")
			} else {
				_ = ws.Conn.CloseNow()
			}
		}()
	}
	wg.Wait()

	waitSubscribed(t, s, 0)
	waitMetric(t, s, "parley_websocket_connections", 0)

	const margin = 5
	var now int
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if now = settle(); now <= baseline+margin {
			t.Logf("goroutines back to %d (baseline %d)", now, baseline)
			return
		}
	}
	var buf bytes.Buffer
	_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
	t.Fatalf("goroutines: %d before, still %d after closing every subscription\n%s", baseline, now, buf.String())
}

// TestRealtimeSubscriberLeavingMidEvent: an instance loads what an event
// refers to once and shares it with all its subscribers; a subscriber whose
// connection closes during that load must not make the others miss the
// event. Fifty subscriptions of one connection and a fifty-first on another
// receive an event, and the first connection is dropped at once.
func TestRealtimeSubscriberLeavingMidEvent(t *testing.T) {
	const leaving, rounds = 50, 10
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	r := w.Receive(t, conversations.Inbound{
		ChannelAccountID: apitest.Atoi(t, w.WhatsApp), SenderID: "34600131313", Body: "hola",
	})
	keep := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
	keep.SubscribeOp(t, "inbox", "InboxEvents", nil)
	waitSubscribed(t, s, 1)

	for round := range rounds {
		gone := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
		for i := range leaving {
			gone.SubscribeOp(t, strconv.Itoa(i), "InboxEvents", nil)
		}
		waitSubscribed(t, s, 1+leaving)
		// Published straight to the broker, as the inbound entry point
		// does after its commit; then the 50 leave while it is loaded.
		err := s.App.Broker.Publish(context.Background(), pubsub.AgentTopic(apitest.Atoi(t, w.Ana.ID)), pubsub.Event{
			Kind: pubsub.KindMessageAdded, ConversationID: r.Conversation.ID, MessageID: r.Message.ID,
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = gone.Conn.CloseNow()
		ev, raw := nextInbox(t, keep, "inbox", eventTimeout)
		if ev.Kind != "MESSAGE_ADDED" || ev.Message == nil || ev.Message.ID != strconv.Itoa(r.Message.ID) {
			t.Fatalf("round %d: %s", round, raw)
		}
		waitSubscribed(t, s, 1)
	}
}

// TestRealtimeWebsocketGaugeRefusedInit: a websocket refused at
// connection_init (or closed before it) never counted as open, so closing
// it must not move parley_websocket_connections below zero.
func TestRealtimeWebsocketGaugeRefusedInit(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	for _, tc := range []struct {
		name string
		run  func(ws *apitest.WS)
	}{
		{"bad token", func(ws *apitest.WS) { ws.Init(t, "plt_nope") }},
		{"no token", func(ws *apitest.WS) { ws.Init(t, "") }},
		{"closed before init", func(ws *apitest.WS) { _ = ws.Conn.Close(websocket.StatusNormalClosure, "") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := s.DialWS(t, apitest.TransportWS)
			tc.run(ws)
			_, _ = ws.TryReadID("", 5*time.Second) // the server's answer, or the close
			_ = ws.Conn.CloseNow()
			waitMetric(t, s, "parley_websocket_connections", 0)
		})
	}
}

// TestRealtimeSlowConsumer: a client that stops reading its websocket does
// not delay anyone else: the server closes its socket (1013: reconnect and
// resume) instead of buffering without bound or blocking delivery, while
// another agent keeps receiving every event promptly.
func TestRealtimeSlowConsumer(t *testing.T) {
	if testing.Short() {
		t.Skip("sends about 3 MB of events")
	}
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	const sender = "34600121212"
	conv := w.Inbound(t, w.WhatsApp, sender, "hola")

	// Cleo's client, once subscribed, reads nothing.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, s.WebsocketURL(), &websocket.DialOptions{Subprotocols: []string{apitest.TransportWS}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	cleo := &apitest.WS{Conn: c, Protocol: apitest.TransportWS}
	cleo.Init(t, w.Cleo.Token)
	if m, err := cleo.Read(5 * time.Second); err != nil || m.Type != "connection_ack" {
		t.Fatalf("Cleo's connection_init: %+v %v", m, err)
	}
	cleo.SubscribeOp(t, "inbox", "InboxEvents", nil)
	cleo.SubscribeOp(t, "conv", "ConversationEvents", map[string]any{"id": conv})
	ana := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
	ana.SubscribeOp(t, "inbox", "InboxEvents", nil)
	waitSubscribed(t, s, 3)

	// Big messages (9,000 four-byte characters) fill the socket buffers
	// quickly; Ana must get each within a second of its commit.
	big := strings.Repeat("\U0001F600", 9000)
	acct := apitest.Atoi(t, w.WhatsApp)
	var slowest time.Duration
	sent := 0
	for dropped := false; !dropped; {
		if sent == 300 {
			t.Fatalf("after %d events Cleo's subscriptions are still open: a stalled client is buffered without bound", sent)
		}
		sent++
		body := fmt.Sprintf("%d %s", sent, big)
		received := make(chan error, 1)
		go func() {
			_, err := s.App.Convs.Receive(context.Background(), conversations.Inbound{
				ChannelAccountID: acct, SenderID: sender, Body: body,
			})
			received <- err
		}()
		select {
		case err := <-received:
			if err != nil {
				t.Fatalf("receive %d: %v", sent, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d: the inbound entry point blocked while Cleo stalled", sent)
		}
		start := time.Now()
		ev, raw := nextInbox(t, ana, "inbox", time.Second)
		if ev.Kind != "MESSAGE_ADDED" || ev.Message == nil || ev.Message.Body != body {
			t.Fatalf("Ana, event %d: %.200s", sent, raw)
		}
		slowest = max(slowest, time.Since(start))
		if sent%10 == 0 {
			dropped = metric(t, s, "parley_active_subscriptions") == 1
		}
	}
	t.Logf("Cleo dropped after %d events of %d KiB; Ana's slowest delivery took %v", sent, len(big)>>10, slowest)

	// Cleo reads again (ReadID starts reading): what was queued for her
	// before she was dropped, then the end of the connection, short of the
	// events sent since. The server sends 1013 (try again later) when the
	// close frame still fits in her socket; when even that is stuck, the
	// connection is dropped (1006 to her client). Both make clients
	// reconnect; a normal closure or a connection left open would not.
	n := 0
	for {
		m, err := cleo.TryReadID("inbox", 15*time.Second)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("Cleo: the connection stayed open after she was dropped")
			}
			if st := websocket.CloseStatus(err); st != websocket.StatusTryAgainLater && st != -1 {
				t.Fatalf("Cleo: want close 1013 or a dropped connection, got %v", err)
			}
			t.Logf("Cleo's connection ended: %v", err)
			break
		}
		if !m.IsResult() {
			t.Fatalf("Cleo inbox: %s %.200s", m.Type, m.Payload)
		}
		n++
	}
	if n >= sent {
		t.Fatalf("Cleo: %d events after %d sent, yet she was dropped", n, sent)
	}
	t.Logf("Cleo: %d of %d inbox events delivered, then the connection ended", n, sent)
}
