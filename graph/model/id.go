package model

import (
	"github.com/99designs/gqlgen/graphql"

	"github.com/parleyhq/parley/internal/apperr"
)

// MarshalID writes a node id the way clients receive every id: as a
// decimal string.
func MarshalID(id int) graphql.Marshaler { return graphql.MarshalIntID(id) }

// UnmarshalID reads the ID scalar of every argument, input field and
// variable. Ids are decimal integers; anything else ("", "x", an emoji, a
// number too large for an id) is refused here as BAD_USER_INPUT, once for
// every operation, instead of reaching the error presenter as an untyped
// parse error, which clients would see as INTERNAL. The value is not echoed
// back: it may be huge or hold control characters.
func UnmarshalID(v any) (int, error) {
	id, err := graphql.UnmarshalIntID(v)
	if err != nil {
		return 0, apperr.New(apperr.BadUserInput, "not a valid ID")
	}
	return id, nil
}
