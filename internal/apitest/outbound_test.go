package apitest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/channels/twilio"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// Tests of issue 12's outbound part: startConversation on SMS, WhatsApp
// (templates) and Messenger (HUMAN_AGENT), sendMessage with a template,
// the WhatsApp template registry and its sync, against provider doubles
// that check the exact requests.

type started struct {
	StartConversation struct {
		Message struct {
			ID, Direction, Body, DeliveryStatus string
			FailureReason                       *string
		}
		Conversation struct {
			ID, Channel, Status string
			Owner               *struct{ ID string }
			Contact             struct {
				ID, DisplayName string
				Phone           *string
			}
		}
	}
}

// start calls the contract's StartConversation and wants it to succeed.
func start(t *testing.T, a *apitest.Agent, in map[string]any) started {
	t.Helper()
	var out started
	a.C.MustOp(t, "StartConversation", map[string]any{"input": in}, &out)
	return out
}

// refused wants the operation refused with code, its message containing
// each of want.
func refused(t *testing.T, r *apitest.Response, code string, want ...string) {
	t.Helper()
	if r.Code() != code {
		t.Fatalf("want %s, got %s", code, r.Raw)
	}
	for _, w := range want {
		if !strings.Contains(r.Errors[0].Message, w) {
			t.Fatalf("error %q does not say %q", r.Errors[0].Message, w)
		}
	}
}

func jsonEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	g, w := mustMarshal(got), mustMarshal(want)
	var gv, wv any
	_ = json.Unmarshal(g, &gv)
	_ = json.Unmarshal(w, &wv)
	if !reflect.DeepEqual(gv, wv) {
		t.Fatalf("%s:\n got  %s\n want %s", what, g, w)
	}
}

