package apitest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql/introspection"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// paddedBody is a POST body of exactly n bytes (n at least a few hundred)
// holding a valid Me request: the padding is JSON white space.
func paddedBody(t *testing.T, n int) []byte {
	t.Helper()
	head := []byte(`{"query":"query Me { me { id } }",`)
	tail := []byte(`"operationName":"Me"}`)
	pad := n - len(head) - len(tail)
	if pad < 0 {
		t.Fatalf("a %d-byte body cannot hold the request", n)
	}
	return append(append(head, bytes.Repeat([]byte(" "), pad)...), tail...)
}

// streamedBody yields a JSON request of n bytes without holding it, and
// hides its length, so that the client sends it chunked.
type streamedBody struct{ r io.Reader }

func newStreamedBody(n int) streamedBody {
	head := `{"query":"query Me { me { id } }","variables":{"pad":"`
	tail := `"}}`
	return streamedBody{io.MultiReader(strings.NewReader(head),
		io.LimitReader(repeatReader('x'), int64(n-len(head)-len(tail))), strings.NewReader(tail))}
}

func (b streamedBody) Read(p []byte) (int, error) { return b.r.Read(p) }

type repeatReader byte

func (c repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

func hasData(r *apitest.Response) bool { return len(r.Data) > 0 && string(r.Data) != "null" }

// The request body limit is a property of the HTTP layer, so it is tested
// on one backend.
func TestRequestBodyLimit(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	c := s.Client()
	token, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
	c = c.As(token)

	refused := func(t *testing.T, r *apitest.Response, limit int) {
		t.Helper()
		if r.Status != http.StatusRequestEntityTooLarge || len(r.Errors) != 1 || r.Code() != "BAD_USER_INPUT" || hasData(r) {
			t.Fatalf("want 413 and one BAD_USER_INPUT error, got %d %s", r.Status, r.Raw)
		}
		if want := fmt.Sprintf("the request body is larger than %d bytes", limit); r.Errors[0].Message != want {
			t.Fatalf("message %q, want %q", r.Errors[0].Message, want)
		}
	}
	accepted := func(t *testing.T, r *apitest.Response) {
		t.Helper()
		if r.Status != http.StatusOK || len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"me":{"id"`) {
			t.Fatalf("want Me answered, got %d %s", r.Status, r.Raw)
		}
	}

	t.Run("30 MiB with Content-Length", func(t *testing.T) {
		refused(t, c.Post(t, "application/json", bytes.NewReader(paddedBody(t, 30<<20))), 1<<20)
	})
	t.Run("30 MiB chunked", func(t *testing.T) {
		refused(t, c.Post(t, "application/json", newStreamedBody(30<<20)), 1<<20)
	})
	t.Run("one byte over", func(t *testing.T) {
		refused(t, c.Post(t, "application/json", bytes.NewReader(paddedBody(t, 1<<20+1))), 1<<20)
		refused(t, c.Post(t, "application/json", newStreamedBody(1<<20+1)), 1<<20)
	})
	t.Run("exactly the limit", func(t *testing.T) {
		accepted(t, c.Post(t, "application/json", bytes.NewReader(paddedBody(t, 1<<20))))
	})
	t.Run("other content types", func(t *testing.T) {
		// The limit does not depend on the transport the body would reach.
		refused(t, c.Post(t, "text/plain", bytes.NewReader(paddedBody(t, 2<<20))), 1<<20)
	})
	t.Run("uploads keep their own limit", func(t *testing.T) {
		r := c.Upload(t, "notes.txt", "text/plain", bytes.Repeat([]byte("a line of notes\n"), 3<<20/16))
		if len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"uploadAttachment"`) {
			t.Fatalf("a 3 MiB upload: %d %s", r.Status, r.Raw)
		}
	})
	t.Run("the connection stays usable", func(t *testing.T) {
		accepted(t, c.Op(t, "Me", nil))
	})

	t.Run("configured", func(t *testing.T) {
		// Above the size of the contract, which clients send whole.
		s := apitest.Start(t, apitest.Options{Env: map[string]string{"PARLEY_MAX_REQUEST_BYTES": "65536"}})
		c := s.Client()
		token, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		c = c.As(token)
		refused(t, c.Post(t, "application/json", bytes.NewReader(paddedBody(t, 65537))), 65536)
		refused(t, c.Post(t, "application/json", newStreamedBody(65537)), 65536)
		accepted(t, c.Post(t, "application/json", bytes.NewReader(paddedBody(t, 65536))))
	})
}

