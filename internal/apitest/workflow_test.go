package apitest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/conversations"
	"github.com/parleyhq/parley/internal/store/storetest"
)

type convOut struct {
	ID, Channel, Status string
	Archived            bool
	UnknownContact      bool
	Owner               *struct{ ID string }
	Queue               *struct{ ID string }
	Contact             *struct{ ID, DisplayName string }
	Participants        []struct{ ID string }
	Messages            struct {
		Edges []struct {
			Node struct {
				ID, Direction, Body string
				DeliveryStatus      *string
				Sender              struct {
					Typename    string `json:"__typename"`
					ID          string
					DisplayName string
				}
			}
		}
	}
}

func getConv(t *testing.T, a *apitest.Agent, id string) (*convOut, *apitest.Response) {
	t.Helper()
	r := a.C.Op(t, "Conversation", map[string]any{"id": id, "last": 50})
	if len(r.Errors) > 0 {
		return nil, r
	}
	var out struct{ Conversation convOut }
	r.Decode(t, &out)
	return &out.Conversation, r
}

func mustConv(t *testing.T, a *apitest.Agent, id string) *convOut {
	t.Helper()
	c, r := getConv(t, a, id)
	if c == nil {
		t.Fatalf("%s cannot see conversation %s: %s", a.Name, id, r.Raw)
	}
	return c
}

func wantCode(t *testing.T, r *apitest.Response, code, what string) {
	t.Helper()
	if r.Code() != code {
		t.Fatalf("%s: want %s, got %s", what, code, r.Raw)
	}
}

func TestInboundRoutesAndOffers(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		id := w.Inbound(t, w.WhatsApp, "34600111222", "Hola, necesito ayuda")

		c := mustConv(t, w.Ana, id)
		if c.Channel != "WHATSAPP" || c.Status != "OPEN" || !c.UnknownContact || c.Owner != nil || c.Queue == nil || c.Queue.ID != w.QueueID {
			t.Fatalf("new conversation %+v", c)
		}
		if len(c.Messages.Edges) != 1 || c.Messages.Edges[0].Node.Direction != "INBOUND" ||
			c.Messages.Edges[0].Node.Sender.Typename != "Contact" || c.Contact == nil || c.Contact.DisplayName != "Customer 34600111222" {
			t.Fatalf("first message %+v contact %+v", c.Messages.Edges, c.Contact)
		}
		// RING_ALL offers it to every available member: it is in their RECENT.
		for _, a := range []*apitest.Agent{w.Ana, w.Ben, w.Cleo} {
			if ids := a.InboxIDs(t, "RECENT", nil); !slices.Contains(ids, id) {
				t.Fatalf("%s's RECENT lacks the offered conversation: %v", a.Name, ids)
			}
			if ids := a.InboxIDs(t, "QUEUE", nil); !slices.Contains(ids, id) {
				t.Fatalf("%s's QUEUE lacks it: %v", a.Name, ids)
			}
		}
		// Dan is in no queue: he cannot see it, and cannot tell it exists.
		_, r := getConv(t, w.Dan, id)
		wantCode(t, r, "NOT_FOUND", "Dan reads it")
		wantCode(t, w.Dan.Send(t, id, "hi"), "NOT_FOUND", "Dan replies")
		if ids := w.Dan.InboxIDs(t, "RECENT", nil); len(ids) != 0 {
			t.Fatalf("Dan's inbox: %v", ids)
		}
		// The admin sees everything, in ALL; agents may not ask for ALL.
		if ids := w.Admin.InboxIDs(t, "ALL", nil); !slices.Contains(ids, id) {
			t.Fatalf("admin ALL: %v", ids)
		}
		wantCode(t, w.Ana.C.Op(t, "Inbox", map[string]any{"view": "ALL"}), "FORBIDDEN", "agent asks for ALL")

		// The same customer writing again lands in the same conversation.
		if again := w.Inbound(t, w.WhatsApp, "34600111222", "¿Hay alguien?"); again != id {
			t.Fatalf("second message opened conversation %s, want %s", again, id)
		}
	})
}

