package apitest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/livechat"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// startChat starts a live chat as a visitor from the given client and
// returns the visitor token and conversation id.
func startChat(t *testing.T, c *apitest.Client, account string, name string) (string, string) {
	t.Helper()
	var out struct {
		StartLiveChat struct {
			VisitorToken string
			Conversation struct{ ID string }
		}
	}
	c.MustOp(t, "StartLiveChat", map[string]any{"input": map[string]any{
		"channelAccountID": account, "name": name, "email": "visitor@example.com", "pageURL": "https://shop.example.com/p/1",
	}}, &out)
	return out.StartLiveChat.VisitorToken, out.StartLiveChat.Conversation.ID
}

type visitorConv struct {
	VisitorConversation struct {
		ID, Status string
		Messages   struct {
			Edges []struct {
				Node struct{ ID, Direction, Body string }
			}
		}
	}
}

func TestLiveChatVisitorFlow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, Env: map[string]string{"PARLEY_TRUSTED_PROXIES": "127.0.0.1/32"}})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		visitor := s.Client()
		visitor.Header.Set("X-Forwarded-For", "192.0.2.44")
		visitor.Header.Set("User-Agent", "WidgetTest/1.0")
		token, convID := startChat(t, visitor, w.LiveChat, "Lucía")
		if !strings.HasPrefix(token, "plv_") {
			t.Fatalf("visitor token %q", token)
		}
		// Nobody is offered an empty chat.
		if ids := w.Ana.InboxIDs(t, "RECENT", nil); len(ids) != 0 {
			t.Fatalf("an empty chat was offered: %v", ids)
		}
		v := visitor.As(token)
		var sent struct{ VisitorSendMessage struct{ ID, Body string } }
		v.MustOp(t, "VisitorSendMessage", map[string]any{"body": "¿Tienen envío gratis?"}, &sent)
		if sent.VisitorSendMessage.Body != "¿Tienen envío gratis?" {
			t.Fatalf("sent %+v", sent)
		}
		c := mustConv(t, w.Ana, convID)
		if c.Channel != "LIVE_CHAT" || c.Contact.DisplayName != "Lucía" || len(c.Messages.Edges) != 1 {
			t.Fatalf("agent's view: %+v", c)
		}
		var vis struct {
			Conversation struct {
				Visitor struct{ IP, UserAgent, PageURL string }
			}
		}
		w.Ana.C.MustOp(t, "Conversation", map[string]any{"id": convID}, &vis)
		if got := vis.Conversation.Visitor; got.IP != "192.0.2.44" || got.UserAgent != "WidgetTest/1.0" || got.PageURL != "https://shop.example.com/p/1" {
			t.Fatalf("visitor details %+v", got)
		}
		if r := w.Ana.Send(t, convID, "¡Sí! Desde 30 €."); len(r.Errors) > 0 {
			t.Fatal(string(r.Raw))
		}

		// A reload: the same token shows the whole history.
		var vc visitorConv
		v.MustOp(t, "VisitorConversation", nil, &vc)
		if vc.VisitorConversation.ID != convID || len(vc.VisitorConversation.Messages.Edges) != 2 ||
			vc.VisitorConversation.Messages.Edges[1].Node.Body != "¡Sí! Desde 30 €." {
			t.Fatalf("visitor's history %+v", vc)
		}
		// The visitor sees the agent's name, never the email.
		r := v.Query(t, `{ visitorConversation { messages(last: 5) { edges { node { sender { ... on Agent { name email extension } } } } } } }`, nil)
		if strings.Contains(string(r.Raw), "@test.parley") || strings.Contains(string(r.Raw), `"201"`) || !strings.Contains(string(r.Raw), "Ana") {
			t.Fatalf("visitor sees agent details: %s", r.Raw)
		}

		// A visitor token does nothing else.
		for _, op := range []struct {
			name string
			vars map[string]any
		}{
			{"Me", nil},
			{"Inbox", map[string]any{"view": "RECENT"}},
			{"Conversation", map[string]any{"id": convID}},
			{"SendMessage", map[string]any{"input": map[string]any{"conversationID": convID, "body": "x"}}},
			{"TakeConversation", map[string]any{"id": convID}},
			{"Templates", nil},
		} {
			if code := v.Op(t, op.name, op.vars).Code(); code != "FORBIDDEN" && code != "UNAUTHENTICATED" {
				t.Fatalf("visitor token on %s: %s", op.name, code)
			}
		}
		// An agent token is not a visitor.
		wantCode(t, w.Ana.C.Op(t, "VisitorConversation", nil), "UNAUTHENTICATED", "agent asks for a visitor conversation")

		// Ending the chat stops the visitor.
		w.Ana.C.MustOp(t, "EndChatSession", map[string]any{"id": convID}, nil)
		wantCode(t, v.Op(t, "VisitorSendMessage", map[string]any{"body": "hello?"}), "FORBIDDEN", "send after the end")
		v.MustOp(t, "VisitorConversation", nil, &vc)
		if vc.VisitorConversation.Status != "ENDED" {
			t.Fatalf("status after the end: %+v", vc.VisitorConversation)
		}
	})
}

