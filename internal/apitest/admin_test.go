package apitest_test

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

type agentRef struct{ ID, Name string }

type queueOut struct {
	ID, Name, Strategy string
	Members            []struct {
		Priority int
		Agent    agentRef
	}
}

func TestAdminAgentsAndSearch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		c := s.Client()
		admin, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		ca := c.As(admin)

		var created struct {
			CreateAgent struct{ ID, Name, Email, Extension, Role string }
		}
		ca.MustOp(t, "CreateAgent", map[string]any{"input": map[string]any{
			"name": "Chloé Martin", "email": " Chloe@Test.Parley ", "extension": "203", "role": "AGENT",
			"password": "chloe-password", "maxConcurrentChats": 3,
		}}, &created)
		if got := created.CreateAgent; got.Email != "chloe@test.parley" || got.Extension != "203" || got.Role != "AGENT" {
			t.Fatalf("created %+v", got)
		}
		_, ana := ca.CreateAgent(t, "Ana García", "ana@test.parley", "201", "AGENT")
		ca.CreateAgent(t, "Bob Builder", "bob@test.parley", "2030", "GROUP_OWNER")

		bad := []struct {
			name  string
			input map[string]any
			code  string
		}{
			{"duplicate email", map[string]any{"name": "X", "email": "ana@test.parley", "extension": "299", "role": "AGENT", "password": "password-x"}, "CONFLICT"},
			{"duplicate extension", map[string]any{"name": "X", "email": "x@test.parley", "extension": "201", "role": "AGENT", "password": "password-x"}, "CONFLICT"},
			{"bad email", map[string]any{"name": "X", "email": "not an email", "extension": "298", "role": "AGENT", "password": "password-x"}, "BAD_USER_INPUT"},
			{"bad extension", map[string]any{"name": "X", "email": "y@test.parley", "extension": "12a", "role": "AGENT", "password": "password-x"}, "BAD_USER_INPUT"},
			{"short password", map[string]any{"name": "X", "email": "z@test.parley", "extension": "297", "role": "AGENT", "password": "short"}, "BAD_USER_INPUT"},
			{"unknown role", map[string]any{"name": "X", "email": "w@test.parley", "extension": "296", "role": "KING", "password": "password-x"}, "BAD_USER_INPUT"},
			{"zero max chats", map[string]any{"name": "X", "email": "v@test.parley", "extension": "295", "role": "AGENT", "password": "password-x", "maxConcurrentChats": 0}, "BAD_USER_INPUT"},
		}
		for _, tc := range bad {
			r := ca.Op(t, "CreateAgent", map[string]any{"input": tc.input})
			if r.Code() != tc.code {
				t.Fatalf("%s: want %s, got %s", tc.name, tc.code, r.Raw)
			}
		}

		search := func(q string) []string {
			var out struct {
				Agents struct {
					Edges []struct {
						Node struct{ ID, Name, Extension, Status string }
					}
				}
			}
			c.As(ana).MustOp(t, "SearchAgents", map[string]any{"search": q}, &out)
			var names []string
			for _, e := range out.Agents.Edges {
				names = append(names, e.Node.Name)
			}
			return names
		}
		for _, tc := range []struct {
			q    string
			want string
		}{
			{"chloe", "Chloé Martin"},           // accents do not matter
			{"GARCÍA", "Ana García"},            // nor case
			{"203", "Chloé Martin,Bob Builder"}, // extension, ordered by name below
			{"%", ""},                           // LIKE wildcards are literal
			{"zzz", ""},
		} {
			got := search(tc.q)
			want := []string{}
			if tc.want != "" {
				want = strings.Split(tc.want, ",")
			}
			if !sameSet(got, want) {
				t.Fatalf("search %q = %v, want %v", tc.q, got, want)
			}
		}
		if r := c.Op(t, "SearchAgents", map[string]any{"search": "a"}); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("anonymous search: %s", r.Raw)
		}
	})
}

