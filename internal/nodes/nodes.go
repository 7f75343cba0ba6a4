// Package nodes answers Relay's node(id) and nodes(ids) with the same
// permissions as every other query: each entity type says who may see it,
// and what the caller may not see answers NOT_FOUND, like what is missing.
package nodes

import (
	"context"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/store"
)

// Check decides whether the caller may see the node with the given id. It
// judges by id and loads what its rule needs: the node Node loaded holds only
// the columns the client selected (entgql's field collection), so a rule
// read from it would see zeros where the selection left columns out.
type Check func(ctx context.Context, p auth.Principal, id int) (bool, error)

// Service resolves nodes and applies the per-type checks. A type with no
// check is visible to admins only: new entity types are closed by default.
type Service struct {
	client *ent.Client
	checks map[string]Check
}

// NewService returns a node resolver with the workspace entities (agents,
// queues, members, templates, labels) open to every agent and channel accounts open
// to admins; other services add their types with Register.
func NewService(client *ent.Client) *Service {
	anyAgent := func(context.Context, auth.Principal, int) (bool, error) { return true, nil }
	return &Service{client: client, checks: map[string]Check{
		"Agent":       anyAgent,
		"Queue":       anyAgent,
		"QueueMember": anyAgent,
		"Template":    anyAgent,
		"Label":       anyAgent,
	}}
}

// Register sets the check for an entity type (its ent type name).
func (s *Service) Register(typ string, c Check) { s.checks[typ] = c }

// Node returns the entity with the global id if the caller may see it.
func (s *Service) Node(ctx context.Context, id int) (ent.Noder, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	n, err := s.client.Noder(ctx, id)
	if err != nil {
		// An id of no table, or of no row, is NOT_FOUND.
		return nil, store.Coded(err, "node")
	}
	ok, err := s.allowed(ctx, p, id, n)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apperr.NotFoundf("node")
	}
	return n, nil
}

// Nodes resolves several ids; each one the caller may not see is a null
// with a NOT_FOUND error, as the Relay specification allows.
func (s *Service) Nodes(ctx context.Context, ids []int) ([]ent.Noder, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	if len(ids) > 100 {
		return nil, apperr.Invalid("ids", "at most 100 ids at once")
	}
	out := make([]ent.Noder, len(ids))
	for i, id := range ids {
		n, err := s.Node(ctx, id)
		if err != nil && !apperr.Is(err, apperr.NotFound) {
			return nil, err
		}
		out[i] = n
	}
	return out, nil
}

func (s *Service) allowed(ctx context.Context, p auth.Principal, id int, n ent.Noder) (bool, error) {
	typ := typeName(n)
	if c, ok := s.checks[typ]; ok {
		return c(ctx, p, id)
	}
	return p.IsAdmin(), nil
}

func typeName(n ent.Noder) string {
	switch n.(type) {
	case *ent.Agent:
		return "Agent"
	case *ent.Queue:
		return "Queue"
	case *ent.QueueMember:
		return "QueueMember"
	case *ent.Template:
		return "Template"
	case *ent.ChannelAccount:
		return "ChannelAccount"
	case *ent.Contact:
		return "Contact"
	case *ent.ContactIdentity:
		return "ContactIdentity"
	case *ent.Conversation:
		return "Conversation"
	case *ent.Message:
		return "Message"
	case *ent.Attachment:
		return "Attachment"
	case *ent.Interaction:
		return "Interaction"
	case *ent.Label:
		return "Label"
	}
	return ""
}
