package apitest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent/authtoken"
	"github.com/parleyhq/parley/ent/offer"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// longRecheck keeps the periodic websocket token recheck out of the way, so
// a socket closed within seconds proves the pushed recheck.
var longRecheck = map[string]string{"PARLEY_WS_RECHECK_INTERVAL": "1h"}

type agentNode struct {
	ID, Name, Email, Extension, Role string
	MaxConcurrentChats               int
	Active                           bool
	Queues                           []struct{ ID, Name string }
}

// agentByID reads an agent through the contract's AgentNode.
func agentByID(t *testing.T, c *apitest.Client, id string) agentNode {
	t.Helper()
	var out struct{ Node agentNode }
	c.MustOp(t, "AgentNode", map[string]any{"id": id}, &out)
	if out.Node.ID != id {
		t.Fatalf("AgentNode %s: got %+v", id, out.Node)
	}
	return out.Node
}

type auditOut struct {
	ID, At, Action string
	TargetID       *string
	Detail         *string
	Actor          *struct{ ID, Name string }
}

// auditLog lists the newest entries of the audit log.
func auditLog(t *testing.T, c *apitest.Client, first int) []auditOut {
	t.Helper()
	var out struct {
		AuditLog struct {
			TotalCount int
			Edges      []struct{ Node auditOut }
		}
	}
	c.MustOp(t, "AuditLog", map[string]any{"first": first}, &out)
	es := make([]auditOut, len(out.AuditLog.Edges))
	for i, e := range out.AuditLog.Edges {
		es[i] = e.Node
	}
	return es
}

// lastAudit is the newest audit entry, which must be of action on target
// by actor; its detail is decoded into a map.
func lastAudit(t *testing.T, c *apitest.Client, action, target, actor string) map[string]any {
	t.Helper()
	es := auditLog(t, c, 1)
	if len(es) != 1 {
		t.Fatalf("audit log empty, want %s", action)
	}
	e := es[0]
	if e.Action != action || e.TargetID == nil || *e.TargetID != target || e.Actor == nil || e.Actor.ID != actor || e.Detail == nil {
		t.Fatalf("newest audit entry %+v, want %s on %s by %s", e, action, target, actor)
	}
	if strings.Contains(*e.Detail, "$2a$") || strings.Contains(strings.ToLower(*e.Detail), "hash") {
		t.Fatalf("audit detail carries a password hash: %s", *e.Detail)
	}
	var d map[string]any
	if err := json.Unmarshal([]byte(*e.Detail), &d); err != nil {
		t.Fatalf("audit detail %q: %v", *e.Detail, err)
	}
	return d
}

func auditCount(t *testing.T, c *apitest.Client) int {
	t.Helper()
	var out struct{ AuditLog struct{ TotalCount int } }
	c.MustOp(t, "AuditLog", map[string]any{"first": 1}, &out)
	return out.AuditLog.TotalCount
}

// team is the workspace plus an ADMIN and a GROUP_OWNER.
type team struct {
	*apitest.Workspace
	Carl, Gina *apitest.Agent // ADMIN, GROUP_OWNER
}

func newTeam(t *testing.T, s *apitest.Server) *team {
	t.Helper()
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	mk := func(name, ext, role string) *apitest.Agent {
		id, tok := w.Admin.C.CreateAgent(t, name, ext+"@test.parley", ext, role)
		return &apitest.Agent{ID: id, Name: name, Token: tok, C: s.Client().As(tok)}
	}
	return &team{Workspace: w, Carl: mk("Carl", "301", "ADMIN"), Gina: mk("Gina", "302", "GROUP_OWNER")}
}