func TestAdminQueues(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		c := s.Client()
		admin, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		ca := c.As(admin)
		ana, anaTok := ca.CreateAgent(t, "Ana", "ana@test.parley", "201", "AGENT")
		ben, _ := ca.CreateAgent(t, "Ben", "ben@test.parley", "202", "AGENT")
		cleo, _ := ca.CreateAgent(t, "Cleo", "cleo@test.parley", "203", "AGENT")

		var out struct{ CreateQueue queueOut }
		ca.MustOp(t, "CreateQueue", map[string]any{"input": map[string]any{
			"name": "Sales", "strategy": "ROUND_ROBIN", "offerTimeoutSeconds": 20,
			"members": []map[string]any{{"agentID": ben, "priority": 2}, {"agentID": ana, "priority": 1}},
		}}, &out)
		q := out.CreateQueue
		if q.Name != "Sales" || q.Strategy != "ROUND_ROBIN" || len(q.Members) != 2 ||
			q.Members[0].Agent.ID != ana || q.Members[0].Priority != 1 || q.Members[1].Agent.ID != ben {
			t.Fatalf("created queue %+v", q)
		}

		// Replace the members and the strategy; the name stays.
		var up struct{ UpdateQueue queueOut }
		ca.MustOp(t, "UpdateQueue", map[string]any{"id": q.ID, "input": map[string]any{
			"strategy": "HUNT_BY_THREES",
			"members":  []map[string]any{{"agentID": cleo, "priority": 1}, {"agentID": ana, "priority": 5}},
		}}, &up)
		u := up.UpdateQueue
		if u.Name != "Sales" || u.Strategy != "HUNT_BY_THREES" || len(u.Members) != 2 || u.Members[0].Agent.ID != cleo || u.Members[1].Agent.ID != ana {
			t.Fatalf("updated queue %+v", u)
		}

		// Ana sees her queue in Me.
		var me struct {
			Me struct{ Queues []struct{ ID, Name string } }
		}
		c.As(anaTok).MustOp(t, "Me", nil, &me)
		if len(me.Me.Queues) != 1 || me.Me.Queues[0].ID != q.ID {
			t.Fatalf("Ana's queues: %+v", me.Me.Queues)
		}

		bad := []struct {
			name, op string
			vars     map[string]any
			code     string
		}{
			{"duplicate name", "CreateQueue", map[string]any{"input": map[string]any{"name": "Sales", "strategy": "HUNT"}}, "CONFLICT"},
			{"unknown member", "CreateQueue", map[string]any{"input": map[string]any{"name": "Support", "strategy": "HUNT",
				"members": []map[string]any{{"agentID": "999999", "priority": 1}}}}, "BAD_USER_INPUT"},
			{"member twice", "UpdateQueue", map[string]any{"id": q.ID, "input": map[string]any{
				"members": []map[string]any{{"agentID": ana, "priority": 1}, {"agentID": ana, "priority": 2}}}}, "BAD_USER_INPUT"},
			{"priority zero", "UpdateQueue", map[string]any{"id": q.ID, "input": map[string]any{
				"members": []map[string]any{{"agentID": ana, "priority": 0}}}}, "BAD_USER_INPUT"},
			{"timeout too short", "UpdateQueue", map[string]any{"id": q.ID, "input": map[string]any{"offerTimeoutSeconds": 1}}, "BAD_USER_INPUT"},
			{"unknown queue", "UpdateQueue", map[string]any{"id": "999999", "input": map[string]any{"name": "X"}}, "NOT_FOUND"},
		}
		for _, tc := range bad {
			if r := ca.Op(t, tc.op, tc.vars); r.Code() != tc.code {
				t.Fatalf("%s: want %s, got %s", tc.name, tc.code, r.Raw)
			}
		}
		// The failed updates lost nothing.
		ca.MustOp(t, "UpdateQueue", map[string]any{"id": q.ID, "input": map[string]any{}}, &up)
		if len(up.UpdateQueue.Members) != 2 || up.UpdateQueue.Strategy != "HUNT_BY_THREES" {
			t.Fatalf("queue changed by refused updates: %+v", up.UpdateQueue)
		}
	})
}

