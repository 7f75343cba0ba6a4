package apitest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// statsDuration is DurationStats as the contract returns it.
type statsDuration struct{ Average, P50, P90 *float64 }

type statsAgent struct {
	Agent             struct{ ID, Name string }
	Answered, Owned   int
	FirstReplySeconds statsDuration
	HandleSeconds     statsDuration
}

type statsResult struct {
	QueueStats struct {
		Queue struct {
			ID                  string
			ServiceLevelSeconds *int
		}
		WaitingNow, LongestWaitSeconds, AgentsAvailable, AgentsOnline int
		Offered, Answered, Missed, Abandoned                          int
		FirstReplySeconds, HandleSeconds                              statsDuration
		WithinServiceLevel                                            *float64
		Agents                                                        []statsAgent
	}
}

func statsF(v float64) *float64 { return &v }

func statsDur(avg, p50, p90 float64) statsDuration {
	return statsDuration{statsF(avg), statsF(p50), statsF(p90)}
}

func statsQuery(t *testing.T, c *apitest.Client, queueID string, from, to time.Time) statsResult {
	t.Helper()
	var out statsResult
	c.MustOp(t, "QueueStats", map[string]any{"queueID": queueID, "from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339)}, &out)
	return out
}

func statsMust(t *testing.T, r *apitest.Response, what string) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("%s: %s", what, r.Raw)
	}
}

