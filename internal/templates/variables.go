package templates

// Template variables: {{contact.name}} and the like in a quick reply's
// body, filled in for one conversation by Render (the client puts the text
// in the reply box for editing).
//
// Only a token of the form {{word.word}} (spaces inside the braces
// allowed) is a variable; any other braces ({{1}}, {name}, {{ }}, a lone
// "{{") are text and stay as they are. An unknown variable is refused when
// a template is saved; one in a template saved before the rule renders as
// it is written.

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/store"
)

// Variables are the variables a template may use.
var Variables = []string{
	"contact.name", "contact.email", "contact.phone",
	"agent.name", "agent.extension",
	"queue.name",
}

// variable is a {{word.word}} token; group 1 is the variable's name.
var variable = regexp.MustCompile(`\{\{\s*([A-Za-z][A-Za-z0-9_]*\.[A-Za-z][A-Za-z0-9_]*)\s*\}\}`)

// checkVariables refuses a body that uses a variable not in Variables,
// naming it.
func checkVariables(body string) error {
	for _, m := range variable.FindAllStringSubmatch(body, -1) {
		if !slices.Contains(Variables, m[1]) {
			return apperr.Invalid("body", "unknown variable {{%s}}: a template may use {{%s}}", m[1], strings.Join(Variables, "}}, {{"))
		}
	}
	return nil
}

// fill replaces each known variable of body with its value (empty when it
// has none); unknown ones stay as written.
func fill(body string, values map[string]string) string {
	return variable.ReplaceAllStringFunc(body, func(tok string) string {
		name := variable.FindStringSubmatch(tok)[1]
		if !slices.Contains(Variables, name) {
			return tok
		}
		return values[name]
	})
}

// Conversations is the part of the conversations service Render needs:
// one conversation the caller may see (NOT_FOUND otherwise), by the rules
// of conversations/access.go.
type Conversations interface {
	Get(ctx context.Context, id int) (*ent.Conversation, error)
}

// Render returns template id's body with its variables filled in for
// conversation conversationID, which the caller must be allowed to see:
// the conversation's contact and queue, and the calling agent (who is
// about to send it).
func (s *Service) Render(ctx context.Context, id, conversationID int) (string, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return "", err
	}
	if s.Conversations == nil {
		return "", apperr.New(apperr.Internal, "templates cannot be rendered here")
	}
	c, err := s.Conversations.Get(ctx, conversationID)
	if err != nil {
		return "", err
	}
	t, err := s.client.Template.Get(ctx, id)
	if err != nil {
		return "", store.Coded(err, "template")
	}
	values := map[string]string{}
	if c.ContactID != nil {
		ct, err := s.client.Contact.Get(ctx, *c.ContactID)
		if err != nil && !ent.IsNotFound(err) {
			return "", err
		}
		if ct != nil {
			values["contact.name"] = ct.DisplayName
			values["contact.email"] = deref(ct.Email)
			values["contact.phone"] = deref(ct.Phone)
		}
	}
	a, err := s.client.Agent.Get(ctx, p.AgentID)
	if err != nil {
		return "", store.Coded(err, "agent")
	}
	values["agent.name"], values["agent.extension"] = a.Name, a.Extension
	if c.QueueID != nil {
		q, err := s.client.Queue.Get(ctx, *c.QueueID)
		if err != nil && !ent.IsNotFound(err) {
			return "", err
		}
		if q != nil {
			values["queue.name"] = q.Name
		}
	}
	return fill(t.Body, values), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