func tokensOf(t *testing.T, s *apitest.Server, agentID string) int {
	t.Helper()
	n, err := s.App.DB.Client.AuthToken.Query().Where(authtoken.AgentID(apitest.Atoi(t, agentID))).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func loginCode(t *testing.T, s *apitest.Server, email, password string) string {
	t.Helper()
	return s.Client().Op(t, "LoginWithPasswordState", map[string]any{"email": email, "password": password}).Code()
}

// TestAgentAdminRefusals: agents and group owners get FORBIDDEN from every
// agent-administration operation and from the audit log, and nothing
// changes: the target's fields, tokens and password, and the audit log.
func TestAgentAdminRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := newTeam(t, s)
		before := agentByID(t, w.Admin.C, w.Ben.ID)
		entries := auditCount(t, w.Admin.C)
		benTokens := tokensOf(t, s, w.Ben.ID)
		for _, caller := range []*apitest.Agent{w.Ana, w.Gina} {
			for _, op := range []struct {
				name string
				vars map[string]any
			}{
				{"UpdateAgent", map[string]any{"id": w.Ben.ID, "input": map[string]any{"name": "Hacked", "role": "ADMIN"}}},
				{"DeactivateAgent", map[string]any{"id": w.Ben.ID}},
				{"ReactivateAgent", map[string]any{"id": w.Ben.ID}},
				{"ResetAgentPassword", map[string]any{"id": w.Ben.ID}},
				{"AuditLog", map[string]any{"first": 10}},
			} {
				wantCode(t, caller.C.Op(t, op.name, op.vars), "FORBIDDEN", caller.Name+" "+op.name)
			}
		}
		// An ADMIN may not touch a SYSTEM_OWNER, nor grant the role.
		for _, op := range []struct {
			name string
			vars map[string]any
		}{
			{"UpdateAgent", map[string]any{"id": w.Admin.ID, "input": map[string]any{"name": "Not root"}}},
			{"UpdateAgent", map[string]any{"id": w.Admin.ID, "input": map[string]any{"role": "AGENT"}}},
			{"UpdateAgent", map[string]any{"id": w.Ben.ID, "input": map[string]any{"role": "SYSTEM_OWNER"}}},
			{"DeactivateAgent", map[string]any{"id": w.Admin.ID}},
			{"ResetAgentPassword", map[string]any{"id": w.Admin.ID}},
			{"DeactivateAgent", map[string]any{"id": w.Carl.ID}}, // oneself
			{"ResetAgentPassword", map[string]any{"id": w.Carl.ID}},
		} {
			wantCode(t, w.Carl.C.Op(t, op.name, op.vars), "FORBIDDEN", "Carl "+op.name+fmt.Sprint(op.vars))
		}
		wantCode(t, s.Client().Op(t, "ChangePassword", map[string]any{"current": "x", "new": "whatever-new"}), "UNAUTHENTICATED", "changePassword without a token")

		if after := agentByID(t, w.Admin.C, w.Ben.ID); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("Ben changed by refused operations: %+v, was %+v", after, before)
		}
		if root := agentByID(t, w.Admin.C, w.Admin.ID); root.Role != "SYSTEM_OWNER" || !root.Active || root.Name != "System owner" {
			t.Fatalf("root changed by refused operations: %+v", root)
		}
		if n := tokensOf(t, s, w.Ben.ID); n != benTokens {
			t.Fatalf("Ben has %d tokens after refused operations, had %d", n, benTokens)
		}
		w.Ben.C.MustOp(t, "Me", nil, nil)
		w.Carl.C.MustOp(t, "Me", nil, nil)
		if tok, _ := s.Client().Login(t, "202@test.parley", "password-202"); tok == "" {
			t.Fatal("Ben's password changed by a refused reset")
		}
		if n := auditCount(t, w.Admin.C); n != entries {
			t.Fatalf("audit log has %d entries after refused operations, had %d", n, entries)
		}
	})
}

