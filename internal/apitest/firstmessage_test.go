package apitest_test

import (
	"testing"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestFirstMessageInConversationCreated: an agent offered a conversation
// gets CONVERSATION_CREATED with its newest message, whatever the channel
// and however the offer came: a new WhatsApp conversation, a live chat
// (routed at the visitor's first message), and a transfer (the newest
// message by then).
func TestFirstMessageInConversationCreated(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		ana := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
		ana.SubscribeOp(t, "inbox", "InboxEvents", nil)
		dan := dialAs(t, s, apitest.TransportWS, w.Dan.Token)
		dan.SubscribeOp(t, "inbox", "InboxEvents", nil)
		waitSubscribed(t, s, 2)

		created := func(who string, ws *apitest.WS, conv, body string) {
			t.Helper()
			ev, raw := nextInbox(t, ws, "inbox", eventTimeout)
			if ev.Kind != "CONVERSATION_CREATED" || ev.ConversationID != conv || ev.Message == nil || ev.Message.Body != body {
				t.Fatalf("%s: want CONVERSATION_CREATED of %s with %q, got %s", who, conv, body, raw)
			}
		}

		wa := w.Inbound(t, w.WhatsApp, "34600100008", "hola, WhatsApp")
		created("WhatsApp", ana, wa, "hola, WhatsApp")

		vtoken, lc0 := startVisitorChat(t, s, w)
		s.Client().As(vtoken).MustOp(t, "VisitorSendMessage", map[string]any{"body": "hola, web"}, nil)
		created("live chat", ana, lc0, "hola, web")

		if r := w.Ana.Send(t, wa, "Ana here"); len(r.Errors) > 0 {
			t.Fatalf("Ana's reply: %s", r.Raw)
		}
		w.Ana.C.MustOp(t, "TransferConversation", map[string]any{"id": wa, "agentID": w.Dan.ID}, nil)
		created("transfer", dan, wa, "Ana here")
	})
}

// startVisitorChat opens a live chat on the workspace's website account as
// a visitor and returns the visitor token and the conversation id.
func startVisitorChat(t testing.TB, s *apitest.Server, w *apitest.Workspace) (token, conv string) {
	t.Helper()
	var out struct {
		StartLiveChat struct {
			VisitorToken string
			Conversation struct{ ID string }
		}
	}
	s.Client().MustOp(t, "StartLiveChat", map[string]any{"input": map[string]any{"channelAccountID": w.LiveChat}}, &out)
	return out.StartLiveChat.VisitorToken, out.StartLiveChat.Conversation.ID
}