func TestInboundIsIdempotentAndRaceFree(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		acct := apitest.Atoi(t, w.WhatsApp)
		ctx := context.Background()

		in := conversations.Inbound{ChannelAccountID: acct, SenderID: "4915100000", ProviderMessageID: "wamid.A", Body: "one"}
		first := w.Receive(t, in)
		again := w.Receive(t, in)
		if !again.Duplicate || again.Message.ID != first.Message.ID {
			t.Fatalf("redelivery stored again: %+v", again)
		}

		// Concurrent first messages from one new sender: one conversation.
		const n = 12
		var wg sync.WaitGroup
		errs := make(chan error, n)
		convs := make(chan int, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r, err := s.App.Convs.Receive(ctx, conversations.Inbound{
					ChannelAccountID: acct, SenderID: "4477000111", ProviderMessageID: fmt.Sprintf("wamid.race.%d", i%6),
					Body: fmt.Sprintf("msg %d", i%6),
				})
				if err != nil {
					errs <- err
					return
				}
				convs <- r.Conversation.ID
			}(i)
		}
		wg.Wait()
		close(errs)
		close(convs)
		for err := range errs {
			t.Fatalf("concurrent receive: %v", err)
		}
		ids := map[int]bool{}
		for id := range convs {
			ids[id] = true
		}
		if len(ids) != 1 {
			t.Fatalf("concurrent first messages opened %d conversations", len(ids))
		}
		for id := range ids {
			n, err := s.App.DB.Client.Message.Query().Where(message.ConversationID(id)).Count(ctx)
			if err != nil || n != 6 {
				t.Fatalf("%d messages stored for 6 distinct provider ids (12 deliveries), err %v", n, err)
			}
		}
	})
}

// TestClaimRace runs the "exactly one first reply wins" race many times.
func TestClaimRace(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		agents := []*apitest.Agent{w.Ana, w.Ben, w.Cleo}
		rounds := 15
		if testing.Short() {
			rounds = 5
		}
		for round := 0; round < rounds; round++ {
			id := w.Inbound(t, w.WhatsApp, fmt.Sprintf("100%d", round), "race")
			type result struct {
				who  *apitest.Agent
				code string
			}
			results := make(chan result, len(agents)*2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, a := range agents {
				wg.Add(1)
				go func(a *apitest.Agent, take bool) {
					defer wg.Done()
					<-start
					var r *apitest.Response
					if take {
						r = a.C.Op(t, "TakeConversation", map[string]any{"id": id})
					} else {
						r = a.Send(t, id, "mine! "+a.Name)
					}
					results <- result{a, r.Code()}
				}(a, (round+i)%2 == 0)
			}
			close(start)
			wg.Wait()
			close(results)
			var winners []*apitest.Agent
			for r := range results {
				switch r.code {
				case "":
					winners = append(winners, r.who)
				case "CONFLICT":
					// Lost the race, whether the winner had committed
					// when this call looked or not.
				default:
					t.Fatalf("round %d: unexpected error %s", round, r.code)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("round %d: %d winners", round, len(winners))
			}
			c := mustConv(t, winners[0], id)
			if c.Owner == nil || c.Owner.ID != winners[0].ID {
				t.Fatalf("round %d: owner %+v, winner %s", round, c.Owner, winners[0].Name)
			}
			// Nothing of the losers was stored.
			for _, e := range c.Messages.Edges {
				if e.Node.Direction == "OUTBOUND" && !strings.HasSuffix(e.Node.Body, winners[0].Name) {
					t.Fatalf("round %d: a loser's message was stored: %q", round, e.Node.Body)
				}
			}
			for _, a := range agents {
				if a != winners[0] {
					if _, r := getConv(t, a, id); r.Code() != "NOT_FOUND" {
						t.Fatalf("round %d: %s still sees the claimed conversation: %s", round, a.Name, r.Raw)
					}
				}
			}
		}
	})
}

