package apitest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/channels/twilio"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// Tests of the queue and channel-account administration of issue 11:
// deleteQueue with moveTo, updateChannelAccount (credential rotation for
// real: old signatures refused, new ones accepted, replies with the new
// token), setChannelAccountEnabled (webhooks acknowledged, nothing
// stored), deleteChannelAccount (history kept), their audit entries, and
// the refusal of every one to AGENT and GROUP_OWNER.

// auditEntries lists the newest audit entries, newest first.
func auditEntries(t *testing.T, admin *apitest.Agent) []auditOut {
	t.Helper()
	var out struct {
		AuditLog struct {
			Edges []struct{ Node auditOut }
		}
	}
	admin.C.MustOp(t, "AuditLog", map[string]any{"first": 100}, &out)
	var es []auditOut
	for _, e := range out.AuditLog.Edges {
		es = append(es, e.Node)
	}
	return es
}

// lastAuditOf is the newest entry, which must be action on target.
func lastAuditOf(t *testing.T, admin *apitest.Agent, action, target string) auditOut {
	t.Helper()
	es := auditEntries(t, admin)
	if len(es) == 0 {
		t.Fatalf("no audit entry, want %s", action)
	}
	e := es[0]
	if e.Action != action || e.TargetID == nil || *e.TargetID != target || e.Actor == nil || e.Actor.ID != admin.ID || e.Detail == nil {
		t.Fatalf("newest audit entry %+v, want %s on %s by %s", e, action, target, admin.ID)
	}
	return e
}

type accountOut struct {
	ID, Channel, Name string
	Enabled           bool
	WebhookURL        *string
	PhoneNumberID     *string
	PageID            *string
	FromNumber        *string
	APIBaseURL        *string
	AllowedOrigins    []string
	Queue             *struct{ ID string }
	Agent             *struct{ ID string }
	FallbackQueue     *struct{ ID string }
}

// accounts lists the channel accounts as an admin sees them, by id, with
// the raw answer (to look for leaked secrets in).
func accounts(t *testing.T, admin *apitest.Agent) (map[string]accountOut, string) {
	t.Helper()
	r := admin.C.Op(t, "ListChannelAccounts", nil)
	if len(r.Errors) > 0 {
		t.Fatalf("channel accounts: %s", r.Raw)
	}
	var out struct{ ChannelAccounts []accountOut }
	r.Decode(t, &out)
	m := map[string]accountOut{}
	for _, a := range out.ChannelAccounts {
		m[a.ID] = a
	}
	return m, string(r.Raw)
}

type queueDetails struct {
	ID, Name, Description, Strategy string
	OfferTimeoutSeconds             int
}

func queueList(t *testing.T, a *apitest.Agent) map[string]queueDetails {
	t.Helper()
	var out struct{ Queues []queueDetails }
	a.C.MustOp(t, "ListQueueDetails", nil, &out)
	m := map[string]queueDetails{}
	for _, q := range out.Queues {
		m[q.ID] = q
	}
	return m
}

func jsonOf(v any) string { return string(mustMarshal(v)) }

func idOf(p *struct{ ID string }) string {
	if p == nil {
		return ""
	}
	return p.ID
}

// webhookStatus posts a webhook and returns the status and Content-Type of
// the answer.
func webhookStatus(t *testing.T, rawURL, contentType string, body []byte, h http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Content-Type")
}

// waInbound is a WhatsApp Cloud API delivery of one text from 34600111222
// to phone number id phone.
func waInbound(phone, id, text string) []byte {
	return mustMarshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
			"messaging_product": "whatsapp",
			"metadata":          map[string]any{"display_phone_number": "15550783881", "phone_number_id": phone},
			"contacts":          []any{map[string]any{"wa_id": "34600111222", "profile": map[string]any{"name": "Lucía Pérez"}}},
			"messages": []any{map[string]any{"from": "34600111222", "id": id, "timestamp": strconv.FormatInt(time.Now().Unix(), 10),
				"type": "text", "text": map[string]any{"body": text}}},
		}}},
	}}})
}

// rowCounts are what the database holds of inbound traffic.
type rowCounts struct{ events, conversations, messages, contacts int }

func (p *provider) sendCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sends)
}

