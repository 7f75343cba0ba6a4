package apitest_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

type templateOut struct{ ID, Name, Category, Language, Body string }

type templatesOut struct {
	Templates struct {
		Edges []struct{ Node templateOut }
	}
	TemplateCategories []string
	TemplateLanguages  []string
}

// listTemplates sends the contract's Templates query.
func listTemplates(t *testing.T, c *apitest.Client, vars map[string]any) templatesOut {
	t.Helper()
	var out templatesOut
	c.MustOp(t, "Templates", vars, &out)
	return out
}

func (o templatesOut) names() []string {
	names := []string{}
	for _, e := range o.Templates.Edges {
		names = append(names, e.Node.Name+"/"+e.Node.Language)
	}
	return names
}

func (o templatesOut) byID(id string) (templateOut, bool) {
	for _, e := range o.Templates.Edges {
		if e.Node.ID == id {
			return e.Node, true
		}
	}
	return templateOut{}, false
}

func createTemplate(t *testing.T, c *apitest.Client, name, category, language, body string) templateOut {
	t.Helper()
	var out struct{ CreateTemplate templateOut }
	c.MustOp(t, "CreateTemplate", map[string]any{"input": map[string]any{
		"name": name, "category": category, "language": language, "body": body,
	}}, &out)
	return out.CreateTemplate
}

// visitorToken starts a live-chat conversation in the database and issues
// a visitor token bound to it.
func visitorToken(t *testing.T, s *apitest.Server) string {
	t.Helper()
	ctx := context.Background()
	conv, err := s.App.DB.Client.Conversation.Create().SetChannel(schematype.ChannelLiveChat).Save(ctx)
	require.NoError(t, err)
	tok, err := s.App.Auth.IssueVisitorToken(ctx, s.App.DB.Client, conv.ID)
	require.NoError(t, err)
	return tok
}

func TestTemplatesRoles(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		c := s.Client()
		admin, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		ca := c.As(admin)
		_, agentTok := ca.CreateAgent(t, "Ana", "ana@test.parley", "201", "AGENT")
		_, groupTok := ca.CreateAgent(t, "Gloria", "gloria@test.parley", "202", "GROUP_OWNER")
		_, adminTok := ca.CreateAgent(t, "Adam", "adam@test.parley", "203", "ADMIN")
		existing := createTemplate(t, ca, "Greeting", "General", "en", "Hello!")

		for _, tc := range []struct {
			role, token string
			code        string // "" = allowed
		}{
			{"AGENT", agentTok, "FORBIDDEN"},
			{"GROUP_OWNER", groupTok, ""},
			{"ADMIN", adminTok, ""},
			{"SYSTEM_OWNER", admin, ""},
			{"no token", "", "UNAUTHENTICATED"},
			{"visitor", visitorToken(t, s), "FORBIDDEN"},
		} {
			t.Run(tc.role, func(t *testing.T) {
				cc := c.As(tc.token)
				name := "By " + tc.role
				prev, _ := listTemplates(t, ca, nil).byID(existing.ID)

				r := cc.Op(t, "CreateTemplate", map[string]any{"input": map[string]any{
					"name": name, "category": "Roles", "language": "en", "body": "made by " + tc.role,
				}})
				require.Equal(t, tc.code, r.Code(), "create: %s", r.Raw)
				r = cc.Op(t, "UpdateTemplate", map[string]any{"id": existing.ID, "input": map[string]any{"body": "changed by " + tc.role}})
				require.Equal(t, tc.code, r.Code(), "update: %s", r.Raw)

				// Everyone who is an agent may read; the admin checks what
				// is stored either way.
				if tc.code != "UNAUTHENTICATED" && tc.role != "visitor" {
					listTemplates(t, cc, nil)
				} else {
					require.Equal(t, tc.code, cc.Op(t, "Templates", nil).Code())
				}
				stored := listTemplates(t, ca, nil)
				ex, ok := stored.byID(existing.ID)
				require.True(t, ok)
				if tc.code != "" {
					require.Equal(t, prev, ex, "a refused update changed the template")
					require.NotContains(t, stored.names(), name+"/en", "a refused create stored a template")
					require.Equal(t, tc.code, cc.Op(t, "DeleteTemplate", map[string]any{"id": existing.ID}).Code())
					_, ok := listTemplates(t, ca, nil).byID(existing.ID)
					require.True(t, ok, "a refused delete removed the template")
					return
				}
				require.Equal(t, "changed by "+tc.role, ex.Body)
				require.Contains(t, stored.names(), name+"/en")
				var mine templateOut
				for _, e := range stored.Templates.Edges {
					if e.Node.Name == name {
						mine = e.Node
					}
				}
				var del struct{ DeleteTemplate struct{ DeletedID string } }
				cc.MustOp(t, "DeleteTemplate", map[string]any{"id": mine.ID}, &del)
				require.Equal(t, mine.ID, del.DeleteTemplate.DeletedID)
				_, ok = listTemplates(t, ca, nil).byID(mine.ID)
				require.False(t, ok, "deleted template still listed")
			})
		}
	})
}