func TestOwnershipTransferAndAdmin(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		id := w.Inbound(t, w.WhatsApp, "555000", "hello")

		var sent struct {
			SendMessage struct {
				Message struct {
					ID, Direction  string
					DeliveryStatus string
				}
				Conversation struct {
					ID, Status string
					Owner      struct{ ID string }
				}
			}
		}
		w.Ana.C.MustOp(t, "SendMessage", map[string]any{"input": map[string]any{"conversationID": id, "body": "Hi, I'm Ana"}}, &sent)
		if sent.SendMessage.Conversation.Owner.ID != w.Ana.ID || sent.SendMessage.Message.DeliveryStatus != "PENDING" {
			t.Fatalf("first reply: %+v", sent.SendMessage)
		}
		// Ben, to whom it was offered, learns that it was taken, nothing more.
		r := w.Ben.C.Op(t, "TakeConversation", map[string]any{"id": id})
		wantCode(t, r, "CONFLICT", "Ben takes Ana's conversation")
		if strings.Contains(string(r.Raw), "Ana") || strings.Contains(string(r.Raw), w.Ana.ID) || strings.Contains(string(r.Raw), "hello") {
			t.Fatalf("the refusal says more than that it was taken: %s", r.Raw)
		}
		_, r = getConv(t, w.Ben, id)
		wantCode(t, r, "NOT_FOUND", "Ben views Ana's conversation")
		wantCode(t, w.Dan.C.Op(t, "TakeConversation", map[string]any{"id": id}), "NOT_FOUND", "Dan, never offered it, takes Ana's conversation")
		if ids := w.Ben.InboxIDs(t, "QUEUE", nil); slices.Contains(ids, id) {
			t.Fatal("an owned conversation stays in the QUEUE view")
		}
		if ids := w.Ana.InboxIDs(t, "MINE", nil); !slices.Contains(ids, id) {
			t.Fatalf("Ana's MINE: %v", ids)
		}
		// Ana's own Take is harmless.
		if r := w.Ana.C.Op(t, "TakeConversation", map[string]any{"id": id}); len(r.Errors) > 0 {
			t.Fatalf("owner takes again: %s", r.Raw)
		}

		// The admin views it but does not reply without owning it.
		mustConv(t, w.Admin, id)
		wantCode(t, w.Admin.Send(t, id, "admin here"), "FORBIDDEN", "admin replies to Ana's conversation")

		// Transfer to Dan (found by SearchAgents): Ana loses access at once.
		var found struct {
			Agents struct {
				Edges []struct{ Node struct{ ID string } }
			}
		}
		w.Ana.C.MustOp(t, "SearchAgents", map[string]any{"search": "204"}, &found)
		if len(found.Agents.Edges) != 1 || found.Agents.Edges[0].Node.ID != w.Dan.ID {
			t.Fatalf("search by extension: %+v", found)
		}
		var tr struct {
			TransferConversation struct{ Owner struct{ ID, Name string } }
		}
		w.Ana.C.MustOp(t, "TransferConversation", map[string]any{"id": id, "agentID": w.Dan.ID}, &tr)
		if tr.TransferConversation.Owner.ID != w.Dan.ID {
			t.Fatalf("transfer: %+v", tr)
		}
		_, r = getConv(t, w.Ana, id)
		wantCode(t, r, "NOT_FOUND", "Ana after transferring")
		// Ana was offered it: she may learn it is someone else's now.
		wantCode(t, w.Ana.Send(t, id, "still here?"), "CONFLICT", "Ana replies after transferring")
		if r := w.Dan.Send(t, id, "Dan here"); len(r.Errors) > 0 {
			t.Fatalf("Dan replies: %s", r.Raw)
		}
		wantCode(t, w.Dan.C.Op(t, "TransferConversation", map[string]any{"id": id, "agentID": "999999"}), "BAD_USER_INPUT", "transfer to nobody")
		// An admin may transfer any conversation, here to itself.
		w.Admin.C.MustOp(t, "TransferConversation", map[string]any{"id": id, "agentID": w.Admin.ID}, nil)
		if r := w.Admin.Send(t, id, "admin owns it now"); len(r.Errors) > 0 {
			t.Fatalf("admin replies once owner: %s", r.Raw)
		}
	})
}