// TestUpdateAgent: an admin changes name, email, extension, role and
// capacity, validated as createAgent validates; email and extension stay
// unique (CONFLICT naming the field); search follows the new name; only a
// system owner grants or removes SYSTEM_OWNER, and the last active one
// keeps it; a role change closes the agent's open sockets at once (they
// carry the old role); each change is audited with before and after.
func TestUpdateAgent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, Env: longRecheck})
		w := newTeam(t, s)

		var out struct{ UpdateAgent agentNode }
		w.Carl.C.MustOp(t, "UpdateAgent", map[string]any{"id": w.Ben.ID, "input": map[string]any{
			"name": "Benjamín Ortega", "email": " Benjamin@Test.Parley ", "extension": "2020", "maxConcurrentChats": 7,
		}}, &out)
		if got := out.UpdateAgent; got.Name != "Benjamín Ortega" || got.Email != "benjamin@test.parley" || got.Extension != "2020" || got.MaxConcurrentChats != 7 || got.Role != "AGENT" {
			t.Fatalf("updated %+v", got)
		}
		d := lastAudit(t, w.Admin.C, "agent.update", w.Ben.ID, w.Carl.ID)
		if bf, af := d["before"].(map[string]any), d["after"].(map[string]any); bf["name"] != "Ben" || bf["extension"] != "202" || af["name"] != "Benjamín Ortega" || af["email"] != "benjamin@test.parley" || af["maxConcurrentChats"] != float64(7) {
			t.Fatalf("audit detail %v", d)
		}
		// The search key follows: the new name and extension are found,
		// accents folded.
		search := func(q string) []string {
			var r struct {
				Agents struct {
					Edges []struct{ Node struct{ ID string } }
				}
			}
			w.Ana.C.MustOp(t, "SearchAgents", map[string]any{"search": q}, &r)
			var ids []string
			for _, e := range r.Agents.Edges {
				ids = append(ids, e.Node.ID)
			}
			return ids
		}
		if got := search("benjamin"); len(got) != 1 || got[0] != w.Ben.ID {
			t.Fatalf("search benjamin: %v", got)
		}
		if got := search("2020"); len(got) != 1 || got[0] != w.Ben.ID {
			t.Fatalf("search 2020: %v", got)
		}
		if got := search("202"); len(got) != 1 { // 2020 still contains 202; no one else has it
			t.Fatalf("search 202: %v", got)
		}
		if tok, _ := s.Client().Login(t, "benjamin@test.parley", "password-202"); tok == "" {
			t.Fatal("Ben cannot log in with his new email")
		}

		before := agentByID(t, w.Admin.C, w.Ben.ID)
		entries := auditCount(t, w.Admin.C)
		for _, tc := range []struct {
			input       map[string]any
			code, field string
		}{
			{map[string]any{"email": "ana@nowhere", "name": ""}, "BAD_USER_INPUT", "name"},
			{map[string]any{"email": "not an email"}, "BAD_USER_INPUT", "email"},
			{map[string]any{"extension": "12a"}, "BAD_USER_INPUT", "extension"},
			{map[string]any{"maxConcurrentChats": 0}, "BAD_USER_INPUT", "maxConcurrentChats"},
			{map[string]any{"role": "KING"}, "BAD_USER_INPUT", ""},
			{map[string]any{"name": "Valid", "email": "201@test.parley"}, "CONFLICT", "email"},
			{map[string]any{"name": "Valid", "extension": "203"}, "CONFLICT", "extension"},
		} {
			r := w.Carl.C.Op(t, "UpdateAgent", map[string]any{"id": w.Ben.ID, "input": tc.input})
			if r.Code() != tc.code || (tc.field != "" && r.Errors[0].Extensions["field"] != tc.field) {
				t.Fatalf("%v: want %s on %q, got %s", tc.input, tc.code, tc.field, r.Raw)
			}
		}
		wantCode(t, w.Carl.C.Op(t, "UpdateAgent", map[string]any{"id": "999999", "input": map[string]any{"name": "X"}}), "NOT_FOUND", "unknown agent")
		if after := agentByID(t, w.Admin.C, w.Ben.ID); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("refused updates changed Ben: %+v, was %+v", after, before)
		}
		if n := auditCount(t, w.Admin.C); n != entries {
			t.Fatalf("refused updates were audited: %d entries, had %d", n, entries)
		}

		// A role change closes the agent's sockets at once: they carry the
		// old role. Another agent's socket stays.
		carlWS := dialAs(t, s, apitest.TransportWS, w.Carl.Token)
		anaWS := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
		w.Admin.C.MustOp(t, "UpdateAgent", map[string]any{"id": w.Carl.ID, "input": map[string]any{"role": "AGENT"}}, nil)
		start := time.Now()
		code, reason := closeOf(t, carlWS, 3*time.Second)
		if code != 4403 {
			t.Fatalf("Carl's socket closed with %d %q after his demotion", code, reason)
		}
		t.Logf("Carl's socket closed %v after his demotion", time.Since(start).Round(time.Millisecond))
		wantCode(t, w.Carl.C.Op(t, "AuditLog", map[string]any{"first": 1}), "FORBIDDEN", "demoted Carl reads the audit log")
		anaWS.SubscribeOp(t, "inbox", "InboxEvents", nil)
		waitSubscribed(t, s, 1)
		d = lastAudit(t, w.Admin.C, "agent.update", w.Carl.ID, w.Admin.ID)
		if d["before"].(map[string]any)["role"] != "ADMIN" || d["after"].(map[string]any)["role"] != "AGENT" {
			t.Fatalf("role change audit %v", d)
		}

		// System owners: only one grants it; the last active one keeps it.
		wantCode(t, w.Admin.C.Op(t, "UpdateAgent", map[string]any{"id": w.Admin.ID, "input": map[string]any{"role": "ADMIN"}}), "CONFLICT", "the last system owner demotes themselves")
		w.Admin.C.MustOp(t, "UpdateAgent", map[string]any{"id": w.Cleo.ID, "input": map[string]any{"role": "SYSTEM_OWNER"}}, nil)
		if r := agentByID(t, w.Admin.C, w.Cleo.ID); r.Role != "SYSTEM_OWNER" {
			t.Fatalf("Cleo %+v", r)
		}
		// Cleo's socket-less HTTP token works with the new role at once.
		w.Cleo.C.MustOp(t, "AuditLog", map[string]any{"first": 1}, nil)
		w.Cleo.C.MustOp(t, "UpdateAgent", map[string]any{"id": w.Admin.ID, "input": map[string]any{"role": "ADMIN"}}, nil)
		wantCode(t, w.Cleo.C.Op(t, "UpdateAgent", map[string]any{"id": w.Cleo.ID, "input": map[string]any{"role": "ADMIN"}}), "CONFLICT", "Cleo, now the last system owner, demotes herself")
		// root, now an ADMIN, may no longer change the system owner.
		wantCode(t, w.Admin.C.Op(t, "UpdateAgent", map[string]any{"id": w.Cleo.ID, "input": map[string]any{"name": "X"}}), "FORBIDDEN", "an admin changes a system owner")
		if r := agentByID(t, w.Admin.C, w.Cleo.ID); r.Role != "SYSTEM_OWNER" || r.Name != "Cleo" {
			t.Fatalf("Cleo after refused changes %+v", r)
		}
	})
}

