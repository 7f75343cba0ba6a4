package httpserver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"entgo.io/contrib/entgql"
	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/graph"
	"github.com/parleyhq/parley/graph/model"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/metrics"
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
	// WebsocketInitTimeout is how long a client has to send connection_init.
	WebsocketInitTimeout = 10 * time.Second
)

// newGraphQL builds the GraphQL handler: explicit transports, a query
// cache, persisted queries, complexity and depth limits, the error presenter
// and a recover func.
func newGraphQL(d Deps, originPatterns []string, dyn OriginPolicy) *handler.Server {
	cfg := graph.Config{Resolvers: d.Resolver}
	setComplexity(&cfg.Complexity)
	srv := handler.New(graph.NewExecutableSchema(cfg))

	srv.AddTransport(transport.Websocket{
		Implementation: originCheckedWebsocket{static: originPatterns, dyn: dyn},
		InitFunc:       wsInit(d.Auth, d.Metrics),
		CloseFunc: func(ctx context.Context, _ int) {
			// Only connections that passed connection_init were counted.
			if _, ok := auth.FromContext(ctx); ok {
				d.Metrics.WebsocketConnections.Dec()
			}
		},
		InitTimeout:           WebsocketInitTimeout,
		KeepAlivePingInterval: 15 * time.Second,
		PingPongInterval:      20 * time.Second,
	})
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
			return next(d.Resolver.Conversations.WithRequestScope(ctx))
		})
	}
	srv.SetErrorPresenter(presentError(d.Log, d.Metrics))
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		d.Log.Error("resolver panic", "request_id", RequestID(ctx), "panic", v)
		return apperr.New(apperr.Internal, "internal error")
	})
	return srv
}

// wsInit authenticates a websocket at connection_init with the authToken of
// its payload (an "Authorization: Bearer" entry is accepted too). A missing
// or bad token closes the connection: every subscription needs a caller.
func wsInit(a *auth.Service, m *metrics.Metrics) transport.WebsocketInitFunc {
	return func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		token := p.GetString("authToken")
		if token == "" {
			if t, err := auth.BearerToken(p.Authorization()); err == nil {
				token = t
			}
		}
		if token == "" {
			return ctx, nil, apperr.New(apperr.Unauthenticated, "connection_init must carry authToken")
		}
		pr, err := a.Authenticate(ctx, token)
		if err != nil {
			if !isCoded(err) {
				err = apperr.New(apperr.Internal, "internal error")
			}
			return ctx, nil, err
		}
		m.WebsocketConnections.Inc()
		return auth.WithPrincipal(ctx, pr), nil, nil
	}
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

// presentError maps domain errors to extensions.code. ent's not-found,
// validation and constraint errors get their codes too; anything else is an
// "internal error" for the client and a log line with the request id.
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
		case ent.IsNotFound(err):
			gerr.Message = "not found"
			setCode(gerr, string(apperr.NotFound))
		case ent.IsValidationError(err):
			var ve *ent.ValidationError
			errors.As(err, &ve)
			gerr.Message = ve.Name + " is invalid"
			setCode(gerr, string(apperr.BadUserInput))
		case ent.IsConstraintError(err):
			gerr.Message = "conflicts with existing data"
			setCode(gerr, string(apperr.Conflict))
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
	c.Query.Inbox = func(child int, _ model.InboxView, _ *schematype.Channel, _ *int, _ *string, a cur, first *int, b cur, last *int) int {
		return conn(child, a, first, b, last)
	}
	c.Query.Templates = func(child int, _, _, _ *string, a cur, first *int, b cur, last *int) int {
		return conn(child, a, first, b, last)
	}
	c.Contact.History = conn
	c.Conversation.Messages = conn
	c.VisitorConversation.Messages = conn
}

// originCheckedWebsocket accepts websockets with the library's origin check
// (same origin always; others only when listed), listing the configured
// origins and, per request, the requesting origin when a live-chat account
// allows it.
type originCheckedWebsocket struct {
	static []string
	dyn    OriginPolicy
}

func (o originCheckedWebsocket) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	patterns := o.static
	if origin := r.Header.Get("Origin"); origin != "" && o.dyn != nil && o.dyn.AnyAllows(r.Context(), origin) {
		if u, err := url.Parse(origin); err == nil && u.Host != "" {
			patterns = append(append([]string(nil), o.static...), strings.ToLower(u.Host))
		}
	}
	impl := transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{OriginPatterns: patterns}}
	return impl.Accept(w, r, opts)
}
