package httpserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"entgo.io/contrib/entgql"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/graph"
	"github.com/parleyhq/parley/graph/model"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/labels"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/wsgql"
)

// Limits of the GraphQL endpoint.
const (
	// ComplexityLimit bounds the work one operation may ask for; lists
	// count their page size times their children.
	ComplexityLimit = 5000
	// DepthLimit bounds how deep one operation's fields may nest; a full
	// introspection query (gqlgen's nests 15 deep) stays within it.
	DepthLimit = 15
	// MaxUploadSize bounds a multipart request (the attachment limit plus
	// room for the operation).
	MaxUploadSize = 26 << 20
)

// newGraphQL builds the GraphQL handler: explicit transports (Parley's own
// websocket transport first), a query cache, persisted queries, complexity
// and depth limits, the error presenter and a recover func.
func newGraphQL(d Deps, ws *wsgql.Transport) *handler.Server {
	cfg := graph.Config{Resolvers: d.Resolver}
	setComplexity(&cfg.Complexity)
	srv := handler.New(graph.NewExecutableSchema(cfg))

	srv.AddTransport(ws)
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	// A configured attachment limit above the default widens the request
	// limit with it, so the file reaches the service and its BAD_USER_INPUT.
	srv.AddTransport(transport.MultipartForm{MaxUploadSize: max(MaxUploadSize, d.Config.MaxUploadBytes+1<<20), MaxMemory: 4 << 20})

	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.Introspection{})
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](200)})
	srv.Use(extension.FixedComplexityLimit(ComplexityLimit))
	srv.Use(depthLimit{max: DepthLimit})
	srv.AroundResponses(countOperations(d.Metrics))
	if d.Resolver.Conversations != nil {
		srv.AroundOperations(func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
			return next(labels.WithLoader(d.Resolver.Conversations.WithRequestScope(ctx)))
		})
	}
	srv.AroundFields(passwordChangeGate)
	srv.SetErrorPresenter(presentError(d.Log, d.Metrics))
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		d.Log.Error("resolver panic", "request_id", RequestID(ctx), "panic", v)
		return apperr.New(apperr.Internal, "internal error")
	})
	return srv
}

// newWebsocket builds the websocket transport: connection_init carries
// the token (authToken, or an "Authorization: Bearer" entry); a missing or
// bad one closes the socket with 4403. Open sockets are rechecked, so a
// token revoked or expired meanwhile closes its sockets too. Origins are
// checked as for HTTP: same origin, the configured ones, and those of
// live-chat accounts.
func newWebsocket(d Deps, closing context.Context) *wsgql.Transport {
	static := originHosts(d.Config.AllowedOrigins)
	return wsgql.New(wsgql.Config{
		Init: func(ctx context.Context, payload map[string]any) (context.Context, wsgql.Session, error) {
			p := transport.InitPayload(payload)
			token := p.GetString("authToken")
			if token == "" {
				if t, err := auth.BearerToken(p.Authorization()); err == nil {
					token = t
				}
			}
			if token == "" {
				return ctx, wsgql.Session{}, apperr.New(apperr.Unauthenticated, "connection_init must carry authToken")
			}
			pr, err := d.Auth.Authenticate(ctx, token)
			if err != nil {
				if !isCoded(err) {
					d.Log.Error("websocket authentication", "request_id", RequestID(ctx), "err", err)
					err = apperr.New(apperr.Internal, "internal error")
				}
				return ctx, wsgql.Session{}, err
			}
			sess := wsgql.Session{Key: pr.ViewerKey(), Token: pr.SessionToken(), Expires: pr.ExpiresAt}
			if pr.IsAgent() && d.Presence != nil {
				sess.Closed = d.Presence.Connected(ctx, pr.AgentID)
			}
			return auth.WithPrincipal(ctx, pr), sess, nil
		},
		Valid: func(ctx context.Context, tokens []string) (map[string]bool, error) {
			return d.Auth.StillValid(ctx, tokens)
		},
		CheckOrigin: wsgql.OriginMatcher(func(r *http.Request) []string {
			origin := r.Header.Get("Origin")
			if d.Origins != nil && d.Origins.AnyAllows(r.Context(), origin) {
				if u, err := url.Parse(origin); err == nil && u.Host != "" {
					return append(append([]string(nil), static...), strings.ToLower(u.Host))
				}
			}
			return static
		}),
		Closing:         closing,
		InitTimeout:     d.Config.WebsocketInitTimeout,
		PingInterval:    d.Config.WebsocketPingInterval,
		RecheckInterval: d.Config.WebsocketRecheckInterval,
		// A websocket message is a GraphQL request: the same bound.
		MaxMessageBytes: d.Config.MaxRequestBytes,
		Log:             d.Log,
		Connections:     func(n int) { d.Metrics.WebsocketConnections.Add(float64(n)) },
		Subscriptions:   func(n int) { d.Metrics.ActiveSubscriptions.Add(float64(n)) },
		Stateful:        stateful,
	})
}

// statefulFields are the subscriptions whose every result is the whole
// state (a queue's figures): a second socket sharing one's execution gets
// the latest result at once, not only the next change.
var statefulFields = map[string]bool{"queueEvents": true}