// TestStatsQueueFigures checks queueStats against a hand-computed day of
// conversations built through the real flows, the clock driven by hand.
//
// Queue "Support" (RING_ALL, offers time out after 30 s, target 60 s);
// everything arrives at T0 unless said otherwise:
//
//	c1  Ana replies +10, deals with it +100          first reply 10, handle 90 (Ana)
//	c2  offers time out +30 and +60 (missed once), Ben takes +65, replies +70,
//	    deals with it +130                            first reply 70, handle 65 (Ben)
//	c3  Cleo takes +5, transfers to Ana +20, Ana replies +22, deals +85
//	                                                  first reply 22 (Ana), handle 80 (Ana), answered by Cleo
//	c4  Ben takes +5, releases +15, Cleo replies +25 (still open, Cleo's)
//	                                                  first reply 25 (Cleo), answered by Ben
//	c5  Ana takes +10, deals with it +20 without a reply: abandoned, handle 10 (Ana)
//	c6  live chat, the visitor ends it +20 before anyone answers: abandoned
//	c7  arrives T0-2h, Ana replies 5 s later (open, Ana's): outside [T0-1h, T0+1h)
//	c8  arrives +200 and waits
func TestStatsQueueFigures(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		// A group owner who is a member (offline, so never offered) and one who is not.
		gusID, gusTok := w.Admin.C.CreateAgent(t, "Gus", "gus@test.parley", "301", "GROUP_OWNER")
		_, halTok := w.Admin.C.CreateAgent(t, "Hal", "hal@test.parley", "302", "GROUP_OWNER")
		w.Admin.C.MustOp(t, "UpdateQueue", map[string]any{"id": w.QueueID, "input": map[string]any{"members": []map[string]any{
			{"agentID": w.Ana.ID, "priority": 1}, {"agentID": w.Ben.ID, "priority": 2}, {"agentID": w.Cleo.ID, "priority": 3}, {"agentID": gusID, "priority": 4},
		}}}, nil)
		var sl struct {
			UpdateQueue struct{ ServiceLevelSeconds *int }
		}
		w.Admin.C.MustOp(t, "SetQueueServiceLevel", map[string]any{"id": w.QueueID, "seconds": 60}, &sl)
		require.Equal(t, 60, *sl.UpdateQueue.ServiceLevelSeconds)

		t0 := time.Now().Truncate(time.Second)
		clk := &clock{t: t0.Add(-2 * time.Hour)}
		s.App.Router.SetClock(clk.now)
		s.App.Convs.SetClock(clk.now)
		at := func(d time.Duration) { clk.mu.Lock(); clk.t = t0.Add(d); clk.mu.Unlock() }

		c7 := w.Inbound(t, w.WhatsApp, "+15550000007", "hello from before")
		clk.add(5 * time.Second)
		statsMust(t, w.Ana.Send(t, c7, "hi"), "c7 reply")

		at(0)
		c1 := w.Inbound(t, w.WhatsApp, "+15550000001", "one")
		c2 := w.Inbound(t, w.WhatsApp, "+15550000002", "two")
		c3 := w.Inbound(t, w.WhatsApp, "+15550000003", "three")
		c4 := w.Inbound(t, w.WhatsApp, "+15550000004", "four")
		c5 := w.Inbound(t, w.WhatsApp, "+15550000005", "five")
		visitor, c6 := startChat(t, s.Client(), w.LiveChat, "Visitor")
		vc := s.Client().As(visitor)
		vc.MustOp(t, "VisitorSendMessage", map[string]any{"body": "six"}, nil)

		at(5 * time.Second)
		w.Cleo.C.MustOp(t, "TakeConversation", map[string]any{"id": c3}, nil)
		w.Ben.C.MustOp(t, "TakeConversation", map[string]any{"id": c4}, nil)
		at(10 * time.Second)
		statsMust(t, w.Ana.Send(t, c1, "reply one"), "c1 reply")
		w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": c5}, nil)
		at(15 * time.Second)
		w.Ben.C.MustOp(t, "ReleaseConversation", map[string]any{"id": c4}, nil)
		at(20 * time.Second)
		w.Cleo.C.MustOp(t, "TransferConversation", map[string]any{"id": c3, "agentID": w.Ana.ID}, nil)
		w.Ana.C.MustOp(t, "MarkDealtWith", map[string]any{"id": c5}, nil)
		vc.MustOp(t, "VisitorEndChat", nil, nil)
		at(22 * time.Second)
		statsMust(t, w.Ana.Send(t, c3, "reply three"), "c3 reply")
		at(25 * time.Second)
		statsMust(t, w.Cleo.Send(t, c4, "reply four"), "c4 reply")
		at(30 * time.Second)
		routeDue(t, s.App.Router) // c2's first round times out
		at(60 * time.Second)
		routeDue(t, s.App.Router) // and its second: still one miss
		at(65 * time.Second)
		w.Ben.C.MustOp(t, "TakeConversation", map[string]any{"id": c2}, nil)
		at(70 * time.Second)
		statsMust(t, w.Ben.Send(t, c2, "reply two"), "c2 reply")
		at(85 * time.Second)
		w.Ana.C.MustOp(t, "MarkDealtWith", map[string]any{"id": c3}, nil)
		at(100 * time.Second)
		w.Ana.C.MustOp(t, "MarkDealtWith", map[string]any{"id": c1}, nil)
		at(130 * time.Second)
		w.Ben.C.MustOp(t, "MarkDealtWith", map[string]any{"id": c2}, nil)
		at(200 * time.Second)
		w.Inbound(t, w.WhatsApp, "+15550000008", "eight")
		at(260 * time.Second)
		_ = c6

		got := statsQuery(t, w.Admin.C, w.QueueID, t0.Add(-time.Hour), t0.Add(time.Hour)).QueueStats
		require.Equal(t, 1, got.WaitingNow, "c8 waits")
		require.Equal(t, 60, got.LongestWaitSeconds)
		require.Equal(t, 3, got.AgentsAvailable, "Ana, Ben, Cleo")
		require.Equal(t, 4, got.AgentsOnline, "and Gus, logged in but offline")
		require.Equal(t, 7, got.Offered, "c1..c6 and c8")
		require.Equal(t, 5, got.Answered, "c1..c5")
		require.Equal(t, 1, got.Missed, "c2, once")
		require.Equal(t, 2, got.Abandoned, "c5 and c6")
		require.Equal(t, statsDur(31.75, 22, 70), got.FirstReplySeconds, "10, 22, 25, 70")
		require.Equal(t, statsDur(61.25, 65, 90), got.HandleSeconds, "10, 65, 80, 90")
		require.Equal(t, statsF(0.6), got.WithinServiceLevel, "c1, c3, c4 of 5 answered")
		byName := map[string]statsAgent{}
		var names []string
		for _, a := range got.Agents {
			byName[a.Agent.Name] = a
			names = append(names, a.Agent.Name)
		}
		require.Equal(t, []string{"Ana", "Ben", "Cleo", "Gus"}, names)
		require.Equal(t, statsAgent{Agent: byName["Ana"].Agent, Answered: 2, Owned: 1,
			FirstReplySeconds: statsDur(16, 10, 22), HandleSeconds: statsDur(60, 80, 90)}, byName["Ana"], "Ana: c1, c5; owns c7")
		require.Equal(t, statsAgent{Agent: byName["Ben"].Agent, Answered: 2, Owned: 0,
			FirstReplySeconds: statsDur(70, 70, 70), HandleSeconds: statsDur(65, 65, 65)}, byName["Ben"], "Ben: c2, c4")
		require.Equal(t, statsAgent{Agent: byName["Cleo"].Agent, Answered: 1, Owned: 1,
			FirstReplySeconds: statsDur(25, 25, 25)}, byName["Cleo"], "Cleo: c3; owns c4")
		require.Equal(t, statsAgent{Agent: byName["Gus"].Agent}, byName["Gus"])

		// The period boundary: [T0-2h, T0) holds c7 alone (c1.. arrived at T0).
		early := statsQuery(t, w.Admin.C, w.QueueID, t0.Add(-2*time.Hour), t0).QueueStats
		require.Equal(t, 1, early.Offered)
		require.Equal(t, 1, early.Answered)
		require.Equal(t, statsDur(5, 5, 5), early.FirstReplySeconds)
		require.Equal(t, statsF(1), early.WithinServiceLevel)

		// labelIDs: only conversations carrying any of the labels count;
		// the live figures stay the queue's.
		billing := labelCreate(t, w, "Billing", "#112233")
		vip := labelCreate(t, w, "VIP", "#445566")
		for _, l := range []struct{ conv, label string }{{c1, billing.ID}, {c2, billing.ID}, {c5, vip.ID}} {
			w.Admin.C.MustOp(t, "AddLabel", map[string]any{"conversationID": l.conv, "labelID": l.label}, nil)
		}
		var lb statsResult
		w.Admin.C.MustOp(t, "QueueStats", map[string]any{"queueID": w.QueueID, "from": t0.Add(-time.Hour).Format(time.RFC3339),
			"to": t0.Add(time.Hour).Format(time.RFC3339), "labelIDs": []string{billing.ID}}, &lb)
		lq := lb.QueueStats
		require.Equal(t, []int{1, 2, 2, 1, 0}, []int{lq.WaitingNow, lq.Offered, lq.Answered, lq.Missed, lq.Abandoned}, "billing: c1, c2")
		require.Equal(t, statsDur(40, 10, 70), lq.FirstReplySeconds, "billing: 10, 70")
		require.Equal(t, statsDur(77.5, 65, 90), lq.HandleSeconds, "billing: 65, 90")
		require.Equal(t, statsF(0.5), lq.WithinServiceLevel, "billing: c1 within, c2 not")
		w.Admin.C.MustOp(t, "QueueStats", map[string]any{"queueID": w.QueueID, "from": t0.Add(-time.Hour).Format(time.RFC3339),
			"to": t0.Add(time.Hour).Format(time.RFC3339), "labelIDs": []string{billing.ID, vip.ID}}, &lb)
		lq = lb.QueueStats
		require.Equal(t, []int{3, 3, 1}, []int{lq.Offered, lq.Answered, lq.Abandoned}, "billing or VIP: c1, c2, c5")
		for _, a := range lq.Agents {
			require.Zero(t, a.Owned, "%s owns no labelled open conversation", a.Agent.Name)
		}

		// Without a target there is no service level to meet.
		w.Admin.C.MustOp(t, "SetQueueServiceLevel", map[string]any{"id": w.QueueID, "seconds": 0}, &sl)
		require.Nil(t, sl.UpdateQueue.ServiceLevelSeconds)
		got = statsQuery(t, w.Admin.C, w.QueueID, t0.Add(-time.Hour), t0.Add(time.Hour)).QueueStats
		require.Nil(t, got.WithinServiceLevel)
		require.Equal(t, 5, got.Answered)

		// Who may ask: the group owner who is a member; not an agent, nor a
		// group owner of other queues.
		gus := s.Client().As(gusTok)
		statsQuery(t, gus, w.QueueID, t0.Add(-time.Hour), t0.Add(time.Hour))
		vars := map[string]any{"queueID": w.QueueID, "from": t0.Add(-time.Hour).Format(time.RFC3339), "to": t0.Format(time.RFC3339)}
		wantCode(t, w.Ana.C.Op(t, "QueueStats", vars), "FORBIDDEN", "an agent")
		wantCode(t, s.Client().As(halTok).Op(t, "QueueStats", vars), "FORBIDDEN", "a group owner not in the queue")
		for what, v := range map[string][2]time.Time{
			"from == to":    {t0, t0},
			"from after to": {t0, t0.Add(-time.Second)},
			"over 366 days": {t0.Add(-367 * 24 * time.Hour), t0},
		} {
			r := w.Admin.C.Op(t, "QueueStats", map[string]any{"queueID": w.QueueID, "from": v[0].Format(time.RFC3339), "to": v[1].Format(time.RFC3339)})
			wantCode(t, r, "BAD_USER_INPUT", what)
		}
		for _, bad := range []int{-1, 86401} {
			r := w.Admin.C.Op(t, "SetQueueServiceLevel", map[string]any{"id": w.QueueID, "seconds": bad})
			wantCode(t, r, "BAD_USER_INPUT", "serviceLevelSeconds out of range")
			require.Contains(t, string(r.Raw), "serviceLevelSeconds")
		}
	})
}

