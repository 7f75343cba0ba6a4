package storetest

import (
	"context"
	"testing"

	"github.com/parleyhq/parley/ent/schema/schematype"
)

// TestOpenMigratesAndIsolates checks that each backend yields a migrated,
// empty database of its own, with global IDs in per-table ranges.
func TestOpenMigratesAndIsolates(t *testing.T) {
	Each(t, func(t *testing.T, b Backend) {
		ctx := context.Background()
		db1, db2 := Open(t, b), Open(t, b)
		a, err := db1.Client.Agent.Create().SetName("A").SetEmail("a@x").SetExtension("100").
			SetPasswordHash("x").Save(ctx)
		if err != nil {
			t.Fatalf("create agent: %v", err)
		}
		q, err := db1.Client.Queue.Create().SetName("Q").SetStrategy(schematype.StrategyHunt).Save(ctx)
		if err != nil {
			t.Fatalf("create queue: %v", err)
		}
		if a.ID>>32 == q.ID>>32 {
			t.Fatalf("agent %d and queue %d share an ID range", a.ID, q.ID)
		}
		n, err := db2.Client.Agent.Query().Count(ctx)
		if err != nil || n != 0 {
			t.Fatalf("second database sees %d agents (err %v), want 0", n, err)
		}
	})
}
