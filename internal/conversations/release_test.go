package conversations

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/schema/schematype"
)

// TestOwnerAway: the owner-away rule on plain data, by status and by last
// sign of life, with the presence grace.
func TestOwnerAway(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
	const timeout, grace = 10 * time.Minute, 2 * time.Minute
	created := now.Add(-24 * time.Hour)
	cases := []struct {
		name string
		a    ent.Agent
		want bool
		why  string
	}{
		{"OFFLINE just long enough", ent.Agent{Status: schematype.StatusOffline, StatusChangedAt: ago(timeout), LastSeenAt: ago(0)}, true, "OFFLINE"},
		{"OFFLINE not long enough, online", ent.Agent{Status: schematype.StatusOffline, StatusChangedAt: ago(timeout - time.Second), LastSeenAt: ago(0)}, false, ""},
		{"OFFLINE since creation", ent.Agent{Status: schematype.StatusOffline, LastSeenAt: ago(0)}, true, "OFFLINE"},
		{"AVAILABLE, connected", ent.Agent{Status: schematype.StatusAvailable, StatusChangedAt: ago(time.Hour), LastSeenAt: ago(time.Minute)}, false, ""},
		{"AVAILABLE, silent for grace+timeout", ent.Agent{Status: schematype.StatusAvailable, LastSeenAt: ago(grace + timeout)}, true, "offline (no connection)"},
		{"AWAY, silent for timeout only (still within grace+timeout)", ent.Agent{Status: schematype.StatusAway, LastSeenAt: ago(timeout + grace - time.Second)}, false, ""},
		{"never seen", ent.Agent{Status: schematype.StatusAvailable}, true, "offline (no connection)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.a
			a.Name, a.CreatedAt = "Ana", created
			why, away := OwnerAway(&a, timeout, grace, now)
			if away != tc.want {
				t.Fatalf("away = %v (%q), want %v", away, why, tc.want)
			}
			if want := "owner away: Ana has been " + tc.why + " for over 10m0s"; tc.want && why != want {
				t.Fatalf("why = %q, want %q", why, want)
			}
		})
	}
}