func TestAdminChannelAccounts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		c := s.Client()
		admin, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		ca := c.As(admin)
		ana, _ := ca.CreateAgent(t, "Ana", "ana@test.parley", "201", "AGENT")
		var q struct{ CreateQueue queueOut }
		ca.MustOp(t, "CreateQueue", map[string]any{"input": map[string]any{"name": "Support", "strategy": "RING_ALL"}}, &q)
		queueID := q.CreateQueue.ID

		type account struct {
			ID, Channel, Name string
			WebhookURL        *string
			Queue, Agent      *struct{ ID string }
		}
		create := func(input map[string]any) account {
			t.Helper()
			var out struct{ CreateChannelAccount account }
			ca.MustOp(t, "CreateChannelAccount", map[string]any{"input": input}, &out)
			return out.CreateChannelAccount
		}
		const secret = "EAAG-super-secret-token"
		wa := create(map[string]any{"channel": "WHATSAPP", "name": "WA", "queueID": queueID,
			"whatsapp": map[string]any{"phoneNumberID": "1055", "accessToken": secret, "appSecret": secret + "-app", "verifyToken": secret + "-verify"}})
		if wa.Queue == nil || wa.Queue.ID != queueID || wa.Agent != nil {
			t.Fatalf("whatsapp account routes to %+v / %+v", wa.Queue, wa.Agent)
		}
		if wa.WebhookURL == nil || *wa.WebhookURL != s.URL+"/webhooks/whatsapp/"+wa.ID {
			t.Fatalf("webhookURL = %v", wa.WebhookURL)
		}
		fb := create(map[string]any{"channel": "FACEBOOK", "name": "Page", "agentID": ana,
			"messenger": map[string]any{"pageID": "77", "pageAccessToken": secret, "appSecret": "a", "verifyToken": "v"}})
		if fb.Agent == nil || fb.Agent.ID != ana || *fb.WebhookURL != s.URL+"/webhooks/messenger/"+fb.ID {
			t.Fatalf("messenger account %+v", fb)
		}
		sms := create(map[string]any{"channel": "SMS", "name": "SMS", "queueID": queueID,
			"sms": map[string]any{"accountSID": "AC123", "authToken": secret, "fromNumber": "+14155550100", "apiBaseURL": "http://127.0.0.1:9"}})
		if *sms.WebhookURL != s.URL+"/webhooks/twilio/"+sms.ID {
			t.Fatalf("sms webhookURL %v", *sms.WebhookURL)
		}
		lc := create(map[string]any{"channel": "LIVE_CHAT", "name": "Web", "queueID": queueID,
			"liveChat": map[string]any{"allowedOrigins": []string{"https://www.example.com"}}})
		if lc.WebhookURL != nil {
			t.Fatalf("live chat has a webhook URL %v", *lc.WebhookURL)
		}

		// Credentials never come back, whatever is asked for.
		r := ca.Query(t, `{ channelAccounts { id channel name webhookURL snippet phoneNumberID pageID fromNumber apiBaseURL allowedOrigins } }`, nil)
		if len(r.Errors) > 0 || strings.Contains(string(r.Raw), "secret") {
			t.Fatalf("channelAccounts: %s", r.Raw)
		}
		if !strings.Contains(string(r.Raw), `"phoneNumberID":"1055"`) || !strings.Contains(string(r.Raw), "widget.js") {
			t.Fatalf("public settings missing: %s", r.Raw)
		}
		node := ca.Query(t, `query($id: ID!) { node(id: $id) { id ... on ChannelAccount { name } } }`, map[string]any{"id": wa.ID})
		if len(node.Errors) > 0 || strings.Contains(string(node.Raw), "secret") {
			t.Fatalf("node: %s", node.Raw)
		}

		bad := []struct {
			name  string
			input map[string]any
		}{
			{"both targets", map[string]any{"channel": "LIVE_CHAT", "name": "X", "queueID": queueID, "agentID": ana, "liveChat": map[string]any{}}},
			{"no target", map[string]any{"channel": "LIVE_CHAT", "name": "X", "liveChat": map[string]any{}}},
			{"config of another channel", map[string]any{"channel": "SMS", "name": "X", "queueID": queueID,
				"whatsapp": map[string]any{"phoneNumberID": "1", "accessToken": "a", "appSecret": "b", "verifyToken": "c"}}},
			{"missing config", map[string]any{"channel": "WHATSAPP", "name": "X", "queueID": queueID}},
			{"empty credential", map[string]any{"channel": "WHATSAPP", "name": "X", "queueID": queueID,
				"whatsapp": map[string]any{"phoneNumberID": "1", "accessToken": "", "appSecret": "b", "verifyToken": "c"}}},
			{"bad number", map[string]any{"channel": "SMS", "name": "X", "queueID": queueID,
				"sms": map[string]any{"accountSID": "AC1", "authToken": "t", "fromNumber": "555-0100"}}},
			{"bad origin", map[string]any{"channel": "LIVE_CHAT", "name": "X", "queueID": queueID,
				"liveChat": map[string]any{"allowedOrigins": []string{"www.example.com/path"}}}},
			{"bad api base", map[string]any{"channel": "SMS", "name": "X", "queueID": queueID,
				"sms": map[string]any{"accountSID": "AC1", "authToken": "t", "fromNumber": "+14155550101", "apiBaseURL": "ftp://x"}}},
			{"unknown queue", map[string]any{"channel": "LIVE_CHAT", "name": "X", "queueID": "999999", "liveChat": map[string]any{}}},
			{"internal channel", map[string]any{"channel": "INTERNAL", "name": "X", "queueID": queueID}},
		}
		for _, tc := range bad {
			if r := ca.Op(t, "CreateChannelAccount", map[string]any{"input": tc.input}); r.Code() != "BAD_USER_INPUT" {
				t.Fatalf("%s: want BAD_USER_INPUT, got %s", tc.name, r.Raw)
			}
		}
		var list struct{ ChannelAccounts []struct{ ID string } }
		ca.Query(t, `{ channelAccounts { id } }`, nil).Decode(t, &list)
		if len(list.ChannelAccounts) != 4 {
			t.Fatalf("%d accounts after refused creations, want 4", len(list.ChannelAccounts))
		}
	})
}

