package apitest_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// labelOut is a label as the contract selects it.
type labelOut struct{ ID, Name, Color string }

// labelCreate creates a label as the admin and returns it.
func labelCreate(t *testing.T, w *apitest.Workspace, name, color string) labelOut {
	t.Helper()
	var out struct{ CreateLabel labelOut }
	w.Admin.C.MustOp(t, "CreateLabel", map[string]any{"name": name, "color": color}, &out)
	return out.CreateLabel
}

// labelNames lists the names of labels, in order.
func labelNames(ls []labelOut) []string {
	out := []string{}
	for _, l := range ls {
		out = append(out, l.Name)
	}
	return out
}

// labelSet puts (add) or takes off a label as agent a and returns the
// conversation's labels as the mutation answers them.
func labelSet(t *testing.T, a *apitest.Agent, add bool, conv, label string) []string {
	t.Helper()
	op := "RemoveLabel"
	if add {
		op = "AddLabel"
	}
	var out map[string]struct{ Labels []labelOut }
	a.C.MustOp(t, op, map[string]any{"conversationID": conv, "labelID": label}, &out)
	for _, v := range out {
		return labelNames(v.Labels)
	}
	t.Fatalf("%s: no result", op)
	return nil
}

// labelsOfConversation reads a conversation's labels as agent a.
func labelsOfConversation(t *testing.T, a *apitest.Agent, conv string) []string {
	t.Helper()
	var out struct{ Conversation struct{ Labels []labelOut } }
	a.C.MustOp(t, "ConversationLabels", map[string]any{"id": conv}, &out)
	return labelNames(out.Conversation.Labels)
}

// labelEvent is a CONVERSATION_UPDATED (or other) event of the label
// subscriptions, from either stream.
type labelEvent struct {
	Kind           string
	ConversationID string
	Conversation   *struct {
		ID     string
		Labels []labelOut
	}
}

// labelNext reads the next event of operation id on ws.
func labelNext(t *testing.T, ws *apitest.WS, id string) labelEvent {
	t.Helper()
	data := result(t, ws, id, eventTimeout)
	var out map[string]labelEvent
	if err := json.Unmarshal(data, &out); err != nil || len(out) != 1 {
		t.Fatalf("operation %s: %s (%v)", id, data, err)
	}
	for _, e := range out {
		return e
	}
	return labelEvent{}
}

// labelWantUpdated requires the next event of id to be CONVERSATION_UPDATED
// of conv, carrying the labels want.
func labelWantUpdated(t *testing.T, ws *apitest.WS, id, conv string, want ...string) {
	t.Helper()
	e := labelNext(t, ws, id)
	if want == nil {
		want = []string{}
	}
	if e.Kind != "CONVERSATION_UPDATED" || e.Conversation == nil || e.Conversation.ID != conv ||
		!slices.Equal(labelNames(e.Conversation.Labels), want) {
		t.Fatalf("operation %s: want CONVERSATION_UPDATED of %s with labels %v, got %+v", id, conv, want, e)
	}
}

