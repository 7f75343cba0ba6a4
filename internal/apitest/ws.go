package apitest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Websocket subprotocols.
const (
	TransportWS = "graphql-transport-ws" // current protocol
	LegacyWS    = "graphql-ws"           // subscriptions-transport-ws, older clients
)

// WS is a GraphQL websocket client that speaks the protocol the way a
// browser does.
type WS struct {
	Conn     *websocket.Conn
	Protocol string
}

// Message is one protocol message.
type Message struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// DialWS opens a websocket to the server with the given subprotocol.
func (s *Server) DialWS(t testing.TB, protocol string) *WS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, s.WebsocketURL(), &websocket.DialOptions{Subprotocols: []string{protocol}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &WS{Conn: c, Protocol: protocol}
}

// Send writes a message.
func (w *WS) Send(t testing.TB, m Message) {
	t.Helper()
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.Conn.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// Read reads the next message that is not a keep-alive, or returns the
// error that ended the connection.
func (w *WS) Read(timeout time.Duration) (Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		_, b, err := w.Conn.Read(ctx)
		if err != nil {
			return Message{}, err
		}
		var m Message
		if err := json.Unmarshal(b, &m); err != nil {
			return Message{}, err
		}
		switch m.Type {
		case "ka", "ping", "pong":
			continue
		}
		return m, nil
	}
}

// Init sends connection_init with the token (none when empty).
func (w *WS) Init(t testing.TB, token string) {
	t.Helper()
	var payload json.RawMessage
	if token != "" {
		payload, _ = json.Marshal(map[string]string{"authToken": token})
	}
	w.Send(t, Message{Type: "connection_init", Payload: payload})
}

// Subscribe starts an operation with the given id.
func (w *WS) Subscribe(t testing.TB, id, query string, vars map[string]any) {
	t.Helper()
	typ := "subscribe"
	if w.Protocol == LegacyWS {
		typ = "start"
	}
	p, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	w.Send(t, Message{ID: id, Type: typ, Payload: p})
}
