package apitest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/internal/apitest"
)

// The websocket protocol tests check, over real sockets, that Parley's
// transport closes connections with the codes of the graphql-transport-ws
// protocol (4400, 4401, 4403, 4406, 4408, 4409, 4429), 1009 for a message
// over the limit, 1013 for a slow client (TestRealtimeSlowConsumer), 1001 on
// shutdown and 1000 only for a normal end; and that a token revoked or
// expired while a socket is open closes it with 4403 within seconds.

// closeOf reads until the server closes the connection and returns the
// close frame's code and reason; it fails the test when the connection
// stays open past timeout or ends without a close frame.
func closeOf(t testing.TB, ws *apitest.WS, timeout time.Duration) (websocket.StatusCode, string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatal("the server did not close the connection")
		}
		_, err := ws.TryReadID("", left)
		if err == nil {
			continue // a connection-level message before the close
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatal("the server did not close the connection")
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("connection ended without a close frame: %v", err)
		}
		return ce.Code, ce.Reason
	}
}

func requireClose(t testing.TB, ws *apitest.WS, want websocket.StatusCode, reasonHas string) {
	t.Helper()
	code, reason := closeOf(t, ws, 10*time.Second)
	if code != want || !strings.Contains(reason, reasonHas) {
		t.Fatalf("closed with %d %q, want %d with %q", code, reason, want, reasonHas)
	}
}