// TestDeactivateAgent: an admin retires Ben. He cannot log in (answered as
// a wrong password), every token of his is gone and his socket closes at
// once, he leaves the queue (the audit entry says which, at which
// priority), his live offer moves on, he is no transfer target and no
// longer found; his history stays. Reactivation lets him log in again,
// without his memberships.
func TestDeactivateAgent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, Env: longRecheck})
		w := newTeam(t, s)
		ctx := context.Background()
		conv := w.Inbound(t, w.WhatsApp, "34600999111", "hola")
		benID := apitest.Atoi(t, w.Ben.ID)
		apitest.Eventually(t, 5*time.Second, func() bool {
			n, _ := s.App.DB.Client.Offer.Query().Where(offer.AgentID(benID), offer.Active(true)).Count(ctx)
			return n == 1
		}, "Ben is offered the conversation")
		// A conversation Ben took part in: it stays in history.
		old := w.Inbound(t, w.WhatsApp, "34600999222", "earlier")
		if r := w.Ben.Send(t, old, "Ben here"); len(r.Errors) > 0 {
			t.Fatalf("Ben replies: %s", r.Raw)
		}
		s.Client().Login(t, "202@test.parley", "password-202") // a second token
		benWS := dialAs(t, s, apitest.TransportWS, w.Ben.Token)
		benWS.SubscribeOp(t, "inbox", "InboxEvents", nil)
		waitSubscribed(t, s, 1)

		var out struct {
			DeactivateAgent struct {
				ID, Name string
				Active   bool
			}
		}
		w.Carl.C.MustOp(t, "DeactivateAgent", map[string]any{"id": w.Ben.ID}, &out)
		if out.DeactivateAgent.Active || out.DeactivateAgent.ID != w.Ben.ID {
			t.Fatalf("deactivated %+v", out.DeactivateAgent)
		}
		start := time.Now()
		code, reason := closeOf(t, benWS, 3*time.Second)
		if code != 4403 || !strings.Contains(reason, "revoked") {
			t.Fatalf("Ben's socket closed with %d %q", code, reason)
		}
		t.Logf("Ben's socket closed %v after his deactivation", time.Since(start).Round(time.Millisecond))
		if n := tokensOf(t, s, w.Ben.ID); n != 0 {
			t.Fatalf("Ben has %d tokens left", n)
		}
		wantCode(t, w.Ben.C.Op(t, "Me", nil), "UNAUTHENTICATED", "Ben's old token")
		right := s.Client().Op(t, "LoginWithPasswordState", map[string]any{"email": "202@test.parley", "password": "password-202"})
		wrong := s.Client().Op(t, "LoginWithPasswordState", map[string]any{"email": "202@test.parley", "password": "password-wrong"})
		if right.Code() != "UNAUTHENTICATED" || len(right.Errors) != 1 || len(wrong.Errors) != 1 || right.Errors[0].Message != wrong.Errors[0].Message {
			t.Fatalf("a deactivated agent's login must answer as a wrong password: %s vs %s", right.Raw, wrong.Raw)
		}

		benNow := agentByID(t, w.Admin.C, w.Ben.ID)
		if benNow.Active || len(benNow.Queues) != 0 {
			t.Fatalf("Ben after deactivation %+v", benNow)
		}
		if q := agentByID(t, w.Admin.C, w.Ana.ID).Queues; len(q) != 1 {
			t.Fatalf("Ana's memberships %+v", q)
		}
		d := lastAudit(t, w.Admin.C, "agent.deactivate", w.Ben.ID, w.Carl.ID)
		removed, _ := d["after"].(map[string]any)["removedFromQueues"].([]any)
		if len(removed) != 1 {
			t.Fatalf("audit of the deactivation: %v", d)
		}
		if m := removed[0].(map[string]any); m["queueName"] != "Support" || m["priority"] != float64(2) || m["queueID"] != float64(apitest.Atoi(t, w.QueueID)) {
			t.Fatalf("removed membership %v", m)
		}
		if d["after"].(map[string]any)["tokensRevoked"] != float64(2) {
			t.Fatalf("tokens revoked %v", d)
		}

		// His live offer moves on; Ana's and Cleo's stay.
		apitest.Eventually(t, 5*time.Second, func() bool {
			n, _ := s.App.DB.Client.Offer.Query().Where(offer.AgentID(benID), offer.Active(true)).Count(ctx)
			return n == 0
		}, "Ben's offer is withdrawn")
		if ids := w.Ana.InboxIDs(t, "RECENT", nil); !contains(ids, conv) {
			t.Fatalf("Ana's offers %v lost %s", ids, conv)
		}
		// No transfer to him, and no search finds him.
		w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": conv}, nil)
		if r := w.Ana.C.Op(t, "TransferConversation", map[string]any{"id": conv, "agentID": w.Ben.ID}); len(r.Errors) == 0 {
			t.Fatalf("transfer to a deactivated agent: %s", r.Raw)
		}
		if c := mustConv(t, w.Ana, conv); c.Owner == nil || c.Owner.ID != w.Ana.ID {
			t.Fatalf("after a refused transfer: %+v", c.Owner)
		}
		var found struct {
			Agents struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
		w.Ana.C.MustOp(t, "SearchAgents", map[string]any{"search": "Ben"}, &found)
		if len(found.Agents.Edges) != 0 {
			t.Fatalf("search finds a deactivated agent: %+v", found)
		}
		// His history stays: the reply he sent is still his.
		var hist struct {
			Conversation struct {
				Messages struct {
					Edges []struct {
						Node struct {
							Body   string
							Sender *struct{ ID, Name string }
						}
					}
				}
			}
		}
		w.Admin.C.MustOp(t, "Conversation", map[string]any{"id": old, "last": 10}, &hist)
		kept := false
		for _, e := range hist.Conversation.Messages.Edges {
			kept = kept || (e.Node.Body == "Ben here" && e.Node.Sender != nil && e.Node.Sender.ID == w.Ben.ID)
		}
		if !kept {
			t.Fatalf("Ben's reply lost from history: %+v", hist)
		}
		// Deactivating again changes nothing and is not audited twice.
		entries := auditCount(t, w.Admin.C)
		w.Carl.C.MustOp(t, "DeactivateAgent", map[string]any{"id": w.Ben.ID}, nil)
		if n := auditCount(t, w.Admin.C); n != entries {
			t.Fatalf("a second deactivation was audited")
		}

		var re struct{ ReactivateAgent struct{ Active bool } }
		w.Carl.C.MustOp(t, "ReactivateAgent", map[string]any{"id": w.Ben.ID}, &re)
		if !re.ReactivateAgent.Active {
			t.Fatalf("reactivated %+v", re)
		}
		lastAudit(t, w.Admin.C, "agent.reactivate", w.Ben.ID, w.Carl.ID)
		tok, _ := s.Client().Login(t, "202@test.parley", "password-202")
		if me := agentByID(t, s.Client().As(tok), w.Ben.ID); !me.Active || len(me.Queues) != 0 {
			t.Fatalf("Ben after reactivation %+v (memberships are not restored)", me)
		}
	})
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// TestDeactivationClosesSocketsOnEveryInstance: two instances share a
// database and Redis; Ben's socket is on A, an admin deactivates him on B,
// and A closes the socket with 4403 within two seconds, although A's
// periodic recheck is an hour away. Ana's socket on A stays.
func TestDeactivationClosesSocketsOnEveryInstance(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		prefix := fmt.Sprintf("parley-test-deact-%d:", time.Now().UnixNano())
		opts := apitest.Options{Backend: b, DB: db, Redis: true, RedisPrefix: prefix, Env: longRecheck}
		a := apitest.Start(t, opts)
		bsrv := apitest.Start(t, opts)
		w := apitest.NewWorkspace(t, a, apitest.WorkspaceOption{})
		benWS := dialAs(t, a, apitest.TransportWS, w.Ben.Token)
		benWS.SubscribeOp(t, "inbox", "InboxEvents", nil)
		anaWS := dialAs(t, a, apitest.TransportWS, w.Ana.Token)
		anaWS.SubscribeOp(t, "inbox", "InboxEvents", nil)
		waitSubscribed(t, a, 2)

		bsrv.Client().As(w.Admin.Token).MustOp(t, "DeactivateAgent", map[string]any{"id": w.Ben.ID}, nil)
		start := time.Now()
		code, reason := closeOf(t, benWS, 2*time.Second)
		if code != 4403 {
			t.Fatalf("Ben's socket on A closed with %d %q", code, reason)
		}
		t.Logf("Ben's socket on A closed %v after his deactivation on B", time.Since(start).Round(time.Millisecond))
		waitSubscribed(t, a, 1)
		// Ana's subscription on A still works: an event reaches her.
		onB := *w
		onB.S = bsrv
		conv := onB.Inbound(t, w.WhatsApp, "34600555444", "hola")
		if ev, raw := nextInbox(t, anaWS, "inbox", 5*time.Second); ev.ConversationID != conv {
			t.Fatalf("Ana after Ben's deactivation: %s", raw)
		}
	})
}

