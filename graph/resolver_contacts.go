package graph

import (
	"github.com/parleyhq/parley/graph/model"
	"github.com/parleyhq/parley/internal/contacts"
)

// contactDetails carries ContactDetailsInput to the contacts service (nil =
// unchanged).
func contactDetails(in model.ContactDetailsInput) contacts.Details {
	return contacts.Details{DisplayName: in.DisplayName, Email: in.Email, Phone: in.Phone, Notes: in.Notes}
}