func countRows(t *testing.T, s *apitest.Server) rowCounts {
	t.Helper()
	ctx := context.Background()
	db := s.App.DB.Client
	var c rowCounts
	var err error
	if c.events, err = db.WebhookEvent.Query().Count(ctx); err != nil {
		t.Fatal(err)
	}
	if c.conversations, err = db.Conversation.Query().Count(ctx); err != nil {
		t.Fatal(err)
	}
	if c.messages, err = db.Message.Query().Count(ctx); err != nil {
		t.Fatal(err)
	}
	if c.contacts, err = db.Contact.Query().Count(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAdminQueueDescriptionAndDelete: a queue's description is set and
// changed; deleting a queue that accounts route to (as queue and as
// fallback) and open conversations sit in is a CONFLICT that changes
// nothing; moveTo = itself or no queue is BAD_USER_INPUT; with moveTo the
// other queue takes everything: accounts re-pointed, the unowned open
// conversation offered to the new queue's members (and gone from the old
// member's inbox), the owned one kept by its owner, the closed one moved,
// each open one with a TRANSFERRED interaction; the entry is in the audit
// log. An empty queue deletes without moveTo.
func TestAdminQueueDescriptionAndDelete(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		admin := w.Admin

		var created struct{ CreateQueue struct{ ID string } }
		admin.C.MustOp(t, "CreateQueue", map[string]any{"input": map[string]any{
			"name": "Sales", "strategy": "RING_ALL", "description": "  Pre-sales questions  ",
			"members": []map[string]any{{"agentID": w.Dan.ID, "priority": 1}},
		}}, &created)
		sales := created.CreateQueue.ID
		if q := queueList(t, w.Ana)[sales]; q.Description != "Pre-sales questions" || q.Name != "Sales" {
			t.Fatalf("created queue %+v", q)
		}
		lastAuditOf(t, admin, "queue.create", sales)
		var upd struct{ UpdateQueue queueDetails }
		admin.C.MustOp(t, "UpdateQueueDetails", map[string]any{"id": sales, "input": map[string]any{"description": "Quotes and orders"}}, &upd)
		if upd.UpdateQueue.Description != "Quotes and orders" || upd.UpdateQueue.Name != "Sales" {
			t.Fatalf("updated queue %+v", upd.UpdateQueue)
		}
		e := lastAuditOf(t, admin, "queue.update", sales)
		if !strings.Contains(*e.Detail, `"description":"Pre-sales questions"`) || !strings.Contains(*e.Detail, `"description":"Quotes and orders"`) {
			t.Fatalf("queue.update detail %s", *e.Detail)
		}
		wantCode(t, admin.C.Op(t, "UpdateQueueDetails", map[string]any{"id": sales, "input": map[string]any{"description": strings.Repeat("x", 1001)}}),
			"BAD_USER_INPUT", "a description over 1000 characters")
		if q := queueList(t, admin)[sales]; q.Description != "Quotes and orders" {
			t.Fatalf("a refused update changed the queue: %+v", q)
		}

		// Sales takes an SMS account's conversations, and is the fallback
		// of an agent-routed WhatsApp account.
		sms := w.Account(t, "SMS", map[string]any{"queueID": sales})
		direct := w.Account(t, "WHATSAPP", map[string]any{"agentID": w.Ana.ID})
		admin.C.MustOp(t, "UpdateChannelAccount", map[string]any{"id": direct, "input": map[string]any{"fallbackQueueID": sales}}, nil)
		open := w.Inbound(t, sms, "+14155550101", "Do you ship to Canada?")
		owned := w.Inbound(t, sms, "+14155550102", "I want to order")
		closed := w.Inbound(t, sms, "+14155550103", "Just a question")
		for _, id := range []string{open, owned, closed} {
			if !slices.Contains(w.Dan.InboxIDs(t, "RECENT", nil), id) {
				t.Fatalf("conversation %s was not offered to Dan", id)
			}
		}
		w.Dan.C.MustOp(t, "TakeConversation", map[string]any{"id": owned}, nil)
		w.Dan.C.MustOp(t, "TakeConversation", map[string]any{"id": closed}, nil)
		w.Dan.C.MustOp(t, "MarkDealtWith", map[string]any{"id": closed}, nil)
		entries := len(auditEntries(t, admin))

		r := admin.C.Op(t, "DeleteQueue", map[string]any{"id": sales})
		wantCode(t, r, "CONFLICT", "deleting a queue in use without moveTo")
		if !strings.Contains(string(r.Raw), "2 channel account(s)") || !strings.Contains(string(r.Raw), "2 open conversation(s)") {
			t.Fatalf("the conflict should say what holds the queue: %s", r.Raw)
		}
		wantCode(t, admin.C.Op(t, "DeleteQueue", map[string]any{"id": sales, "moveTo": sales}), "BAD_USER_INPUT", "moveTo the queue itself")
		wantCode(t, admin.C.Op(t, "DeleteQueue", map[string]any{"id": sales, "moveTo": "999999"}), "BAD_USER_INPUT", "moveTo no queue")
		wantCode(t, admin.C.Op(t, "DeleteQueue", map[string]any{"id": "999999", "moveTo": w.QueueID}), "NOT_FOUND", "deleting no queue")
		if _, ok := queueList(t, admin)[sales]; !ok {
			t.Fatal("a refused delete removed the queue")
		}
		if c := mustConv(t, admin, open); idOf(c.Queue) != sales {
			t.Fatalf("a refused delete moved a conversation: %+v", c.Queue)
		}
		if n := len(auditEntries(t, admin)); n != entries {
			t.Fatalf("refused deletes were audited: %d entries, want %d", n, entries)
		}

		var del struct{ DeleteQueue struct{ DeletedID string } }
		admin.C.MustOp(t, "DeleteQueue", map[string]any{"id": sales, "moveTo": w.QueueID}, &del)
		if del.DeleteQueue.DeletedID != sales {
			t.Fatalf("deletedID %q", del.DeleteQueue.DeletedID)
		}
		if _, ok := queueList(t, admin)[sales]; ok {
			t.Fatal("the queue is still listed")
		}
		accts, _ := accounts(t, admin)
		if a := accts[sms]; idOf(a.Queue) != w.QueueID || a.Agent != nil {
			t.Fatalf("the SMS account was not re-pointed: %+v", a)
		}
		if a := accts[direct]; idOf(a.FallbackQueue) != w.QueueID || idOf(a.Agent) != w.Ana.ID || a.Queue != nil {
			t.Fatalf("the fallback was not re-pointed: %+v", a)
		}
		// The unowned one is routed again in Support (RING_ALL: Ana, Ben,
		// Cleo) and gone from Dan, who is no member there.
		for _, a := range []*apitest.Agent{w.Ana, w.Ben, w.Cleo} {
			if !slices.Contains(a.InboxIDs(t, "RECENT", nil), open) {
				t.Fatalf("the moved conversation was not offered to %s", a.Name)
			}
		}
		if slices.Contains(w.Dan.InboxIDs(t, "RECENT", nil), open) {
			t.Fatal("Dan still sees the moved unowned conversation")
		}
		if _, r := getConv(t, w.Dan, open); r.Code() != "NOT_FOUND" {
			t.Fatalf("Dan may still open it: %s", r.Raw)
		}
		if c := mustConv(t, w.Dan, owned); idOf(c.Owner) != w.Dan.ID || idOf(c.Queue) != w.QueueID || c.Status != "OPEN" {
			t.Fatalf("the owned conversation: %+v", c)
		}
		if c := mustConv(t, admin, closed); idOf(c.Queue) != w.QueueID || c.Status != "DEALT_WITH" {
			t.Fatalf("the closed conversation: %+v", c)
		}
		c := mustConv(t, admin, open)
		var info struct {
			Contact struct {
				History struct {
					Edges []struct {
						Node struct {
							Kind  string
							Queue *struct{ ID string }
							Agent *struct{ ID string }
						}
					}
				}
			}
		}
		admin.C.MustOp(t, "ContactInfo", map[string]any{"id": c.Contact.ID}, &info)
		kinds := map[string]int{}
		for _, e := range info.Contact.History.Edges {
			kinds[e.Node.Kind]++
			if e.Node.Kind == "TRANSFERRED" && idOf(e.Node.Queue) != w.QueueID {
				t.Fatalf("the move's interaction names queue %v", e.Node.Queue)
			}
		}
		// CREATED and the first offer (whose queue is gone, so null),
		// TRANSFERRED, and the offers in Support.
		if kinds["TRANSFERRED"] != 1 || kinds["CREATED"] != 1 || kinds["OFFERED"] != 4 {
			t.Fatalf("history %v", kinds)
		}
		e = lastAuditOf(t, admin, "queue.delete", sales)
		if !strings.Contains(*e.Detail, `"movedTo":`+w.QueueID) || !strings.Contains(*e.Detail, `"openConversations":2`) ||
			!strings.Contains(*e.Detail, `"name":"Sales"`) {
			t.Fatalf("queue.delete detail %s", *e.Detail)
		}

		// A queue nothing uses goes without moveTo.
		admin.C.MustOp(t, "CreateQueue", map[string]any{"input": map[string]any{"name": "Empty", "strategy": "RING_ALL"}}, &created)
		admin.C.MustOp(t, "DeleteQueue", map[string]any{"id": created.CreateQueue.ID}, nil)
		lastAuditOf(t, admin, "queue.delete", created.CreateQueue.ID)
	})
}