func stateful(rc *graphql.OperationContext) bool {
	if rc.Operation == nil || len(rc.Operation.SelectionSet) == 0 {
		return false
	}
	for _, sel := range rc.Operation.SelectionSet {
		f, ok := sel.(*ast.Field)
		if !ok || !statefulFields[f.Name] {
			return false
		}
	}
	return true
}

// passwordChangeGate refuses the root fields (queries, mutations and
// subscriptions alike) that an agent logged in with a one-time password may
// not use yet: auth.GatePasswordChange says which.
func passwordChangeGate(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc != nil && (fc.Object == "Query" || fc.Object == "Mutation" || fc.Object == "Subscription") {
		if p, ok := auth.FromContext(ctx); ok {
			if err := auth.GatePasswordChange(p, fc.Field.Name); err != nil {
				return nil, err
			}
		}
	}
	return next(ctx)
}

// countOperations counts operations by type and outcome.
func countOperations(m *metrics.Metrics) graphql.ResponseMiddleware {
	return func(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
		resp := next(ctx)
		if !graphql.HasOperationContext(ctx) {
			return resp
		}
		oc := graphql.GetOperationContext(ctx)
		typ := "unknown"
		if oc.Operation != nil {
			typ = string(oc.Operation.Operation)
		}
		outcome := "ok"
		if resp != nil && len(resp.Errors) > 0 {
			outcome = "error"
		}
		m.GraphQLOperations.WithLabelValues(typ, outcome).Inc()
		return resp
	}
}

// presentError maps domain errors (apperr) to extensions.code. The codes
// come from the services, which translate ent's errors where they arise
// (store.Coded); the presenter knows no ent, so an error a service left
// uncoded (a raw ent error among them) is an "internal error" for the
// client and a log line with the request id.
func presentError(log *slog.Logger, m *metrics.Metrics) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gerr := graphql.DefaultErrorPresenter(ctx, err)
		var (
			ae *apperr.Error
			ge *gqlerror.Error
		)
		switch {
		case errors.As(err, &ae):
			gerr.Message = ae.Message
			setCode(gerr, string(ae.Code))
			if ae.Field != "" {
				gerr.Extensions["field"] = ae.Field
			}
			if ae.Code == apperr.Internal {
				log.Error("internal error", "request_id", RequestID(ctx), "path", gerr.Path.String(), "err", ae)
				gerr.Extensions["requestId"] = RequestID(ctx)
			}
		case errors.As(err, &ge) && ge.Err == nil:
			// Parse, validation and argument coercion errors from gqlgen
			// itself: their messages are meant for clients.
			// A variable of the wrong type or value is bad input, which
			// the contract calls BAD_USER_INPUT.
			if gerr.Extensions == nil || gerr.Extensions["code"] == nil ||
				(len(gerr.Path) > 0 && gerr.Path[0] == ast.PathName("variable")) {
				setCode(gerr, string(apperr.BadUserInput))
			}
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			gerr.Message = "request cancelled"
			setCode(gerr, "CANCELLED")
		default:
			log.Error("internal error", "request_id", RequestID(ctx), "path", gerr.Path.String(), "err", err)
			gerr.Message = "internal error"
			setCode(gerr, string(apperr.Internal))
			gerr.Extensions["requestId"] = RequestID(ctx)
		}
		if code, ok := gerr.Extensions["code"].(string); ok {
			m.GraphQLErrors.WithLabelValues(code).Inc()
		}
		return gerr
	}
}

func setCode(e *gqlerror.Error, code string) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
}

func isCoded(err error) bool {
	var ae *apperr.Error
	return errors.As(err, &ae)
}

// originHosts turns configured origins into the host patterns the websocket
// library checks the Origin header against (same-origin is always allowed).
func originHosts(origins []string) []string {
	var out []string
	for _, o := range origins {
		if o == "*" {
			out = append(out, "*")
			continue
		}
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			out = append(out, strings.ToLower(u.Host))
		}
	}
	return out
}

// setComplexity weighs list fields by their page size, so that nested
// connections cannot multiply into a huge query.
func setComplexity(c *graph.ComplexityRoot) {
	page := func(first, last *int) int {
		n := 20
		if first != nil && *first > 0 {
			n = *first
		}
		if last != nil && *last > 0 {
			n = *last
		}
		if n > 100 {
			n = 100
		}
		return n
	}
	type cur = *entgql.Cursor[int]
	conn := func(child int, _ cur, first *int, _ cur, last *int) int { return 1 + page(first, last)*child }
	c.Query.Agents = func(child int, _ *string, a cur, first *int, b cur, last *int) int {
		return conn(child, a, first, b, last)
	}
	c.Query.Inbox = func(child int, _ model.InboxView, _ *schematype.Channel, _ *int, _ *string, _ []int, _ *model.InboxOrder, a cur, first *int, b cur, last *int) int {
		return conn(child, a, first, b, last)
	}
	c.Query.Templates = func(child int, _, _, _ *string, a cur, first *int, b cur, last *int) int {
		return conn(child, a, first, b, last)
	}
	c.Contact.History = conn
	c.Conversation.Messages = conn
	c.VisitorConversation.Messages = conn
}
