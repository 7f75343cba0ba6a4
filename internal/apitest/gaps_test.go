package apitest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/contacts"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// Tests of the gaps of issue 12 closed after it landed: template headers
// and buttons, sync marking what Meta no longer lists, and the rest.

type gapsTemplate struct {
	ID, Name, Language, Category, Body, Status string
	Header                                     *struct {
		Format       string
		Text         *string
		Placeholders int
	}
	Buttons []struct {
		Type, Text       string
		URL, PhoneNumber *string
		Placeholders     int
	}
}

// gapsRefused wants r refused with BAD_USER_INPUT naming field, its
// message containing each of want.
func gapsRefused(t *testing.T, r *apitest.Response, field string, want ...string) {
	t.Helper()
	refused(t, r, "BAD_USER_INPUT", want...)
	if got, _ := r.Errors[0].Extensions["field"].(string); got != field {
		t.Fatalf("refusal names field %q, want %q: %s", got, field, r.Raw)
	}
}

func gapsTemplates(t *testing.T, a *apitest.Agent, acct string) map[string]gapsTemplate {
	t.Helper()
	var out struct{ WhatsappTemplates []gapsTemplate }
	a.C.MustOp(t, "WhatsAppTemplatesFull", map[string]any{"channelAccountID": acct}, &out)
	m := map[string]gapsTemplate{}
	for _, x := range out.WhatsappTemplates {
		m[x.Name+"/"+x.Language] = x
	}
	return m
}