// TestAdminRotateChannelCredentials: updateChannelAccount renames,
// re-routes and rotates a WhatsApp account's credentials for real: after
// the rotation a webhook signed with the old app secret is refused and one
// signed with the new one accepted, the old verify token fails the
// handshake, and the next reply reaches the Cloud API with the new access
// token. Bad input changes nothing; no answer and no audit entry carries a
// secret.
func TestAdminRotateChannelCredentials(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		srv, w := startChannels(t, b)
		api := newProvider(t)
		admin := w.Admin
		wa := func(token, secret, verify string) map[string]any {
			return map[string]any{"phoneNumberID": "106540352242922", "accessToken": token, "appSecret": secret,
				"verifyToken": verify, "apiBaseURL": api.URL()}
		}
		acct, hook := createAccount(t, w, "WHATSAPP", "whatsapp", wa("EAAG-old-token", "old-app-secret", "old-verify"))
		// Creating an account is an administrative change too, recorded
		// without its credentials.
		if e := lastAuditOf(t, admin, "channelAccount.create", acct); strings.Contains(*e.Detail, "old-app-secret") || strings.Contains(*e.Detail, "EAAG-old-token") {
			t.Fatalf("audit detail carries a credential: %s", *e.Detail)
		}
		deliverMeta(t, hook, "old-app-secret", waInbound("106540352242922", "wamid.IN1", "Hola"))
		conv := waitConversation(t, w.Ana, "WHATSAPP")
		before, _ := accounts(t, admin)

		// Bad input: refused, nothing changed.
		for _, tc := range []struct {
			what  string
			input map[string]any
		}{
			{"queueID and agentID", map[string]any{"queueID": w.QueueID, "agentID": w.Dan.ID}},
			{"an SMS config for a WhatsApp account", map[string]any{"name": "X", "sms": map[string]any{"accountSID": "AC1", "authToken": "t", "fromNumber": "+14155550100"}}},
			{"a live-chat config for a WhatsApp account", map[string]any{"liveChat": map[string]any{"allowedOrigins": []string{"https://a.example"}}}},
			{"no such queue", map[string]any{"name": "X", "queueID": "999999"}},
			{"no such agent", map[string]any{"agentID": "999999"}},
			{"no such fallback queue", map[string]any{"fallbackQueueID": "999999"}},
			{"an empty name", map[string]any{"name": "  "}},
			{"a config without its secret", map[string]any{"whatsapp": wa("EAAG-x", "", "v")}},
		} {
			wantCode(t, admin.C.Op(t, "UpdateChannelAccount", map[string]any{"id": acct, "input": tc.input}), "BAD_USER_INPUT", tc.what)
		}
		wantCode(t, admin.C.Op(t, "UpdateChannelAccount", map[string]any{"id": "999999", "input": map[string]any{"name": "X"}}), "NOT_FOUND", "no such account")
		if after, _ := accounts(t, admin); jsonOf(after[acct]) != jsonOf(before[acct]) {
			t.Fatalf("refused updates changed the account: %+v, was %+v", after[acct], before[acct])
		}

		// Rename and re-route: agentID clears the queue, queueID the agent.
		var out struct{ UpdateChannelAccount accountOut }
		admin.C.MustOp(t, "UpdateChannelAccount", map[string]any{"id": acct, "input": map[string]any{"name": "WhatsApp Spain", "agentID": w.Dan.ID}}, &out)
		if a := out.UpdateChannelAccount; a.Name != "WhatsApp Spain" || idOf(a.Agent) != w.Dan.ID || a.Queue != nil {
			t.Fatalf("re-routed to Dan: %+v", a)
		}
		admin.C.MustOp(t, "UpdateChannelAccount", map[string]any{"id": acct, "input": map[string]any{"queueID": w.QueueID, "fallbackQueueID": w.QueueID}}, &out)
		if a := out.UpdateChannelAccount; idOf(a.Queue) != w.QueueID || a.Agent != nil || idOf(a.FallbackQueue) != w.QueueID {
			t.Fatalf("re-routed to the queue: %+v", a)
		}
		e := lastAuditOf(t, admin, "channelAccount.update", acct)
		if strings.Contains(*e.Detail, "credentialsRotated") {
			t.Fatalf("a re-route is no rotation: %s", *e.Detail)
		}

		// Rotate.
		r := admin.C.Op(t, "UpdateChannelAccount", map[string]any{"id": acct, "input": map[string]any{"whatsapp": wa("EAAG-new-token", "new-app-secret", "new-verify")}})
		if len(r.Errors) > 0 {
			t.Fatalf("rotate: %s", r.Raw)
		}
		_, listed := accounts(t, admin)
		e = lastAuditOf(t, admin, "channelAccount.update", acct)
		for _, secret := range []string{"EAAG-old-token", "old-app-secret", "old-verify", "EAAG-new-token", "new-app-secret", "new-verify"} {
			for what, text := range map[string]string{"the answer": string(r.Raw), "the account list": listed, "the audit entry": *e.Detail} {
				if strings.Contains(text, secret) {
					t.Fatalf("%s shows the secret %q: %s", what, secret, text)
				}
			}
		}
		if !strings.Contains(*e.Detail, `"credentialsRotated":true`) || !strings.Contains(*e.Detail, `"credentials":"[redacted]"`) {
			t.Fatalf("rotation audit detail %s", *e.Detail)
		}

		counts := countRows(t, srv)
		if code, _ := webhookStatus(t, hook, "application/json", waInbound("106540352242922", "wamid.OLD", "signed with the old secret"),
			http.Header{"X-Hub-Signature-256": {channels.HubSignature("old-app-secret", waInbound("106540352242922", "wamid.OLD", "signed with the old secret"))}}); code != http.StatusForbidden {
			t.Fatalf("a webhook signed with the old app secret: %d, want 403", code)
		}
		if got := countRows(t, srv); got.events != counts.events {
			t.Fatalf("a refused webhook was stored: %+v, was %+v", got, counts)
		}
		deliverMeta(t, hook, "new-app-secret", waInbound("106540352242922", "wamid.NEW", "signed with the new secret"))
		msgs := waitMessages(t, w.Ana, conv, 2)
		if msgs[1].Body != "signed with the new secret" {
			t.Fatalf("messages %+v", msgs)
		}
		if code, _ := handshake(t, hook, "old-verify"); code != http.StatusForbidden {
			t.Fatalf("handshake with the old verify token: %d", code)
		}
		if code, body := handshake(t, hook, "new-verify"); code != 200 || body != "8675309" {
			t.Fatalf("handshake with the new verify token: %d %q", code, body)
		}
		reply(t, w.Ana, conv, "¡Hola!")
		if got := api.waitSends(1)[0].Header.Get("Authorization"); got != "Bearer EAAG-new-token" {
			t.Fatalf("the reply went out with %q, want the new token", got)
		}
	})
}