// TestOutboundSMS: an agent texts a number that never wrote: the number is
// normalised, a contact and identity made, the agent owns the conversation,
// Twilio gets the exact request, the status callback moves the message,
// and the customer's answer lands in the same conversation. A second start
// continues it; concurrent starts make one conversation; refusals change
// nothing.
func TestOutboundSMS(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		_, w := startChannels(t, b)
		api := newProvider(t)
		acct, hook := createAccount(t, w, "SMS", "sms", map[string]any{
			"accountSID": "AC22222222222222222222222222222222", "authToken": "twilio-secret",
			"fromNumber": "+14155550100", "apiBaseURL": api.URL(),
		})
		post := func(form url.Values) {
			t.Helper()
			deliver(t, hook, "application/x-www-form-urlencoded", []byte(form.Encode()),
				http.Header{"X-Twilio-Signature": {twilio.Signature("twilio-secret", hook, form)}})
		}

		// Refusals first: nothing is stored or sent by any of them.
		for _, c := range []struct {
			in   map[string]any
			want string
		}{
			{map[string]any{"to": "415 555 0199", "body": "hi"}, "E.164"},
			{map[string]any{"to": "+1 415 555 01x9", "body": "hi"}, "E.164"},
			{map[string]any{"body": "hi"}, "exactly one of contactID and to"},
			{map[string]any{"to": "+14155550199", "contactID": "1", "body": "hi"}, "exactly one of contactID and to"},
			{map[string]any{"to": "+14155550199"}, "body"},
			{map[string]any{"to": "+14155550199", "body": "hi", "whatsappTemplate": map[string]any{"name": "x", "language": "en"}}, "not both"},
			{map[string]any{"to": "+14155550199", "whatsappTemplate": map[string]any{"name": "x", "language": "en"}}, "only WhatsApp"},
		} {
			c.in["channelAccountID"] = acct
			refused(t, w.Ana.C.Op(t, "StartConversation", map[string]any{"input": c.in}), "BAD_USER_INPUT", c.want)
		}
		live := w.Ana.C.Op(t, "StartConversation", map[string]any{"input": map[string]any{
			"channelAccountID": w.LiveChat, "to": "+14155550199", "body": "hi"}})
		refused(t, live, "BAD_USER_INPUT", "live chat")
		if ids := w.Admin.InboxIDs(t, "ALL", nil); len(ids) != 0 {
			t.Fatalf("a refused start stored a conversation: %v", ids)
		}

		out := start(t, w.Ana, map[string]any{"channelAccountID": acct, "to": "+1 (415) 555-0199",
			"body": "Hi, this is Ana from Parley: your callback.", "clientMutationID": "cb-1"})
		sc := out.StartConversation
		if sc.Message.Direction != "OUTBOUND" || sc.Message.DeliveryStatus != "PENDING" ||
			sc.Conversation.Channel != "SMS" || sc.Conversation.Status != "OPEN" ||
			sc.Conversation.Owner == nil || sc.Conversation.Owner.ID != w.Ana.ID ||
			sc.Conversation.Contact.Phone == nil || *sc.Conversation.Contact.Phone != "+14155550199" {
			t.Fatalf("started: %+v", sc)
		}
		conv := sc.Conversation.ID
		sends := api.waitSends(1)
		c := sends[0]
		user, pass, _ := (&http.Request{Header: c.Header}).BasicAuth()
		if c.Path != "/2010-04-01/Accounts/AC22222222222222222222222222222222/Messages.json" ||
			user != "AC22222222222222222222222222222222" || pass != "twilio-secret" ||
			c.Form.Get("To") != "+14155550199" || c.Form.Get("From") != "+14155550100" ||
			c.Form.Get("Body") != "Hi, this is Ana from Parley: your callback." || c.Form.Get("StatusCallback") != hook {
			t.Fatalf("Twilio call: %s %s %v", c.Path, user, c.Form)
		}
		waitStatus(t, w.Ana, conv, sc.Message.ID, "SENT")
		post(url.Values{"MessageSid": {fmt.Sprintf("SM%032d", 1)}, "MessageStatus": {"delivered"}, "SmsStatus": {"delivered"},
			"AccountSid": {"AC22222222222222222222222222222222"}, "From": {"+14155550100"}, "To": {"+14155550199"}})
		waitStatus(t, w.Ana, conv, sc.Message.ID, "DELIVERED")

		// The same clientMutationID again: the first message, nothing sent.
		again := start(t, w.Ana, map[string]any{"channelAccountID": acct, "to": "+14155550199",
			"body": "Hi, this is Ana from Parley: your callback.", "clientMutationID": "cb-1"})
		if again.StartConversation.Message.ID != sc.Message.ID {
			t.Fatalf("a retried start stored another message: %+v", again)
		}

		// The customer answers: the same conversation.
		post(url.Values{"MessageSid": {"SM00000000000000000000000000000in1"}, "AccountSid": {"AC22222222222222222222222222222222"},
			"From": {"+14155550199"}, "To": {"+14155550100"}, "Body": {"Thanks, call me at 5"}, "NumMedia": {"0"}})
		msgs := waitMessages(t, w.Ana, conv, 2)
		if msgs[1].Direction != "INBOUND" || msgs[1].Body != "Thanks, call me at 5" {
			t.Fatalf("the answer: %+v", msgs)
		}
		if ids := w.Admin.InboxIDs(t, "ALL", nil); len(ids) != 1 || ids[0] != conv {
			t.Fatalf("the answer opened another conversation: %v", ids)
		}

		// A start to the same number continues the open conversation; by
		// contactID too. Another agent may not write in it.
		next := start(t, w.Ana, map[string]any{"channelAccountID": acct, "to": "+14155550199", "body": "Calling at 5."})
		byContact := start(t, w.Ana, map[string]any{"channelAccountID": acct, "contactID": sc.Conversation.Contact.ID, "body": "Talk soon."})
		if next.StartConversation.Conversation.ID != conv || byContact.StartConversation.Conversation.ID != conv {
			t.Fatalf("a second start opened another conversation: %s %s", next.StartConversation.Conversation.ID, byContact.StartConversation.Conversation.ID)
		}
		refused(t, w.Ben.C.Op(t, "StartConversation", map[string]any{"input": map[string]any{
			"channelAccountID": acct, "to": "+14155550199", "body": "Ben here"}}), "CONFLICT")
		api.waitSends(3)

		// Concurrent starts to a new number: one conversation.
		var wg sync.WaitGroup
		ids := make([]string, 6)
		errs := make([]string, 6)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := w.Ana.C.Op(t, "StartConversation", map[string]any{"input": map[string]any{
					"channelAccountID": acct, "to": "+442071838750", "body": fmt.Sprintf("hello %d", i)}})
				if len(r.Errors) > 0 {
					errs[i] = string(r.Raw)
					return
				}
				var o started
				r.Decode(t, &o)
				ids[i] = o.StartConversation.Conversation.ID
			}()
		}
		wg.Wait()
		for i := range ids {
			if errs[i] != "" || ids[i] != ids[0] {
				t.Fatalf("concurrent starts: %v %v", ids, errs)
			}
		}
		if all := w.Admin.InboxIDs(t, "ALL", nil); len(all) != 2 {
			t.Fatalf("concurrent starts made %d conversations in all", len(all))
		}
		api.waitSends(9)
	})
}

