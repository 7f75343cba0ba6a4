package conversations

import (
	"testing"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestMentionsStatements: the mentions of a page of messages load in the
// same number of statements however many notes the page holds (the
// loader), and a conversation without mentions costs the access rule no
// statement for them.
func TestMentionsStatements(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		w := newWorld(t, b)
		ana, ben, cleo := w.agent(schematype.RoleAgent), w.agent(schematype.RoleAgent), w.agent(schematype.RoleAgent)
		c := w.conv(convSpec{channel: schematype.ChannelWhatsApp, owner: ana})
		if err := w.svc.elog.Init(w.ctx); err != nil {
			t.Fatal(err)
		}
		pageCost := func() int64 {
			t.Helper()
			ctx := w.svc.WithRequestScope(w.as(ana))
			conn, err := w.svc.Messages(ctx, c, Page{})
			if err != nil {
				t.Fatal(err)
			}
			w.statements.Store(0)
			for _, e := range conn.Edges {
				ms, err := w.svc.Mentions(ctx, e.Node)
				if err != nil {
					t.Fatal(err)
				}
				if e.Node.Kind == schematype.KindNote && len(ms) != 2 {
					t.Fatalf("note %d: %d mentions, want 2", e.Node.ID, len(ms))
				}
			}
			return w.statements.Load()
		}
		// Without mentions, judging the conversation sends what it did before.
		w.statements.Store(0)
		if _, err := judge(w.ctx, w.client, ana, c.ID); err != nil {
			t.Fatal(err)
		}
		if n := w.statements.Load(); n != 1 {
			t.Fatalf("judging a conversation without mentions: %d statements, want 1", n)
		}
		for range 2 {
			if _, err := w.svc.AddNote(w.as(ana), NoteInput{ConversationID: c.ID, Body: "mira", Mentions: []int{ben.AgentID, cleo.AgentID}}); err != nil {
				t.Fatal(err)
			}
		}
		two := pageCost()
		for range 8 {
			if _, err := w.svc.AddNote(w.as(ana), NoteInput{ConversationID: c.ID, Body: "mira", Mentions: []int{ben.AgentID, cleo.AgentID}}); err != nil {
				t.Fatal(err)
			}
		}
		ten := pageCost()
		t.Logf("mentions of a page: %d statements for 2 notes, %d for 10", two, ten)
		if ten != two || ten > 2 {
			t.Fatalf("mentions of a page: %d statements for 2 notes, %d for 10; want the same, at most 2", two, ten)
		}
	})
}
