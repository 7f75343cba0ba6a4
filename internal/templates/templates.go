// Package templates manages quick-reply templates: anyone may read and
// search them; only admins, group owners and system owners manage them.
package templates

import "github.com/parleyhq/parley/ent"

// Service manages templates.
type Service struct {
	client *ent.Client
}

// NewService returns the templates service.
func NewService(client *ent.Client) *Service { return &Service{client: client} }