func TestLiveChatBlockRefusesIP(t *testing.T) {
	s := apitest.Start(t, apitest.Options{Env: map[string]string{"PARLEY_TRUSTED_PROXIES": "127.0.0.1/32"}})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	other := w.Account(t, "LIVE_CHAT", map[string]any{"agentID": w.Dan.ID})
	bad := s.Client()
	bad.Header.Set("X-Forwarded-For", "198.51.100.66")
	token, convID := startChat(t, bad, w.LiveChat, "Troll")
	bad.As(token).MustOp(t, "VisitorSendMessage", map[string]any{"body": "spam"}, nil)
	w.Ben.C.MustOp(t, "BlockAnonymousUser", map[string]any{"id": convID}, nil)

	for _, acct := range []string{w.LiveChat, other} {
		r := bad.Op(t, "StartLiveChat", map[string]any{"input": map[string]any{"channelAccountID": acct}})
		wantCode(t, r, "FORBIDDEN", "blocked IP starts a chat")
	}
	wantCode(t, bad.As(token).Op(t, "VisitorSendMessage", map[string]any{"body": "again"}), "FORBIDDEN", "blocked IP sends")
	// Someone else is not affected.
	good := s.Client()
	good.Header.Set("X-Forwarded-For", "198.51.100.67")
	startChat(t, good, w.LiveChat, "Fine")
	// Without a trusted proxy the header is not believed: the peer counts.
	direct := apitest.Start(t, apitest.Options{})
	dw := apitest.NewWorkspace(t, direct, apitest.WorkspaceOption{})
	spoof := direct.Client()
	spoof.Header.Set("X-Forwarded-For", "203.0.113.99")
	_, cid := startChat(t, spoof, dw.LiveChat, "Spoof")
	var vis struct {
		Conversation struct{ Visitor struct{ IP string } }
	}
	dw.Admin.C.MustOp(t, "Conversation", map[string]any{"id": cid}, &vis)
	if vis.Conversation.Visitor.IP != "127.0.0.1" {
		t.Fatalf("an untrusted X-Forwarded-For was believed: %q", vis.Conversation.Visitor.IP)
	}
}

