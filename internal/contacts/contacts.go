// Package contacts answers who a customer is: a contact with its identities
// per channel and its interaction history across all agents and queues.
package contacts

import "github.com/parleyhq/parley/ent"

// Service reads contacts and their history.
type Service struct {
	client *ent.Client
}

// NewService returns the contacts service.
func NewService(client *ent.Client) *Service { return &Service{client: client} }
