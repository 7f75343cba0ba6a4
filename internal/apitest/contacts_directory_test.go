package apitest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent/auditentry"
	"github.com/parleyhq/parley/ent/offer"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/channels/twilio"
	"github.com/parleyhq/parley/internal/conversations"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// dirContact is a contact as the Contacts operation returns it.
type dirContact struct {
	ID, DisplayName string
	Email, Phone    *string
	Notes           *string
	Blocked         bool
	Identities      []struct{ Channel, ExternalID string }
}

// directory runs the Contacts operation and returns the names found.
func directory(t *testing.T, a *apitest.Agent, vars map[string]any) ([]dirContact, bool, string) {
	t.Helper()
	var out struct {
		Contacts struct {
			TotalCount int
			Edges      []struct{ Node dirContact }
			PageInfo   struct {
				HasNextPage bool
				EndCursor   string
			}
		}
	}
	a.C.MustOp(t, "Contacts", vars, &out)
	var cs []dirContact
	for _, e := range out.Contacts.Edges {
		cs = append(cs, e.Node)
	}
	return cs, out.Contacts.PageInfo.HasNextPage, out.Contacts.PageInfo.EndCursor
}

func names(cs []dirContact) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.DisplayName)
	}
	return out
}

// wantRefusal wants exactly one error with code and, when given, field.
func wantRefusal(t *testing.T, r *apitest.Response, code, field, what string) {
	t.Helper()
	if len(r.Errors) != 1 || r.Code() != code {
		t.Fatalf("%s: want one %s, got %s", what, code, r.Raw)
	}
	if got, _ := r.Errors[0].Extensions["field"].(string); field != "" && got != field {
		t.Fatalf("%s: want field %q, got %s", what, field, r.Raw)
	}
}

func createContact(t *testing.T, a *apitest.Agent, in map[string]any) dirContact {
	t.Helper()
	var out struct{ CreateContact dirContact }
	a.C.MustOp(t, "CreateContact", map[string]any{"input": in}, &out)
	return out.CreateContact
}

// convCustomer is what a conversation says of its customer.
type convCustomer struct {
	Contact        *struct{ ID, DisplayName string }
	ContactDeleted bool
	UnknownContact bool
	Messages       struct {
		Edges []struct{ Node struct{ Body string } }
	}
}

const convCustomerQuery = `query($id: ID!) { conversation(id: $id) { contact { id displayName } contactDeleted unknownContact
  messages(last: 100) { edges { node { body } } } } }`

// customer reads a conversation's customer; nil when the caller may not
// see it.
func customer(t *testing.T, a *apitest.Agent, convID string) *convCustomer {
	t.Helper()
	r := a.C.Query(t, convCustomerQuery, map[string]any{"id": convID})
	if r.Code() == "NOT_FOUND" {
		return nil
	}
	if len(r.Errors) > 0 {
		t.Fatalf("conversation %s: %s", convID, r.Raw)
	}
	var out struct{ Conversation *convCustomer }
	r.Decode(t, &out)
	return out.Conversation
}

func contactInfo(t *testing.T, a *apitest.Agent, id string) (*contactInfoOut, *apitest.Response) {
	t.Helper()
	r := a.C.Op(t, "ContactInfo", map[string]any{"id": id})
	if len(r.Errors) > 0 {
		return nil, r
	}
	var out contactInfoOut
	r.Decode(t, &out)
	return &out, r
}