// whatsappInbound is a Cloud API webhook with one text message.
func whatsappInbound(phoneNumberID, waID, name, id, text string, at time.Time) []byte {
	return mustMarshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
			"messaging_product": "whatsapp",
			"metadata":          map[string]any{"display_phone_number": "15550783881", "phone_number_id": phoneNumberID},
			"contacts":          []any{map[string]any{"wa_id": waID, "profile": map[string]any{"name": name}}},
			"messages": []any{map[string]any{"from": waID, "id": id, "timestamp": strconv.FormatInt(at.Unix(), 10),
				"type": "text", "text": map[string]any{"body": text}}},
		}}},
	}}})
}

func whatsappStatus(phoneNumberID, wamid, st, to string) []byte {
	return mustMarshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
			"messaging_product": "whatsapp",
			"metadata":          map[string]any{"display_phone_number": "15550783881", "phone_number_id": phoneNumberID},
			"statuses": []any{map[string]any{"id": wamid, "status": st, "timestamp": strconv.FormatInt(time.Now().Unix(), 10),
				"recipient_id": to}},
		}}},
	}}})
}

type waTemplate struct{ ID, Name, Language, Category, Body, Status string }

// TestOutboundWhatsAppTemplates: an admin registers templates (WhatsApp's
// rules on name, language, category and placeholders); an agent starts a
// conversation with a number that never wrote: free text is refused, an
// approved template with the right parameters goes out as the Cloud API's
// template message, the timeline shows the rendered text, statuses flow,
// and the customer's answer lands in it and opens the window for free
// text. Outside the window sendMessage takes a template instead of a body;
// a provider refusal of a template ends FAILED with WhatsApp's reason.
func TestOutboundWhatsAppTemplates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		_, w := startChannels(t, b)
		api := newProvider(t)
		acct, hook := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
			"phoneNumberID": "106540352242922", "accessToken": "EAAG-token", "appSecret": "wa-secret",
			"verifyToken": "v", "apiBaseURL": api.URL(),
		})
		create := func(a *apitest.Agent, name, lang, cat, body string) *apitest.Response {
			return a.C.Op(t, "CreateWhatsAppTemplate", map[string]any{"channelAccountID": acct,
				"input": map[string]any{"name": name, "language": lang, "category": cat, "body": body}})
		}
		refused(t, create(w.Ana, "order_ready", "en_US", "UTILITY", "Hi {{1}}"), "FORBIDDEN")
		refused(t, create(w.Admin, "Order Ready", "en_US", "UTILITY", "Hi {{1}}"), "BAD_USER_INPUT", "lower-case")
		refused(t, create(w.Admin, "order_ready", "english", "UTILITY", "Hi {{1}}"), "BAD_USER_INPUT", "language")
		refused(t, create(w.Admin, "order_ready", "en_US", "PROMO", "Hi {{1}}"), "BAD_USER_INPUT", "MARKETING")
		refused(t, create(w.Admin, "order_ready", "en_US", "UTILITY", "Hi {{1}}, order {{3}}"), "BAD_USER_INPUT", "{{2}} is missing")
		refused(t, w.Admin.C.Op(t, "CreateWhatsAppTemplate", map[string]any{"channelAccountID": w.LiveChat,
			"input": map[string]any{"name": "x", "language": "en", "category": "UTILITY", "body": "x"}}), "BAD_USER_INPUT", "WhatsApp")
		var made struct{ CreateWhatsAppTemplate waTemplate }
		r := create(w.Admin, "order_ready", "en-us", "utility", "Hi {{1}}, your order {{2}} is ready.")
		if len(r.Errors) > 0 {
			t.Fatalf("create: %s", r.Raw)
		}
		r.Decode(t, &made)
		if m := made.CreateWhatsAppTemplate; m.Name != "order_ready" || m.Language != "en_US" || m.Category != "UTILITY" || m.Status != "APPROVED" {
			t.Fatalf("created: %+v", m)
		}
		refused(t, create(w.Admin, "order_ready", "en_US", "UTILITY", "Again {{1}}"), "CONFLICT")
		var listed struct{ WhatsappTemplates []waTemplate }
		w.Ana.C.MustOp(t, "WhatsAppTemplates", map[string]any{"channelAccountID": acct}, &listed)
		if len(listed.WhatsappTemplates) != 1 || listed.WhatsappTemplates[0].ID != made.CreateWhatsAppTemplate.ID {
			t.Fatalf("listed: %+v", listed)
		}

		// A number that never wrote: the window is closed.
		startIn := func(extra map[string]any) map[string]any {
			in := map[string]any{"channelAccountID": acct, "to": "+34 600 111 333"}
			for k, v := range extra {
				in[k] = v
			}
			return map[string]any{"input": in}
		}
		tpl := func(name string, params ...string) map[string]any {
			return map[string]any{"name": name, "language": "en_US", "parameters": params}
		}
		refused(t, w.Ana.C.Op(t, "StartConversation", startIn(map[string]any{"body": "Hello!"})), "BAD_USER_INPUT", "24 hours", "template")
		refused(t, w.Ana.C.Op(t, "StartConversation", startIn(map[string]any{"whatsappTemplate": tpl("order_ready", "Lucía")})),
			"BAD_USER_INPUT", "takes 2 parameters, 1 given")
		refused(t, w.Ana.C.Op(t, "StartConversation", startIn(map[string]any{"whatsappTemplate": tpl("order_shipped", "a")})),
			"BAD_USER_INPUT", "no WhatsApp template")
		refused(t, w.Ana.C.Op(t, "StartConversation", startIn(map[string]any{"whatsappTemplate": tpl("order_ready", "Lucía", " ")})),
			"BAD_USER_INPUT", "parameter 2")
		api.mu.Lock()
		if len(api.sends) != 0 {
			t.Fatalf("a refused start was sent")
		}
		api.mu.Unlock()

		out := start(t, w.Ana, startIn(map[string]any{"whatsappTemplate": tpl("order_ready", "Lucía", "A-42")})["input"].(map[string]any))
		sc := out.StartConversation
		if sc.Message.Body != "Hi Lucía, your order A-42 is ready." || sc.Message.DeliveryStatus != "PENDING" ||
			sc.Conversation.Owner == nil || sc.Conversation.Owner.ID != w.Ana.ID {
			t.Fatalf("started: %+v", sc)
		}
		conv := sc.Conversation.ID
		sends := api.waitSends(1)
		if sends[0].Path != "/v21.0/106540352242922/messages" || sends[0].Header.Get("Authorization") != "Bearer EAAG-token" {
			t.Fatalf("send call: %s %s", sends[0].Path, sends[0].Header.Get("Authorization"))
		}
		jsonEqual(t, "template message", sends[0].JSON, map[string]any{
			"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34600111333", "type": "template",
			"template": map[string]any{"name": "order_ready", "language": map[string]any{"code": "en_US"},
				"components": []any{map[string]any{"type": "body", "parameters": []any{
					map[string]any{"type": "text", "text": "Lucía"}, map[string]any{"type": "text", "text": "A-42"}}}}},
		})
		waitStatus(t, w.Ana, conv, sc.Message.ID, "SENT")
		deliverMeta(t, hook, "wa-secret", whatsappStatus("106540352242922", "wamid.reply1", "delivered", "34600111333"))
		waitStatus(t, w.Ana, conv, sc.Message.ID, "DELIVERED")
		deliverMeta(t, hook, "wa-secret", whatsappStatus("106540352242922", "wamid.reply1", "read", "34600111333"))
		waitStatus(t, w.Ana, conv, sc.Message.ID, "READ")

		// Still outside the window: free text in the conversation is refused.
		refused(t, w.Ana.Send(t, conv, "Are you there?"), "BAD_USER_INPUT", "24 hours")

		// The customer answers from that number: the same conversation,
		// and now free text goes out.
		deliverMeta(t, hook, "wa-secret", whatsappInbound("106540352242922", "34600111333", "Lucía Pérez", "wamid.IN1", "¡Gracias!", time.Now()))
		// (WhatsApp's timestamps are whole seconds: the answer may sort
		// before the template sent within the same second.)
		msgs := waitMessages(t, w.Ana, conv, 2)
		if len(msgs) != 2 || (msgs[0].Body != "¡Gracias!" && msgs[1].Body != "¡Gracias!") {
			t.Fatalf("answer: %+v", msgs)
		}
		if ids := w.Admin.InboxIDs(t, "ALL", map[string]any{"channel": "WHATSAPP"}); len(ids) != 1 {
			t.Fatalf("the answer opened another conversation: %v", ids)
		}
		r1 := reply(t, w.Ana, conv, "You're welcome!")
		sends = api.waitSends(2)
		if sends[1].JSON["type"] != "text" {
			t.Fatalf("free text in the window: %v", sends[1].JSON)
		}
		waitStatus(t, w.Ana, conv, r1, "SENT")

		// A conversation whose customer last wrote two days ago: sendMessage
		// takes a template instead of a body.
		deliverMeta(t, hook, "wa-secret", whatsappInbound("106540352242922", "34600999888", "Old Customer", "wamid.OLD", "hola",
			time.Now().Add(-48*time.Hour)))
		var old string
		apitest.Eventually(t, 20*time.Second, func() bool {
			for _, id := range w.Admin.InboxIDs(t, "ALL", map[string]any{"channel": "WHATSAPP"}) {
				if id != conv {
					old = id
				}
			}
			return old != ""
		}, "the old customer's conversation")
		refused(t, w.Ana.Send(t, old, "Hello again"), "BAD_USER_INPUT", "24 hours")
		refused(t, w.Ana.C.Op(t, "SendMessage", map[string]any{"input": map[string]any{"conversationID": old, "body": "x",
			"whatsappTemplate": tpl("order_ready", "a", "b")}}), "BAD_USER_INPUT", "not both")
		var sent struct {
			SendMessage struct {
				Message      struct{ ID, Body, DeliveryStatus string }
				Conversation struct{ ID, Status string }
			}
		}
		w.Ana.C.MustOp(t, "SendTemplateMessage", map[string]any{"conversationID": old, "template": tpl("order_ready", "Old", "B-7")}, &sent)
		if sent.SendMessage.Message.Body != "Hi Old, your order B-7 is ready." || sent.SendMessage.Message.DeliveryStatus != "PENDING" ||
			sent.SendMessage.Conversation.Status != "OPEN" {
			t.Fatalf("template reply: %+v", sent)
		}
		sends = api.waitSends(3)
		if sends[2].JSON["type"] != "template" || sends[2].JSON["to"] != "34600999888" {
			t.Fatalf("template reply call: %v", sends[2].JSON)
		}
		waitStatus(t, w.Ana, old, sent.SendMessage.Message.ID, "SENT")

		// WhatsApp refuses a template: FAILED with its reason.
		api.refuseNext(400, `{"error":{"message":"(#132001) Template name does not exist in the translation","type":"OAuthException","code":132001,"fbtrace_id":"AX2"}}`)
		w.Ana.C.MustOp(t, "SendTemplateMessage", map[string]any{"conversationID": old, "template": tpl("order_ready", "Old", "B-8")}, &sent)
		m := waitStatus(t, w.Ana, old, sent.SendMessage.Message.ID, "FAILED")
		if m.FailureReason == nil || !strings.Contains(*m.FailureReason, "132001") {
			t.Fatalf("failure reason: %v", m.FailureReason)
		}

		// A template with a TEXT header taking {{1}}, a URL button taking
		// its suffix and a quick reply: the Cloud API's header, body and
		// button components, buttons by index as strings.
		w.Admin.C.MustOp(t, "CreateWhatsAppTemplateFull", map[string]any{"channelAccountID": acct, "input": map[string]any{
			"name": "order_track", "language": "en_US", "category": "UTILITY", "body": "Hi {{1}}, your parcel is on its way.",
			"header": map[string]any{"format": "TEXT", "text": "Order {{1}}"},
			"buttons": []any{
				map[string]any{"type": "QUICK_REPLY", "text": "Thanks"},
				map[string]any{"type": "URL", "text": "Track", "url": "https://shop.example/track/{{1}}"},
			}}}, nil)
		full := tpl("order_track", "Old")
		full["headerParameter"] = "B-9"
		full["buttonParameters"] = []any{map[string]any{"index": 1, "value": "B-9?l=en"}}
		w.Ana.C.MustOp(t, "SendTemplateMessage", map[string]any{"conversationID": old, "template": full}, &sent)
		if sent.SendMessage.Message.Body != "Order B-9\nHi Old, your parcel is on its way." {
			t.Fatalf("header template timeline text: %q", sent.SendMessage.Message.Body)
		}
		sends = api.waitSends(5)
		jsonEqual(t, "template message with header and button", sends[4].JSON, map[string]any{
			"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34600999888", "type": "template",
			"template": map[string]any{"name": "order_track", "language": map[string]any{"code": "en_US"},
				"components": []any{
					map[string]any{"type": "header", "parameters": []any{map[string]any{"type": "text", "text": "B-9"}}},
					map[string]any{"type": "body", "parameters": []any{map[string]any{"type": "text", "text": "Old"}}},
					map[string]any{"type": "button", "sub_type": "url", "index": "1",
						"parameters": []any{map[string]any{"type": "text", "text": "B-9?l=en"}}},
				}},
		})
		waitStatus(t, w.Ana, old, sent.SendMessage.Message.ID, "SENT")
	})
}

