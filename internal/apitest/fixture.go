package apitest

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/conversations"
)

// Agent is a test agent with a token.
type Agent struct {
	ID, Name, Token string
	C               *Client
}

// Workspace is a ready-made team: an admin, agents Ana, Ben and Cleo
// (members of the queue "Support" at priorities 1, 2, 3 and AVAILABLE), Dan
// (AVAILABLE, in no queue), and one channel account per kind routed to the
// queue.
type Workspace struct {
	S                  *Server
	Admin              *Agent
	Ana, Ben, Cleo     *Agent
	Dan                *Agent
	QueueID            string
	WhatsApp, LiveChat string // channel account ids
}

// Option changes how NewWorkspace sets up the team.
type WorkspaceOption struct {
	// Strategy of the queue (default RING_ALL).
	Strategy string
	// OfferTimeout in seconds (default 30).
	OfferTimeout int
	// Unavailable leaves the agents OFFLINE.
	Unavailable bool
}

// NewWorkspace builds the team on a server.
func NewWorkspace(t testing.TB, s *Server, o WorkspaceOption) *Workspace {
	t.Helper()
	if o.Strategy == "" {
		o.Strategy = "RING_ALL"
	}
	if o.OfferTimeout == 0 {
		o.OfferTimeout = 30
	}
	c := s.Client()
	tok, id := c.Login(t, AdminEmail, AdminPassword)
	w := &Workspace{S: s, Admin: &Agent{ID: id, Name: "System owner", Token: tok, C: c.As(tok)}}
	mk := func(name, ext string) *Agent {
		aid, atok := w.Admin.C.CreateAgent(t, name, ext+"@test.parley", ext, "AGENT")
		a := &Agent{ID: aid, Name: name, Token: atok, C: c.As(atok)}
		if !o.Unavailable {
			a.C.MustOp(t, "SetStatus", map[string]any{"status": "AVAILABLE"}, nil)
		}
		return a
	}
	w.Ana, w.Ben, w.Cleo, w.Dan = mk("Ana", "201"), mk("Ben", "202"), mk("Cleo", "203"), mk("Dan", "204")
	var q struct{ CreateQueue struct{ ID string } }
	w.Admin.C.MustOp(t, "CreateQueue", map[string]any{"input": map[string]any{
		"name": "Support", "strategy": o.Strategy, "offerTimeoutSeconds": o.OfferTimeout,
		"members": []map[string]any{
			{"agentID": w.Ana.ID, "priority": 1}, {"agentID": w.Ben.ID, "priority": 2}, {"agentID": w.Cleo.ID, "priority": 3},
		},
	}}, &q)
	w.QueueID = q.CreateQueue.ID
	w.WhatsApp = w.Account(t, "WHATSAPP", map[string]any{"queueID": w.QueueID})
	w.LiveChat = w.Account(t, "LIVE_CHAT", map[string]any{"queueID": w.QueueID})
	return w
}

var accountSeq atomic.Int64

// Account creates a channel account of the given channel with target
// ({"queueID": ...} or {"agentID": ...}) and returns its id.
func (w *Workspace) Account(t testing.TB, channel string, target map[string]any) string {
	t.Helper()
	n := accountSeq.Add(1)
	in := map[string]any{"channel": channel, "name": fmt.Sprintf("%s %d", channel, n)}
	for k, v := range target {
		in[k] = v
	}
	switch channel {
	case "WHATSAPP":
		in["whatsapp"] = map[string]any{"phoneNumberID": fmt.Sprint(1000 + n), "accessToken": "t", "appSecret": "s", "verifyToken": "v"}
	case "FACEBOOK":
		in["messenger"] = map[string]any{"pageID": fmt.Sprint(2000 + n), "pageAccessToken": "t", "appSecret": "s", "verifyToken": "v"}
	case "SMS":
		in["sms"] = map[string]any{"accountSID": "AC1", "authToken": "t", "fromNumber": fmt.Sprintf("+1415555%04d", n)}
	case "LIVE_CHAT":
		in["liveChat"] = map[string]any{}
	}
	var out struct{ CreateChannelAccount struct{ ID string } }
	w.Admin.C.MustOp(t, "CreateChannelAccount", map[string]any{"input": in}, &out)
	return out.CreateChannelAccount.ID
}

var providerSeq atomic.Int64

// Inbound delivers a customer message through the inbound entry point, as a
// channel adapter does, and returns the conversation id.
func (w *Workspace) Inbound(t testing.TB, accountID, sender, body string) string {
	t.Helper()
	r := w.Receive(t, conversations.Inbound{
		ChannelAccountID: Atoi(t, accountID), SenderID: sender, SenderName: "Customer " + sender,
		ProviderMessageID: fmt.Sprintf("prov-%d", providerSeq.Add(1)), Body: body,
	})
	return strconv.Itoa(r.Conversation.ID)
}

// Receive calls the inbound entry point and fails the test on error.
func (w *Workspace) Receive(t testing.TB, in conversations.Inbound) *conversations.Received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := w.S.App.Convs.Receive(ctx, in)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return r
}

// Atoi parses an id.
func Atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("id %q: %v", s, err)
	}
	return n
}

// InboxIDs lists the conversation ids of an agent's inbox view.
func (a *Agent) InboxIDs(t testing.TB, view string, extra map[string]any) []string {
	t.Helper()
	vars := map[string]any{"view": view, "first": 100}
	for k, v := range extra {
		vars[k] = v
	}
	// totalCount and the page are two statements: a conversation created
	// between them (a webhook worker running) makes them differ once. They
	// must agree on a second look; a lasting difference fails the test.
	var total int
	var ids []string
	for try := 0; try < 3; try++ {
		var out struct {
			Inbox struct {
				TotalCount int
				Edges      []struct{ Node struct{ ID string } }
			}
		}
		a.C.MustOp(t, "Inbox", vars, &out)
		ids = make([]string, 0, len(out.Inbox.Edges))
		for _, e := range out.Inbox.Edges {
			ids = append(ids, e.Node.ID)
		}
		if total = out.Inbox.TotalCount; total == len(ids) {
			return ids
		}
	}
	t.Fatalf("%s inbox: totalCount %d but %d edges", view, total, len(ids))
	return nil
}

// Send sends a reply and returns the response (errors included).
func (a *Agent) Send(t testing.TB, convID, body string) *Response {
	t.Helper()
	return a.C.Op(t, "SendMessage", map[string]any{"input": map[string]any{"conversationID": convID, "body": body}})
}