// TestContactsDirectory: create and update with validation, the directory
// searched by name, email, phone and external ids, accents and case aside,
// and paged.
func TestContactsDirectory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})

		jose := createContact(t, w.Ana, map[string]any{"displayName": "José Álvarez", "email": "jose@example.com",
			"phone": "+34 600 111 222", "notes": "Prefers mornings"})
		if jose.Phone == nil || *jose.Phone != "+34600111222" || jose.Notes == nil || *jose.Notes != "Prefers mornings" || jose.Blocked {
			t.Fatalf("created: %+v", jose)
		}
		createContact(t, w.Ben, map[string]any{"displayName": "Zoë Müller", "email": "zoe@example.org"})
		createContact(t, w.Ben, map[string]any{"displayName": "Brian Oduya", "phone": "0014155550142"})
		// An unknown sender is in the directory too, found by its WhatsApp id
		// and the profile name WhatsApp gave.
		w.Inbound(t, w.WhatsApp, "5511987654321", "oi")

		for _, tc := range []struct {
			in          map[string]any
			code, field string
		}{
			{map[string]any{"email": "x@example.com"}, "BAD_USER_INPUT", "displayName"},
			{map[string]any{"displayName": "  "}, "BAD_USER_INPUT", "displayName"},
			{map[string]any{"displayName": strings.Repeat("a", 201)}, "BAD_USER_INPUT", "displayName"},
			{map[string]any{"displayName": "X", "email": "not-an-email"}, "BAD_USER_INPUT", "email"},
			{map[string]any{"displayName": "X", "email": "Eve <eve@example.com>"}, "BAD_USER_INPUT", "email"},
			{map[string]any{"displayName": "X", "email": strings.Repeat("a", 320) + "@example.com"}, "BAD_USER_INPUT", "email"},
			{map[string]any{"displayName": "X", "phone": "600 111 222"}, "BAD_USER_INPUT", "phone"},
			{map[string]any{"displayName": "X", "phone": "+34 600 abc"}, "BAD_USER_INPUT", "phone"},
			{map[string]any{"displayName": "X", "notes": strings.Repeat("n", 5001)}, "BAD_USER_INPUT", "notes"},
			// One number is one contact, however it is typed.
			{map[string]any{"displayName": "X", "phone": "0034600111222"}, "CONFLICT", "phone"},
		} {
			wantRefusal(t, w.Cleo.C.Op(t, "CreateContact", map[string]any{"input": tc.in}), tc.code, tc.field, fmt.Sprint(tc.in))
		}

		for _, tc := range []struct {
			search string
			want   []string
		}{
			{"jose", []string{"José Álvarez"}},
			{"ÁLVAREZ", []string{"José Álvarez"}},
			{"zoe muller", []string{"Zoë Müller"}},
			{"EXAMPLE.ORG", []string{"Zoë Müller"}},
			{"600111", []string{"José Álvarez"}},
			{"+14155550142", []string{"Brian Oduya"}},
			{"987654", []string{"Customer 5511987654321"}},
			{"customer 551", []string{"Customer 5511987654321"}},
			{"example", []string{"José Álvarez", "Zoë Müller"}},
			{"50%", []string{}},
			{"nobody", []string{}},
		} {
			cs, _, _ := directory(t, w.Dan, map[string]any{"search": tc.search})
			if got := names(cs); !slices.Equal(got, tc.want) {
				t.Errorf("search %q: %v, want %v", tc.search, got, tc.want)
			}
		}
		wantRefusal(t, w.Dan.C.Op(t, "Contacts", map[string]any{"search": "a\x00b"}), "BAD_USER_INPUT", "search", "NUL in search")

		// The whole directory by name, two at a time.
		var all []string
		var after any
		for page := 0; page < 5; page++ {
			cs, next, cursor := directory(t, w.Dan, map[string]any{"first": 2, "after": after})
			all = append(all, names(cs)...)
			if !next {
				break
			}
			after = cursor
		}
		if want := []string{"Brian Oduya", "Customer 5511987654321", "José Álvarez", "Zoë Müller"}; !slices.Equal(all, want) {
			t.Fatalf("directory pages: %v, want %v", all, want)
		}

		// Update: given fields change, "" clears, absent ones stay; the
		// search follows.
		var up struct{ UpdateContact dirContact }
		w.Cleo.C.MustOp(t, "UpdateContact", map[string]any{"id": jose.ID, "input": map[string]any{
			"displayName": "José Ávila", "email": "", "notes": "Call after 10"}}, &up)
		got := up.UpdateContact
		if got.DisplayName != "José Ávila" || got.Email != nil || got.Phone == nil || *got.Phone != "+34600111222" || *got.Notes != "Call after 10" {
			t.Fatalf("updated: %+v", got)
		}
		if cs, _, _ := directory(t, w.Dan, map[string]any{"search": "alvarez"}); len(cs) != 0 {
			t.Fatalf("the old name still matches: %v", names(cs))
		}
		if cs, _, _ := directory(t, w.Dan, map[string]any{"search": "avila"}); len(cs) != 1 {
			t.Fatalf("the new name does not match: %v", names(cs))
		}
		wantRefusal(t, w.Cleo.C.Op(t, "UpdateContact", map[string]any{"id": jose.ID, "input": map[string]any{"phone": "+1 415 555 0142"}}),
			"CONFLICT", "phone", "someone else's number")
		wantRefusal(t, w.Cleo.C.Op(t, "UpdateContact", map[string]any{"id": jose.ID, "input": map[string]any{"displayName": ""}}),
			"BAD_USER_INPUT", "displayName", "clearing the name")
		wantRefusal(t, w.Cleo.C.Op(t, "UpdateContact", map[string]any{"id": "999999", "input": map[string]any{"notes": "x"}}),
			"NOT_FOUND", "", "unknown contact")
		// The refusals changed nothing.
		if info, _ := contactInfo(t, w.Dan, jose.ID); info.Contact.DisplayName != "José Ávila" || *info.Contact.Phone != "+34600111222" {
			t.Fatalf("after refusals: %+v", info.Contact)
		}
		if r := s.Client().Op(t, "Contacts", nil); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("anonymous directory: %s", r.Raw)
		}
	})
}