// sendRaw writes one frame of the given type as is.
func sendRaw(t testing.TB, ws *apitest.WS, typ websocket.MessageType, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ws.Conn.Write(ctx, typ, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func TestWebsocketCloseCodes(t *testing.T) {
	s := apitest.Start(t, apitest.Options{Env: map[string]string{"PARLEY_WS_INIT_TIMEOUT": "300ms"}})
	token, _ := s.Client().Login(t, apitest.AdminEmail, apitest.AdminPassword)
	const inbox = `subscription { inboxEvents { kind } }`

	for _, tc := range []struct {
		name   string
		proto  string
		run    func(t *testing.T, ws *apitest.WS)
		code   websocket.StatusCode
		reason string
	}{
		{"bad token", apitest.TransportWS, func(t *testing.T, ws *apitest.WS) { ws.Init(t, "plt_nope") }, 4403, "invalid token"},
		{"no token", apitest.TransportWS, func(t *testing.T, ws *apitest.WS) { ws.Init(t, "") }, 4403, "authToken"},
		{"not a token", apitest.TransportWS, func(t *testing.T, ws *apitest.WS) { ws.Init(t, "hello") }, 4403, "invalid token"},
		{"garbage frame", apitest.TransportWS, func(t *testing.T, ws *apitest.WS) {
			sendRaw(t, ws, websocket.MessageText, []byte("{not json"))
		}, 4400, "Invalid message"},
		{"message without type", apitest.TransportWS, func(t *testing.T, ws *apitest.WS) {
			sendRaw(t, ws, websocket.MessageText, []byte(`{"id":"1"}`))
		}, 4400, "Invalid message"},
		{"unknown type", apitest.TransportWS, func(t *testing.T, ws *apitest.WS) {
			ws.Ack(t, token)
			sendRaw(t, ws, websocket.MessageText, []byte(`{"type":"shout"}`))
		}, 4400, "shout"},
		{"binary frame", apitest.TransportWS, func(t *testing.T, ws *apitest.WS) {
			sendRaw(t, ws, websocket.MessageBinary, []byte(`{"type":"connection_init"}`))
		}, 4400, "JSON text"},
		{"subscribe before ack", apitest.TransportWS, func(t *testing.T, ws *apitest.WS) {
			ws.Subscribe(t, "1", inbox, nil)
		}, 4401, "Unauthorized"},
		{"second connection_init", apitest.TransportWS, func(t *testing.T, ws *apitest.WS) {
			ws.Ack(t, token)
			ws.Init(t, token)
		}, 4429, "Too many initialisation requests"},
		{"no connection_init in time", apitest.TransportWS, func(t *testing.T, ws *apitest.WS) {}, 4408, "initialisation timeout"},
		{"duplicate subscription id", apitest.TransportWS, func(t *testing.T, ws *apitest.WS) {
			ws.Ack(t, token)
			ws.Subscribe(t, "same", inbox, nil)
			ws.Subscribe(t, "same", inbox, nil)
		}, 4409, "Subscriber for same already exists"},
		{"message too big", apitest.TransportWS, func(t *testing.T, ws *apitest.WS) {
			ws.Ack(t, token)
			sendRaw(t, ws, websocket.MessageText, []byte(`{"type":"ping","payload":"`+strings.Repeat("x", 2<<20)+`"}`))
		}, 1009, "too big"},
		{"normal end", apitest.TransportWS, func(t *testing.T, ws *apitest.WS) {
			ws.Ack(t, token)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// The client's close is answered with the same code.
			_ = ws.Conn.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`))
			go func() { _ = ws.Conn.Close(websocket.StatusNormalClosure, "bye") }()
		}, 1000, ""},
		{"legacy bad token", apitest.LegacyWS, func(t *testing.T, ws *apitest.WS) {
			ws.Init(t, "plt_nope")
			if m := ws.ReadID(t, "", 5*time.Second); m.Type != "connection_error" || !strings.Contains(string(m.Payload), "invalid token") {
				t.Fatalf("legacy refusal: %s %s", m.Type, m.Payload)
			}
		}, 4403, "invalid token"},
		{"legacy start before init", apitest.LegacyWS, func(t *testing.T, ws *apitest.WS) {
			ws.Subscribe(t, "1", inbox, nil)
		}, 4401, "Unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := s.DialWS(t, tc.proto)
			tc.run(t, ws)
			if tc.name == "normal end" {
				// coder/websocket's Close reads the server's answer itself.
				deadline := time.Now().Add(5 * time.Second)
				for s.App.Server.Websockets() > 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if n := s.App.Server.Websockets(); n != 0 {
					t.Fatalf("%d websockets still open after a normal close", n)
				}
				return
			}
			requireClose(t, ws, tc.code, tc.reason)
		})
	}
}

// TestWebsocketProtocolPing: a protocol ping is answered with a pong
// carrying its payload, before and after connection_init.
func TestWebsocketProtocolPing(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	token, _ := s.Client().Login(t, apitest.AdminEmail, apitest.AdminPassword)
	ws := s.DialWS(t, apitest.TransportWS)
	read := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, b, err := ws.Conn.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return string(b)
	}
	sendRaw(t, ws, websocket.MessageText, []byte(`{"type":"ping","payload":{"n":1}}`))
	if got := read(); got != `{"type":"pong","payload":{"n":1}}` {
		t.Fatalf("pong before init: %s", got)
	}
	ws.Init(t, token)
	if got := read(); got != `{"type":"connection_ack"}` {
		t.Fatalf("ack: %s", got)
	}
	sendRaw(t, ws, websocket.MessageText, []byte(`{"type":"ping"}`))
	if got := read(); got != `{"type":"pong"}` {
		t.Fatalf("pong after init: %s", got)
	}
}

// TestWebsocketUnknownSubprotocol: a client offering only protocols Parley
// does not speak is closed with 4406.
func TestWebsocketUnknownSubprotocol(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	ws := s.DialWS(t, "mqtt")
	requireClose(t, ws, 4406, "Subprotocol not acceptable")
}

// TestWebsocketTokenRevokedWhileOpen: logging out (revoking the token) or
// the token expiring closes the sockets opened with it with 4403, within
// seconds, while a socket of another token stays open.
func TestWebsocketTokenRevokedWhileOpen(t *testing.T) {
	t.Run("logout", func(t *testing.T) {
		s := apitest.Start(t, apitest.Options{Env: map[string]string{"PARLEY_WS_RECHECK_INTERVAL": "200ms"}})
		gone, _ := s.Client().Login(t, apitest.AdminEmail, apitest.AdminPassword)
		stays, _ := s.Client().Login(t, apitest.AdminEmail, apitest.AdminPassword)
		a := dialAs(t, s, apitest.TransportWS, gone)
		a.Subscribe(t, "inbox", `subscription { inboxEvents { kind } }`, nil)
		b := dialAs(t, s, apitest.TransportWS, stays)
		waitSubscribed(t, s, 1)

		if r := s.Client().As(gone).Query(t, "mutation { logout }", nil); len(r.Errors) > 0 {
			t.Fatalf("logout: %s", r.Raw)
		}
		start := time.Now()
		requireClose(t, a, 4403, "token revoked")
		t.Logf("closed %v after logout", time.Since(start).Round(time.Millisecond))
		waitSubscribed(t, s, 0)
		// The other token's socket is still served.
		b.Subscribe(t, "inbox", `subscription { inboxEvents { kind } }`, nil)
		waitSubscribed(t, s, 1)
	})
	t.Run("expiry", func(t *testing.T) {
		s := apitest.Start(t, apitest.Options{Env: map[string]string{
			"PARLEY_WS_RECHECK_INTERVAL": "200ms", "PARLEY_TOKEN_TTL": "3s",
		}})
		token, _ := s.Client().Login(t, apitest.AdminEmail, apitest.AdminPassword)
		ws := dialAs(t, s, apitest.TransportWS, token)
		start := time.Now()
		code, reason := closeOf(t, ws, 10*time.Second)
		if code != 4403 || !strings.Contains(reason, "token expired") {
			t.Fatalf("closed with %d %q, want 4403 token expired", code, reason)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("closed %v after connecting with a 3 s token", d)
		}
	})
}

// TestWebsocketSharedExecution: subscriptions of one viewer to the same
// operation share one broker subscription, yet each gets every event under
// its own id and ends on its own; another viewer has its own.
func TestWebsocketSharedExecution(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	// The instance holds one broker subscription of its own: its listener
	// of token revocations (app.closeRevokedSockets).
	const own = 1
	waitMetric(t, s, "parley_broker_subscriptions", own)
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	conv := w.Inbound(t, w.WhatsApp, "34600777111", "hola")
	a1 := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
	a2 := dialAs(t, s, apitest.LegacyWS, w.Ana.Token)
	b := dialAs(t, s, apitest.TransportWS, w.Ben.Token)
	for _, ws := range []*apitest.WS{a1, a2, b} {
		ws.SubscribeOp(t, "x", "InboxEvents", nil)
	}
	a1.SubscribeOp(t, "y", "InboxEvents", nil)
	waitSubscribed(t, s, 4)
	waitMetric(t, s, "parley_broker_subscriptions", own+2)

	w.Inbound(t, w.WhatsApp, "34600777111", "¿hay alguien?")
	for _, c := range []struct {
		ws *apitest.WS
		id string
	}{{a1, "x"}, {a1, "y"}, {a2, "x"}, {b, "x"}} {
		if ev, raw := nextInbox(t, c.ws, c.id, eventTimeout); ev.Kind != "MESSAGE_ADDED" || ev.ConversationID != conv {
			t.Fatalf("%s: %s", c.id, raw)
		}
	}
	a1.Unsubscribe(t, "y")
	waitSubscribed(t, s, 3)
	_ = a2.Conn.CloseNow()
	waitSubscribed(t, s, 2)
	w.Inbound(t, w.WhatsApp, "34600777111", "sigo aquí")
	if ev, raw := nextInbox(t, a1, "x", eventTimeout); ev.Kind != "MESSAGE_ADDED" {
		t.Fatalf("after others left: %s", raw)
	}
	a1.ExpectNone(t, "y", 200*time.Millisecond)
	_ = a1.Conn.CloseNow()
	_ = b.Conn.CloseNow()
	waitSubscribed(t, s, 0)
	waitMetric(t, s, "parley_broker_subscriptions", own)
}