func TestTemplatesSearchAndFilters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		c := s.Client()
		admin, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		ca := c.As(admin)
		_, agentTok := ca.CreateAgent(t, "Ana", "ana@test.parley", "201", "AGENT")
		agent := c.As(agentTok)

		// Created out of name order, so that id order is not name order.
		createTemplate(t, ca, "José", "Sales", "en", "Call me back")
		createTemplate(t, ca, "saludo", "General", "es", "¡Hola! Bienvenido")
		createTemplate(t, ca, "100% refund", "Support", "en", "Refunds within 30 days")
		createTemplate(t, ca, "snake_case", "Support", "en", "An underscore")
		createTemplate(t, ca, "Greeting", "General", "en", "Hello there")
		createTemplate(t, ca, "Greeting", "General", " PT-br ", "Olá, tudo bem?")

		all := listTemplates(t, agent, nil)
		require.Equal(t, []string{
			"100% refund/en", "Greeting/en", "Greeting/pt-BR", "José/en", "saludo/es", "snake_case/en",
		}, all.names(), "ordered by name, then id")
		require.Equal(t, []string{"General", "Sales", "Support"}, all.TemplateCategories)
		require.Equal(t, []string{"en", "es", "pt-BR"}, all.TemplateLanguages)

		for _, tc := range []struct {
			name                       string
			search, category, language any
			want                       []string
		}{
			{"accents do not matter", "jose", nil, nil, []string{"José/en"}},
			{"nor case", "SALUDO", nil, nil, []string{"saludo/es"}},
			{"a body word", "bienvenido", nil, nil, []string{"saludo/es"}},
			{"an accented body word, unaccented", "OLA, tudo", nil, nil, []string{"Greeting/pt-BR"}},
			{"percent is literal", "%", nil, nil, []string{"100% refund/en"}},
			{"underscore is literal", "_", nil, nil, []string{"snake_case/en"}},
			{"backslash is literal", `\`, nil, nil, []string{}},
			{"no match", "zzz", nil, nil, []string{}},
			{"blank search filters nothing", "  ", nil, nil, all.names()},
			{"category", nil, "Support", nil, []string{"100% refund/en", "snake_case/en"}},
			{"category is trimmed", nil, " Support ", nil, []string{"100% refund/en", "snake_case/en"}},
			{"category is exact", nil, "support", nil, []string{}},
			{"language", nil, nil, "es", []string{"saludo/es"}},
			{"language case is normalised", nil, nil, "pt-br", []string{"Greeting/pt-BR"}},
			{"category and language", nil, "General", "en", []string{"Greeting/en"}},
			{"search and language", "greeting", nil, "pt-BR", []string{"Greeting/pt-BR"}},
			{"search and category", "refund", "General", nil, []string{}},
			{"all three", "hello", "General", "en", []string{"Greeting/en"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := listTemplates(t, agent, map[string]any{"search": tc.search, "category": tc.category, "language": tc.language})
				require.Equal(t, tc.want, got.names())
			})
		}
		if r := c.Op(t, "Templates", nil); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("anonymous templates: %s", r.Raw)
		}
	})
}

func TestTemplatesPagination(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		c := s.Client()
		admin, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		ca := c.As(admin)
		for _, n := range []string{"E", "B", "G", "A", "D", "C", "F"} {
			createTemplate(t, ca, n, "General", "en", "body "+n)
		}
		createTemplate(t, ca, "D", "General", "es", "second D, after the first by id")

		const q = `query($after: Cursor, $first: Int, $before: Cursor, $last: Int, $search: String) {
			templates(after: $after, first: $first, before: $before, last: $last, search: $search) {
				totalCount
				pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
				edges { cursor node { name language } }
			}
		}`
		type page struct {
			Names            []string
			Total            int
			HasNext, HasPrev bool
			StartCursor, End string
		}
		get := func(vars map[string]any) page {
			t.Helper()
			var out struct {
				Templates struct {
					TotalCount int
					PageInfo   struct {
						HasNextPage, HasPreviousPage bool
						StartCursor, EndCursor       *string
					}
					Edges []struct {
						Cursor string
						Node   struct{ Name, Language string }
					}
				}
			}
			r := ca.Query(t, q, vars)
			require.Empty(t, r.Errors, "%s", r.Raw)
			r.Decode(t, &out)
			p := page{Total: out.Templates.TotalCount, HasNext: out.Templates.PageInfo.HasNextPage, HasPrev: out.Templates.PageInfo.HasPreviousPage}
			for _, e := range out.Templates.Edges {
				p.Names = append(p.Names, e.Node.Name+"/"+e.Node.Language)
			}
			if pi := out.Templates.PageInfo; pi.StartCursor != nil {
				p.StartCursor, p.End = *pi.StartCursor, *pi.EndCursor
			}
			return p
		}

		// Forward through every page.
		var names []string
		vars := map[string]any{"first": 3}
		for i := 0; ; i++ {
			p := get(vars)
			require.Equal(t, 8, p.Total)
			require.Equal(t, i > 0, p.HasPrev, "page %d hasPreviousPage", i)
			names = append(names, p.Names...)
			if !p.HasNext {
				require.Equal(t, 2, i, "three pages of 3, 3 and 2")
				break
			}
			vars = map[string]any{"first": 3, "after": p.End}
		}
		require.Equal(t, []string{"A/en", "B/en", "C/en", "D/en", "D/es", "E/en", "F/en", "G/en"}, names)

		// Backward from the end.
		last := get(map[string]any{"last": 3})
		require.Equal(t, []string{"E/en", "F/en", "G/en"}, last.Names)
		require.True(t, last.HasPrev)
		require.False(t, last.HasNext)
		prev := get(map[string]any{"last": 3, "before": last.StartCursor})
		require.Equal(t, []string{"C/en", "D/en", "D/es"}, prev.Names)
		require.True(t, prev.HasNext)

		// The page after D/en holds D/es: the tie on the name is broken by id.
		mid := get(map[string]any{"first": 4})
		next := get(map[string]any{"first": 1, "after": mid.End})
		require.Equal(t, []string{"D/es"}, next.Names)

		// Filters apply to pages and counts.
		filtered := get(map[string]any{"first": 1, "search": "body"})
		require.Equal(t, 7, filtered.Total)
		require.Equal(t, []string{"A/en"}, filtered.Names)

		// No arguments: the default page size, never the whole table.
		for i := 0; i < 25; i++ {
			createTemplate(t, ca, "Z"+strings.Repeat("z", i), "Bulk", "en", "bulk")
		}
		require.Len(t, get(nil).Names, 20)
		require.Len(t, get(map[string]any{"first": 1000}).Names, 33)

	})
}

func TestTemplatesValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		c := s.Client()
		admin, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		ca := c.As(admin)
		greeting := createTemplate(t, ca, "  Greeting  ", " General ", "en", "  Hello there  ")
		require.Equal(t, templateOut{ID: greeting.ID, Name: "Greeting", Category: "General", Language: "en", Body: "Hello there"}, greeting,
			"fields are trimmed")
		saludo := createTemplate(t, ca, "Greeting", "General", "es", "Hola")
		require.Equal(t, "es", saludo.Language, "the same name in another language is not a duplicate")

		for _, tc := range []struct{ in, want string }{
			{"EN", "en"}, {"pt-br", "pt-BR"}, {"ZH-HANT", "zh-Hant"}, {"zh-hant-tw", "zh-Hant-TW"}, {"es-419", "es-419"}, {"fil", "fil"},
		} {
			got := createTemplate(t, ca, "Lang "+tc.in, "Languages", tc.in, "x")
			require.Equal(t, tc.want, got.Language, "language %q", tc.in)
		}
		// The limits are inclusive. (Names and categories are ASCII here:
		// the ent schema's MaxLen counts bytes, see the templates package.)
		createTemplate(t, ca, strings.Repeat("n", 200), strings.Repeat("c", 100), "en", strings.Repeat("ñ", 4096))
		before := listTemplates(t, ca, nil)

		valid := map[string]any{"name": "New", "category": "General", "language": "en", "body": "Body"}
		with := func(k string, v any) map[string]any {
			m := map[string]any{}
			for kk, vv := range valid {
				m[kk] = vv
			}
			m[k] = v
			return m
		}
		for _, tc := range []struct {
			name  string
			op    string
			vars  map[string]any
			code  string
			field string
		}{
			{"empty name", "CreateTemplate", map[string]any{"input": with("name", "")}, "BAD_USER_INPUT", "name"},
			{"blank name", "CreateTemplate", map[string]any{"input": with("name", "   ")}, "BAD_USER_INPUT", "name"},
			{"long name", "CreateTemplate", map[string]any{"input": with("name", strings.Repeat("a", 201))}, "BAD_USER_INPUT", "name"},
			{"empty category", "CreateTemplate", map[string]any{"input": with("category", " ")}, "BAD_USER_INPUT", "category"},
			{"long category", "CreateTemplate", map[string]any{"input": with("category", strings.Repeat("c", 101))}, "BAD_USER_INPUT", "category"},
			{"language word", "CreateTemplate", map[string]any{"input": with("language", "english")}, "BAD_USER_INPUT", "language"},
			{"language one letter", "CreateTemplate", map[string]any{"input": with("language", "e")}, "BAD_USER_INPUT", "language"},
			{"language dangling dash", "CreateTemplate", map[string]any{"input": with("language", "en-")}, "BAD_USER_INPUT", "language"},
			{"language underscore", "CreateTemplate", map[string]any{"input": with("language", "en_US")}, "BAD_USER_INPUT", "language"},
			{"empty language", "CreateTemplate", map[string]any{"input": with("language", "")}, "BAD_USER_INPUT", "language"},
			{"empty body", "CreateTemplate", map[string]any{"input": with("body", "\n\t ")}, "BAD_USER_INPUT", "body"},
			{"long body", "CreateTemplate", map[string]any{"input": with("body", strings.Repeat("b", 4097))}, "BAD_USER_INPUT", "body"},
			{"duplicate", "CreateTemplate", map[string]any{"input": with("name", "Greeting")}, "CONFLICT", ""},
			{"duplicate, other case", "CreateTemplate", map[string]any{"input": map[string]any{
				"name": " GREETING ", "category": "Other", "language": "EN", "body": "Hi"}}, "CONFLICT", ""},
			{"update empty name", "UpdateTemplate", map[string]any{"id": greeting.ID, "input": map[string]any{"name": ""}}, "BAD_USER_INPUT", "name"},
			{"update bad language, good body", "UpdateTemplate", map[string]any{"id": greeting.ID, "input": map[string]any{
				"language": "klingon", "body": "Changed"}}, "BAD_USER_INPUT", "language"},
			{"update good name, long body", "UpdateTemplate", map[string]any{"id": greeting.ID, "input": map[string]any{
				"name": "Renamed", "body": strings.Repeat("b", 4097)}}, "BAD_USER_INPUT", "body"},
			{"update long category", "UpdateTemplate", map[string]any{"id": greeting.ID, "input": map[string]any{
				"category": strings.Repeat("c", 101)}}, "BAD_USER_INPUT", "category"},
			{"update into a duplicate", "UpdateTemplate", map[string]any{"id": saludo.ID, "input": map[string]any{
				"language": "en", "body": "Changed"}}, "CONFLICT", ""},
			{"update unknown", "UpdateTemplate", map[string]any{"id": "999999", "input": map[string]any{"body": "x"}}, "NOT_FOUND", ""},
			{"update an agent's id", "UpdateTemplate", map[string]any{"id": mustAgentIDString(t, s), "input": map[string]any{"body": "x"}}, "NOT_FOUND", ""},
			{"delete unknown", "DeleteTemplate", map[string]any{"id": "999999"}, "NOT_FOUND", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := ca.Op(t, tc.op, tc.vars)
				require.Equal(t, tc.code, r.Code(), "%s", r.Raw)
				if tc.field != "" {
					require.Equal(t, tc.field, r.Errors[0].Extensions["field"], "%s", r.Raw)
				}
				require.Equal(t, before, listTemplates(t, ca, nil), "a refused operation changed the templates")
			})
		}

		// nil fields stay; the search key follows the body.
		var up struct{ UpdateTemplate templateOut }
		ca.MustOp(t, "UpdateTemplate", map[string]any{"id": greeting.ID, "input": map[string]any{"body": " Good morning "}}, &up)
		require.Equal(t, templateOut{ID: greeting.ID, Name: "Greeting", Category: "General", Language: "en", Body: "Good morning"}, up.UpdateTemplate)
		require.Equal(t, []string{"Greeting/en"}, listTemplates(t, ca, map[string]any{"search": "morning"}).names())
		require.Empty(t, listTemplates(t, ca, map[string]any{"search": "hello there"}).names())
		ca.MustOp(t, "UpdateTemplate", map[string]any{"id": greeting.ID, "input": map[string]any{"name": "Buenos días", "language": "ES"}}, &up)
		require.Equal(t, templateOut{ID: greeting.ID, Name: "Buenos días", Category: "General", Language: "es", Body: "Good morning"}, up.UpdateTemplate)
		require.Equal(t, []string{"Buenos días/es"}, listTemplates(t, ca, map[string]any{"search": "DIAS"}).names())
		// Renaming a template to its own name (another case) is no conflict.
		ca.MustOp(t, "UpdateTemplate", map[string]any{"id": greeting.ID, "input": map[string]any{"name": "BUENOS DÍAS"}}, &up)
		require.Equal(t, "BUENOS DÍAS", up.UpdateTemplate.Name)

		// Deleting twice: the second time there is nothing to delete.
		var del struct{ DeleteTemplate struct{ DeletedID string } }
		ca.MustOp(t, "DeleteTemplate", map[string]any{"id": saludo.ID}, &del)
		require.Equal(t, saludo.ID, del.DeleteTemplate.DeletedID)
		require.Equal(t, "NOT_FOUND", ca.Op(t, "DeleteTemplate", map[string]any{"id": saludo.ID}).Code())
	})
}

// mustAgentIDString is the id of the test server's system owner.
func mustAgentIDString(t *testing.T, s *apitest.Server) string {
	t.Helper()
	_, id := s.Client().Login(t, apitest.AdminEmail, apitest.AdminPassword)
	return id
}

// TestTemplatesConcurrentDuplicates: of concurrent creations of one name in
// one language (case aside), exactly one is stored.
func TestTemplatesConcurrentDuplicates(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		c := s.Client()
		admin, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		ca := c.As(admin)
		const n = 8
		codes := make(chan string, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				name := "Welcome"
				if i%2 == 1 {
					name = "WELCOME"
				}
				r := ca.Op(t, "CreateTemplate", map[string]any{"input": map[string]any{
					"name": name, "category": "General", "language": "en", "body": "hi"}})
				codes <- r.Code()
			}(i)
		}
		wg.Wait()
		close(codes)
		ok := 0
		for code := range codes {
			switch code {
			case "":
				ok++
			case "CONFLICT":
			default:
				t.Fatalf("unexpected code %s", code)
			}
		}
		n2, err := s.App.DB.Client.Template.Query().Count(context.Background())
		if ok != 1 || err != nil || n2 != 1 {
			t.Fatalf("%d creations succeeded, %d templates stored (err %v), want 1", ok, n2, err)
		}
	})
}