// TestGapsWhatsAppTemplateHeaderButtons: an admin registers templates with
// a header and buttons as the Cloud API allows them (and is refused what it
// does not allow, naming the field); agents see them; a message must give
// exactly the parameters the header and buttons take; a media header goes
// out with its link in the header component.
func TestGapsWhatsAppTemplateHeaderButtons(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		_, w := startChannels(t, b)
		api := newProvider(t)
		acct, _ := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
			"phoneNumberID": "106540352242922", "accessToken": "EAAG-token", "appSecret": "wa-secret",
			"verifyToken": "v", "apiBaseURL": api.URL(),
		})
		create := func(name string, header map[string]any, buttons ...map[string]any) *apitest.Response {
			in := map[string]any{"name": name, "language": "en", "category": "UTILITY", "body": "Hi {{1}}"}
			if header != nil {
				in["header"] = header
			}
			if buttons != nil {
				in["buttons"] = buttons
			}
			return w.Admin.C.Op(t, "CreateWhatsAppTemplateFull", map[string]any{"channelAccountID": acct, "input": in})
		}
		urlButton := func(u string) map[string]any { return map[string]any{"type": "URL", "text": "Open", "url": u} }
		for _, c := range []struct {
			header  map[string]any
			buttons []map[string]any
			want    []string
		}{
			{map[string]any{"format": "LOCATION"}, nil, []string{"header.format", "TEXT, IMAGE"}},
			{map[string]any{"format": "TEXT", "text": "A {{1}} and {{2}}"}, nil, []string{"header.text", "one placeholder at most"}},
			{map[string]any{"format": "TEXT"}, nil, []string{"header.text", "1 to 60"}},
			{map[string]any{"format": "IMAGE", "text": "x"}, nil, []string{"header.text", "no text"}},
			{nil, []map[string]any{urlButton("https://x.example/{{1}}/a")}, []string{"buttons[0].url", "only at the end"}},
			{nil, []map[string]any{urlButton("ftp://x.example/")}, []string{"buttons[0].url", "http"}},
			{nil, []map[string]any{{"type": "PHONE_NUMBER", "text": "Call", "phoneNumber": "555"}}, []string{"buttons[0].phoneNumber", "E.164"}},
			{nil, []map[string]any{{"type": "COPY_CODE", "text": "Copy"}}, []string{"buttons[0].type", "QUICK_REPLY, URL"}},
			{nil, []map[string]any{{"type": "QUICK_REPLY", "text": ""}}, []string{"buttons[0].text", "label"}},
			{nil, []map[string]any{urlButton("https://a.example/"), urlButton("https://b.example/"), urlButton("https://c.example/")},
				[]string{"buttons[2]", "2 URL buttons"}},
		} {
			gapsRefused(t, create("bad_one", c.header, c.buttons...), c.want[0], c.want[1:]...)
		}
		if _, ok := gapsTemplates(t, w.Ana, acct)["bad_one/en"]; ok {
			t.Fatalf("a refused template was stored")
		}

		r := create("promo_img", map[string]any{"format": "image"},
			map[string]any{"type": "URL", "text": "Shop", "url": "https://shop.example/p/{{1}}"},
			map[string]any{"type": "PHONE_NUMBER", "text": "Call us", "phoneNumber": "+14155550100"},
			map[string]any{"type": "QUICK_REPLY", "text": "Stop"})
		if len(r.Errors) > 0 {
			t.Fatalf("create: %s", r.Raw)
		}
		got := gapsTemplates(t, w.Ana, acct)["promo_img/en"]
		if got.Header == nil || got.Header.Format != "IMAGE" || got.Header.Text != nil || got.Header.Placeholders != 1 ||
			len(got.Buttons) != 3 || got.Buttons[0].Type != "URL" || got.Buttons[0].Placeholders != 1 ||
			got.Buttons[0].URL == nil || *got.Buttons[0].URL != "https://shop.example/p/{{1}}" ||
			got.Buttons[1].PhoneNumber == nil || *got.Buttons[1].PhoneNumber != "+14155550100" || got.Buttons[1].Placeholders != 0 ||
			got.Buttons[2].Type != "QUICK_REPLY" || got.Buttons[2].URL != nil {
			t.Fatalf("listed: %+v", got)
		}

		startWith := func(tpl map[string]any) *apitest.Response {
			tpl["name"], tpl["language"] = "promo_img", "en"
			return w.Ana.C.Op(t, "StartConversation", map[string]any{"input": map[string]any{
				"channelAccountID": acct, "to": "+34600111444", "whatsappTemplate": tpl}})
		}
		btn := func(i int, v string) map[string]any { return map[string]any{"index": i, "value": v} }
		for _, c := range []struct {
			tpl  map[string]any
			want []string
		}{
			{map[string]any{"parameters": []string{"Ana"}, "buttonParameters": []any{btn(0, "x")}},
				[]string{"whatsappTemplate.headerMediaURL", "IMAGE header"}},
			{map[string]any{"parameters": []string{"Ana"}, "headerMediaURL": "http://cdn.example/a.png", "buttonParameters": []any{btn(0, "x")}},
				[]string{"whatsappTemplate.headerMediaURL", "https"}},
			{map[string]any{"parameters": []string{"Ana"}, "headerParameter": "x", "headerMediaURL": "https://cdn.example/a.png",
				"buttonParameters": []any{btn(0, "x")}}, []string{"whatsappTemplate.headerParameter", "no header placeholder"}},
			{map[string]any{"parameters": []string{"Ana"}, "headerMediaURL": "https://cdn.example/a.png"},
				[]string{"whatsappTemplate.buttonParameters", "button 0", "none given"}},
			{map[string]any{"parameters": []string{"Ana"}, "headerMediaURL": "https://cdn.example/a.png",
				"buttonParameters": []any{btn(0, "x"), btn(1, "y")}}, []string{"whatsappTemplate.buttonParameters", "button 1", "takes no parameter"}},
			{map[string]any{"parameters": []string{"Ana"}, "headerMediaURL": "https://cdn.example/a.png",
				"buttonParameters": []any{btn(0, "x"), btn(3, "y")}}, []string{"whatsappTemplate.buttonParameters", "no button 3"}},
			{map[string]any{"headerMediaURL": "https://cdn.example/a.png", "buttonParameters": []any{btn(0, "x")}},
				[]string{"whatsappTemplate.parameters", "takes 1 parameters, 0 given"}},
		} {
			gapsRefused(t, startWith(c.tpl), c.want[0], c.want[1:]...)
		}
		api.mu.Lock()
		n := len(api.sends)
		api.mu.Unlock()
		if n != 0 {
			t.Fatalf("a refused template was sent")
		}

		r = startWith(map[string]any{"parameters": []string{"Ana"}, "headerMediaURL": "https://cdn.example/a.png",
			"buttonParameters": []any{btn(0, "sku-1"), btn(2, "STOP-PROMO")}})
		if len(r.Errors) > 0 {
			t.Fatalf("start: %s", r.Raw)
		}
		sends := api.waitSends(1)
		jsonEqual(t, "media header template", sends[0].JSON, map[string]any{
			"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34600111444", "type": "template",
			"template": map[string]any{"name": "promo_img", "language": map[string]any{"code": "en"},
				"components": []any{
					map[string]any{"type": "header", "parameters": []any{
						map[string]any{"type": "image", "image": map[string]any{"link": "https://cdn.example/a.png"}}}},
					map[string]any{"type": "body", "parameters": []any{map[string]any{"type": "text", "text": "Ana"}}},
					map[string]any{"type": "button", "sub_type": "url", "index": "0",
						"parameters": []any{map[string]any{"type": "text", "text": "sku-1"}}},
					map[string]any{"type": "button", "sub_type": "quick_reply", "index": "2",
						"parameters": []any{map[string]any{"type": "payload", "payload": "STOP-PROMO"}}},
				}},
		})

		// The header's image as the message's attachment: sent as its
		// signed link, which serves the file.
		img := pngImage()
		att := upload(t, w.Ana, "banner.png", img)
		withFile := func(tpl map[string]any, ids ...string) *apitest.Response {
			tpl["name"], tpl["language"] = "promo_img", "en"
			return w.Ana.C.Op(t, "StartConversation", map[string]any{"input": map[string]any{
				"channelAccountID": acct, "to": "+34600111445", "whatsappTemplate": tpl, "attachmentIDs": ids}})
		}
		gapsRefused(t, withFile(map[string]any{"parameters": []string{"Bo"}, "headerMediaURL": "https://cdn.example/a.png",
			"buttonParameters": []any{btn(0, "x")}}, att), "whatsappTemplate.headerMediaURL", "not both")
		r = withFile(map[string]any{"parameters": []string{"Bo"}, "buttonParameters": []any{btn(0, "sku-2")}}, att)
		if len(r.Errors) > 0 {
			t.Fatalf("start with the header's file attached: %s", r.Raw)
		}
		sends = api.waitSends(2)
		comps, _ := sends[1].JSON["template"].(map[string]any)["components"].([]any)
		var link string
		if len(comps) == 3 {
			h, _ := comps[0].(map[string]any)
			if ps, _ := h["parameters"].([]any); h["type"] == "header" && len(ps) == 1 {
				p, _ := ps[0].(map[string]any)
				if p["type"] == "image" {
					link, _ = p["image"].(map[string]any)["link"].(string)
				}
			}
		}
		if link == "" {
			t.Fatalf("the attachment is not the header's image: %v", sends[1].JSON)
		}
		resp, err := http.Get(link)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(body, img) {
			t.Fatalf("the header link serves %d, %d bytes", resp.StatusCode, len(body))
		}
	})
}