// TestLabelAdmin: admins create, rename, recolour and delete labels (each
// audited); agents list them but may change none; a name taken case aside
// is CONFLICT, a bad name or colour BAD_USER_INPUT naming the field, and
// nothing is stored on a refusal; node(id) resolves a label.
func TestLabelAdmin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})

		billing := labelCreate(t, w, "  Billing ", "#A0B1C2")
		require.Equal(t, labelOut{billing.ID, "Billing", "#a0b1c2"}, billing, "trimmed, colour lower-cased")
		urgent := labelCreate(t, w, "urgent", "#ff0000")

		for _, tc := range []struct {
			name        string
			op          string
			vars        map[string]any
			code, field string
		}{
			{"duplicate name, case aside", "CreateLabel", map[string]any{"name": "BILLING", "color": "#000000"}, "CONFLICT", "name"},
			{"rename onto another's name", "UpdateLabel", map[string]any{"id": urgent.ID, "name": "billing "}, "CONFLICT", "name"},
			{"colour by name", "CreateLabel", map[string]any{"name": "Sales", "color": "red"}, "BAD_USER_INPUT", "color"},
			{"short colour", "CreateLabel", map[string]any{"name": "Sales", "color": "#fff"}, "BAD_USER_INPUT", "color"},
			{"no hash", "UpdateLabel", map[string]any{"id": urgent.ID, "color": "ff0000"}, "BAD_USER_INPUT", "color"},
			{"blank name", "CreateLabel", map[string]any{"name": "   ", "color": "#000000"}, "BAD_USER_INPUT", "name"},
			{"long name", "CreateLabel", map[string]any{"name": strings.Repeat("é", 51), "color": "#000000"}, "BAD_USER_INPUT", "name"},
			{"unknown label", "UpdateLabel", map[string]any{"id": w.QueueID, "name": "x"}, "NOT_FOUND", ""},
			{"delete unknown", "DeleteLabel", map[string]any{"id": "98784247000"}, "NOT_FOUND", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantRefusal(t, w.Admin.C.Op(t, tc.op, tc.vars), tc.code, tc.field, tc.name)
			})
		}
		// An agent lists them but changes none.
		for _, tc := range []struct {
			op   string
			vars map[string]any
		}{
			{"CreateLabel", map[string]any{"name": "Sales", "color": "#00ff00"}},
			{"UpdateLabel", map[string]any{"id": billing.ID, "color": "#00ff00"}},
			{"DeleteLabel", map[string]any{"id": billing.ID}},
		} {
			wantRefusal(t, w.Ana.C.Op(t, tc.op, tc.vars), "FORBIDDEN", "", "Ana: "+tc.op)
		}
		list := func(a *apitest.Agent) []labelOut {
			var out struct{ Labels []labelOut }
			a.C.MustOp(t, "Labels", nil, &out)
			return out.Labels
		}
		require.Equal(t, []labelOut{billing, urgent}, list(w.Ana), "refusals stored nothing; listed by name")

		// A 50-character name (accented) is fine; a rename keeps the colour.
		long := strings.Repeat("é", 50)
		var up struct{ UpdateLabel labelOut }
		w.Admin.C.MustOp(t, "UpdateLabel", map[string]any{"id": urgent.ID, "name": long}, &up)
		require.Equal(t, labelOut{urgent.ID, long, "#ff0000"}, up.UpdateLabel)
		w.Admin.C.MustOp(t, "UpdateLabel", map[string]any{"id": urgent.ID, "name": "Urgent", "color": "#00FF00"}, &up)
		require.Equal(t, labelOut{urgent.ID, "Urgent", "#00ff00"}, up.UpdateLabel)
		// Renaming a label to its own name in another case is no conflict.
		w.Admin.C.MustOp(t, "UpdateLabel", map[string]any{"id": urgent.ID, "name": "URGENT"}, &up)
		require.Equal(t, "URGENT", up.UpdateLabel.Name)

		// node(id) answers a label, to any agent.
		var node struct{ Node *labelOut }
		w.Dan.C.MustOp(t, "LabelNode", map[string]any{"id": billing.ID}, &node)
		require.Equal(t, &billing, node.Node)

		var del struct{ DeleteLabel struct{ DeletedID string } }
		w.Admin.C.MustOp(t, "DeleteLabel", map[string]any{"id": billing.ID}, &del)
		require.Equal(t, billing.ID, del.DeleteLabel.DeletedID)
		require.Equal(t, []string{"URGENT"}, labelNames(list(w.Ana)))
		wantRefusal(t, w.Dan.C.Op(t, "LabelNode", map[string]any{"id": billing.ID}), "NOT_FOUND", "", "node of a deleted label")
		// Its name is free again.
		labelCreate(t, w, "billing", "#123456")

		// Every change is in the audit log, with the admin as the actor.
		var audit struct {
			AuditLog struct {
				Edges []struct {
					Node struct {
						Action, TargetID, Detail string
						Actor                    *struct{ ID string }
					}
				}
			}
		}
		w.Admin.C.MustOp(t, "AuditLog", map[string]any{"first": 20}, &audit)
		var got []string
		for _, e := range audit.AuditLog.Edges {
			if n := e.Node; strings.HasPrefix(n.Action, "label.") {
				require.NotNil(t, n.Actor)
				require.Equal(t, w.Admin.ID, n.Actor.ID)
				got = append(got, n.Action)
				if n.Action == "label.delete" {
					require.Equal(t, billing.ID, n.TargetID)
					require.Contains(t, n.Detail, `"Billing"`)
				}
			}
		}
		require.Equal(t, []string{"label.create", "label.delete", "label.update", "label.update", "label.update", "label.create", "label.create"}, got)
	})
}