// statsRiskEvents reads operation id's inboxEvents for d and counts the
// SLA_AT_RISK events per conversation.
func statsRiskEvents(t *testing.T, ws *apitest.WS, id string, d time.Duration) map[string]int {
	t.Helper()
	got := map[string]int{}
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return got
		}
		m, err := ws.TryReadID(id, left)
		if err != nil {
			return got // the time is up
		}
		var out struct{ InboxEvents *inboxEvent }
		m.Result(t).Decode(t, &out)
		if out.InboxEvents != nil && out.InboxEvents.Kind == "SLA_AT_RISK" {
			got[out.InboxEvents.ConversationID]++
		}
	}
}

func statsSubscribeInbox(t *testing.T, s *apitest.Server, token string) *apitest.WS {
	t.Helper()
	ws := dialAs(t, s, apitest.TransportWS, token)
	ws.SubscribeOp(t, "in", "InboxEvents", nil)
	return ws
}

// TestStatsSLAAtRisk: a conversation queued under a 2 s target is at risk
// from 1.6 s: slaDueAt and slaAtRisk show it, one SLA_AT_RISK reaches a
// member and an admin over a real websocket (not an agent outside the
// queue), and a reply ends it.
func TestStatsSLAAtRisk(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		w.Admin.C.MustOp(t, "SetQueueServiceLevel", map[string]any{"id": w.QueueID, "seconds": 2}, nil)
		ana, admin, dan := statsSubscribeInbox(t, s, w.Ana.Token), statsSubscribeInbox(t, s, w.Admin.Token), statsSubscribeInbox(t, s, w.Dan.Token)
		before := time.Now()
		c := w.Inbound(t, w.WhatsApp, "+15550001001", "help")
		var sla struct {
			Conversation struct {
				SLADueAt  *time.Time
				SLAAtRisk bool
			}
		}
		w.Ana.C.MustOp(t, "ConversationSLA", map[string]any{"id": c}, &sla)
		require.NotNil(t, sla.Conversation.SLADueAt)
		require.WithinDuration(t, before.Add(2*time.Second), *sla.Conversation.SLADueAt, time.Second)
		require.False(t, sla.Conversation.SLAAtRisk, "not yet at 80 %%")

		require.Equal(t, map[string]int{c: 1}, statsRiskEvents(t, ana, "in", 5*time.Second), "the member, once")
		require.Equal(t, map[string]int{c: 1}, statsRiskEvents(t, admin, "in", time.Second), "the admin, once")
		require.Empty(t, statsRiskEvents(t, dan, "in", time.Second), "not an agent outside the queue")
		w.Ana.C.MustOp(t, "ConversationSLA", map[string]any{"id": c}, &sla)
		require.True(t, sla.Conversation.SLAAtRisk)

		statsMust(t, w.Ana.Send(t, c, "on it"), "reply")
		w.Ana.C.MustOp(t, "ConversationSLA", map[string]any{"id": c}, &sla)
		require.Nil(t, sla.Conversation.SLADueAt, "replied: nothing due")
		require.False(t, sla.Conversation.SLAAtRisk)
	})
}