// TestGapsSyncMarksUnlisted: a sync stores the listed templates' headers
// and buttons; a template the provider no longer lists (here one
// registered by hand) becomes DELETED, stays listed, and cannot be sent; a
// failed sync changes nothing, DELETED marks included.
func TestGapsSyncMarksUnlisted(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		_, w := startChannels(t, b)
		g := newGraphTemplates(t)
		acct, _ := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
			"phoneNumberID": "106540352242999", "accessToken": "EAAG-sync", "appSecret": "s",
			"verifyToken": "v", "apiBaseURL": g.srv.URL, "businessAccountID": "987654321",
		})
		w.Admin.C.MustOp(t, "CreateWhatsAppTemplate", map[string]any{"channelAccountID": acct, "input": map[string]any{
			"name": "gone_soon", "language": "en", "category": "UTILITY", "body": "Bye {{1}}"}}, nil)
		send := func() *apitest.Response {
			return w.Ana.C.Op(t, "StartConversation", map[string]any{"input": map[string]any{
				"channelAccountID": acct, "to": "+34600111555",
				"whatsappTemplate": map[string]any{"name": "gone_soon", "language": "en", "parameters": []string{"Ana"}}}})
		}

		g.mu.Lock()
		g.failPage2 = true
		g.mu.Unlock()
		refused(t, w.Admin.C.Op(t, "SyncWhatsAppTemplates", map[string]any{"channelAccountID": acct}), "PROVIDER_ERROR")
		if got := gapsTemplates(t, w.Ana, acct); len(got) != 1 || got["gone_soon/en"].Status != "APPROVED" {
			t.Fatalf("a failed sync changed templates: %+v", got)
		}
		g.mu.Lock()
		g.failPage2 = false
		g.mu.Unlock()
		w.Admin.C.MustOp(t, "SyncWhatsAppTemplates", map[string]any{"channelAccountID": acct}, nil)
		got := gapsTemplates(t, w.Ana, acct)
		if len(got) != 4 || got["gone_soon/en"].Status != "DELETED" || got["welcome/pt_BR"].Status != "APPROVED" {
			t.Fatalf("after sync: %+v", got)
		}
		or := got["order_ready/en_US"]
		if or.Header == nil || or.Header.Format != "TEXT" || or.Header.Text == nil || *or.Header.Text != "Your order" ||
			or.Header.Placeholders != 0 || len(or.Buttons) != 1 || or.Buttons[0].Type != "QUICK_REPLY" || or.Buttons[0].Text != "Thanks" {
			t.Fatalf("synced header and buttons: %+v", or)
		}
		refused(t, send(), "BAD_USER_INPUT", "DELETED")
	})
}

