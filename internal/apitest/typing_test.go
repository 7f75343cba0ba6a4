package apitest_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
)

type typingConvEvent struct {
	ConversationEvents struct {
		Kind, Cursor string
		Typing       *struct {
			Agent     *struct{ ID, Name string }
			Contact   *struct{ ID string }
			Typing    bool
			ExpiresAt string
		}
	}
}

// TestTyping: an agent typing in a live chat is shown to a colleague who
// sees the conversation and to the visitor (name only), never to the
// typer nor to an agent who may not see it; the visitor typing is shown to
// the agents; typing is never replayed to a client that resumes; an agent
// who may not see the conversation cannot type in it.
func TestTyping(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	vtoken, lc0 := startVisitorChat(t, s, w)
	visitor := s.Client().As(vtoken)
	visitor.MustOp(t, "VisitorSendMessage", map[string]any{"body": "hello?"}, nil)
	conv := lc0
	w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": conv}, nil)

	admin := dialAs(t, s, apitest.TransportWS, w.Admin.Token) // admins see every conversation
	admin.SubscribeOp(t, "c", "ConversationEventsAfter", map[string]any{"id": conv})
	ana := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
	ana.SubscribeOp(t, "c", "ConversationEventsAfter", map[string]any{"id": conv})
	vis := dialAs(t, s, apitest.TransportWS, vtoken)
	vis.SubscribeOp(t, "v", "VisitorEventsAfter", nil)
	waitSubscribed(t, s, 3)

	// Ben may not see Ana's conversation: he cannot type in it.
	if r := w.Ben.C.Op(t, "SetTyping", map[string]any{"id": conv, "typing": true}); len(r.Errors) == 0 || r.Errors[0].Code() != "NOT_FOUND" {
		t.Fatalf("Ben typing in Ana's conversation: %s", r.Raw)
	}
	w.Ana.C.MustOp(t, "SetTyping", map[string]any{"id": conv, "typing": true}, nil)
	data := result(t, admin, "c", eventTimeout)
	var ev typingConvEvent
	if err := json.Unmarshal(data, &ev); err != nil || ev.ConversationEvents.Kind != "TYPING" || ev.ConversationEvents.Typing == nil ||
		ev.ConversationEvents.Typing.Agent == nil || ev.ConversationEvents.Typing.Agent.ID != w.Ana.ID || !ev.ConversationEvents.Typing.Typing {
		t.Fatalf("the admin: want Ana typing, got %s", data)
	}
	if at, err := time.Parse(time.RFC3339Nano, ev.ConversationEvents.Typing.ExpiresAt); err != nil || time.Until(at) > 7*time.Second || time.Until(at) < 3*time.Second {
		t.Fatalf("expiresAt %q is not about 6 s ahead", ev.ConversationEvents.Typing.ExpiresAt)
	}
	vdata := result(t, vis, "v", eventTimeout)
	if string(vdata) != `{"visitorEvents":{"kind":"TYPING","cursor":`+mustCursor(t, vdata)+`,"message":null,"typingAgentName":"Ana","typing":true}}` {
		t.Fatalf("the visitor: %s", vdata)
	}
	ana.ExpectNone(t, "c", 300*time.Millisecond) // never her own

	// Keystrokes are coalesced: a second "typing" at once sends nothing.
	w.Ana.C.MustOp(t, "SetTyping", map[string]any{"id": conv, "typing": true}, nil)
	admin.ExpectNone(t, "c", 300*time.Millisecond)

	// The visitor types: the agents see the contact typing.
	visitor.MustOp(t, "VisitorSetTyping", map[string]any{"typing": true}, nil)
	data = result(t, ana, "c", eventTimeout)
	if err := json.Unmarshal(data, &ev); err != nil || ev.ConversationEvents.Kind != "TYPING" || ev.ConversationEvents.Typing == nil ||
		ev.ConversationEvents.Typing.Contact == nil || ev.ConversationEvents.Typing.Agent != nil {
		t.Fatalf("Ana: want the visitor typing, got %s", data)
	}
	cursor := ev.ConversationEvents.Cursor
	if _, err := json.Marshal(cursor); err != nil || cursor == "" {
		t.Fatalf("typing event without a cursor: %s", data)
	}
	vis.ExpectNone(t, "v", 300*time.Millisecond) // not back to the visitor

	// Resuming from before the typing replays the message only.
	w.Ana.Send(t, conv, "Hi, Ana here")
	msg := result(t, admin, "c", eventTimeout) // drain the admin's MESSAGE_ADDED
	_ = msg
	back := dialAs(t, s, apitest.TransportWS, w.Admin.Token)
	back.SubscribeOp(t, "c", "ConversationEventsAfter", map[string]any{"id": conv, "after": cursor})
	got := nextCursorEvent(t, back, "c", "conversationEvents")
	if got.Kind != "MESSAGE_ADDED" || got.Message == nil || got.Message.Body != "Hi, Ana here" {
		t.Fatalf("resumed after a typing event: %v", got)
	}
	back.ExpectNone(t, "c", 300*time.Millisecond)
}

func mustCursor(t *testing.T, data []byte) string {
	t.Helper()
	var out struct{ VisitorEvents struct{ Cursor string } }
	if err := json.Unmarshal(data, &out); err != nil || out.VisitorEvents.Cursor == "" {
		t.Fatalf("no cursor in %s", data)
	}
	b, _ := json.Marshal(out.VisitorEvents.Cursor)
	return string(b)
}