// TestChangePassword: an agent changes their own password. A wrong current
// password is BAD_USER_INPUT and changes nothing, a new one too short too;
// success keeps the calling token, revokes the others (their socket closes
// at once) and is audited without the password. Checks are limited like
// logins.
func TestChangePassword(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, Env: longRecheck})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		const email, oldPw, newPw = "201@test.parley", "password-201", "a much better password"
		other, _ := s.Client().Login(t, email, oldPw)
		otherWS := dialAs(t, s, apitest.TransportWS, other)
		mineWS := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
		entries := auditCount(t, w.Admin.C)

		for _, tc := range []struct {
			current, new, field string
		}{
			{"password-wrong", newPw, "current"},
			{oldPw, "short", "new"},
			{oldPw, oldPw, "new"},
		} {
			r := w.Ana.C.Op(t, "ChangePassword", map[string]any{"current": tc.current, "new": tc.new})
			if r.Code() != "BAD_USER_INPUT" || r.Errors[0].Extensions["field"] != tc.field {
				t.Fatalf("%+v: %s", tc, r.Raw)
			}
		}
		if n := tokensOf(t, s, w.Ana.ID); n != 2 {
			t.Fatalf("refused changes revoked tokens: %d left", n)
		}
		if n := auditCount(t, w.Admin.C); n != entries {
			t.Fatal("refused changes were audited")
		}
		if tok, _ := s.Client().Login(t, email, oldPw); tok == "" {
			t.Fatal("old password stopped working after refused changes")
		}

		var ok struct{ ChangePassword bool }
		w.Ana.C.MustOp(t, "ChangePassword", map[string]any{"current": oldPw, "new": newPw}, &ok)
		if !ok.ChangePassword {
			t.Fatal("changePassword answered false")
		}
		code, reason := closeOf(t, otherWS, 3*time.Second)
		if code != 4403 {
			t.Fatalf("the other token's socket closed with %d %q", code, reason)
		}
		w.Ana.C.MustOp(t, "Me", nil, nil) // the calling token stays
		mineWS.SubscribeOp(t, "inbox", "InboxEvents", nil)
		waitSubscribed(t, s, 1) // and so does its socket
		wantCode(t, s.Client().As(other).Op(t, "Me", nil), "UNAUTHENTICATED", "the other token")
		if n := tokensOf(t, s, w.Ana.ID); n != 1 {
			t.Fatalf("%d tokens after the change, want the calling one", n)
		}
		if c := loginCode(t, s, email, oldPw); c != "UNAUTHENTICATED" {
			t.Fatalf("old password after the change: %s", c)
		}
		if c := loginCode(t, s, email, newPw); c != "" {
			t.Fatalf("new password: %s", c)
		}
		d := lastAudit(t, w.Admin.C, "agent.changePassword", w.Ana.ID, w.Ana.ID)
		raw, _ := json.Marshal(d)
		if strings.Contains(string(raw), newPw) || strings.Contains(string(raw), oldPw) || d["after"].(map[string]any)["password"] != "[redacted]" {
			t.Fatalf("audit of a password change: %s", raw)
		}

		// Wrong guesses count like logins: the 11th attempt in the window is
		// refused, even with the right password.
		for i := range 9 {
			wantCode(t, w.Dan.C.Op(t, "ChangePassword", map[string]any{"current": fmt.Sprint("guess-", i), "new": newPw}), "BAD_USER_INPUT", "a guess")
		}
		wantCode(t, w.Dan.C.Op(t, "ChangePassword", map[string]any{"current": "password-204", "new": "short"}), "BAD_USER_INPUT", "10th attempt")
		wantCode(t, w.Dan.C.Op(t, "ChangePassword", map[string]any{"current": "password-204", "new": newPw}), "RATE_LIMITED", "11th attempt")
		if c := loginCode(t, s, "204@test.parley", "password-204"); c != "" {
			t.Fatalf("Dan's password changed by a limited attempt: %s", c)
		}
	})
}

