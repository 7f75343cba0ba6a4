package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
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

	// Background reading (see ReadID): started by the first ReadID, Ack or
	// ExpectNone call. Read must not be used once it has started.
	pumpOnce sync.Once
	mu       sync.Mutex
	queue    []Message     // read, not yet taken
	notify   chan struct{} // signalled (capacity 1) when queue grows
	done     chan struct{} // closed when reading ended
	readErr  error         // why reading ended; set before done is closed
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

// pump reads the connection in the background into an unbounded queue, so
// that a test can wait for a message of one operation while others arrive,
// and can check that nothing arrives without a read deadline closing the
// connection (coder/websocket closes a connection whose Read context ends).
// The reader never blocks on the test and ends when the connection closes.
func (w *WS) pump() {
	w.pumpOnce.Do(func() {
		w.notify = make(chan struct{}, 1)
		w.done = make(chan struct{})
		// Browsers take results of any size; coder/websocket stops at 32 KiB.
		w.Conn.SetReadLimit(16 << 20)
		go func() {
			defer close(w.done)
			for {
				_, b, err := w.Conn.Read(context.Background())
				if err != nil {
					w.mu.Lock()
					w.readErr = err
					w.mu.Unlock()
					return
				}
				var m Message
				if err := json.Unmarshal(b, &m); err != nil {
					m = Message{Type: "invalid-json", Payload: json.RawMessage(strings.ToValidUTF8(string(b), "?"))}
				}
				switch m.Type {
				case "ping":
					// Answer as graphql-transport-ws clients must, or the
					// server closes the connection after two intervals.
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					_ = w.Conn.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`))
					cancel()
					continue
				case "ka", "pong":
					continue
				}
				w.mu.Lock()
				w.queue = append(w.queue, m)
				w.mu.Unlock()
				select {
				case w.notify <- struct{}{}:
				default:
				}
			}
		}()
	})
}

// take removes and returns the first queued message of operation id ("" for
// connection-level messages such as connection_ack).
func (w *WS) take(id string) (Message, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, m := range w.queue {
		if m.ID == id {
			w.queue = append(w.queue[:i:i], w.queue[i+1:]...)
			return m, true
		}
	}
	return Message{}, false
}

// ReadID returns the next message of operation id ("" for connection-level
// messages), keeping messages of other operations for later calls. It fails
// the test when none arrives within timeout or the connection ends first.
func (w *WS) ReadID(t testing.TB, id string, timeout time.Duration) Message {
	t.Helper()
	m, err := w.TryReadID(id, timeout)
	if err != nil {
		t.Fatalf("operation %q: %v", id, err)
	}
	return m
}

// TryReadID is ReadID that returns an error instead of failing the test.
func (w *WS) TryReadID(id string, timeout time.Duration) (Message, error) {
	w.pump()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		if m, ok := w.take(id); ok {
			return m, nil
		}
		select {
		case <-w.notify:
		case <-w.done:
			if m, ok := w.take(id); ok {
				return m, nil
			}
			w.mu.Lock()
			err := w.readErr
			w.mu.Unlock()
			return Message{}, &wsEndedError{err}
		case <-timer.C:
			return Message{}, context.DeadlineExceeded
		}
	}
}

type wsEndedError struct{ err error }

func (e *wsEndedError) Error() string { return "connection ended: " + e.err.Error() }
func (e *wsEndedError) Unwrap() error { return e.err }

// ExpectNone fails the test if a message of operation id arrives within d.
func (w *WS) ExpectNone(t testing.TB, id string, d time.Duration) {
	t.Helper()
	w.pump()
	time.Sleep(d)
	if m, ok := w.take(id); ok {
		t.Fatalf("operation %q: unexpected %s message: %s", id, m.Type, m.Payload)
	}
}

// Ack sends connection_init with the token and fails the test unless the
// server answers connection_ack.
func (w *WS) Ack(t testing.TB, token string) {
	t.Helper()
	w.Init(t, token)
	if m := w.ReadID(t, "", 10*time.Second); m.Type != "connection_ack" {
		t.Fatalf("connection_init: want connection_ack, got %s %s", m.Type, m.Payload)
	}
}

// SubscribeOp starts the client contract's operation name under id: the
// whole contract document with operationName, exactly as Client.Op sends
// queries and mutations.
func (w *WS) SubscribeOp(t testing.TB, id, name string, vars map[string]any) {
	t.Helper()
	doc := Contract(t)
	if !strings.Contains(doc, "subscription "+name+"(") && !strings.Contains(doc, "subscription "+name+" {") {
		t.Fatalf("the contract has no subscription %s", name)
	}
	typ := "subscribe"
	if w.Protocol == LegacyWS {
		typ = "start"
	}
	p, _ := json.Marshal(map[string]any{"query": doc, "operationName": name, "variables": vars})
	w.Send(t, Message{ID: id, Type: typ, Payload: p})
}

// Unsubscribe ends operation id from the client side (complete, or stop in
// the legacy protocol).
func (w *WS) Unsubscribe(t testing.TB, id string) {
	t.Helper()
	typ := "complete"
	if w.Protocol == LegacyWS {
		typ = "stop"
	}
	w.Send(t, Message{ID: id, Type: typ})
}

// IsResult reports whether m carries an execution result (next, or data in
// the legacy protocol).
func (m Message) IsResult() bool { return m.Type == "next" || m.Type == "data" }

// Result decodes the payload of a result message, or of an error message
// (whose payload is a list of errors) into Errors.
func (m Message) Result(t testing.TB) *Response {
	t.Helper()
	r := &Response{Raw: m.Payload}
	if m.Type == "error" && bytes.HasPrefix(bytes.TrimSpace(m.Payload), []byte("[")) {
		if err := json.Unmarshal(m.Payload, &r.Errors); err != nil {
			t.Fatalf("decode error payload %s: %v", m.Payload, err)
		}
		return r
	}
	if err := json.Unmarshal(m.Payload, r); err != nil {
		t.Fatalf("decode %s payload %s: %v", m.Type, m.Payload, err)
	}
	return r
}