func TestStatusAndChatOptions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		c := s.Client()
		admin, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		_, tok := c.As(admin).CreateAgent(t, "Ana", "ana@test.parley", "201", "AGENT")
		ca := c.As(tok)

		var st struct{ SetStatus struct{ ID, Status string } }
		ca.MustOp(t, "SetStatus", map[string]any{"status": "AVAILABLE"}, &st)
		if st.SetStatus.Status != "AVAILABLE" {
			t.Fatalf("status %+v", st.SetStatus)
		}
		if r := ca.Op(t, "SetStatus", map[string]any{"status": "ASLEEP"}); len(r.Errors) == 0 {
			t.Fatalf("unknown status accepted: %s", r.Raw)
		}

		type opts struct {
			ShowChatIndicator, WebNotifications, PlaySound bool
			NotificationSound                              string
		}
		var out struct{ UpdateChatOptions opts }
		ca.MustOp(t, "UpdateChatOptions", map[string]any{"input": map[string]any{"webNotifications": false, "notificationSound": "bell.mp3"}}, &out)
		want := opts{ShowChatIndicator: true, WebNotifications: false, PlaySound: true, NotificationSound: "bell.mp3"}
		if out.UpdateChatOptions != want {
			t.Fatalf("chat options %+v, want %+v", out.UpdateChatOptions, want)
		}
		if r := ca.Op(t, "UpdateChatOptions", map[string]any{"input": map[string]any{"notificationSound": "../../etc/passwd"}}); r.Code() != "BAD_USER_INPUT" {
			t.Fatalf("bad sound name: %s", r.Raw)
		}
		var me struct {
			Me struct {
				Status      string
				ChatOptions opts
			}
		}
		ca.MustOp(t, "Me", nil, &me)
		if me.Me.Status != "AVAILABLE" || me.Me.ChatOptions != want {
			t.Fatalf("me after updates: %+v", me.Me)
		}
	})
}

func TestNodeVisibility(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	c := s.Client()
	admin, adminID := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
	_, tok := c.As(admin).CreateAgent(t, "Ana", "ana@test.parley", "201", "AGENT")
	var out struct{ CreateChannelAccount struct{ ID string } }
	var q struct{ CreateQueue queueOut }
	c.As(admin).MustOp(t, "CreateQueue", map[string]any{"input": map[string]any{"name": "Support", "strategy": "RING_ALL"}}, &q)
	c.As(admin).MustOp(t, "CreateChannelAccount", map[string]any{"input": map[string]any{
		"channel": "LIVE_CHAT", "name": "Web", "queueID": q.CreateQueue.ID, "liveChat": map[string]any{}}}, &out)

	const nodeQ = `query($id: ID!) { node(id: $id) { id __typename } }`
	if r := c.As(tok).Query(t, nodeQ, map[string]any{"id": adminID}); len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"Agent"`) {
		t.Fatalf("agent node: %s", r.Raw)
	}
	if r := c.As(tok).Query(t, nodeQ, map[string]any{"id": out.CreateChannelAccount.ID}); r.Code() != "NOT_FOUND" {
		t.Fatalf("an agent sees a channel account node: %s", r.Raw)
	}
	if r := c.As(admin).Query(t, nodeQ, map[string]any{"id": out.CreateChannelAccount.ID}); len(r.Errors) > 0 {
		t.Fatalf("admin node: %s", r.Raw)
	}
	if r := c.As(tok).Query(t, nodeQ, map[string]any{"id": "123456789"}); r.Code() != "NOT_FOUND" {
		t.Fatalf("missing node: %s", r.Raw)
	}
	if r := c.Query(t, nodeQ, map[string]any{"id": adminID}); r.Code() != "UNAUTHENTICATED" {
		t.Fatalf("anonymous node: %s", r.Raw)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, x := range a {
		m[x]++
	}
	for _, x := range b {
		m[x]--
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}