// TestAdminRotateAcrossInstances: two instances share one PostgreSQL
// database (and one secret key). Credentials rotated through instance A
// hold at once on instance B, which caches none: B refuses Twilio webhooks
// signed with the old auth token and takes those signed with the new one;
// live-chat origins changed on A reach B within a second.
func TestAdminRotateAcrossInstances(t *testing.T) {
	db := storetest.Open(t, storetest.Postgres)
	opts := apitest.Options{Backend: storetest.Postgres, DB: db,
		Env: map[string]string{"PARLEY_SECRET_KEY": strings.Repeat("ab", 32), "PARLEY_TRUSTED_PROXIES": "127.0.0.1/32"}}
	a := apitest.Start(t, opts)
	bsrv := apitest.Start(t, opts)
	w := apitest.NewWorkspace(t, a, apitest.WorkspaceOption{})
	acct, _ := createAccount(t, w, "SMS", "sms", map[string]any{
		"accountSID": "AC11111111111111111111111111111111", "authToken": "old-auth-token", "fromNumber": "+14155550100",
	})
	hookB := bsrv.URL + "/webhooks/twilio/" + acct
	post := func(token, sid string) int {
		form := url.Values{"MessageSid": {sid}, "AccountSid": {"AC11111111111111111111111111111111"},
			"From": {"+14155550199"}, "To": {"+14155550100"}, "Body": {"hello " + sid}, "NumMedia": {"0"}}
		code, _ := webhookStatus(t, hookB, "application/x-www-form-urlencoded", []byte(form.Encode()),
			http.Header{"X-Twilio-Signature": {twilio.Signature(token, hookB, form)}})
		return code
	}
	if code := post("old-auth-token", "SM00000000000000000000000000000001"); code != 200 {
		t.Fatalf("before the rotation, B: %d", code)
	}
	w.Admin.C.MustOp(t, "UpdateChannelAccount", map[string]any{"id": acct, "input": map[string]any{"sms": map[string]any{
		"accountSID": "AC11111111111111111111111111111111", "authToken": "new-auth-token", "fromNumber": "+14155550100",
	}}}, nil)
	if code := post("old-auth-token", "SM00000000000000000000000000000002"); code != http.StatusForbidden {
		t.Fatalf("the old auth token on B after the rotation on A: %d, want 403", code)
	}
	if code := post("new-auth-token", "SM00000000000000000000000000000003"); code != 200 {
		t.Fatalf("the new auth token on B: %d", code)
	}

	// Origins: B learns at once of a live-chat account's new origins, and
	// forgets the old one.
	shop := w.Account(t, "LIVE_CHAT", map[string]any{"queueID": w.QueueID})
	w.Admin.C.MustOp(t, "UpdateChannelAccount", map[string]any{"id": shop, "input": map[string]any{
		"liveChat": map[string]any{"allowedOrigins": []string{"https://old.example.com"}}}}, nil)
	apitest.Eventually(t, 10*time.Second, func() bool { return startsFrom(t, bsrv, "https://old.example.com", shop) },
		"instance B allows the first origin")
	w.Admin.C.MustOp(t, "UpdateChannelAccount", map[string]any{"id": shop, "input": map[string]any{
		"liveChat": map[string]any{"allowedOrigins": []string{"https://shop.example.com"}}}}, nil)
	// On A, where the change was made, at once.
	if !startsFrom(t, a, "https://shop.example.com", shop) || startsFrom(t, a, "https://old.example.com", shop) {
		t.Fatal("instance A does not follow the new origins at once")
	}
	apitest.Eventually(t, 10*time.Second, func() bool {
		return startsFrom(t, bsrv, "https://shop.example.com", shop) && !startsFrom(t, bsrv, "https://old.example.com", shop)
	}, "instance B follows the new origins")
	accts, _ := accounts(t, w.Admin)
	if got := accts[shop].AllowedOrigins; len(got) != 1 || got[0] != "https://shop.example.com" {
		t.Fatalf("allowedOrigins %v", got)
	}
}