// TestResetAgentPassword: an admin resets Ben's password. All his tokens go,
// the one-time password (shown once, never audited) logs him in with
// mustChangePassword, and until he changes it only changePassword, me and
// logout work (PASSWORD_CHANGE_REQUIRED otherwise, subscriptions too).
func TestResetAgentPassword(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, Env: longRecheck})
		w := newTeam(t, s)
		const email = "202@test.parley"
		benWS := dialAs(t, s, apitest.TransportWS, w.Ben.Token)

		var out struct {
			ResetAgentPassword struct {
				Agent             struct{ ID string }
				TemporaryPassword string
			}
		}
		w.Carl.C.MustOp(t, "ResetAgentPassword", map[string]any{"id": w.Ben.ID}, &out)
		temp := out.ResetAgentPassword.TemporaryPassword
		if out.ResetAgentPassword.Agent.ID != w.Ben.ID || len(temp) != 24 {
			t.Fatalf("reset %+v", out.ResetAgentPassword)
		}
		var again struct {
			ResetAgentPassword struct{ TemporaryPassword string }
		}
		w.Carl.C.MustOp(t, "ResetAgentPassword", map[string]any{"id": w.Ben.ID}, &again)
		if again.ResetAgentPassword.TemporaryPassword == temp {
			t.Fatal("two resets gave the same password")
		}
		temp = again.ResetAgentPassword.TemporaryPassword
		if code, reason := closeOf(t, benWS, 3*time.Second); code != 4403 {
			t.Fatalf("Ben's socket closed with %d %q after the reset", code, reason)
		}
		if n := tokensOf(t, s, w.Ben.ID); n != 0 {
			t.Fatalf("%d tokens after the reset", n)
		}
		if c := loginCode(t, s, email, "password-202"); c != "UNAUTHENTICATED" {
			t.Fatalf("the old password after a reset: %s", c)
		}
		if c := loginCode(t, s, email, out.ResetAgentPassword.TemporaryPassword); c != "UNAUTHENTICATED" {
			t.Fatalf("the first one-time password after a second reset: %s", c)
		}
		for _, e := range auditLog(t, w.Admin.C, 2) {
			if e.Action != "agent.resetPassword" || e.Detail == nil || strings.Contains(*e.Detail, temp) || !strings.Contains(*e.Detail, "[redacted]") {
				t.Fatalf("audit of a reset: %+v", e)
			}
		}

		var login struct {
			Login struct {
				Token              string
				MustChangePassword bool
			}
		}
		s.Client().MustOp(t, "LoginWithPasswordState", map[string]any{"email": email, "password": temp}, &login)
		if !login.Login.MustChangePassword {
			t.Fatal("login with a one-time password must say mustChangePassword")
		}
		ben := s.Client().As(login.Login.Token)
		ben.MustOp(t, "Me", nil, nil)
		for _, op := range []struct {
			name string
			vars map[string]any
		}{
			{"Inbox", map[string]any{"view": "RECENT"}},
			{"SetStatus", map[string]any{"status": "AVAILABLE"}},
			{"SearchAgents", map[string]any{"search": "Ana"}},
		} {
			wantCode(t, ben.Op(t, op.name, op.vars), "PASSWORD_CHANGE_REQUIRED", op.name+" before the change")
		}
		ws := dialAs(t, s, apitest.TransportWS, login.Login.Token)
		ws.SubscribeOp(t, "inbox", "InboxEvents", nil)
		if m := ws.ReadID(t, "inbox", 5*time.Second); !strings.Contains(string(m.Payload), "PASSWORD_CHANGE_REQUIRED") {
			t.Fatalf("subscription before the change: %s %s", m.Type, m.Payload)
		}

		ben.MustOp(t, "ChangePassword", map[string]any{"current": temp, "new": "ben's own password"}, nil)
		// The socket opened before the change carries the old state: closed.
		if code, reason := closeOf(t, ws, 3*time.Second); code != 4403 {
			t.Fatalf("the pre-change socket closed with %d %q", code, reason)
		}
		ben.MustOp(t, "Inbox", map[string]any{"view": "RECENT"}, nil) // the same token, now free
		s.Client().MustOp(t, "LoginWithPasswordState", map[string]any{"email": email, "password": "ben's own password"}, &login)
		if login.Login.MustChangePassword {
			t.Fatal("mustChangePassword after the change")
		}
		if c := loginCode(t, s, email, temp); c != "UNAUTHENTICATED" {
			t.Fatalf("the one-time password after the change: %s", c)
		}
		d := lastAudit(t, w.Admin.C, "agent.changePassword", w.Ben.ID, w.Ben.ID)
		if d["before"].(map[string]any)["mustChangePassword"] != true {
			t.Fatalf("audit of the change: %v", d)
		}
	})
}