// graphTemplates is a Graph API double for GET /{waba}/message_templates:
// two pages, cursor-linked; it records the requests and can fail page 2.
type graphTemplates struct {
	srv       *httptest.Server
	mu        sync.Mutex
	reqs      []*http.Request
	failPage2 bool
	status    string // the status of "promo_es" on the next sync
}

func newGraphTemplates(t *testing.T) *graphTemplates {
	g := &graphTemplates{status: "PENDING"}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.reqs = append(g.reqs, r.Clone(r.Context()))
		fail, st := g.failPage2, g.status
		g.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodGet || r.URL.Path != "/v21.0/987654321/message_templates" ||
			r.Header.Get("Authorization") != "Bearer EAAG-sync" {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":{"message":"unexpected request","code":100}}`))
			return
		}
		switch r.URL.Query().Get("after") {
		case "":
			_, _ = w.Write(mustMarshal(map[string]any{
				"data": []any{
					map[string]any{"id": "111", "name": "order_ready", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
						"components": []any{
							map[string]any{"type": "HEADER", "format": "TEXT", "text": "Your order"},
							map[string]any{"type": "BODY", "text": "Hello {{1}}, order {{2}} is ready for pickup."},
							map[string]any{"type": "BUTTONS", "buttons": []any{map[string]any{"type": "QUICK_REPLY", "text": "Thanks"}}},
						}},
					map[string]any{"id": "222", "name": "promo_es", "language": "es", "status": st, "category": "MARKETING",
						"components": []any{map[string]any{"type": "BODY", "text": "¡Ofertas para {{1}}!"}}},
				},
				"paging": map[string]any{"cursors": map[string]any{"before": "B0", "after": "CUR1"},
					"next": "https://graph.facebook.com/v21.0/987654321/message_templates?after=CUR1"},
			}))
		case "CUR1":
			if fail {
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"error":{"message":"An unexpected error has occurred. Please retry your request later.","type":"OAuthException","code":2,"fbtrace_id":"AZ"}}`))
				return
			}
			_, _ = w.Write(mustMarshal(map[string]any{
				"data": []any{map[string]any{"id": "333", "name": "welcome", "language": "pt_BR", "status": "APPROVED", "category": "MARKETING",
					"components": []any{map[string]any{"type": "BODY", "text": "Bem-vindo!"}}}},
				"paging": map[string]any{"cursors": map[string]any{"before": "CUR1", "after": "CUR2"}},
			}))
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// TestSyncWhatsAppTemplates: the sync reads every page of the Graph API's
// list with the account's token, upserts by name and language (a template
// registered by hand is updated, not doubled), keeps the provider's
// statuses (a PENDING template cannot be sent until a later sync says
// APPROVED), and a provider error stores nothing of the sync.
func TestSyncWhatsAppTemplates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		_, w := startChannels(t, b)
		g := newGraphTemplates(t)
		acct, _ := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
			"phoneNumberID": "106540352242999", "accessToken": "EAAG-sync", "appSecret": "s",
			"verifyToken": "v", "apiBaseURL": g.srv.URL, "businessAccountID": "987654321",
		})
		sync := func(a *apitest.Agent) *apitest.Response {
			return a.C.Op(t, "SyncWhatsAppTemplates", map[string]any{"channelAccountID": acct})
		}
		list := func() []waTemplate {
			var out struct{ WhatsappTemplates []waTemplate }
			w.Ana.C.MustOp(t, "WhatsAppTemplates", map[string]any{"channelAccountID": acct}, &out)
			return out.WhatsappTemplates
		}
		refused(t, sync(w.Ana), "FORBIDDEN")
		var accts struct {
			ChannelAccounts []struct {
				ID                string
				BusinessAccountID *string
				HumanAgentTag     *bool
			}
		}
		w.Admin.C.Query(t, `{ channelAccounts { id businessAccountID humanAgentTag } }`, nil).Decode(t, &accts)
		found := false
		for _, a := range accts.ChannelAccounts {
			if a.ID == acct {
				found = a.BusinessAccountID != nil && *a.BusinessAccountID == "987654321" && a.HumanAgentTag == nil
			}
		}
		if !found {
			t.Fatalf("the account does not show its businessAccountID: %+v", accts)
		}
		var made struct{ CreateWhatsAppTemplate waTemplate }
		w.Admin.C.MustOp(t, "CreateWhatsAppTemplate", map[string]any{"channelAccountID": acct, "input": map[string]any{
			"name": "order_ready", "language": "en_US", "category": "UTILITY", "body": "Old text {{1}}"}}, &made)

		// Page 2 fails: nothing of page 1 is stored.
		g.failPage2 = true
		refused(t, sync(w.Admin), "PROVIDER_ERROR", "WhatsApp")
		if got := list(); len(got) != 1 || got[0].Body != "Old text {{1}}" {
			t.Fatalf("a failed sync stored something: %+v", got)
		}
		g.mu.Lock()
		g.failPage2 = false
		g.reqs = nil
		g.mu.Unlock()

		var synced struct{ SyncWhatsAppTemplates []waTemplate }
		r := sync(w.Admin)
		if len(r.Errors) > 0 {
			t.Fatalf("sync: %s", r.Raw)
		}
		r.Decode(t, &synced)
		g.mu.Lock()
		reqs := g.reqs
		g.mu.Unlock()
		if len(reqs) != 2 || reqs[0].URL.Query().Get("fields") != "name,language,status,category,components" ||
			reqs[0].URL.Query().Get("after") != "" || reqs[1].URL.Query().Get("after") != "CUR1" {
			t.Fatalf("list requests: %d %v", len(reqs), reqs)
		}
		want := []waTemplate{
			{Name: "order_ready", Language: "en_US", Category: "UTILITY", Body: "Hello {{1}}, order {{2}} is ready for pickup.", Status: "APPROVED"},
			{Name: "promo_es", Language: "es", Category: "MARKETING", Body: "¡Ofertas para {{1}}!", Status: "PENDING"},
			{Name: "welcome", Language: "pt_BR", Category: "MARKETING", Body: "Bem-vindo!", Status: "APPROVED"},
		}
		got := list()
		if len(synced.SyncWhatsAppTemplates) != 3 || len(got) != 3 {
			t.Fatalf("synced %+v, listed %+v", synced, got)
		}
		for i := range want {
			want[i].ID = got[i].ID
			if got[i] != want[i] {
				t.Fatalf("template %d: %+v, want %+v", i, got[i], want[i])
			}
		}
		if got[0].ID != made.CreateWhatsAppTemplate.ID {
			t.Fatalf("the registered template was doubled, not updated: %s vs %s", got[0].ID, made.CreateWhatsAppTemplate.ID)
		}

		// A PENDING template is not sent; once approved, it is.
		in := map[string]any{"input": map[string]any{"channelAccountID": acct, "to": "+5491155550000",
			"whatsappTemplate": map[string]any{"name": "promo_es", "language": "es", "parameters": []string{"Ana"}}}}
		refused(t, w.Ana.C.Op(t, "StartConversation", in), "BAD_USER_INPUT", "PENDING")
		g.mu.Lock()
		g.status = "APPROVED"
		g.mu.Unlock()
		r = sync(w.Admin)
		if len(r.Errors) > 0 {
			t.Fatalf("sync: %s", r.Raw)
		}
		var ok started
		w.Ana.C.MustOp(t, "StartConversation", in, &ok)
		if ok.StartConversation.Message.Body != "¡Ofertas para Ana!" {
			t.Fatalf("started: %+v", ok)
		}

		// An account without its business account id cannot sync.
		other, _ := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
			"phoneNumberID": "106540352242998", "accessToken": "t", "appSecret": "s", "verifyToken": "v", "apiBaseURL": g.srv.URL})
		refused(t, w.Admin.C.Op(t, "SyncWhatsAppTemplates", map[string]any{"channelAccountID": other}), "BAD_USER_INPUT", "businessAccountID")
	})
}

// TestOutboundMessengerHumanAgentTag: outside Messenger's 24 hours a reply
// goes out with MESSAGE_TAG / HUMAN_AGENT for 7 days when the account
// enables it; without the opt-in, or after 7 days, it is refused; a start
// by phone number is refused; a start to a contact who wrote the page
// continues their conversation.
func TestOutboundMessengerHumanAgentTag(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		_, w := startChannels(t, b)
		api := newProvider(t)
		acct, hook := createAccount(t, w, "FACEBOOK", "messenger", map[string]any{
			"pageID": "556677889900", "pageAccessToken": "EAAP-tag", "appSecret": "fb-secret",
			"verifyToken": "v", "apiBaseURL": api.URL(), "humanAgentTag": true,
		})
		plain, plainHook := createAccount(t, w, "FACEBOOK", "messenger", map[string]any{
			"pageID": "556677889911", "pageAccessToken": "EAAP-plain", "appSecret": "fb-secret",
			"verifyToken": "v", "apiBaseURL": api.URL(),
		})
		inbound := func(hook, page, psid, mid string, at time.Time) {
			deliverMeta(t, hook, "fb-secret", mustMarshal(map[string]any{"object": "page", "entry": []any{map[string]any{
				"id": page, "time": at.UnixMilli(), "messaging": []any{map[string]any{
					"sender": map[string]any{"id": psid}, "recipient": map[string]any{"id": page}, "timestamp": at.UnixMilli(),
					"message": map[string]any{"mid": mid, "text": "help?"}}}}}}))
		}
		seen := map[string]bool{}
		convOf := func(acctID string, n int) string {
			var id string
			apitest.Eventually(t, 20*time.Second, func() bool {
				for _, c := range w.Admin.InboxIDs(t, "ALL", map[string]any{"channel": "FACEBOOK"}) {
					if !seen[c] {
						id = c
					}
				}
				return id != ""
			}, "Messenger conversation %d", n)
			seen[id] = true
			return id
		}
		inbound(hook, "556677889900", "PSID-3DAYS", "m_a", time.Now().Add(-72*time.Hour))
		tagged := convOf(acct, 1)
		inbound(hook, "556677889900", "PSID-9DAYS", "m_b", time.Now().Add(-9*24*time.Hour))
		tooOld := convOf(acct, 2)
		inbound(plainHook, "556677889911", "PSID-PLAIN", "m_c", time.Now().Add(-72*time.Hour))
		untagged := convOf(plain, 3)

		r1 := reply(t, w.Ana, tagged, "Sorry for the wait: here is your answer.")
		sends := api.waitSends(1)
		if sends[0].Path != "/v21.0/me/messages" || sends[0].Query.Get("access_token") != "EAAP-tag" {
			t.Fatalf("send call: %s %v", sends[0].Path, sends[0].Query)
		}
		jsonEqual(t, "tagged message", sends[0].JSON, map[string]any{
			"recipient": map[string]any{"id": "PSID-3DAYS"}, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT",
			"message": map[string]any{"text": "Sorry for the wait: here is your answer."},
		})
		waitStatus(t, w.Ana, tagged, r1, "SENT")
		refused(t, w.Ana.Send(t, tooOld, "late"), "BAD_USER_INPUT", "7 days")
		refused(t, w.Ana.Send(t, untagged, "late"), "BAD_USER_INPUT", "humanAgentTag")

		// Starting: not by phone number; by contact, the open conversation.
		refused(t, w.Ana.C.Op(t, "StartConversation", map[string]any{"input": map[string]any{
			"channelAccountID": acct, "to": "+14155550123", "body": "hi"}}), "BAD_USER_INPUT", "contactID")
		c, err := w.S.App.DB.Client.Conversation.Get(t.Context(), apitest.Atoi(t, tagged))
		if err != nil {
			t.Fatal(err)
		}
		out := start(t, w.Ana, map[string]any{"channelAccountID": acct, "contactID": strconv.Itoa(*c.ContactID), "body": "One more thing."})
		if out.StartConversation.Conversation.ID != tagged {
			t.Fatalf("a start to the contact opened another conversation: %+v", out)
		}
		sends = api.waitSends(2)
		if sends[1].JSON["tag"] != "HUMAN_AGENT" {
			t.Fatalf("the start outside 24 hours was not tagged: %v", sends[1].JSON)
		}
		// A contact who never wrote to the page cannot be reached there.
		refused(t, w.Ana.C.Op(t, "StartConversation", map[string]any{"input": map[string]any{
			"channelAccountID": plain, "contactID": strconv.Itoa(*c.ContactID), "body": "hi"}}), "BAD_USER_INPUT", "never written")
	})
}