var visitorIP atomic.Int64

// startsFrom reports whether a browser page on origin may start a chat on
// the account through srv (a refusal may be the cross-origin protection's
// 403 or the chat's FORBIDDEN). Each call comes from another address (the
// server must trust 127.0.0.1 as a proxy), so the per-IP limit on new
// chats never answers instead.
func startsFrom(t *testing.T, srv *apitest.Server, origin, account string) bool {
	t.Helper()
	n := visitorIP.Add(1)
	b := mustMarshal(map[string]any{"query": apitest.Contract(t), "operationName": "StartLiveChat",
		"variables": map[string]any{"input": map[string]any{"channelAccountID": account}}})
	req, _ := http.NewRequest(http.MethodPost, srv.GraphQLURL(), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.%d.%d", n/250, n%250+1))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Errors []any }
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return false
	}
	return len(out.Errors) == 0
}

// TestAdminDisabledChannelAccount: a disabled account's webhooks get the
// provider's ordinary answer (Meta 200, Twilio 200 with TwiML) and nothing
// is stored (no webhook event, conversation, message or contact); its
// handshake still works; its widget refuses new chats and its visitors'
// messages (FORBIDDEN); replies in its open conversations are refused
// (CONFLICT). Turned on again, everything works again. Both changes are
// audited; setting what is set records nothing.
func TestAdminDisabledChannelAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		srv, w := startChannels(t, b)
		api := newProvider(t)
		admin := w.Admin
		acct, hook := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
			"phoneNumberID": "106540352242922", "accessToken": "EAAG-token", "appSecret": "app-secret",
			"verifyToken": "verify", "apiBaseURL": api.URL(),
		})
		smsAcct, smsHook := createAccount(t, w, "SMS", "sms", map[string]any{
			"accountSID": "AC11111111111111111111111111111111", "authToken": "auth-token", "fromNumber": "+14155550100", "apiBaseURL": api.URL(),
		})
		deliverMeta(t, hook, "app-secret", waInbound("106540352242922", "wamid.IN1", "Hola"))
		conv := waitConversation(t, w.Ana, "WHATSAPP")
		visitorToken, chat := startChat(t, srv.Client(), w.LiveChat, "Visitor")
		visitor := srv.Client().As(visitorToken)
		visitor.MustOp(t, "VisitorSendMessage", map[string]any{"body": "hello"}, nil)

		for _, id := range []string{acct, smsAcct, w.LiveChat} {
			var out struct{ SetChannelAccountEnabled struct{ Enabled bool } }
			admin.C.MustOp(t, "SetChannelAccountEnabled", map[string]any{"id": id, "enabled": false}, &out)
			if out.SetChannelAccountEnabled.Enabled {
				t.Fatalf("account %s still enabled", id)
			}
			e := lastAuditOf(t, admin, "channelAccount.disable", id)
			if *e.Detail != `{"before":{"enabled":true},"after":{"enabled":false}}` {
				t.Fatalf("disable detail %s", *e.Detail)
			}
		}
		entries := len(auditEntries(t, admin))
		admin.C.MustOp(t, "SetChannelAccountEnabled", map[string]any{"id": acct, "enabled": false}, nil)
		if n := len(auditEntries(t, admin)); n != entries {
			t.Fatal("disabling a disabled account was audited")
		}
		if accts, _ := accounts(t, admin); accts[acct].Enabled || accts[smsAcct].Enabled || accts[w.LiveChat].Enabled || !accts[w.WhatsApp].Enabled {
			t.Fatalf("enabled flags: %+v", accts)
		}

		counts := countRows(t, srv)
		body := waInbound("106540352242922", "wamid.OFF1", "while off")
		if code, _ := webhookStatus(t, hook, "application/json", body, http.Header{"X-Hub-Signature-256": {channels.HubSignature("app-secret", body)}}); code != 200 {
			t.Fatalf("a disabled WhatsApp account's webhook: %d, want 200", code)
		}
		// A new customer too, and a redelivery without a signature: all
		// acknowledged, nothing stored.
		other := bytes.ReplaceAll(waInbound("106540352242922", "wamid.OFF2", "new customer"), []byte("34600111222"), []byte("34600999888"))
		if code, _ := webhookStatus(t, hook, "application/json", other, http.Header{"X-Hub-Signature-256": {channels.HubSignature("app-secret", other)}}); code != 200 {
			t.Fatalf("a new customer on a disabled account: %d", code)
		}
		if code, _ := webhookStatus(t, hook, "application/json", body, nil); code != 200 {
			t.Fatalf("an unsigned delivery to a disabled account: %d", code)
		}
		form := url.Values{"MessageSid": {"SM00000000000000000000000000000abc"}, "AccountSid": {"AC11111111111111111111111111111111"},
			"From": {"+14155550199"}, "To": {"+14155550100"}, "Body": {"while off"}, "NumMedia": {"0"}}
		code, ctype := webhookStatus(t, smsHook, "application/x-www-form-urlencoded", []byte(form.Encode()),
			http.Header{"X-Twilio-Signature": {twilio.Signature("auth-token", smsHook, form)}})
		if code != 200 || ctype != "text/xml" {
			t.Fatalf("a disabled Twilio account's webhook: %d %q, want 200 with TwiML", code, ctype)
		}
		if code, body := handshake(t, hook, "verify"); code != 200 || body != "8675309" {
			t.Fatalf("the handshake of a disabled account: %d %q", code, body)
		}
		// Give the workers time to do anything they would (they run every
		// 5 ms): nothing may appear.
		time.Sleep(200 * time.Millisecond)
		if got := countRows(t, srv); got != counts {
			t.Fatalf("a disabled account stored something: %+v, was %+v", got, counts)
		}
		if _, _, msgs := chanConv(t, w.Ana, conv); len(msgs) != 1 {
			t.Fatalf("messages %+v", msgs)
		}
		if ids := w.Ana.InboxIDs(t, "RECENT", map[string]any{"channel": "SMS"}); len(ids) != 0 {
			t.Fatalf("an SMS conversation appeared: %v", ids)
		}

		// Replies, the widget and the visitor are refused.
		r := w.Ana.Send(t, conv, "are you there?")
		wantCode(t, r, "CONFLICT", "a reply in a disabled account's conversation")
		if !strings.Contains(string(r.Raw), "disabled") {
			t.Fatalf("the refusal should say why: %s", r.Raw)
		}
		wantCode(t, srv.Client().Op(t, "StartLiveChat", map[string]any{"input": map[string]any{"channelAccountID": w.LiveChat}}),
			"FORBIDDEN", "a new chat on a disabled live-chat account")
		wantCode(t, visitor.Op(t, "VisitorSendMessage", map[string]any{"body": "still there?"}), "FORBIDDEN", "a visitor of a disabled account")
		wantCode(t, w.Ana.Send(t, chat, "hi visitor"), "CONFLICT", "a reply in a disabled live chat")
		if got := countRows(t, srv); got != counts {
			t.Fatalf("refusals stored something: %+v, was %+v", got, counts)
		}
		if n := api.sendCount(); n != 0 {
			t.Fatalf("the provider was called %d times", n)
		}

		// On again.
		for _, id := range []string{acct, smsAcct, w.LiveChat} {
			admin.C.MustOp(t, "SetChannelAccountEnabled", map[string]any{"id": id, "enabled": true}, nil)
			lastAuditOf(t, admin, "channelAccount.enable", id)
		}
		deliverMeta(t, hook, "app-secret", waInbound("106540352242922", "wamid.ON", "back on"))
		waitMessages(t, w.Ana, conv, 2)
		reply(t, w.Ana, conv, "Hola de nuevo")
		api.waitSends(1)
		visitor.MustOp(t, "VisitorSendMessage", map[string]any{"body": "thanks"}, nil)
		startChat(t, srv.Client(), w.LiveChat, "Second visitor")
	})
}

