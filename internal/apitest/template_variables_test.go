package apitest_test

import (
	"testing"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestTemplateVariables: quick replies with {{contact.*}}, {{agent.*}} and
// {{queue.name}} render for a conversation the caller sees, a variable
// without a value renders empty, an unknown variable is refused on create
// and update naming it, other braces are plain text, and a caller who may
// not see the conversation gets NOT_FOUND.
func TestTemplateVariables(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		create := func(name, body string) *apitest.Response {
			return w.Admin.C.Op(t, "CreateTemplate", map[string]any{"input": map[string]any{
				"name": name, "category": "General", "language": "en", "body": body}})
		}
		refused(t, create("Bad", "Hi {{contact.nickname}}!"), "BAD_USER_INPUT", "{{contact.nickname}}")
		refused(t, create("Bad", "Hi {{ customer.name }}"), "BAD_USER_INPUT", "{{customer.name}}")
		var made struct{ CreateTemplate struct{ ID string } }
		r := create("Greeting", "Hello {{contact.name}} ({{ contact.email }}, {{contact.phone}}): I am {{agent.name}}, ext. {{agent.extension}}, of {{queue.name}}. Ref {{1}}, {x}, {{ }}, {{a.b.c}.")
		if len(r.Errors) > 0 {
			t.Fatalf("create: %s", r.Raw)
		}
		r.Decode(t, &made)
		id := made.CreateTemplate.ID
		refused(t, w.Admin.C.Op(t, "UpdateTemplate", map[string]any{"id": id, "input": map[string]any{"body": "{{agent.email}}"}}),
			"BAD_USER_INPUT", "{{agent.email}}")

		conv := w.Inbound(t, w.WhatsApp, "34611222333", "hola")
		render := func(a *apitest.Agent) *apitest.Response {
			return a.C.Op(t, "RenderTemplate", map[string]any{"id": id, "conversationID": conv})
		}
		text := func(a *apitest.Agent) string {
			t.Helper()
			r := render(a)
			if len(r.Errors) > 0 {
				t.Fatalf("render: %s", r.Raw)
			}
			var out struct{ RenderTemplate string }
			r.Decode(t, &out)
			return out.RenderTemplate
		}
		// The unknown sender has no email: it renders empty.
		if got, want := text(w.Ana), "Hello Customer 34611222333 (, +34611222333): I am Ana, ext. 201, of Support. Ref {{1}}, {x}, {{ }}, {{a.b.c}."; got != want {
			t.Fatalf("render:\n got  %q\n want %q", got, want)
		}
		w.Ana.C.MustOp(t, "AddContactFromConversation", map[string]any{"id": conv, "input": map[string]any{
			"displayName": "Zoë Ortega", "email": "zoe@example.com"}}, nil)
		if got, want := text(w.Ben), "Hello Zoë Ortega (zoe@example.com, +34611222333): I am Ben, ext. 202, of Support. Ref {{1}}, {x}, {{ }}, {{a.b.c}."; got != want {
			t.Fatalf("render:\n got  %q\n want %q", got, want)
		}
		// Dan is in no queue: he may not see the conversation.
		refused(t, render(w.Dan), "NOT_FOUND")
		refused(t, w.Ana.C.Op(t, "RenderTemplate", map[string]any{"id": "999999", "conversationID": conv}), "NOT_FOUND")

		// The update with a known variable is taken.
		w.Admin.C.MustOp(t, "UpdateTemplate", map[string]any{"id": id, "input": map[string]any{"body": "Bye {{contact.name}}"}}, nil)
		if got := text(w.Ana); got != "Bye Zoë Ortega" {
			t.Fatalf("after update: %q", got)
		}
	})
}