// TestGapsStartAfterMerge: startConversation with the id of a contact
// merged away reaches the survivor (through a chain of merges too); a
// survivor deleted since is NOT_FOUND; starts running while the contact is
// merged all succeed and meet in one conversation of the survivor.
func TestGapsStartAfterMerge(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		_, w := startChannels(t, b)
		api := newProvider(t)
		sms, _ := createAccount(t, w, "SMS", "sms", map[string]any{
			"accountSID": "AC11111111111111111111111111111111", "authToken": "auth-token", "fromNumber": "+14155550100", "apiBaseURL": api.URL(),
		})
		startTo := func(contactID, body string) *apitest.Response {
			return w.Ana.C.Op(t, "StartConversation", map[string]any{"input": map[string]any{
				"channelAccountID": sms, "contactID": contactID, "body": body}})
		}
		merge := func(into, from string) {
			w.Admin.C.MustOp(t, "MergeContacts", map[string]any{"into": into, "from": from}, nil)
		}
		a := createContact(t, w.Ana, map[string]any{"displayName": "Ana Old", "phone": "+34611000001"})
		bb := createContact(t, w.Ana, map[string]any{"displayName": "Bea", "phone": "+34611000002"})
		c := createContact(t, w.Ana, map[string]any{"displayName": "Cris"})
		merge(bb.ID, a.ID)
		var out started
		r := startTo(a.ID, "hello after the merge")
		if len(r.Errors) > 0 {
			t.Fatalf("start with a merged contact: %s", r.Raw)
		}
		r.Decode(t, &out)
		if got := out.StartConversation.Conversation.Contact.ID; got != bb.ID {
			t.Fatalf("the start reached contact %s, want the survivor %s", got, bb.ID)
		}
		conv := out.StartConversation.Conversation.ID
		// A chain: Bea merged into Cris; Ana Old's id now leads to Cris, in
		// the same conversation (it moved with Bea's identity).
		merge(c.ID, bb.ID)
		r = startTo(a.ID, "hello after two merges")
		if len(r.Errors) > 0 {
			t.Fatalf("start through a chain of merges: %s", r.Raw)
		}
		r.Decode(t, &out)
		if out.StartConversation.Conversation.Contact.ID != c.ID || out.StartConversation.Conversation.ID != conv {
			t.Fatalf("start through a chain: contact %s in %s, want %s in %s",
				out.StartConversation.Conversation.Contact.ID, out.StartConversation.Conversation.ID, c.ID, conv)
		}
		w.Admin.C.MustOp(t, "DeleteContact", map[string]any{"id": c.ID}, nil)
		refused(t, startTo(a.ID, "nobody left"), "NOT_FOUND")
		refused(t, startTo(bb.ID, "nobody left"), "NOT_FOUND")

		// Starts racing a merge: none fails, all in one conversation, whose
		// contact is the survivor (who took the merged one's number).
		for round := 0; round < 3; round++ {
			d := createContact(t, w.Ana, map[string]any{"displayName": "Dario", "phone": fmt.Sprintf("+3461200000%d", round)})
			e := createContact(t, w.Ana, map[string]any{"displayName": "Eva"})
			const n = 6
			var wg sync.WaitGroup
			raws := make([]string, n)
			convs := make([]string, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := startTo(d.ID, fmt.Sprintf("round %d start %d", round, i))
					if len(r.Errors) > 0 {
						raws[i] = string(r.Raw)
						return
					}
					var o started
					r.Decode(t, &o)
					convs[i] = o.StartConversation.Conversation.ID
				}()
			}
			wg.Add(1)
			go func() { defer wg.Done(); merge(e.ID, d.ID) }()
			wg.Wait()
			for i := range raws {
				if raws[i] != "" || convs[i] != convs[0] {
					t.Fatalf("round %d: starts racing the merge: %v %v", round, convs, raws)
				}
			}
			if got := customer(t, w.Admin, convs[0]); got == nil || got.Contact == nil || got.Contact.ID != e.ID || len(got.Messages.Edges) != n {
				t.Fatalf("round %d: the conversation after the merge: %+v", round, got)
			}
		}
	})
}