// TestAdminDisabledAccountQueuedReplyFails: a reply queued before its
// account is disabled is not sent; the outbox marks it FAILED with the
// reason.
func TestAdminDisabledAccountQueuedReplyFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		// No workers: the outbox runs when the test says.
		srv := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		w := apitest.NewWorkspace(t, srv, apitest.WorkspaceOption{})
		api := newProvider(t)
		acct, _ := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
			"phoneNumberID": "106540352242922", "accessToken": "EAAG-token", "appSecret": "app-secret",
			"verifyToken": "verify", "apiBaseURL": api.URL(),
		})
		conv := w.Inbound(t, acct, "34600111222", "Hola")
		w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": conv}, nil)
		msg := reply(t, w.Ana, conv, "queued before the switch")
		w.Admin.C.MustOp(t, "SetChannelAccountEnabled", map[string]any{"id": acct, "enabled": false}, nil)
		if _, err := srv.App.Channels.DeliverDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		m := waitStatus(t, w.Ana, conv, msg, "FAILED")
		if m.FailureReason == nil || *m.FailureReason != "the channel account is disabled" {
			t.Fatalf("failure reason %v", m.FailureReason)
		}
		if n := api.sendCount(); n != 0 {
			t.Fatalf("the provider was called %d times", n)
		}
	})
}

