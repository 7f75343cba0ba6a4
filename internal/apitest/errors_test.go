package apitest_test

import (
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// What the database refuses reaches clients with the code the service gave
// it (the presenter translates no ent error): duplicates are CONFLICT naming
// the field, values only the schema measures are BAD_USER_INPUT naming the
// field, ids of nothing are NOT_FOUND.
func TestDatabaseRefusalsCarryServiceCodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		conv := w.Inbound(t, w.WhatsApp, "+34600000002", "hello")
		// An address mail.ParseAddress accepts and the schema (320 bytes)
		// does not.
		long := strings.Repeat("a", 330) + "@test.parley"
		agent := func(email, ext string) map[string]any {
			return map[string]any{"input": map[string]any{"name": "X", "email": email, "extension": ext, "role": "AGENT", "password": "password-x"}}
		}
		for _, tc := range []struct {
			name, op    string
			vars        map[string]any
			code, field string
		}{
			{"duplicate agent email", "CreateAgent", agent("201@test.parley", "299"), "CONFLICT", "email"},
			{"duplicate agent email, other case", "CreateAgent", agent(" 202@Test.Parley", "298"), "CONFLICT", "email"},
			{"duplicate agent extension", "CreateAgent", agent("x@test.parley", "201"), "CONFLICT", "extension"},
			{"agent email too long", "CreateAgent", agent(long, "297"), "BAD_USER_INPUT", "email"},
			{"duplicate queue name", "CreateQueue", map[string]any{"input": map[string]any{"name": "Support", "strategy": "HUNT"}}, "CONFLICT", "name"},
			{"contact email too long", "AddContactFromConversation", map[string]any{"id": conv, "input": map[string]any{"displayName": "Eve", "email": long}}, "BAD_USER_INPUT", "email"},
			{"unknown queue", "UpdateQueue", map[string]any{"id": "999999", "input": map[string]any{"name": "X"}}, "NOT_FOUND", ""},
			{"unknown template", "UpdateTemplate", map[string]any{"id": "999999", "input": map[string]any{"name": "X"}}, "NOT_FOUND", ""},
			{"unknown contact", "ContactInfo", map[string]any{"id": "999999"}, "NOT_FOUND", ""},
			{"unknown conversation", "MarkDealtWith", map[string]any{"id": "999999"}, "NOT_FOUND", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := w.Admin.C.Op(t, tc.op, tc.vars)
				if len(r.Errors) != 1 || r.Code() != tc.code {
					t.Fatalf("want one %s, got %s", tc.code, r.Raw)
				}
				e := r.Errors[0]
				if got, _ := e.Extensions["field"].(string); got != tc.field {
					t.Fatalf("want field %q, got %s", tc.field, r.Raw)
				}
				if _, ok := e.Extensions["requestId"]; ok {
					t.Fatalf("a coded refusal is no internal error: %s", r.Raw)
				}
			})
		}
		if r := w.Admin.C.Query(t, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": "123456789"}); r.Code() != "NOT_FOUND" {
			t.Fatalf("unknown node: %s", r.Raw)
		}

		// A visitor's email is measured by the schema only.
		visitor := s.Client()
		visitor.Header.Set("Origin", s.URL)
		r := visitor.Op(t, "StartLiveChat", map[string]any{"input": map[string]any{"channelAccountID": w.LiveChat, "email": long}})
		if r.Code() != "BAD_USER_INPUT" || r.Errors[0].Extensions["field"] != "email" {
			t.Fatalf("visitor email too long: %s", r.Raw)
		}
	})
}