// Malformed ids are refused where every ID argument, input field and
// variable is read, before any resolver: BAD_USER_INPUT, never INTERNAL.
// Well-formed ids of nothing are NOT_FOUND.
func TestMalformedIDs(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		conv := w.Inbound(t, w.WhatsApp, "+34600000001", "hello")

		malformed := []string{"", "x", "!!!", strings.Repeat("7", 100_000), strings.Repeat("x", 100_000),
			"😀", "\u0000", "1\u0000", " 1", "1.5", "0x10", "99999999999999999999"}
		absent := []string{"0", "-1", "9223372036854775807"}

		type op struct {
			name string
			vars func(id string) map[string]any
			// absent is the code for a well-formed id of nothing ("" when
			// the operation is not asked it here).
			absent string
		}
		byID := func(id string) map[string]any { return map[string]any{"id": id} }
		ops := []op{
			{"Conversation", byID, "NOT_FOUND"},
			{"TakeConversation", byID, "NOT_FOUND"},
			{"ContactInfo", byID, "NOT_FOUND"},
			{"MarkDealtWith", byID, "NOT_FOUND"},
			// An agent that does not exist is bad input to a transfer.
			{"TransferConversation", func(id string) map[string]any { return map[string]any{"id": conv, "agentID": id} }, "BAD_USER_INPUT"},
			{"SendMessage", func(id string) map[string]any {
				return map[string]any{"input": map[string]any{"conversationID": id, "body": "hi"}}
			}, "NOT_FOUND"},
			{"StartInternalChat", func(id string) map[string]any {
				return map[string]any{"agentIDs": []string{w.Ben.ID, id}, "body": "hi"}
			}, ""},
			{"Inbox", func(id string) map[string]any { return map[string]any{"view": "QUEUE", "queueID": id} }, ""},
		}
		check := func(t *testing.T, r *apitest.Response, want string) {
			t.Helper()
			if len(r.Errors) == 0 {
				t.Fatalf("want %s, got no error: %s", want, r.Raw)
			}
			for _, e := range r.Errors {
				if e.Code() != want {
					t.Fatalf("want %s, got %s", want, r.Raw[:min(len(r.Raw), 600)])
				}
			}
		}
		for _, o := range ops {
			t.Run(o.name, func(t *testing.T) {
				for _, id := range malformed {
					check(t, w.Ana.C.Op(t, o.name, o.vars(id)), "BAD_USER_INPUT")
				}
				if o.absent == "" {
					return
				}
				for _, id := range absent {
					check(t, w.Ana.C.Op(t, o.name, o.vars(id)), o.absent)
				}
			})
		}
		t.Run("literal arguments", func(t *testing.T) {
			for _, id := range malformed {
				lit, _ := json.Marshal(id)
				check(t, w.Ana.C.Query(t, fmt.Sprintf(`{ conversation(id: %s) { id } }`, lit), nil), "BAD_USER_INPUT")
				check(t, w.Ana.C.Query(t, fmt.Sprintf(`{ node(id: %s) { id } }`, lit), nil), "BAD_USER_INPUT")
			}
		})
	})
}