func TestDealtWithStickyAndArchive(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		id := w.Inbound(t, w.WhatsApp, "777", "first")
		if r := w.Ana.Send(t, id, "hello"); len(r.Errors) > 0 {
			t.Fatal(string(r.Raw))
		}
		// Archived but not dealt with: a new message brings it back, still Ana's.
		var ar struct{ ArchiveConversation struct{ Archived bool } }
		w.Ana.C.MustOp(t, "ArchiveConversation", map[string]any{"id": id}, &ar)
		if !ar.ArchiveConversation.Archived || slices.Contains(w.Ana.InboxIDs(t, "MINE", nil), id) {
			t.Fatal("archive did not archive")
		}
		if !slices.Contains(w.Ana.InboxIDs(t, "ARCHIVED", nil), id) {
			t.Fatal("ARCHIVED view lacks it")
		}
		if again := w.Inbound(t, w.WhatsApp, "777", "still there?"); again != id {
			t.Fatalf("sticky owner: new message opened %s", again)
		}
		c := mustConv(t, w.Ana, id)
		if c.Archived || c.Owner == nil || c.Owner.ID != w.Ana.ID {
			t.Fatalf("after a new message: %+v", c)
		}
		w.Ana.C.MustOp(t, "ArchiveConversation", map[string]any{"id": id}, nil)
		w.Ana.C.MustOp(t, "UnarchiveConversation", map[string]any{"id": id}, nil)
		if !slices.Contains(w.Ana.InboxIDs(t, "MINE", nil), id) {
			t.Fatal("unarchive did not bring it back")
		}

		var dw struct {
			MarkDealtWith struct {
				Status   string
				Archived bool
			}
		}
		w.Ana.C.MustOp(t, "MarkDealtWith", map[string]any{"id": id}, &dw)
		if dw.MarkDealtWith.Status != "DEALT_WITH" || !dw.MarkDealtWith.Archived {
			t.Fatalf("dealt with: %+v", dw)
		}
		wantCode(t, w.Ana.Send(t, id, "one more thing"), "BAD_USER_INPUT", "reply to a dealt-with conversation")
		// The next message opens a new conversation through routing.
		next := w.Inbound(t, w.WhatsApp, "777", "new question")
		if next == id {
			t.Fatal("a message after dealt-with went to the closed conversation")
		}
		n := mustConv(t, w.Ben, next)
		if n.Owner != nil || n.Status != "OPEN" {
			t.Fatalf("new conversation: %+v", n)
		}
		if !slices.Contains(w.Ana.InboxIDs(t, "ARCHIVED", nil), id) {
			t.Fatal("the dealt-with conversation is not in ARCHIVED")
		}
	})
}

func TestUnknownSenderPromptAndDelete(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		id := w.Inbound(t, w.WhatsApp, "3311", "who am I")
		wantCode(t, w.Ana.C.Op(t, "AddContactFromConversation", map[string]any{"id": id, "input": map[string]any{"displayName": "X", "email": "nope"}}),
			"BAD_USER_INPUT", "bad email")
		var added struct {
			AddContactFromConversation struct {
				UnknownContact bool
				Contact        struct{ ID, DisplayName, Email, Phone string }
			}
		}
		w.Ana.C.MustOp(t, "AddContactFromConversation", map[string]any{"id": id, "input": map[string]any{
			"displayName": "Zoë Ortega", "email": "zoe@example.com"}}, &added)
		got := added.AddContactFromConversation
		if got.UnknownContact || got.Contact.DisplayName != "Zoë Ortega" || got.Contact.Email != "zoe@example.com" || got.Contact.Phone != "+3311" {
			t.Fatalf("added contact: %+v", got)
		}
		wantCode(t, w.Ana.C.Op(t, "IgnoreConversation", map[string]any{"id": id}), "BAD_USER_INPUT", "ignore a known contact")
		// The contact is found by name, accents aside.
		if ids := w.Ana.InboxIDs(t, "RECENT", map[string]any{"search": "zoe ORTEGA"}); !slices.Contains(ids, id) {
			t.Fatalf("search by the new name: %v", ids)
		}

		other := w.Inbound(t, w.WhatsApp, "4422", "spam spam")
		var ig struct{ IgnoreConversation struct{ Archived bool } }
		w.Ben.C.MustOp(t, "IgnoreConversation", map[string]any{"id": other}, &ig)
		if !ig.IgnoreConversation.Archived || slices.Contains(w.Ben.InboxIDs(t, "RECENT", nil), other) {
			t.Fatal("ignored conversation still in RECENT")
		}

		// Only its owner or an admin deletes a conversation: Ben, a member
		// of its queue, may not.
		wantCode(t, w.Ben.C.Op(t, "DeleteConversation", map[string]any{"id": other}), "FORBIDDEN", "a queue member deletes an unowned conversation")
		mustConv(t, w.Ben, other)
		var del struct{ DeleteConversation struct{ DeletedID string } }
		w.Admin.C.MustOp(t, "DeleteConversation", map[string]any{"id": other}, &del)
		if del.DeleteConversation.DeletedID != other {
			t.Fatalf("deleted %+v", del)
		}
		_, r := getConv(t, w.Ben, other)
		wantCode(t, r, "NOT_FOUND", "deleted conversation")
		wantCode(t, w.Dan.C.Op(t, "DeleteConversation", map[string]any{"id": id}), "NOT_FOUND", "Dan deletes what he cannot see")
		mustConv(t, w.Ana, id)
	})
}