// TestLabelConversations: any agent who sees a conversation labels it;
// adding twice is one label and no event; every viewer's inboxEvents and
// conversationEvents get CONVERSATION_UPDATED with the labels, over real
// websockets; an agent who may not see it gets NOT_FOUND, as for any
// conversation they may not see.
func TestLabelConversations(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		billing := labelCreate(t, w, "Billing", "#aa0000")
		vip := labelCreate(t, w, "VIP", "#00aa00")
		conv := w.Inbound(t, w.WhatsApp, "34600700800", "my invoice is wrong")

		ana := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
		ana.SubscribeOp(t, "inbox", "InboxEventsLabels", nil)
		ana.SubscribeOp(t, "conv", "ConversationEventsLabels", map[string]any{"id": conv})
		cleo := dialAs(t, s, apitest.LegacyWS, w.Cleo.Token)
		cleo.SubscribeOp(t, "inbox", "InboxEventsLabels", nil)
		dan := dialAs(t, s, apitest.TransportWS, w.Dan.Token)
		dan.SubscribeOp(t, "inbox", "InboxEventsLabels", nil)
		waitSubscribed(t, s, 4)

		// Ben, a member of the queue the conversation waits in, labels it.
		require.Equal(t, []string{"VIP"}, labelSet(t, w.Ben, true, conv, vip.ID))
		labelWantUpdated(t, ana, "inbox", conv, "VIP")
		labelWantUpdated(t, ana, "conv", conv, "VIP")
		labelWantUpdated(t, cleo, "inbox", conv, "VIP")
		require.Equal(t, []string{"Billing", "VIP"}, labelSet(t, w.Ana, true, conv, billing.ID), "by name")
		labelWantUpdated(t, ana, "inbox", conv, "Billing", "VIP")
		labelWantUpdated(t, ana, "conv", conv, "Billing", "VIP")
		labelWantUpdated(t, cleo, "inbox", conv, "Billing", "VIP")

		// Twice is once, and tells nobody: the next event is the removal.
		require.Equal(t, []string{"Billing", "VIP"}, labelSet(t, w.Ben, true, conv, vip.ID))
		require.Equal(t, []string{"Billing", "VIP"}, labelsOfConversation(t, w.Cleo, conv))

		// Dan, in no queue, may not see it: NOT_FOUND, as for any
		// conversation he may not see, and nothing changes.
		for _, op := range []string{"AddLabel", "RemoveLabel"} {
			wantRefusal(t, w.Dan.C.Op(t, op, map[string]any{"conversationID": conv, "labelID": billing.ID}), "NOT_FOUND", "", "Dan: "+op)
		}
		// An unknown label is NOT_FOUND too.
		wantRefusal(t, w.Ana.C.Op(t, "AddLabel", map[string]any{"conversationID": conv, "labelID": w.QueueID}), "NOT_FOUND", "", "unknown label")

		require.Equal(t, []string{"Billing"}, labelSet(t, w.Cleo, false, conv, vip.ID))
		labelWantUpdated(t, ana, "inbox", conv, "Billing")
		labelWantUpdated(t, ana, "conv", conv, "Billing")
		labelWantUpdated(t, cleo, "inbox", conv, "Billing")
		// Taking off a label it does not carry changes nothing.
		require.Equal(t, []string{"Billing"}, labelSet(t, w.Cleo, false, conv, vip.ID))

		// Once Ana owns it, Ben no longer sees it; Ana still labels it.
		w.Ana.Send(t, conv, "let me check")
		wantRefusal(t, w.Ben.C.Op(t, "AddLabel", map[string]any{"conversationID": conv, "labelID": vip.ID}), "NOT_FOUND", "", "Ben after Ana took it")
		require.Equal(t, []string{"Billing", "VIP"}, labelSet(t, w.Ana, true, conv, vip.ID))
		// The admin sees every conversation and labels it too.
		require.Equal(t, []string{"VIP"}, labelSet(t, w.Admin, false, conv, billing.ID))
		dan.ExpectNone(t, "inbox", 200*eventTimeout/1000)
	})
}

