package apitest_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/conversations"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestAccessRules drives the rule of conversations/access.go over the API:
// role (agent, admin) x ownership (unowned, owned, internal) x queue
// membership and offers (Ana and Ben are members it is offered to, Dan is
// neither) x channel (WhatsApp, live chat) x operation. "" is success.
func TestAccessRules(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		var seq atomic.Int64
		// fresh returns a fresh conversation in the given state.
		fresh := func(t *testing.T, state string) (id, contact string) {
			t.Helper()
			n := seq.Add(1)
			switch state {
			case "internal":
				var out struct{ StartInternalChat struct{ ID string } }
				w.Ana.C.MustOp(t, "StartInternalChat", map[string]any{"agentIDs": []string{w.Dan.ID}, "body": "psst"}, &out)
				return out.StartInternalChat.ID, ""
			}
			account := w.WhatsApp
			if strings.HasSuffix(state, "live chat") {
				account = w.LiveChat
			}
			r := w.Receive(t, conversations.Inbound{
				ChannelAccountID: apitest.Atoi(t, account), SenderID: fmt.Sprintf("v_access_%d", n),
				ProviderMessageID: fmt.Sprintf("access-%d", n), Body: "hello",
				VisitorIP: "203.0.113.7", VisitorUserAgent: "Probe/1.0", VisitorPageURL: "https://shop.example/cart",
			})
			id = fmt.Sprint(r.Conversation.ID)
			if strings.HasPrefix(state, "Ana's") {
				w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": id}, nil)
			}
			return id, fmt.Sprint(*r.Conversation.ContactID)
		}
		ops := map[string]func(a *apitest.Agent, id string) *apitest.Response{
			"view": func(a *apitest.Agent, id string) *apitest.Response {
				return a.C.Query(t, `query($id: ID!) { conversation(id: $id) { id } }`, map[string]any{"id": id})
			},
			"node": func(a *apitest.Agent, id string) *apitest.Response {
				return a.C.Query(t, `query($id: ID!) { node(id: $id) { id __typename } }`, map[string]any{"id": id})
			},
			"take": func(a *apitest.Agent, id string) *apitest.Response {
				return a.C.Op(t, "TakeConversation", map[string]any{"id": id})
			},
			"reply": func(a *apitest.Agent, id string) *apitest.Response { return a.Send(t, id, "a reply") },
			"archive": func(a *apitest.Agent, id string) *apitest.Response {
				return a.C.Op(t, "ArchiveConversation", map[string]any{"id": id})
			},
			"delete": func(a *apitest.Agent, id string) *apitest.Response {
				return a.C.Op(t, "DeleteConversation", map[string]any{"id": id})
			},
		}
		const ok, nf, conflict, forbidden, bad = "", "NOT_FOUND", "CONFLICT", "FORBIDDEN", "BAD_USER_INPUT"
		who := map[string]*apitest.Agent{"Ana": w.Ana, "Ben": w.Ben, "Dan": w.Dan, "admin": w.Admin}
		cases := []struct {
			state, who string
			want       map[string]string // op -> code
		}{
			// Queue members may not delete an unowned conversation: only
			// its owner or an admin deletes.
			{"unowned", "Ana", map[string]string{"view": ok, "node": ok, "take": ok, "reply": ok, "archive": ok, "delete": forbidden}},
			{"unowned live chat", "Ben", map[string]string{"view": ok, "node": ok, "take": ok, "reply": ok, "archive": ok, "delete": forbidden}},
			{"unowned", "Dan", map[string]string{"view": nf, "node": nf, "take": nf, "reply": nf, "archive": nf, "delete": nf}},
			{"unowned live chat", "admin", map[string]string{"view": ok, "node": ok, "take": ok, "reply": ok, "archive": ok, "delete": ok}},
			{"Ana's", "Ana", map[string]string{"view": ok, "node": ok, "take": ok, "reply": ok, "archive": ok, "delete": ok}},
			{"Ana's live chat", "Ben", map[string]string{"view": nf, "node": nf, "take": conflict, "reply": conflict, "archive": nf, "delete": nf}},
			{"Ana's", "Dan", map[string]string{"view": nf, "node": nf, "take": nf, "reply": nf, "archive": nf, "delete": nf}},
			{"Ana's live chat", "admin", map[string]string{"view": ok, "node": ok, "take": conflict, "reply": forbidden, "archive": ok, "delete": ok}},
			{"internal", "Dan", map[string]string{"view": ok, "node": ok, "take": bad, "reply": ok, "archive": ok, "delete": ok}},
			{"internal", "Ben", map[string]string{"view": nf, "node": nf, "take": nf, "reply": nf, "archive": nf, "delete": nf}},
			{"internal", "admin", map[string]string{"view": ok, "node": ok, "take": bad, "reply": forbidden, "archive": ok, "delete": ok}},
		}
		for _, tc := range cases {
			for _, op := range []string{"view", "node", "take", "reply", "archive", "delete"} {
				want := tc.want[op]
				t.Run(fmt.Sprintf("%s/%s/%s", tc.state, tc.who, op), func(t *testing.T) {
					id, _ := fresh(t, tc.state)
					r := ops[op](who[tc.who], id)
					if r.Code() != want {
						t.Fatalf("want %q, got %s", want, r.Raw)
					}
					if want == conflict && (strings.Contains(string(r.Raw), w.Ana.Name) || strings.Contains(string(r.Raw), "hello")) {
						t.Fatalf("the refusal says more than that it was taken: %s", r.Raw)
					}
				})
			}
		}

		// The visitor's IP, browser and page, reached through the contact's
		// history, which every agent may read.
		t.Run("visitor through history", func(t *testing.T) {
			id, contact := fresh(t, "Ana's live chat")
			for name, want := range map[string]bool{"Ana": true, "admin": true, "Ben": false, "Dan": false} {
				r := who[name].C.Query(t, `query($id: ID!) { contact(id: $id) { history(first: 10) { edges { node {
					conversation { id visitor { ip userAgent pageURL } lastMessage { body } unreadCount } } } } } }`, map[string]any{"id": contact})
				if len(r.Errors) > 0 {
					t.Fatalf("%s: %s", name, r.Raw)
				}
				var out struct {
					Contact struct {
						History struct {
							Edges []struct {
								Node struct {
									Conversation *struct {
										ID          string
										Visitor     *struct{ IP, UserAgent, PageURL string }
										LastMessage *struct{ Body string }
										UnreadCount int
									}
								}
							}
						}
					}
				}
				if err := json.Unmarshal(r.Data, &out); err != nil {
					t.Fatal(err)
				}
				seen := 0
				for _, e := range out.Contact.History.Edges {
					c := e.Node.Conversation
					if c == nil || c.ID != id {
						continue
					}
					seen++
					if got := c.Visitor != nil && c.Visitor.IP == "203.0.113.7" && c.Visitor.PageURL != ""; got != want {
						t.Fatalf("%s sees the visitor: %v, want %v: %s", name, got, want, r.Raw)
					}
					if got := c.LastMessage != nil; got != want {
						t.Fatalf("%s sees the last message: %v, want %v", name, got, want)
					}
					if !want && c.UnreadCount != 0 {
						t.Fatalf("%s learns the unread count %d", name, c.UnreadCount)
					}
				}
				if seen == 0 {
					t.Fatalf("%s: the history does not reach the conversation: %s", name, r.Raw)
				}
			}
			if strings.Contains(string(w.Dan.C.Query(t, `query($id: ID!) { node(id: $id) { ... on Conversation { visitor { ip } } } }`,
				map[string]any{"id": id}).Raw), "203.0.113.7") {
				t.Fatal("node(id) shows Dan the visitor")
			}
		})
	})
}