// Search strings reach LIKE patterns. A control character in one is
// refused: a NUL used to end SQLite's pattern early and match everything.
func TestSearchRefusesControlCharacters(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		w.Inbound(t, w.WhatsApp, "+34600000001", "hello")
		w.Inbound(t, w.WhatsApp, "+34600000002", "good morning")
		w.Admin.C.MustOp(t, "CreateTemplate", map[string]any{"input": map[string]any{
			"name": "Greeting", "category": "General", "language": "en", "body": "Hello there",
		}}, nil)

		searches := []struct {
			op   string
			vars func(q string) map[string]any
		}{
			{"Inbox", func(q string) map[string]any { return map[string]any{"view": "ALL", "search": q} }},
			{"Templates", func(q string) map[string]any { return map[string]any{"search": q} }},
			{"SearchAgents", func(q string) map[string]any { return map[string]any{"search": q} }},
		}
		for _, sr := range searches {
			t.Run(sr.op, func(t *testing.T) {
				for _, q := range []string{"\u0000", "hel\u0000lo", "\u0001", "\u001b[2J", "\u007f", "\u009b"} {
					r := w.Admin.C.Op(t, sr.op, sr.vars(q))
					if len(r.Errors) != 1 || r.Code() != "BAD_USER_INPUT" || r.Errors[0].Message != "search must not contain control characters" {
						t.Fatalf("search %q: %s", q, r.Raw)
					}
				}
				if r := w.Admin.C.Op(t, sr.op, sr.vars(strings.Repeat("a", 201))); r.Code() != "BAD_USER_INPUT" {
					t.Fatalf("a 201-character search: %s", r.Raw)
				}
			})
		}

		// White space is folded like a space, and wildcards match literally.
		var inbox struct {
			Inbox struct{ TotalCount int }
		}
		for q, want := range map[string]int{"good\tmorning": 1, "GOOD\nMORNING": 1, "%": 0, "_": 0, "hello": 1} {
			w.Admin.C.MustOp(t, "Inbox", map[string]any{"view": "ALL", "search": q}, &inbox)
			if inbox.Inbox.TotalCount != want {
				t.Fatalf("search %q found %d, want %d", q, inbox.Inbox.TotalCount, want)
			}
		}
	})
}

// deepQuery nests me → queues → members → agent → queues … until the
// innermost field (id or name) is depth fields deep.
func deepQuery(depth int) string {
	var b strings.Builder
	b.WriteString("{ me {")
	path := []string{"queues", "members", "agent"}
	for i := 0; i < depth-2; i++ {
		fmt.Fprintf(&b, " %s {", path[i%3])
	}
	leaf := map[int]string{0: "id", 1: "name", 2: "priority"}[(depth-2)%3]
	b.WriteString(" " + leaf)
	b.WriteString(strings.Repeat(" }", depth-1))
	b.WriteString(" }")
	return b.String()
}

// The depth limit is enforced before execution, independent of the
// database, so it is tested on one backend.
func TestQueryDepthLimit(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	c := s.Client()
	token, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
	c = c.As(token)

	if r := c.Query(t, deepQuery(15), nil); len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"me":{"queues":[]}`) {
		t.Fatalf("15 deep: %s", r.Raw)
	}
	for _, tc := range []struct{ name, query string }{
		{"16 deep", deepQuery(16)},
		{"60 deep", deepQuery(60)},
		{"through fragments", `{ me { ...A } }
			fragment A on Agent { queues { members { agent { ...B } } } }
			fragment B on Agent { queues { members { agent { ...C } } } }
			fragment C on Agent { queues { members { agent { ...D } } } }
			fragment D on Agent { queues { members { agent { ...E } } } }
			fragment E on Agent { queues { members { agent { id } } } }`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Query(t, tc.query, nil)
			if len(r.Errors) != 1 || r.Code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "more than the limit of 15") || hasData(r) {
				t.Fatalf("want one BAD_USER_INPUT and no data, got %s", r.Raw)
			}
		})
	}

	// A full introspection query, as GraphiQL and code generators send it,
	// passes; it needs no token.
	r := s.Client().Query(t, introspection.Query, nil)
	if len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"queryType":{"name":"Query"}`) || !strings.Contains(string(r.Data), `"name":"Conversation"`) {
		t.Fatalf("introspection: %s", r.Raw[:min(len(r.Raw), 600)])
	}
}