func TestLiveChatEndAndBlock(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		visit := func(key, ip string) string {
			r := w.Receive(t, conversations.Inbound{ChannelAccountID: apitest.Atoi(t, w.LiveChat), SenderID: key,
				Body: "hello from the site", VisitorIP: ip, VisitorUserAgent: "Mozilla/5.0", VisitorPageURL: "https://shop.example.com/cart"})
			return fmt.Sprint(r.Conversation.ID)
		}
		id := visit("visitor-1", "203.0.113.7")
		var vis struct {
			Conversation struct {
				Visitor struct{ IP, UserAgent, PageURL string }
			}
		}
		w.Ana.C.MustOp(t, "Conversation", map[string]any{"id": id}, &vis)
		if vis.Conversation.Visitor.IP != "203.0.113.7" || vis.Conversation.Visitor.PageURL != "https://shop.example.com/cart" {
			t.Fatalf("visitor: %+v", vis)
		}
		if r := w.Ana.Send(t, id, "hi visitor"); len(r.Errors) > 0 {
			t.Fatal(string(r.Raw))
		}
		var end struct{ EndChatSession struct{ Status string } }
		w.Ana.C.MustOp(t, "EndChatSession", map[string]any{"id": id}, &end)
		if end.EndChatSession.Status != "ENDED" {
			t.Fatalf("end: %+v", end)
		}
		wantCode(t, w.Ana.Send(t, id, "bye"), "BAD_USER_INPUT", "reply after the session ended")

		id2 := visit("visitor-2", "198.51.100.9")
		w.Ben.C.MustOp(t, "TakeConversation", map[string]any{"id": id2}, nil)
		var blk struct{ BlockAnonymousUser struct{ Status string } }
		w.Ben.C.MustOp(t, "BlockAnonymousUser", map[string]any{"id": id2}, &blk)
		if blk.BlockAnonymousUser.Status != "ENDED" {
			t.Fatalf("block: %+v", blk)
		}
		n, err := s.App.DB.Client.Block.Query().Count(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("%d blocks stored, err %v", n, err)
		}
		// Live chat only.
		wa := w.Inbound(t, w.WhatsApp, "999", "hi")
		wantCode(t, w.Ana.C.Op(t, "EndChatSession", map[string]any{"id": wa}), "BAD_USER_INPUT", "end a WhatsApp chat")
		wantCode(t, w.Ana.C.Op(t, "BlockAnonymousUser", map[string]any{"id": wa}), "BAD_USER_INPUT", "block a WhatsApp sender")
	})
}

func TestInternalChat(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		var out struct {
			StartInternalChat struct {
				ID, Channel  string
				Participants []struct{ ID, Name string }
			}
		}
		w.Ana.C.MustOp(t, "StartInternalChat", map[string]any{"agentIDs": []string{w.Dan.ID}, "body": "lunch?"}, &out)
		ic := out.StartInternalChat
		if ic.Channel != "INTERNAL" || len(ic.Participants) != 2 {
			t.Fatalf("internal chat: %+v", ic)
		}
		if !slices.Contains(w.Dan.InboxIDs(t, "RECENT", nil), ic.ID) {
			t.Fatal("Dan's RECENT lacks the internal chat")
		}
		if r := w.Dan.Send(t, ic.ID, "sure"); len(r.Errors) > 0 {
			t.Fatal(string(r.Raw))
		}
		_, r := getConv(t, w.Ben, ic.ID)
		wantCode(t, r, "NOT_FOUND", "a non-participant reads the internal chat")
		wantCode(t, w.Ana.C.Op(t, "MarkDealtWith", map[string]any{"id": ic.ID}), "BAD_USER_INPUT", "dealt-with on an internal chat")
		wantCode(t, w.Ana.C.Op(t, "StartInternalChat", map[string]any{"agentIDs": []string{w.Ana.ID}, "body": "me"}), "BAD_USER_INPUT", "chat with oneself")
		wantCode(t, w.Ana.C.Op(t, "StartInternalChat", map[string]any{"agentIDs": []string{"99999999"}, "body": "x"}), "BAD_USER_INPUT", "chat with nobody")
	})
}