// TestAuditLogOfAgentAdministration: every operation is in the audit log,
// newest first, with its actor and target, and pages.
func TestAuditLogOfAgentAdministration(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := newTeam(t, s)
		w.Carl.C.MustOp(t, "UpdateAgent", map[string]any{"id": w.Dan.ID, "input": map[string]any{"maxConcurrentChats": 2}}, nil)
		w.Carl.C.MustOp(t, "DeactivateAgent", map[string]any{"id": w.Dan.ID}, nil)
		w.Carl.C.MustOp(t, "ReactivateAgent", map[string]any{"id": w.Dan.ID}, nil)
		w.Admin.C.MustOp(t, "ResetAgentPassword", map[string]any{"id": w.Dan.ID}, nil)
		w.Ana.C.MustOp(t, "ChangePassword", map[string]any{"current": "password-201", "new": "anas-new-password"}, nil)
		eve, _ := w.Carl.C.CreateAgent(t, "Eve", "eve@test.parley", "305", "AGENT")
		// A refused create writes nothing.
		n := auditCount(t, w.Carl.C)
		if code := w.Carl.C.Op(t, "CreateAgent", map[string]any{"input": map[string]any{
			"name": "Eve again", "email": "eve@test.parley", "extension": "306", "role": "AGENT", "password": "password-306"}}).Code(); code != "CONFLICT" {
			t.Fatalf("duplicate email: %s, want CONFLICT", code)
		}
		if got := auditCount(t, w.Carl.C); got != n {
			t.Fatalf("a refused createAgent wrote audit entries: %d -> %d", n, got)
		}
		if d := lastAudit(t, w.Carl.C, "agent.create", eve, w.Carl.ID); fmt.Sprint(d["after"]) == "<nil>" ||
			!strings.Contains(fmt.Sprint(d["after"]), "eve@test.parley") {
			t.Fatalf("agent.create detail %v", d)
		}

		want := []struct{ action, actor, target string }{
			{"agent.create", w.Carl.ID, eve},
			{"agent.changePassword", w.Ana.ID, w.Ana.ID},
			{"agent.resetPassword", w.Admin.ID, w.Dan.ID},
			{"agent.reactivate", w.Carl.ID, w.Dan.ID},
			{"agent.deactivate", w.Carl.ID, w.Dan.ID},
			{"agent.update", w.Carl.ID, w.Dan.ID},
		}
		var got []auditOut
		var after any
		for page := 0; page < 3; page++ {
			var out struct {
				AuditLog struct {
					Edges    []struct{ Node auditOut }
					PageInfo struct {
						HasNextPage bool
						EndCursor   string
					}
				}
			}
			w.Carl.C.MustOp(t, "AuditLog", map[string]any{"first": 2, "after": after}, &out)
			for _, e := range out.AuditLog.Edges {
				got = append(got, e.Node)
			}
			after = out.AuditLog.PageInfo.EndCursor
			if !out.AuditLog.PageInfo.HasNextPage {
				break
			}
		}
		if len(got) < len(want) {
			t.Fatalf("audit log %+v", got)
		}
		for i, wnt := range want {
			e := got[i]
			if e.Action != wnt.action || e.Actor == nil || e.Actor.ID != wnt.actor || e.TargetID == nil || *e.TargetID != wnt.target {
				t.Fatalf("entry %d: %+v, want %+v", i, e, wnt)
			}
			if i > 0 && e.At > got[i-1].At {
				t.Fatalf("entry %d is newer than entry %d", i, i-1)
			}
		}
	})
}