func TestLiveChatOrigins(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	var out struct{ CreateChannelAccount struct{ ID string } }
	w.Admin.C.MustOp(t, "CreateChannelAccount", map[string]any{"input": map[string]any{
		"channel": "LIVE_CHAT", "name": "Shop", "queueID": w.QueueID,
		"liveChat": map[string]any{"allowedOrigins": []string{"https://shop.example.com"}},
	}}, &out)
	shop := out.CreateChannelAccount.ID

	preflight := func(origin string) string {
		req, _ := http.NewRequest(http.MethodOptions, s.GraphQLURL(), nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type,authorization")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Access-Control-Allow-Origin")
	}
	if got := preflight("https://shop.example.com"); got != "https://shop.example.com" {
		t.Fatalf("preflight from the shop: %q", got)
	}
	if got := preflight("https://evil.example.com"); got != "" {
		t.Fatalf("preflight from elsewhere allowed: %q", got)
	}
	from := func(origin string) *apitest.Client {
		c := s.Client()
		c.Header.Set("Origin", origin)
		return c
	}
	startChat(t, from("https://shop.example.com"), shop, "Shopper")
	// The shop's origin may not use another account's chat.
	wantCode(t, from("https://shop.example.com").Op(t, "StartLiveChat", map[string]any{"input": map[string]any{"channelAccountID": w.LiveChat}}),
		"FORBIDDEN", "the shop uses an account that does not list it")
	// A foreign website's browser cannot write at all.
	req, _ := http.NewRequest(http.MethodPost, s.GraphQLURL(), strings.NewReader(`{"query":"mutation { startLiveChat(input: {channelAccountID: \"`+shop+`\"}) { visitorToken } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://evil.example.com")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-origin write from an unknown site: %d", resp.StatusCode)
	}
	// The demo page is served by Parley itself: same origin, always allowed.
	startChat(t, from(s.URL), w.LiveChat, "Demo")
}

func TestLiveChatRateLimit(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	c := s.Client()
	var last *apitest.Response
	for i := 0; i <= livechat.StartsPerMinute; i++ {
		last = c.Op(t, "StartLiveChat", map[string]any{"input": map[string]any{"channelAccountID": w.LiveChat}})
	}
	wantCode(t, last, "RATE_LIMITED", "too many chats from one IP")
	wantCode(t, c.Op(t, "StartLiveChat", map[string]any{"input": map[string]any{"channelAccountID": w.WhatsApp}}), "RATE_LIMITED", "still limited")
}

func TestLiveChatVisitorEvents(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	token, convID := startChat(t, s.Client(), w.LiveChat, "Eve")
	s.Client().As(token).MustOp(t, "VisitorSendMessage", map[string]any{"body": "hi"}, nil)

	ws := s.DialWS(t, apitest.TransportWS)
	ws.Init(t, token)
	if m, err := ws.Read(5 * time.Second); err != nil || m.Type != "connection_ack" {
		t.Fatalf("visitor init: %+v %v", m, err)
	}
	ws.Subscribe(t, "v1", `subscription { visitorEvents { kind message { id direction body createdAt } } }`, nil)
	waitSubscribed(t, s, 1)
	if r := w.Ana.Send(t, convID, "Hello Eve"); len(r.Errors) > 0 {
		t.Fatal(string(r.Raw))
	}
	next := func() map[string]any {
		t.Helper()
		m, err := ws.Read(5 * time.Second)
		if err != nil || m.Type != "next" {
			t.Fatalf("want next, got %+v %v", m, err)
		}
		var p struct {
			Data struct{ VisitorEvents map[string]any }
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		return p.Data.VisitorEvents
	}
	ev := next()
	if ev["kind"] != "MESSAGE_ADDED" || ev["message"].(map[string]any)["body"] != "Hello Eve" {
		t.Fatalf("reply event %v", ev)
	}
	w.Ana.C.MustOp(t, "EndChatSession", map[string]any{"id": convID}, nil)
	if ev := next(); ev["kind"] != "SESSION_ENDED" {
		t.Fatalf("end event %v", ev)
	}
	if m, err := ws.Read(5 * time.Second); err != nil || m.Type != "complete" {
		t.Fatalf("the stream did not complete after SESSION_ENDED: %+v %v", m, err)
	}
}

func TestLiveChatVisitorUploadsFollowTheChatRules(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	token, convID := startChat(t, s.Client(), w.LiveChat, "Uma")
	v := s.Client().As(token)
	v.MustOp(t, "VisitorSendMessage", map[string]any{"body": "hi"}, nil)
	w.Ana.C.MustOp(t, "EndChatSession", map[string]any{"id": convID}, nil)
	r := v.Upload(t, "note.txt", "text/plain", []byte("hello after the end"))
	wantCode(t, r, "FORBIDDEN", "upload into an ended chat")
	n, err := s.App.DB.Client.Attachment.Query().Count(context.Background())
	if err != nil || n != 0 {
		t.Fatalf("%d attachments stored (err %v)", n, err)
	}
}
