package store

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/apperr"
)

func TestCoded(t *testing.T) {
	constraint := &ent.ConstraintError{}
	coded := apperr.Invalid("name", "name is required")
	plain := errors.New("connection reset")
	for _, tc := range []struct {
		name    string
		err     error
		code    apperr.Code
		field   string
		message string
		same    error // returned unchanged
	}{
		{name: "nil"},
		{name: "not found", err: &ent.NotFoundError{}, code: apperr.NotFound, message: "queue not found"},
		{name: "wrapped not found", err: fmt.Errorf("load: %w", &ent.NotFoundError{}), code: apperr.NotFound, message: "queue not found"},
		{name: "validation", err: &ent.ValidationError{Name: "max_concurrent_chats"}, code: apperr.BadUserInput, field: "maxConcurrentChats", message: "maxConcurrentChats is invalid"},
		{name: "validation of an id", err: &ent.ValidationError{Name: "queue_id"}, code: apperr.BadUserInput, field: "queueID", message: "queueID is invalid"},
		{name: "constraint", err: constraint, code: apperr.Conflict, message: "queue conflicts with existing data"},
		{name: "already coded", err: coded, code: apperr.BadUserInput, same: coded},
		{name: "anything else", err: plain, code: apperr.Internal, same: plain},
		{name: "cancelled", err: context.Canceled, code: apperr.Internal, same: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Coded(tc.err, "queue")
			if tc.err == nil {
				require.NoError(t, got)
				return
			}
			if tc.same != nil {
				require.Same(t, tc.same, got)
			}
			require.Equal(t, tc.code, apperr.CodeOf(got))
			var ae *apperr.Error
			if errors.As(got, &ae) && tc.same == nil {
				require.Equal(t, tc.field, ae.Field)
				require.Equal(t, tc.message, ae.Message)
				require.ErrorIs(t, got, tc.err, "the ent error stays the cause")
			}
		})
	}
	require.True(t, ent.IsConstraintError(Coded(constraint, "queue")), "callers may still ask ent what it was")
}