// waInbound is a WhatsApp Cloud API webhook with one text message.
func waInboundFrom(phoneNumberID, from, name, wamid, text string) []byte {
	return mustMarshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
			"messaging_product": "whatsapp",
			"metadata":          map[string]any{"display_phone_number": "15550783881", "phone_number_id": phoneNumberID},
			"contacts":          []any{map[string]any{"wa_id": from, "profile": map[string]any{"name": name}}},
			"messages": []any{map[string]any{"from": from, "id": wamid, "timestamp": strconv.FormatInt(time.Now().Unix(), 10),
				"type": "text", "text": map[string]any{"body": text}}},
		}}},
	}}})
}

// channelHooks connects a WhatsApp and an SMS account to provider doubles
// and returns functions that post their webhooks as the providers do.
func channelHooks(t *testing.T, w *apitest.Workspace) (wa func(from, name, wamid, text string), sms func(from, sid, text string), waID, smsID string) {
	api := newProvider(t)
	waID, waHook := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
		"phoneNumberID": "106540352242922", "accessToken": "EAAG-live-token", "appSecret": "meta-app-secret",
		"verifyToken": "my-verify-token", "apiBaseURL": api.URL(),
	})
	smsID, smsHook := createAccount(t, w, "SMS", "sms", map[string]any{
		"accountSID": "AC11111111111111111111111111111111", "authToken": "twilio-auth-token",
		"fromNumber": "+14155550100", "apiBaseURL": api.URL(),
	})
	wa = func(from, name, wamid, text string) {
		t.Helper()
		deliverMeta(t, waHook, "meta-app-secret", waInboundFrom("106540352242922", from, name, wamid, text))
	}
	sms = func(from, sid, text string) {
		t.Helper()
		form := url.Values{"MessageSid": {sid}, "AccountSid": {"AC11111111111111111111111111111111"},
			"From": {from}, "To": {"+14155550100"}, "Body": {text}, "NumMedia": {"0"},
			"NumSegments": {"1"}, "SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"}}
		deliver(t, smsHook, "application/x-www-form-urlencoded", []byte(form.Encode()),
			http.Header{"X-Twilio-Signature": {twilio.Signature("twilio-auth-token", smsHook, form)}})
	}
	return wa, sms, waID, smsID
}