// labelInboxIDs pages through an inbox view filtered by labels, page by
// page, and returns the ids in order and the totalCount of the first page.
func labelInboxIDs(t *testing.T, a *apitest.Agent, labelIDs []string, pageSize int) ([]string, int) {
	t.Helper()
	var ids []string
	var after any
	total := -1
	for page := 0; page < 50; page++ {
		var out struct {
			Inbox struct {
				TotalCount int
				PageInfo   struct {
					HasNextPage bool
					EndCursor   string
				}
				Edges []struct{ Node struct{ ID string } }
			}
		}
		a.C.MustOp(t, "InboxLabels", map[string]any{"view": "QUEUE", "labelIDs": labelIDs, "first": pageSize, "after": after}, &out)
		if total < 0 {
			total = out.Inbox.TotalCount
		}
		for _, e := range out.Inbox.Edges {
			ids = append(ids, e.Node.ID)
		}
		if !out.Inbox.PageInfo.HasNextPage {
			return ids, total
		}
		after = out.Inbox.PageInfo.EndCursor
	}
	t.Fatal("inbox pages do not end")
	return nil, 0
}

// TestLabelInboxFilter: labelIDs keeps the conversations carrying any of
// the labels, combines with the view and the other filters, and pages
// without gaps or repeats; an id that is no label (or no longer) lists
// nothing; deleting a label takes it off every conversation and tells
// their viewers.
func TestLabelInboxFilter(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		a := labelCreate(t, w, "A", "#0000aa")
		bl := labelCreate(t, w, "B", "#0000bb")
		c := labelCreate(t, w, "C", "#0000cc")
		// Seven conversations, newest last: with A (0, 1, 4), B (2, 4, 5),
		// C (3), none (6).
		var convs []string
		for i := 0; i < 7; i++ {
			convs = append(convs, w.Inbound(t, w.WhatsApp, fmt.Sprint(34611000000+i), "hello"))
		}
		for i, ls := range [][]string{{a.ID}, {a.ID}, {bl.ID}, {c.ID}, {a.ID, bl.ID}, {bl.ID}, nil} {
			for _, l := range ls {
				labelSet(t, w.Admin, true, convs[i], l)
			}
		}
		newestFirst := func(is ...int) []string {
			out := []string{}
			for k := len(is) - 1; k >= 0; k-- {
				out = append(out, convs[is[k]])
			}
			return out
		}
		for _, size := range []int{1, 2, 10} {
			ids, total := labelInboxIDs(t, w.Ana, []string{a.ID, bl.ID}, size)
			require.Equal(t, newestFirst(0, 1, 2, 4, 5), ids, "A or B, pages of %d", size)
			require.Equal(t, 5, total, "totalCount counts each conversation once")
		}
		ids, _ := labelInboxIDs(t, w.Ana, []string{c.ID}, 2)
		require.Equal(t, newestFirst(3), ids)
		ids, _ = labelInboxIDs(t, w.Ana, nil, 100)
		require.Len(t, ids, 7, "no filter")
		ids, _ = labelInboxIDs(t, w.Ana, []string{}, 100)
		require.Len(t, ids, 7, "an empty list is no filter")
		// An id of no label lists nothing.
		ids, _ = labelInboxIDs(t, w.Ana, []string{convs[0]}, 10)
		require.Empty(t, ids)

		// With the other filters: another queue's id leaves nothing; Dan,
		// in no queue, sees none of them anyway.
		var out struct{ Inbox struct{ TotalCount int } }
		w.Ana.C.MustOp(t, "InboxLabels", map[string]any{"view": "QUEUE", "labelIDs": []string{a.ID}, "queueID": w.QueueID}, &out)
		require.Equal(t, 3, out.Inbox.TotalCount)
		w.Ana.C.MustOp(t, "InboxLabels", map[string]any{"view": "QUEUE", "labelIDs": []string{a.ID}, "queueID": a.ID}, &out)
		require.Equal(t, 0, out.Inbox.TotalCount)
		w.Dan.C.MustOp(t, "InboxLabels", map[string]any{"view": "QUEUE", "labelIDs": []string{a.ID}}, &out)
		require.Equal(t, 0, out.Inbox.TotalCount)
		// Once Ana owns conversation 4, her MINE view filters the same way.
		w.Ana.Send(t, convs[4], "on it")
		w.Ana.C.MustOp(t, "InboxLabels", map[string]any{"view": "MINE", "labelIDs": []string{bl.ID}}, &out)
		require.Equal(t, 1, out.Inbox.TotalCount)
		ids, _ = labelInboxIDs(t, w.Ana, []string{a.ID, bl.ID}, 2)
		require.Equal(t, newestFirst(0, 1, 2, 5), ids, "the QUEUE view lost the one Ana took")
		tooMany := make([]string, 101)
		for i := range tooMany {
			tooMany[i] = a.ID
		}
		wantRefusal(t, w.Ana.C.Op(t, "InboxLabels", map[string]any{"view": "QUEUE", "labelIDs": tooMany}), "BAD_USER_INPUT", "labelIDs", "101 labels")

		// Deleting B takes it off conversations 2, 4 and 5: Ben (who sees
		// 2 and 5, waiting in his queue) and Ana (who owns 4 and sees the
		// others) are told, each conversation once, without B.
		ana := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
		ana.SubscribeOp(t, "inbox", "InboxEventsLabels", nil)
		ben := dialAs(t, s, apitest.TransportWS, w.Ben.Token)
		ben.SubscribeOp(t, "inbox", "InboxEventsLabels", nil)
		waitSubscribed(t, s, 2)
		w.Admin.C.MustOp(t, "DeleteLabel", map[string]any{"id": bl.ID}, nil)
		collect := func(ws *apitest.WS, n int) map[string][]string {
			got := map[string][]string{}
			for i := 0; i < n; i++ {
				e := labelNext(t, ws, "inbox")
				require.Equal(t, "CONVERSATION_UPDATED", e.Kind)
				require.NotContains(t, got, e.ConversationID, "told twice")
				got[e.ConversationID] = labelNames(e.Conversation.Labels)
			}
			return got
		}
		want := map[string][]string{convs[2]: {}, convs[4]: {"A"}, convs[5]: {}}
		require.Equal(t, want, collect(ana, 3))
		require.Equal(t, map[string][]string{convs[2]: {}, convs[5]: {}}, collect(ben, 2))
		require.Equal(t, []string{"A"}, labelsOfConversation(t, w.Ana, convs[4]))
		ids, _ = labelInboxIDs(t, w.Ana, []string{bl.ID}, 10)
		require.Empty(t, ids, "a deleted label lists nothing")
	})
}