// TestStatsSLAAtRiskTwoInstances: two instances run the timer worker on one
// database; each conversation is announced once.
func TestStatsSLAAtRiskTwoInstances(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		prefix := "parley-stats-" + time.Now().Format("150405.000000") + ":"
		a := apitest.Start(t, apitest.Options{Backend: b, DB: db, Redis: true, RedisPrefix: prefix})
		w := apitest.NewWorkspace(t, a, apitest.WorkspaceOption{})
		apitest.Start(t, apitest.Options{Backend: b, DB: db, Redis: true, RedisPrefix: prefix})
		w.Admin.C.MustOp(t, "SetQueueServiceLevel", map[string]any{"id": w.QueueID, "seconds": 2}, nil)
		ana := statsSubscribeInbox(t, a, w.Ana.Token)
		want := map[string]int{}
		for i := range 4 {
			want[w.Inbound(t, w.WhatsApp, "+1555000200"+string(rune('0'+i)), "help")] = 1
		}
		require.Equal(t, want, statsRiskEvents(t, ana, "in", 6*time.Second))
	})
}

// TestStatsSLAAtRiskRestart: the instance that queued the conversation
// stops before its risk time; another started on the same database
// announces it, once.
func TestStatsSLAAtRiskRestart(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		db := storetest.Open(t, b)
		first := apitest.Start(t, apitest.Options{Backend: b, DB: db})
		w := apitest.NewWorkspace(t, first, apitest.WorkspaceOption{})
		w.Admin.C.MustOp(t, "SetQueueServiceLevel", map[string]any{"id": w.QueueID, "seconds": 3}, nil)
		queued := time.Now()
		c := w.Inbound(t, w.WhatsApp, "+15550003001", "help")
		require.NoError(t, first.Stop())
		first.App.Close()
		require.Less(t, time.Since(queued), 2400*time.Millisecond, "stopped before the risk time")
		second := apitest.Start(t, apitest.Options{Backend: b, DB: db})
		ana := statsSubscribeInbox(t, second, w.Ana.Token)
		require.Equal(t, map[string]int{c: 1}, statsRiskEvents(t, ana, "in", 6*time.Second))
	})
}