// waitConv waits for a conversation on channel in the admin's
// ALL view whose customer passes ok.
func waitConv(t *testing.T, w *apitest.Workspace, channel string, ok func(c *convCustomer) bool) (string, *convCustomer) {
	t.Helper()
	var id string
	var got *convCustomer
	apitest.Eventually(t, 20*time.Second, func() bool {
		// Not InboxIDs: messages arrive between its count and its page.
		var out struct {
			Inbox struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
		w.Admin.C.MustOp(t, "Inbox", map[string]any{"view": "ALL", "channel": channel, "first": 100}, &out)
		for _, e := range out.Inbox.Edges {
			cid := e.Node.ID
			if c := customer(t, w.Admin, cid); c != nil && ok(c) {
				id, got = cid, c
				return true
			}
		}
		return false
	}, "a %s conversation", channel)
	return id, got
}

func hasBody(c *convCustomer, body string) bool {
	for _, e := range c.Messages.Edges {
		if e.Node.Body == body {
			return true
		}
	}
	return false
}

// TestContactsLinkByPhone: a WhatsApp sender and an SMS sender with the
// same number are one contact with one history, whichever wrote first, over
// the real webhooks; a contact created with a number links later senders;
// concurrent first messages from one number on both channels make one
// contact.
func TestContactsLinkByPhone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s, w := startChannels(t, b)
		wa, sms, waAcct, smsAcct := channelHooks(t, w)

		// WhatsApp first (wa_id without "+"), then SMS (E.164).
		wa("34600111222", "Lucía Pérez", "wamid.L1", "Hola por WhatsApp")
		_, c1 := waitConv(t, w, "WHATSAPP", func(c *convCustomer) bool { return hasBody(c, "Hola por WhatsApp") })
		sms("+34600111222", "SM00000000000000000000000000000001", "Hola por SMS")
		_, c2 := waitConv(t, w, "SMS", func(c *convCustomer) bool { return hasBody(c, "Hola por SMS") })
		if c1.Contact == nil || c2.Contact == nil || c1.Contact.ID != c2.Contact.ID {
			t.Fatalf("two contacts for one number: %+v %+v", c1.Contact, c2.Contact)
		}
		info, _ := contactInfo(t, w.Dan, c1.Contact.ID)
		var ids, kinds []string
		for _, i := range info.Contact.Identities {
			ids = append(ids, i.Channel+":"+i.ExternalID)
		}
		for _, e := range info.Contact.History.Edges {
			kinds = append(kinds, e.Node.Kind+":"+e.Node.Channel)
		}
		if !slices.Equal(sortedCopy(ids), []string{"SMS:+34600111222", "WHATSAPP:34600111222"}) {
			t.Fatalf("identities: %v", ids)
		}
		if !slices.Contains(kinds, "LINKED:SMS") || strings.Count(strings.Join(kinds, " "), "CREATED:") != 2 {
			t.Fatalf("one history with the link: %v", kinds)
		}
		if *info.Contact.Phone != "+34600111222" {
			t.Fatalf("phone %v", *info.Contact.Phone)
		}

		// SMS first, then WhatsApp.
		sms("+447700900123", "SM00000000000000000000000000000002", "Hello by text")
		_, c3 := waitConv(t, w, "SMS", func(c *convCustomer) bool { return hasBody(c, "Hello by text") })
		wa("447700900123", "Tom", "wamid.T1", "Hello on WhatsApp")
		_, c4 := waitConv(t, w, "WHATSAPP", func(c *convCustomer) bool { return hasBody(c, "Hello on WhatsApp") })
		if c3.Contact.ID != c4.Contact.ID || c3.Contact.ID == c1.Contact.ID {
			t.Fatalf("SMS then WhatsApp: %+v %+v", c3.Contact, c4.Contact)
		}

		// A contact an agent created with the number: the first message
		// joins it, and its conversation knows the sender.
		made := createContact(t, w.Ana, map[string]any{"displayName": "Brian Oduya", "phone": "+1 (415) 555-0142"})
		wa("14155550142", "B.", "wamid.B1", "Brian here")
		_, c5 := waitConv(t, w, "WHATSAPP", func(c *convCustomer) bool { return hasBody(c, "Brian here") })
		if c5.Contact.ID != made.ID || c5.Contact.DisplayName != "Brian Oduya" || c5.UnknownContact {
			t.Fatalf("created contact not linked: %+v", c5)
		}
		// And one updated with a number, too.
		later := createContact(t, w.Ana, map[string]any{"displayName": "Ines"})
		w.Ana.C.MustOp(t, "UpdateContact", map[string]any{"id": later.ID, "input": map[string]any{"phone": "+351 912 345 678"}}, nil)
		sms("+351912345678", "SM00000000000000000000000000000003", "Olá")
		_, c6 := waitConv(t, w, "SMS", func(c *convCustomer) bool { return hasBody(c, "Olá") })
		if c6.Contact.ID != later.ID {
			t.Fatalf("updated contact not linked: %+v", c6.Contact)
		}

		// Concurrent first messages from new numbers on both channels.
		const n = 6
		errs := make(chan error, 2*n)
		for i := 0; i < n; i++ {
			for _, acct := range []string{waAcct, smsAcct} {
				go func() {
					sender := fmt.Sprintf("4915123456%02d", i)
					if acct == smsAcct {
						sender = "+" + sender
					}
					_, err := s.App.Convs.Receive(context.Background(), inbound(t, acct, sender, fmt.Sprintf("race %d", i)))
					errs <- err
				}()
			}
		}
		for i := 0; i < 2*n; i++ {
			if err := <-errs; err != nil {
				t.Fatalf("concurrent first message: %v", err)
			}
		}
		for i := 0; i < n; i++ {
			cs, _, _ := directory(t, w.Dan, map[string]any{"search": fmt.Sprintf("4915123456%02d", i)})
			if len(cs) != 1 || len(cs[0].Identities) != 2 {
				t.Fatalf("number %d: %d contacts %+v", i, len(cs), cs)
			}
		}
	})
}