// TestAdminDeleteChannelAccount: an enabled account cannot be deleted
// (CONFLICT); disabled, it can, and its history stays readable: the
// conversation with its messages, the contact with its identity and
// interactions. Its webhook is gone (404), replies in its conversation are
// refused, and the deletion is audited.
func TestAdminDeleteChannelAccount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		_, w := startChannels(t, b)
		admin := w.Admin
		acct, hook := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
			"phoneNumberID": "106540352242922", "accessToken": "EAAG-token", "appSecret": "app-secret", "verifyToken": "verify",
		})
		deliverMeta(t, hook, "app-secret", waInbound("106540352242922", "wamid.IN1", "Hola"))
		conv := waitConversation(t, w.Ana, "WHATSAPP")
		w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": conv}, nil)

		wantCode(t, admin.C.Op(t, "DeleteChannelAccount", map[string]any{"id": acct}), "CONFLICT", "deleting an enabled account")
		if accts, _ := accounts(t, admin); accts[acct].ID != acct {
			t.Fatal("a refused delete removed the account")
		}
		wantCode(t, admin.C.Op(t, "DeleteChannelAccount", map[string]any{"id": "999999"}), "NOT_FOUND", "deleting no account")
		admin.C.MustOp(t, "SetChannelAccountEnabled", map[string]any{"id": acct, "enabled": false}, nil)
		var del struct{ DeleteChannelAccount struct{ DeletedID string } }
		admin.C.MustOp(t, "DeleteChannelAccount", map[string]any{"id": acct}, &del)
		if del.DeleteChannelAccount.DeletedID != acct {
			t.Fatalf("deletedID %q", del.DeleteChannelAccount.DeletedID)
		}
		if accts, _ := accounts(t, admin); accts[acct].ID != "" {
			t.Fatal("the account is still listed")
		}
		e := lastAuditOf(t, admin, "channelAccount.delete", acct)
		if !strings.Contains(*e.Detail, `"phoneNumberID":"106540352242922"`) || strings.Contains(*e.Detail, "app-secret") || strings.Contains(*e.Detail, "EAAG-token") {
			t.Fatalf("delete detail %s", *e.Detail)
		}

		for _, a := range []*apitest.Agent{w.Ana, admin} {
			c := mustConv(t, a, conv)
			if c.Channel != "WHATSAPP" || len(c.Messages.Edges) != 1 || c.Messages.Edges[0].Node.Body != "Hola" || c.Contact == nil {
				t.Fatalf("%s reads the conversation as %+v", a.Name, c)
			}
		}
		var info struct {
			Contact struct {
				DisplayName string
				Identities  []struct{ Channel, ExternalID string }
				History     struct {
					Edges []struct{ Node struct{ Kind string } }
				}
			}
		}
		admin.C.MustOp(t, "ContactInfo", map[string]any{"id": mustConv(t, admin, conv).Contact.ID}, &info)
		if info.Contact.DisplayName != "Lucía Pérez" || len(info.Contact.Identities) != 1 ||
			info.Contact.Identities[0].ExternalID != "34600111222" || len(info.Contact.History.Edges) < 2 {
			t.Fatalf("contact after the delete: %+v", info.Contact)
		}
		wantCode(t, w.Ana.Send(t, conv, "hello?"), "CONFLICT", "a reply in a deleted account's conversation")
		body := waInbound("106540352242922", "wamid.IN2", "anyone?")
		if code, _ := webhookStatus(t, hook, "application/json", body, http.Header{"X-Hub-Signature-256": {channels.HubSignature("app-secret", body)}}); code != http.StatusNotFound {
			t.Fatalf("the deleted account's webhook: %d, want 404", code)
		}
		// A new account on the same number starts afresh: a new
		// conversation, the contact found again by phone or made anew.
		_, hook2 := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
			"phoneNumberID": "106540352242922", "accessToken": "EAAG-token", "appSecret": "app-secret", "verifyToken": "verify",
		})
		deliverMeta(t, hook2, "app-secret", waInbound("106540352242922", "wamid.IN3", "new account"))
		apitest.Eventually(t, 20*time.Second, func() bool {
			return len(w.Ana.InboxIDs(t, "RECENT", map[string]any{"channel": "WHATSAPP"})) == 2
		}, "a second WhatsApp conversation")
	})
}

