package store

import (
	"errors"
	"strings"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/apperr"
)

// Coded gives an error from ent the code clients see, so that the services
// translate where the error arises and the GraphQL error presenter knows
// nothing of ent:
//
//   - a missing row is NOT_FOUND, "<what> not found";
//   - a value the schema's validators refuse is BAD_USER_INPUT naming the
//     field as the API spells it (max_concurrent_chats becomes
//     maxConcurrentChats, queue_id queueID);
//   - a violated unique index or foreign key is CONFLICT,
//     "<what> conflicts with existing data".
//
// nil and errors that already carry a code come back unchanged, and so does
// anything else (a lost connection, a failed commit): uncoded, it reaches
// clients as INTERNAL with a request id in the log. The ent error stays the
// cause, so ent.IsConstraintError and friends still see it.
func Coded(err error, what string) error {
	var (
		ae *apperr.Error
		ve *ent.ValidationError
	)
	switch {
	case err == nil, errors.As(err, &ae):
		return err
	case ent.IsNotFound(err):
		e := apperr.NotFoundf(what)
		e.Err = err
		return e
	case errors.As(err, &ve):
		field := camel(ve.Name)
		e := apperr.Invalid(field, "%s is invalid", field)
		e.Err = err
		return e
	case ent.IsConstraintError(err):
		return apperr.Wrap(apperr.Conflict, err, "%s conflicts with existing data", what)
	}
	return err
}

// camel turns an ent field name (snake_case) into the GraphQL one.
func camel(name string) string {
	parts := strings.Split(name, "_")
	for i := 1; i < len(parts); i++ {
		switch p := parts[i]; {
		case p == "id":
			parts[i] = "ID"
		case p != "":
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "")
}