// TestGapsPhoneKeyBackfill: contacts written before the unique phone key
// existed (rows without it) get it from their normalised phone, the
// earliest of those sharing a number only; a number another contact holds
// and a phone that is no number stay unkeyed. Two backfills at once key
// each contact once, a third changes nothing; afterwards a WhatsApp sender
// with a backfilled number joins that contact.
func TestGapsPhoneKeyBackfill(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		db := s.App.DB.Client
		ctx := context.Background()
		old := func(name, ph string) *ent.Contact {
			return db.Contact.Create().SetDisplayName(name).SetPhone(ph).SetKnown(true).SaveX(ctx)
		}
		first := old("First", "+34 613 000 001")
		second := old("Second", "0034613000001")
		held := old("Held", "+34613000002")
		holder := db.Contact.Create().SetDisplayName("Holder").SetPhone("+34613000002").SetPhoneKey("+34613000002").SaveX(ctx)
		bad := old("Bad", "call me")
		us := old("Us", "+1 (415) 555-0100")

		var wg sync.WaitGroup
		results := make([]contacts.Backfilled, 2)
		errs := make([]error, 2)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = s.App.Contacts.BackfillPhoneKeys(ctx)
			}()
		}
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("backfill: %v %v", errs[0], errs[1])
		}
		if k := results[0].Keyed + results[1].Keyed; k != 2 {
			t.Fatalf("two backfills keyed %d contacts, want 2: %+v", k, results)
		}
		key := func(c *ent.Contact) string {
			got := db.Contact.GetX(ctx, c.ID)
			if got.PhoneKey == nil {
				return ""
			}
			return *got.PhoneKey
		}
		for _, c := range []struct {
			c    *ent.Contact
			want string
		}{{first, "+34613000001"}, {second, ""}, {held, ""}, {holder, "+34613000002"}, {bad, ""}, {us, "+14155550100"}} {
			if got := key(c.c); got != c.want {
				t.Fatalf("contact %s: key %q, want %q", c.c.DisplayName, got, c.want)
			}
		}
		again, err := s.App.Contacts.BackfillPhoneKeys(ctx)
		if err != nil || again != (contacts.Backfilled{Shared: 2, Invalid: 1}) {
			t.Fatalf("a third backfill: %+v %v", again, err)
		}

		conv := w.Inbound(t, w.WhatsApp, "34613000001", "hello, it's me")
		if got := customer(t, w.Admin, conv); got == nil || got.Contact == nil || got.Contact.ID != strconv.Itoa(first.ID) {
			t.Fatalf("the sender did not join the backfilled contact: %+v", got)
		}
	})
}

// gapsInboxEvent is the InboxEventsContact selection of the contract.
type gapsInboxEvent struct {
	Kind           string
	ConversationID string
	Conversation   *struct {
		ID      string
		Owner   *struct{ ID string }
		Contact *struct{ ID string }
	}
	Message *struct{ ID, Body string }
}

// gapsAwait reads ws's inbox events until one about conversation conv of
// kind kind, and returns it; an event of another kind about conv before it
// fails the test, unless it is one of skip.
func gapsAwait(t *testing.T, ws *apitest.WS, who, conv, kind string, skip ...string) gapsInboxEvent {
	t.Helper()
	for {
		data := result(t, ws, "inbox", eventTimeout)
		var out struct{ InboxEvents *gapsInboxEvent }
		if err := json.Unmarshal(data, &out); err != nil || out.InboxEvents == nil {
			t.Fatalf("%s: not an inboxEvents result: %s", who, data)
		}
		ev := *out.InboxEvents
		if ev.ConversationID != conv {
			continue
		}
		if ev.Kind == kind {
			return ev
		}
		if !slices.Contains(skip, ev.Kind) {
			t.Fatalf("%s: waiting for %s of %s, got %s", who, kind, conv, data)
		}
	}
}