var inboundSeq atomic.Int64

// inbound is a customer message for the inbound entry point, as a channel
// adapter hands it over.
func inbound(t *testing.T, account, sender, body string) conversations.Inbound {
	return conversations.Inbound{ChannelAccountID: apitest.Atoi(t, account), SenderID: sender, SenderName: "Customer " + sender,
		ProviderMessageID: fmt.Sprintf("contacts-%d", inboundSeq.Add(1)), Body: body}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// TestContactsMergeAndDelete: merging moves identities, conversations and
// history, one history in time order; the later messages of the merged
// identities land with the surviving contact; deleting keeps the
// conversations anonymised, and the next message makes a new contact. Both
// are admins' and audited.
func TestContactsMergeAndDelete(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		sms := w.Account(t, "SMS", map[string]any{"queueID": w.QueueID})
		convA := w.Inbound(t, w.WhatsApp, "34611000001", "first, on WhatsApp")
		time.Sleep(5 * time.Millisecond)
		convB := w.Inbound(t, w.LiveChat, "visitor-77", "then on the website")
		a, b2 := customer(t, w.Admin, convA).Contact.ID, customer(t, w.Admin, convB).Contact.ID
		w.Ana.C.MustOp(t, "UpdateContact", map[string]any{"id": b2, "input": map[string]any{
			"displayName": "Marta Ruiz", "email": "marta@example.com", "notes": "VIP"}}, nil)

		wantRefusal(t, w.Ana.C.Op(t, "MergeContacts", map[string]any{"into": a, "from": b2}), "FORBIDDEN", "", "agent merges")
		wantRefusal(t, w.Admin.C.Op(t, "MergeContacts", map[string]any{"into": a, "from": a}), "BAD_USER_INPUT", "from", "into itself")
		wantRefusal(t, w.Admin.C.Op(t, "MergeContacts", map[string]any{"into": a, "from": "999999"}), "NOT_FOUND", "", "unknown from")

		var merged struct{ MergeContacts dirContact }
		w.Admin.C.MustOp(t, "MergeContacts", map[string]any{"into": a, "from": b2}, &merged)
		m := merged.MergeContacts
		var ids []string
		for _, i := range m.Identities {
			ids = append(ids, i.Channel+":"+i.ExternalID)
		}
		// into was an unknown sender: the known one's name; into's phone,
		// from's email and notes.
		if m.ID != a || m.DisplayName != "Marta Ruiz" || *m.Email != "marta@example.com" || *m.Phone != "+34611000001" || *m.Notes != "VIP" ||
			!slices.Equal(sortedCopy(ids), []string{"LIVE_CHAT:visitor-77", "WHATSAPP:34611000001"}) {
			t.Fatalf("merged: %+v %v", m, ids)
		}
		if _, r := contactInfo(t, w.Ana, b2); r.Code() != "NOT_FOUND" {
			t.Fatalf("from is still there: %s", r.Raw)
		}
		wantRefusal(t, w.Admin.C.Op(t, "MergeContacts", map[string]any{"into": a, "from": b2}), "NOT_FOUND", "", "merged twice")
		for _, conv := range []string{convA, convB} {
			if c := customer(t, w.Admin, conv); c.Contact == nil || c.Contact.ID != a || c.UnknownContact {
				t.Fatalf("conversation %s: %+v", conv, c)
			}
		}
		// One history, in time order, with both conversations and the merge.
		info, _ := contactInfo(t, w.Ana, a)
		var kinds []string
		var last time.Time
		for i, e := range info.Contact.History.Edges {
			if i > 0 && e.Node.At.After(last) {
				t.Fatalf("history out of order: %+v", info.Contact.History.Edges)
			}
			last = e.Node.At
			kinds = append(kinds, e.Node.Kind+":"+e.Node.Channel)
		}
		if len(kinds) == 0 || kinds[0] != "MERGED:LIVE_CHAT" || !slices.Contains(kinds, "CREATED:WHATSAPP") || !slices.Contains(kinds, "CREATED:LIVE_CHAT") {
			t.Fatalf("merged history: %v", kinds)
		}
		// The merged identity writes again: same conversation, same contact.
		if again := w.Inbound(t, w.LiveChat, "visitor-77", "me again"); again != convB {
			t.Fatalf("a new conversation %s after the merge", again)
		}
		// A later SMS from the number joins the merged contact.
		if c := customer(t, w.Admin, w.Inbound(t, sms, "+34611000001", "by SMS")); c.Contact.ID != a {
			t.Fatalf("SMS after the merge: %+v", c.Contact)
		}

		// Delete: admins only; conversations stay, anonymised.
		wantRefusal(t, w.Ana.C.Op(t, "DeleteContact", map[string]any{"id": a}), "FORBIDDEN", "", "agent deletes")
		var del struct{ DeleteContact struct{ DeletedID string } }
		w.Admin.C.MustOp(t, "DeleteContact", map[string]any{"id": a}, &del)
		if del.DeleteContact.DeletedID != a {
			t.Fatalf("deleted %+v", del)
		}
		wantRefusal(t, w.Admin.C.Op(t, "DeleteContact", map[string]any{"id": a}), "NOT_FOUND", "", "deleted twice")
		c := customer(t, w.Admin, convA)
		if c.Contact != nil || !c.ContactDeleted || !hasBody(c, "first, on WhatsApp") {
			t.Fatalf("after delete: %+v", c)
		}
		if cs, _, _ := directory(t, w.Dan, map[string]any{"search": "marta"}); len(cs) != 0 {
			t.Fatalf("deleted contact in the directory: %v", names(cs))
		}
		// The sender's next message makes a new unknown contact.
		next := w.Inbound(t, w.WhatsApp, "34611000001", "hello?")
		nc := customer(t, w.Admin, next)
		if next == convA || nc.Contact == nil || nc.Contact.ID == a || !nc.UnknownContact {
			t.Fatalf("next message after delete: %s %+v", next, nc)
		}
		db := s.App.DB.Client
		for _, action := range []string{"contact.merge", "contact.delete"} {
			if n := db.AuditEntry.Query().Where(auditentry.Action(action), auditentry.TargetID(apitest.Atoi(t, a))).CountX(context.Background()); n != 1 {
				t.Fatalf("%d audit entries %s", n, action)
			}
		}
	})
}