// TestLabelHistory: the contact's history records who put which label on
// a conversation and took it off (LABELED, UNLABELED, the label's name as
// detail, also when an admin deletes the label), and each entry's
// conversation shows its labels now.
func TestLabelHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		billing := labelCreate(t, w, "Billing", "#aa0000")
		vip := labelCreate(t, w, "VIP", "#00aa00")
		conv := w.Inbound(t, w.WhatsApp, "34600900900", "hello")
		labelSet(t, w.Ben, true, conv, billing.ID)
		labelSet(t, w.Ben, true, conv, billing.ID) // no second entry
		labelSet(t, w.Ana, true, conv, vip.ID)
		labelSet(t, w.Cleo, false, conv, billing.ID)
		labelSet(t, w.Ben, true, conv, billing.ID)
		w.Admin.C.MustOp(t, "DeleteLabel", map[string]any{"id": vip.ID}, nil)

		var c struct {
			Conversation struct{ Contact struct{ ID string } }
		}
		w.Ana.C.MustOp(t, "Conversation", map[string]any{"id": conv}, &c)
		var h struct {
			Contact struct {
				History struct {
					Edges []struct {
						Node struct {
							Kind         string
							Detail       *string
							Agent        *struct{ ID string }
							Conversation *struct {
								ID     string
								Labels []labelOut
							}
						}
					}
				}
			}
		}
		// Dan sees the customer's history (not the messages) with the labels.
		w.Dan.C.MustOp(t, "ContactHistoryLabels", map[string]any{"id": c.Conversation.Contact.ID, "first": 50}, &h)
		var got []string
		for _, e := range h.Contact.History.Edges {
			n := e.Node
			require.NotNil(t, n.Conversation)
			require.Equal(t, []string{"Billing"}, labelNames(n.Conversation.Labels), "every entry shows the conversation's labels now")
			if n.Kind != "LABELED" && n.Kind != "UNLABELED" {
				continue
			}
			who := map[string]string{w.Ana.ID: "Ana", w.Ben.ID: "Ben", w.Cleo.ID: "Cleo", w.Admin.ID: "admin"}[n.Agent.ID]
			got = append(got, fmt.Sprintf("%s %s by %s", n.Kind, *n.Detail, who))
		}
		require.Equal(t, []string{
			"UNLABELED VIP by admin", "LABELED Billing by Ben", "UNLABELED Billing by Cleo",
			"LABELED VIP by Ana", "LABELED Billing by Ben",
		}, got, "newest first")
	})
}

