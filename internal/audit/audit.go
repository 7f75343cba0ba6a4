// Package audit records administrative changes (who, when, what, the
// values before and after, never secrets) and lists them to admins.
//
// A change and its audit entry are written in the same transaction: an
// entry exists exactly when its change committed.
package audit

import (
	"context"
	"encoding/json"
	"fmt"

	"entgo.io/contrib/entgql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/paging"
)

// Change is one administrative change. Before and After are marshalled to
// JSON as they are: pass values that hold no secrets (Redact helps).
type Change struct {
	// Action names what was done, "<thing>.<verb>": "agent.update",
	// "agent.deactivate", "queue.delete", "channelAccount.rotate", ...
	Action string
	// TargetID is the global id of the node changed; 0 for none.
	TargetID int
	Before   any
	After    any
}

// Record writes c inside tx, by the agent calling (ctx's principal; none
// for changes made by the system).
func Record(ctx context.Context, tx *ent.Tx, c Change) error {
	m := tx.AuditEntry.Create().SetAction(c.Action)
	if p, err := auth.Agent(ctx); err == nil {
		m.SetActorID(p.AgentID)
	}
	if c.TargetID != 0 {
		m.SetTargetID(c.TargetID)
	}
	if c.Before != nil || c.After != nil {
		b, err := json.Marshal(struct {
			Before any `json:"before,omitempty"`
			After  any `json:"after,omitempty"`
		}{c.Before, c.After})
		if err != nil {
			return fmt.Errorf("audit detail of %s: %w", c.Action, err)
		}
		m.SetDetail(string(b))
	}
	if err := m.Exec(ctx); err != nil {
		return fmt.Errorf("audit %s: %w", c.Action, err)
	}
	return nil
}

// Redacted stands in for a secret in Before/After: it says that a secret
// is set (and, across a change, that it changed) without its value.
const Redacted = "[redacted]"

// Service lists the audit log.
type Service struct{ client *ent.Client }

// NewService returns the audit log reader.
func NewService(client *ent.Client) *Service { return &Service{client: client} }

// List pages through the log, newest first (ADMIN and SYSTEM_OWNER only).
func (s *Service) List(ctx context.Context, after *entgql.Cursor[int], first *int, before *entgql.Cursor[int], last *int) (*ent.AuditEntryConnection, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return nil, err
	}
	first, last = paging.Clamp(first, last)
	return s.client.AuditEntry.Query().Paginate(ctx, after, first, before, last,
		ent.WithAuditEntryOrder(&ent.AuditEntryOrder{Direction: entgql.OrderDirectionDesc, Field: ent.AuditEntryOrderFieldAt}))
}