// TestContactsBlock: a blocked contact's messages are stored but not
// routed and not shown, on every channel, and the webhook answers 200;
// unblocking shows and routes them again.
func TestContactsBlock(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s, w := startChannels(t, b)
		wa, sms, _, _ := channelHooks(t, w)
		db := s.App.DB.Client
		ctx := context.Background()
		activeOffers := func(conv string) int {
			return db.Offer.Query().Where(offer.ConversationID(apitest.Atoi(t, conv)), offer.Active(true)).CountX(ctx)
		}

		wa("5215512345678", "Spammer", "wamid.S1", "buy now")
		conv, c := waitConv(t, w, "WHATSAPP", func(c *convCustomer) bool { return hasBody(c, "buy now") })
		contact := c.Contact.ID
		if !slices.Contains(w.Ana.InboxIDs(t, "RECENT", nil), conv) || activeOffers(conv) == 0 {
			t.Fatal("not offered before the block")
		}
		// Dan sees none of the contact's conversations.
		wantRefusal(t, w.Dan.C.Op(t, "BlockContact", map[string]any{"id": contact}), "FORBIDDEN", "", "a stranger blocks")
		var bl struct{ BlockContact struct{ Blocked bool } }
		w.Ana.C.MustOp(t, "BlockContact", map[string]any{"id": contact}, &bl)
		if !bl.BlockContact.Blocked {
			t.Fatal("not blocked")
		}
		if activeOffers(conv) != 0 {
			t.Fatal("offers survive the block")
		}
		hidden := func() {
			t.Helper()
			for _, a := range []*apitest.Agent{w.Ana, w.Ben, w.Cleo, w.Admin} {
				for _, view := range []string{"RECENT", "MINE", "QUEUE", "ARCHIVED"} {
					if slices.Contains(a.InboxIDs(t, view, nil), conv) {
						t.Fatalf("%s sees the blocked conversation in %s", a.Name, view)
					}
				}
			}
			if slices.Contains(w.Admin.InboxIDs(t, "ALL", nil), conv) {
				t.Fatal("in the admin's ALL view")
			}
			if customer(t, w.Ana, conv) != nil {
				t.Fatal("an agent still opens the blocked conversation")
			}
		}
		hidden()
		wantCode(t, w.Ana.Send(t, conv, "hi"), "NOT_FOUND", "agent replies to a blocked contact")
		wantCode(t, w.Admin.Send(t, conv, "hi"), "FORBIDDEN", "admin replies to a blocked contact")

		// More messages: stored, 200 to the provider, never offered; the
		// same number by SMS is the same, blocked contact.
		wa("5215512345678", "Spammer", "wamid.S2", "buy more")
		sms("+5215512345678", "SM00000000000000000000000000000009", "by sms")
		apitest.Eventually(t, 20*time.Second, func() bool {
			return hasBody(customer(t, w.Admin, conv), "buy more")
		}, "the blocked contact's message stored")
		var smsConv string
		apitest.Eventually(t, 20*time.Second, func() bool {
			info, _ := contactInfo(t, w.Admin, contact)
			for _, e := range info.Contact.History.Edges {
				if e.Node.Kind == "CREATED" && e.Node.Channel == "SMS" {
					smsConv = e.Node.Conversation.ID
					return true
				}
			}
			return false
		}, "the SMS conversation")
		if sc := customer(t, w.Admin, smsConv); sc.Contact.ID != contact || !hasBody(sc, "by sms") {
			t.Fatalf("SMS conversation: %+v", sc)
		}
		hidden()
		if activeOffers(conv) != 0 || activeOffers(smsConv) != 0 {
			t.Fatal("a blocked contact's message was routed")
		}
		for _, a := range []*apitest.Agent{w.Ana, w.Ben, w.Cleo} {
			if slices.Contains(a.InboxIDs(t, "RECENT", nil), smsConv) {
				t.Fatalf("%s was offered the SMS", a.Name)
			}
		}

		// Unblocking: admins only; the messages show and route again.
		wantRefusal(t, w.Ana.C.Op(t, "UnblockContact", map[string]any{"id": contact}), "FORBIDDEN", "", "agent unblocks")
		var ub struct{ UnblockContact struct{ Blocked bool } }
		w.Admin.C.MustOp(t, "UnblockContact", map[string]any{"id": contact}, &ub)
		if ub.UnblockContact.Blocked {
			t.Fatal("still blocked")
		}
		for _, cv := range []string{conv, smsConv} {
			if activeOffers(cv) == 0 || !slices.Contains(w.Ana.InboxIDs(t, "RECENT", nil), cv) {
				t.Fatalf("conversation %s not routed after unblocking", cv)
			}
		}
		if c := customer(t, w.Ana, conv); c == nil || !hasBody(c, "buy now") || !hasBody(c, "buy more") {
			t.Fatalf("after unblocking: %+v", c)
		}
		info, _ := contactInfo(t, w.Ana, contact)
		var kinds []string
		for _, e := range info.Contact.History.Edges {
			kinds = append(kinds, e.Node.Kind)
		}
		if !slices.Contains(kinds, "BLOCKED") || kinds[0] != "UNBLOCKED" {
			t.Fatalf("history: %v", kinds)
		}
		wantRefusal(t, w.Ana.C.Op(t, "BlockContact", map[string]any{"id": "999999"}), "NOT_FOUND", "", "unknown contact")
	})
}