// TestGapsRealtimeContacts: blockContact takes the contact's conversation
// out of the inboxes of the agents who saw it (REMOVED), unblockContact
// brings it back (CONVERSATION_CREATED, with the conversation and its
// newest message), and mergeContacts tells whoever sees a moved
// conversation (CONVERSATION_UPDATED, with the surviving contact); an
// agent who sees none of it hears nothing.
func TestGapsRealtimeContacts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		socks := map[string]*apitest.WS{}
		for name, a := range map[string]*apitest.Agent{"Ana": w.Ana, "Ben": w.Ben, "Dan": w.Dan} {
			socks[name] = dialAs(t, s, apitest.TransportWS, a.Token)
			socks[name].SubscribeOp(t, "inbox", "InboxEventsContact", nil)
		}
		waitSubscribed(t, s, 3)

		const first = "hola, soy X"
		conv := w.Inbound(t, w.WhatsApp, "34600777001", first)
		x := customer(t, w.Admin, conv).Contact.ID
		for _, who := range []string{"Ana", "Ben"} {
			gapsAwait(t, socks[who], who, conv, "CONVERSATION_CREATED", "MESSAGE_ADDED", "CONVERSATION_UPDATED")
		}

		w.Admin.C.MustOp(t, "BlockContact", map[string]any{"id": x}, nil)
		for _, who := range []string{"Ana", "Ben"} {
			ev := gapsAwait(t, socks[who], who, conv, "REMOVED", "MESSAGE_ADDED", "CONVERSATION_UPDATED", "CONVERSATION_CREATED")
			if ev.Conversation != nil || ev.Message != nil {
				t.Fatalf("%s: REMOVED carries the conversation: %+v", who, ev)
			}
		}
		w.Admin.C.MustOp(t, "UnblockContact", map[string]any{"id": x}, nil)
		for _, who := range []string{"Ana", "Ben"} {
			ev := gapsAwait(t, socks[who], who, conv, "CONVERSATION_CREATED")
			if ev.Conversation == nil || ev.Conversation.ID != conv || ev.Conversation.Contact == nil || ev.Conversation.Contact.ID != x ||
				ev.Message == nil || ev.Message.Body != first {
				t.Fatalf("%s: the unblocked conversation: %+v", who, ev)
			}
		}

		// Y writes; Ben takes the conversation (Ana loses it); Y is merged
		// into X: Ben, who sees it, hears it moved to X; Ana nothing.
		other := w.Inbound(t, w.WhatsApp, "34600777002", "hola, soy Y")
		y := customer(t, w.Admin, other).Contact.ID
		for _, who := range []string{"Ana", "Ben"} {
			gapsAwait(t, socks[who], who, other, "CONVERSATION_CREATED", "MESSAGE_ADDED", "CONVERSATION_UPDATED")
		}
		w.Ben.C.MustOp(t, "TakeConversation", map[string]any{"id": other}, nil)
		gapsAwait(t, socks["Ana"], "Ana", other, "REMOVED", "MESSAGE_ADDED", "CONVERSATION_UPDATED", "CONVERSATION_CREATED")
		gapsAwait(t, socks["Ben"], "Ben", other, "CONVERSATION_UPDATED", "MESSAGE_ADDED", "CONVERSATION_CREATED")

		w.Admin.C.MustOp(t, "MergeContacts", map[string]any{"into": x, "from": y}, nil)
		ev := gapsAwait(t, socks["Ben"], "Ben", other, "CONVERSATION_UPDATED")
		if ev.Conversation == nil || ev.Conversation.Contact == nil || ev.Conversation.Contact.ID != x ||
			ev.Conversation.Owner == nil || ev.Conversation.Owner.ID != w.Ben.ID {
			t.Fatalf("Ben: the merged conversation: %+v", ev)
		}
		socks["Ana"].ExpectNone(t, "inbox", 300*time.Millisecond)
		socks["Dan"].ExpectNone(t, "inbox", 300*time.Millisecond)
	})
}