// TestLabelQueryCount: the labels of an inbox page and of a history page
// are loaded per page, not per conversation (no N+1).
func TestLabelQueryCount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s, queries := countingServer(t, b)
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		l1 := labelCreate(t, w, "One", "#111111")
		l2 := labelCreate(t, w, "Two", "#222222")
		var convs []string
		add := func(n int) {
			for i := len(convs); i < n; i++ {
				conv := w.Inbound(t, w.WhatsApp, fmt.Sprint(34622000000+i), "hello")
				convs = append(convs, conv)
				labelSet(t, w.Admin, true, conv, l1.ID)
				if i%2 == 0 {
					labelSet(t, w.Admin, true, conv, l2.ID)
				}
			}
		}
		inbox := func() (int64, int) {
			var out struct {
				Inbox struct {
					Edges []struct{ Node struct{ Labels []labelOut } }
				}
			}
			queries.Store(0)
			w.Ana.C.MustOp(t, "InboxLabels", map[string]any{"view": "QUEUE", "labelIDs": []string{l1.ID, l2.ID}, "first": 100}, &out)
			n := queries.Load()
			for _, e := range out.Inbox.Edges {
				require.NotEmpty(t, e.Node.Labels)
			}
			return n, len(out.Inbox.Edges)
		}
		add(3)
		few, n := inbox()
		require.Equal(t, 3, n)
		add(30)
		many, n := inbox()
		require.Equal(t, 30, n)
		t.Logf("InboxLabels: %d SQL queries for 3 conversations, %d for 30", few, many)
		require.Equal(t, few, many, "inbox labels: N+1")

		// A history page: one customer's entries over many conversations
		// (each dealt with, the next message opening another).
		var contact string
		for i := 0; i < 12; i++ {
			conv := w.Inbound(t, w.WhatsApp, "34699999999", "again")
			labelSet(t, w.Admin, true, conv, l2.ID)
			w.Admin.C.MustOp(t, "MarkDealtWith", map[string]any{"id": conv}, nil)
			if contact == "" {
				var c struct {
					Conversation struct{ Contact struct{ ID string } }
				}
				w.Ana.C.MustOp(t, "Conversation", map[string]any{"id": conv}, &c)
				contact = c.Conversation.Contact.ID
			}
		}
		history := func(first int) int64 {
			var out struct {
				Contact struct {
					History struct {
						Edges []struct {
							Node struct {
								Conversation struct {
									ID     string
									Labels []labelOut
								}
							}
						}
					}
				}
			}
			queries.Store(0)
			w.Dan.C.MustOp(t, "ContactHistoryLabels", map[string]any{"id": contact, "first": first}, &out)
			n := queries.Load()
			require.Len(t, out.Contact.History.Edges, first)
			seen := map[string]bool{}
			for _, e := range out.Contact.History.Edges {
				require.Equal(t, []string{"Two"}, labelNames(e.Node.Conversation.Labels))
				seen[e.Node.Conversation.ID] = true
			}
			if first > 10 {
				require.Greater(t, len(seen), 5, "the page spans many conversations")
			}
			return n
		}
		few, many = history(2), history(40)
		t.Logf("ContactHistoryLabels: %d SQL queries for 2 entries, %d for 40", few, many)
		require.Equal(t, few, many, "history labels: N+1")
	})
}