func TestUnreadCountsAndIdempotentSend(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		id := w.Inbound(t, w.WhatsApp, "1234", "one")
		w.Inbound(t, w.WhatsApp, "1234", "two")
		other := w.Inbound(t, w.WhatsApp, "5678", "other")
		unread := func(a *apitest.Agent) map[string]int {
			var out struct {
				Inbox struct {
					Edges []struct {
						Node struct {
							ID          string
							UnreadCount int
							LastMessage struct{ Body string }
						}
					}
				}
			}
			a.C.MustOp(t, "Inbox", map[string]any{"view": "RECENT"}, &out)
			m := map[string]int{}
			for _, e := range out.Inbox.Edges {
				m[e.Node.ID] = e.Node.UnreadCount
			}
			return m
		}
		if u := unread(w.Ana); u[id] != 2 || u[other] != 1 {
			t.Fatalf("unread before reading: %v", u)
		}
		var mr struct{ MarkConversationRead struct{ UnreadCount int } }
		w.Ana.C.MustOp(t, "MarkRead", map[string]any{"id": id}, &mr)
		if mr.MarkConversationRead.UnreadCount != 0 {
			t.Fatalf("after MarkRead: %+v", mr)
		}
		if u := unread(w.Ben); u[id] != 2 {
			t.Fatalf("Ana's reading changed Ben's count: %v", u)
		}
		w.Inbound(t, w.WhatsApp, "1234", "three")
		if u := unread(w.Ana); u[id] != 1 {
			t.Fatalf("after a new message: %v", u)
		}

		// The same clientMutationID returns the first message.
		send := func(cmid string) string {
			var out struct {
				SendMessage struct{ Message struct{ ID string } }
			}
			w.Ana.C.MustOp(t, "SendMessage", map[string]any{"input": map[string]any{"conversationID": id, "body": "retry me", "clientMutationID": cmid}}, &out)
			return out.SendMessage.Message.ID
		}
		a, b2, c := send("cm-1"), send("cm-1"), send("cm-2")
		if a != b2 || a == c {
			t.Fatalf("idempotent send: %s %s %s", a, b2, c)
		}
		n, _ := s.App.DB.Client.Message.Query().Where(message.ConversationID(apitest.Atoi(t, id)), message.Body("retry me")).Count(context.Background())
		if n != 2 {
			t.Fatalf("%d messages stored for two distinct clientMutationIDs", n)
		}
		if u := unread(w.Ana); u[id] != 0 {
			t.Fatalf("own replies count as unread: %v", u)
		}
	})
}

