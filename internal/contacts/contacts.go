// Package contacts answers who a customer is: a contact with its identities
// per channel and its interaction history across all agents and queues.
//
// Contacts are shared across the workspace: any agent may look one up and
// read its history, whoever handled its conversations. Visitors may not,
// even for the contact they are (a contact's history names agents and
// queues).
package contacts

import (
	"context"

	"entgo.io/contrib/entgql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/contact"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/paging"
	"github.com/parleyhq/parley/internal/store"
)

// Service reads contacts and their history.
type Service struct {
	client *ent.Client
}

// NewService returns the contacts service.
func NewService(client *ent.Client) *Service { return &Service{client: client} }

// Get returns a contact, with the edges the GraphQL selection asks for
// loaded in the same go. An unknown id, or the id of anything but a
// contact, is NOT_FOUND.
func (s *Service) Get(ctx context.Context, id int) (*ent.Contact, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	c, err := s.client.Contact.Query().Where(contact.ID(id)).CollectFields(ctx)
	if err != nil {
		return nil, err
	}
	out, err := c.Only(ctx)
	return out, store.Coded(err, "contact")
}

// historyOrder is newest first: by `at`, then by id (ent adds the id as the
// tie-break, in the same direction), so rows written in the same instant
// keep their order and cursors stay stable.
var historyOrder = &ent.InteractionOrder{Direction: entgql.OrderDirectionDesc, Field: ent.InteractionOrderFieldAt}

// History returns a contact's interactions, newest first. The edges the
// selection asks for (conversation, agent, queue) are loaded with one query
// each per page, not per row.
func (s *Service) History(ctx context.Context, c *ent.Contact, after *entgql.Cursor[int], first *int, before *entgql.Cursor[int], last *int) (*ent.InteractionConnection, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	first, last = paging.Clamp(first, last)
	return c.QueryInteractions().Paginate(ctx, after, first, before, last, ent.WithInteractionOrder(historyOrder))
}
