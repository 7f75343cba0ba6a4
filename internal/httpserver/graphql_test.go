package httpserver

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/stretchr/testify/require"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/store"
)

// The presenter takes its codes from the services: an ent error no service
// translated is INTERNAL (with a request id to find it in the log), not the
// CONFLICT, NOT_FOUND or BAD_USER_INPUT it once guessed.
func TestPresentErrorCodesOnlyDomainErrors(t *testing.T) {
	raw := &ent.ConstraintError{}
	invalid := validationError(t)
	for _, tc := range []struct {
		name    string
		err     error
		code    string
		message string
		field   string
		logged  bool
	}{
		{name: "raw ent constraint", err: raw, code: "INTERNAL", message: "internal error", logged: true},
		{name: "wrapped ent constraint", err: fmt.Errorf("save: %w", raw), code: "INTERNAL", message: "internal error", logged: true},
		{name: "raw ent not found", err: &ent.NotFoundError{}, code: "INTERNAL", message: "internal error", logged: true},
		{name: "raw ent validation", err: invalid, code: "INTERNAL", message: "internal error", logged: true},
		{name: "constraint coded by a service", err: store.Coded(raw, "queue"), code: "CONFLICT", message: "queue conflicts with existing data"},
		{name: "taken", err: apperr.Taken("email", "an agent with email a@b.c exists"), code: "CONFLICT", message: "an agent with email a@b.c exists", field: "email"},
		{name: "not found coded by a service", err: store.Coded(&ent.NotFoundError{}, "contact"), code: "NOT_FOUND", message: "contact not found"},
		{name: "validation coded by a service", err: store.Coded(invalid, "agent"), code: "BAD_USER_INPUT", message: "email is invalid", field: "email"},
		{name: "cancelled", err: context.Canceled, code: "CANCELLED", message: "request cancelled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			present := presentError(slog.New(slog.NewTextHandler(&logs, nil)), metrics.New())
			ctx := context.WithValue(context.Background(), requestIDKey{}, "req-42")
			ctx = graphql.WithFieldContext(ctx, &graphql.FieldContext{Field: graphql.CollectedField{Field: &ast.Field{Alias: "createQueue"}}})

			got := present(ctx, tc.err)
			require.Equal(t, tc.code, got.Extensions["code"])
			require.Equal(t, tc.message, got.Message)
			if tc.field != "" {
				require.Equal(t, tc.field, got.Extensions["field"])
			} else {
				require.NotContains(t, got.Extensions, "field")
			}
			if tc.logged {
				require.Equal(t, "req-42", got.Extensions["requestId"])
				require.Contains(t, logs.String(), "request_id=req-42")
				require.NotContains(t, got.Message, "constraint", "the raw error stays in the log")
			} else {
				require.NotContains(t, got.Extensions, "requestId")
				require.Empty(t, logs.String())
			}
		})
	}
}

// validationError is a real one from ent's validators (its cause is
// unexported): an agent with an email longer than the schema allows. The
// check runs before the database is reached, so no driver is needed.
func validationError(t *testing.T) error {
	t.Helper()
	_, err := ent.NewClient().Agent.Create().SetName("A").SetExtension("1").SetPasswordHash("x").
		SetEmail(strings.Repeat("a", 321)).SetSearchKey("a").Save(context.Background())
	var ve *ent.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "email", ve.Name)
	return err
}