func TestInboxFiltersSearchAndPaging(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		var ids []string
		start := time.Now().Add(-time.Minute)
		for i := 0; i < 5; i++ {
			// A second apart, oldest first, so that the order is certain.
			r := w.Receive(t, conversations.Inbound{
				ChannelAccountID: apitest.Atoi(t, w.WhatsApp), SenderID: fmt.Sprint(9000 + i), SenderName: fmt.Sprint("Customer ", 9000+i),
				ProviderMessageID: fmt.Sprintf("filters-%d", i), Body: fmt.Sprintf("pedido número %d", i),
				At: start.Add(time.Duration(i) * time.Second),
			})
			ids = append(ids, fmt.Sprint(r.Conversation.ID))
		}
		lc := w.Receive(t, conversations.Inbound{ChannelAccountID: apitest.Atoi(t, w.LiveChat), SenderID: "v", Body: "Crème brûlée?"})
		// Newest activity first.
		got := w.Ana.InboxIDs(t, "RECENT", nil)
		if len(got) != 6 || got[0] != fmt.Sprint(lc.Conversation.ID) || got[5] != ids[0] {
			t.Fatalf("order: %v (first WhatsApp %s)", got, ids[0])
		}
		if got := w.Ana.InboxIDs(t, "RECENT", map[string]any{"channel": "LIVE_CHAT"}); len(got) != 1 {
			t.Fatalf("channel filter: %v", got)
		}
		if got := w.Ana.InboxIDs(t, "QUEUE", map[string]any{"queueID": w.QueueID}); len(got) != 6 {
			t.Fatalf("queue filter: %v", got)
		}
		for q, want := range map[string]int{"NUMERO 3": 1, "creme BRULEE": 1, "pedido": 5, "%": 0, "9002": 1} {
			if got := w.Ana.InboxIDs(t, "RECENT", map[string]any{"search": q}); len(got) != want {
				t.Fatalf("search %q: %d results, want %d", q, len(got), want)
			}
		}
		// Pages of two, following endCursor.
		var seen []string
		var after any
		for page := 0; page < 4; page++ {
			var out struct {
				Inbox struct {
					PageInfo struct {
						HasNextPage bool
						EndCursor   string
					}
					Edges []struct{ Node struct{ ID string } }
				}
			}
			w.Ana.C.MustOp(t, "Inbox", map[string]any{"view": "RECENT", "first": 2, "after": after}, &out)
			for _, e := range out.Inbox.Edges {
				seen = append(seen, e.Node.ID)
			}
			if !out.Inbox.PageInfo.HasNextPage {
				break
			}
			after = out.Inbox.PageInfo.EndCursor
		}
		if !slices.Equal(seen, got) {
			t.Fatalf("paged %v, whole %v", seen, got)
		}
		n, _ := s.App.DB.Client.Conversation.Query().Where(conversation.OwnerIDIsNil()).Count(context.Background())
		if n != 6 {
			t.Fatalf("%d unowned conversations", n)
		}
	})
}

func TestContactHistoryFromWorkflow(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	id := w.Inbound(t, w.WhatsApp, "600600", "hello")
	w.Ana.Send(t, id, "hi")
	w.Ana.C.MustOp(t, "TransferConversation", map[string]any{"id": id, "agentID": w.Ben.ID}, nil)
	w.Ben.C.MustOp(t, "MarkDealtWith", map[string]any{"id": id}, nil)
	c := mustConv(t, w.Admin, id)
	var info struct {
		Contact struct {
			Identities []struct{ Channel, ExternalID string }
			History    struct {
				Edges []struct {
					Node struct {
						Kind, Channel string
						Agent         *struct{ Name string }
						Queue         *struct{ Name string }
						Conversation  *struct{ ID, Status string }
					}
				}
			}
		}
	}
	w.Ana.C.MustOp(t, "ContactInfo", map[string]any{"id": c.Contact.ID}, &info)
	var kinds []string
	for _, e := range info.Contact.History.Edges {
		kinds = append(kinds, e.Node.Kind)
		if e.Node.Queue == nil || e.Node.Queue.Name != "Support" || e.Node.Channel != "WHATSAPP" {
			t.Fatalf("history entry without queue/channel: %+v", e.Node)
		}
	}
	want := []string{"DEALT_WITH", "TRANSFERRED", "REPLIED", "TAKEN", "OFFERED", "OFFERED", "OFFERED", "CREATED"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("history %v, want %v", kinds, want)
	}
	if info.Contact.History.Edges[0].Node.Agent.Name != "Ben" || info.Contact.History.Edges[0].Node.Conversation.Status != "DEALT_WITH" {
		t.Fatalf("newest entry %+v", info.Contact.History.Edges[0].Node)
	}
	if len(info.Contact.Identities) != 1 || info.Contact.Identities[0].ExternalID != "600600" {
		t.Fatalf("identities %+v", info.Contact.Identities)
	}
	// Ana, who transferred it away, sees the history but not the messages.
	r := w.Ana.C.Query(t, `query($id: ID!) { contact(id: $id) { history(first: 1) { edges { node { conversation { id lastMessage { body } messages(last: 5) { edges { node { body } } } } } } } } }`,
		map[string]any{"id": c.Contact.ID})
	if strings.Contains(string(r.Raw), "hello") || r.Code() != "NOT_FOUND" {
		t.Fatalf("history leaks the conversation's messages: %s", r.Raw)
	}
}