// TestStatsInboxSLADue pages through the inbox ordered by SLA_DUE two at a
// time: soonest due first, then those with nothing due (replied, or in a
// queue without a target), by id.
func TestStatsInboxSLADue(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		w.Admin.C.MustOp(t, "SetQueueServiceLevel", map[string]any{"id": w.QueueID, "seconds": 60}, nil)
		var other struct{ CreateQueue struct{ ID string } }
		w.Admin.C.MustOp(t, "CreateQueue", map[string]any{"input": map[string]any{"name": "Sales", "strategy": "RING_ALL"}}, &other)
		sales := w.Account(t, "WHATSAPP", map[string]any{"queueID": other.CreateQueue.ID})
		t0 := time.Now().Truncate(time.Second)
		clk := &clock{t: t0}
		s.App.Router.SetClock(clk.now)
		s.App.Convs.SetClock(clk.now)
		a := w.Inbound(t, w.WhatsApp, "+15550004001", "a") // due +60
		replied := w.Inbound(t, w.WhatsApp, "+15550004002", "replied")
		noTarget := w.Inbound(t, sales, "+15550004003", "no target")
		clk.add(10 * time.Second)
		bb := w.Inbound(t, w.WhatsApp, "+15550004004", "b") // due +70
		clk.add(-5 * time.Second)
		c := w.Inbound(t, w.WhatsApp, "+15550004005", "c") // due +65
		statsMust(t, w.Ana.Send(t, replied, "done"), "reply")
		last := []string{replied, noTarget}
		if apitest.Atoi(t, noTarget) < apitest.Atoi(t, replied) {
			last = []string{noTarget, replied}
		}
		want := append([]string{a, c, bb}, last...)

		var got []string
		var after any
		for page := 0; page < 5; page++ {
			var out struct {
				Inbox struct {
					TotalCount int
					PageInfo   struct {
						HasNextPage bool
						EndCursor   string
					}
					Edges []struct {
						Node struct {
							ID       string
							SLADueAt *time.Time
						}
					}
				}
			}
			w.Admin.C.MustOp(t, "InboxOrdered", map[string]any{"view": "ALL", "orderBy": "SLA_DUE", "first": 2, "after": after}, &out)
			require.Equal(t, len(want), out.Inbox.TotalCount)
			for _, e := range out.Inbox.Edges {
				got = append(got, e.Node.ID)
			}
			if !out.Inbox.PageInfo.HasNextPage {
				break
			}
			after = out.Inbox.PageInfo.EndCursor
		}
		require.Equal(t, want, got)
	})
}