// TestAdminAccountsForbidden: every operation here is refused to AGENT and
// GROUP_OWNER with FORBIDDEN and changes nothing, audit log included.
func TestAdminAccountsForbidden(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		srv := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, srv, apitest.WorkspaceOption{})
		admin := w.Admin
		_, gtok := admin.C.CreateAgent(t, "Gina", "gina@test.parley", "290", "GROUP_OWNER")
		group := srv.Client().As(gtok)
		var created struct{ CreateQueue struct{ ID string } }
		admin.C.MustOp(t, "CreateQueue", map[string]any{"input": map[string]any{"name": "Spare", "strategy": "RING_ALL"}}, &created)
		spare := created.CreateQueue.ID
		off := w.Account(t, "SMS", map[string]any{"queueID": w.QueueID})
		admin.C.MustOp(t, "SetChannelAccountEnabled", map[string]any{"id": off, "enabled": false}, nil)

		beforeAccts, _ := accounts(t, admin)
		beforeQueues := queueList(t, admin)
		entries := len(auditEntries(t, admin))
		ops := []struct {
			name string
			vars map[string]any
		}{
			{"UpdateQueueDetails", map[string]any{"id": spare, "input": map[string]any{"description": "mine"}}},
			{"DeleteQueue", map[string]any{"id": spare}},
			{"DeleteQueue", map[string]any{"id": w.QueueID, "moveTo": spare}},
			{"UpdateChannelAccount", map[string]any{"id": w.WhatsApp, "input": map[string]any{"name": "mine", "agentID": w.Ana.ID}}},
			{"UpdateChannelAccount", map[string]any{"id": w.WhatsApp, "input": map[string]any{"whatsapp": map[string]any{
				"phoneNumberID": "1", "accessToken": "t", "appSecret": "s", "verifyToken": "v"}}}},
			{"SetChannelAccountEnabled", map[string]any{"id": w.WhatsApp, "enabled": false}},
			{"SetChannelAccountEnabled", map[string]any{"id": off, "enabled": true}},
			{"DeleteChannelAccount", map[string]any{"id": off}},
			{"ListChannelAccounts", nil},
		}
		for _, c := range []struct {
			who string
			c   *apitest.Client
		}{{"AGENT", w.Ana.C}, {"GROUP_OWNER", group}} {
			for _, op := range ops {
				wantCode(t, c.c.Op(t, op.name, op.vars), "FORBIDDEN", c.who+" "+op.name)
			}
			wantCode(t, c.c.Op(t, "AuditLog", nil), "FORBIDDEN", c.who+" AuditLog")
		}
		afterAccts, _ := accounts(t, admin)
		if jsonOf(afterAccts) != jsonOf(beforeAccts) {
			t.Fatalf("refused operations changed accounts: %+v, was %+v", afterAccts, beforeAccts)
		}
		if got := queueList(t, admin); fmt.Sprint(got) != fmt.Sprint(beforeQueues) {
			t.Fatalf("refused operations changed queues: %+v, was %+v", got, beforeQueues)
		}
		if n := len(auditEntries(t, admin)); n != entries {
			t.Fatalf("refused operations were audited: %d entries, want %d", n, entries)
		}
		if afterAccts[off].Enabled {
			t.Fatal("the disabled account is listed enabled")
		}
	})
}