// TestInboxQueryCount checks that the inbox loads contacts, queues, owners,
// last messages and unread counts per page, not per conversation (no N+1).
func TestInboxQueryCount(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s, queries := countingServer(t, b)
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		count := func() (int64, int) {
			queries.Store(0)
			ids := w.Ana.InboxIDs(t, "RECENT", nil)
			var out struct{ Inbox struct{ TotalCount int } }
			queries.Store(0)
			w.Ana.C.MustOp(t, "Inbox", map[string]any{"view": "RECENT", "first": 50}, &out)
			return queries.Load(), len(ids)
		}
		for i := 0; i < 3; i++ {
			id := w.Inbound(t, w.WhatsApp, fmt.Sprint(100+i), "hello")
			if i == 0 {
				w.Ana.Send(t, id, "mine")
			}
		}
		few, n := count()
		if n != 3 {
			t.Fatalf("%d conversations listed, want 3", n)
		}
		for i := 3; i < 30; i++ {
			w.Inbound(t, w.WhatsApp, fmt.Sprint(100+i), "hello")
		}
		many, n := count()
		if n != 30 {
			t.Fatalf("%d conversations listed, want 30", n)
		}
		t.Logf("Inbox: %d SQL queries for 3 conversations, %d for 30", few, many)
		if many != few || many > 12 {
			t.Fatalf("Inbox queries: %d for 3 conversations, %d for 30: N+1", few, many)
		}
	})
}

func TestReplyWindowAndDeliveryStatuses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		ctx := context.Background()
		acct := apitest.Atoi(t, w.WhatsApp)
		// A customer message from two days ago: the window is closed.
		old := w.Receive(t, conversations.Inbound{ChannelAccountID: acct, SenderID: "111", ProviderMessageID: "wamid.old",
			Body: "old", At: time.Now().Add(-48 * time.Hour)})
		r := w.Ana.Send(t, fmt.Sprint(old.Conversation.ID), "too late?")
		if r.Code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "24 hours") {
			t.Fatalf("reply outside the window: %s", r.Raw)
		}
		// A fresh message opens it again.
		w.Receive(t, conversations.Inbound{ChannelAccountID: acct, SenderID: "111", ProviderMessageID: "wamid.new", Body: "new"})
		var sent struct {
			SendMessage struct {
				Message struct{ ID, DeliveryStatus string }
			}
		}
		w.Ana.C.MustOp(t, "SendMessage", map[string]any{"input": map[string]any{"conversationID": fmt.Sprint(old.Conversation.ID), "body": "in time"}}, &sent)
		if sent.SendMessage.Message.DeliveryStatus != "PENDING" {
			t.Fatalf("a WhatsApp reply starts PENDING: %+v", sent)
		}
		mid := apitest.Atoi(t, sent.SendMessage.Message.ID)
		status := func() string {
			m, err := s.App.DB.Client.Message.Get(ctx, mid)
			if err != nil {
				t.Fatal(err)
			}
			if m.DeliveryStatus == nil {
				return ""
			}
			return string(*m.DeliveryStatus)
		}
		apply := func(st string) {
			if err := s.App.Convs.ApplyStatus(ctx, conversations.StatusUpdate{ChannelAccountID: acct, ProviderMessageID: "wamid.out",
				Status: schematype.DeliveryStatus(st), Reason: "boom"}); err != nil {
				t.Fatal(err)
			}
		}
		// "delivered" arrives before our send call returned the id: kept.
		apply("DELIVERED")
		if status() != "PENDING" {
			t.Fatalf("a status for an unknown id changed the message: %s", status())
		}
		if err := s.App.Convs.MarkSent(ctx, mid, "wamid.out"); err != nil {
			t.Fatal(err)
		}
		if status() != "DELIVERED" {
			t.Fatalf("the early status was not applied: %s", status())
		}
		apply("SENT") // late and out of order: ignored
		if status() != "DELIVERED" {
			t.Fatalf("status moved backwards: %s", status())
		}
		apply("READ")
		apply("READ")
		if status() != "READ" {
			t.Fatalf("read: %s", status())
		}
	})
}
