package conversations

import (
	"testing"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestTakeStatements counts what an uncontended Take sends to the database:
// the conversation and who sees it, the one conditional update that claims
// it, the offers it ends, the owner's last assignment and the interaction
// log (six), then its events written to the event log (three: the counter,
// the topics' last events, one insert); nothing is read back. The world's
// database has its event counter already, as every database but a new one
// does.
func TestTakeStatements(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		w := newWorld(t, b)
		ana, ben := w.agent(schematype.RoleAgent), w.agent(schematype.RoleAgent)
		q := w.queue(ana, ben)
		c := w.conv(convSpec{channel: schematype.ChannelWhatsApp, queue: q, offered: []auth.Principal{ana, ben}})
		if err := w.svc.elog.Init(w.ctx); err != nil {
			t.Fatal(err)
		}
		w.statements.Store(0)
		got, err := w.svc.Take(w.as(ana), c.ID)
		if err != nil {
			t.Fatal(err)
		}
		n := w.statements.Load()
		t.Logf("Take: %d statements", n)
		if got.OwnerID == nil || *got.OwnerID != ana.AgentID || got.TakenAt == nil || got.RouteAt != nil {
			t.Fatalf("Take returned %+v", got)
		}
		if n > maxTakeStatements {
			t.Fatalf("Take sent %d statements, want at most %d", n, maxTakeStatements)
		}
	})
}

const maxTakeStatements = 9
