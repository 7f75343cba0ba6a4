// Package httpserver is Parley's HTTP surface: the GraphQL endpoint (HTTP
// and websockets), the playground, health and readiness probes, Prometheus
// metrics, and the middleware every request passes through (request id,
// client IP, access log, recover, CORS, cross-origin protection, bearer
// authentication), and the GraphQL endpoint's request body limit. It wires
// handlers; the rules live in the services.
package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/parleyhq/parley/graph"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/playground"
	"github.com/parleyhq/parley/internal/presence"
	"github.com/parleyhq/parley/internal/wsgql"
)

// Pinger is something readiness depends on: the database, the broker.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Deps is what the server is built from.
type Deps struct {
	Config  config.Config
	Log     *slog.Logger
	Metrics *metrics.Metrics
	Auth    *auth.Service
	// Presence hears of agents' requests and websockets.
	Presence *presence.Service
	Resolver *graph.Resolver
	// Ready lists what /readyz checks, by name ("database", "redis").
	Ready map[string]Pinger
	// Extra mounts more handlers (webhooks, widget) by pattern.
	Extra map[string]http.Handler
	// Origins, when set, allows the browser origins of the live-chat
	// accounts' websites in addition to PARLEY_ALLOWED_ORIGINS.
	Origins OriginPolicy
}

// OriginPolicy says whether a browser origin may call the API.
type OriginPolicy interface {
	AnyAllows(ctx context.Context, origin string) bool
}

// Server serves Parley over HTTP.
type Server struct {
	d       Deps
	handler http.Handler
	// closing is cancelled when shutdown begins; websocket requests watch
	// it, because http.Server.Shutdown does not close hijacked connections.
	closing context.Context
	close   context.CancelFunc
	ws      *wsgql.Transport
}

// New builds the server's handler tree.
func New(d Deps) *Server {
	closing, cancel := context.WithCancel(context.Background())
	s := &Server{d: d, closing: closing, close: cancel, ws: newWebsocket(d, closing)}
	gql := newGraphQL(d, s.ws)

	mux := http.NewServeMux()
	mux.Handle("/graphql", withBodyLimit(d.Config.MaxRequestBytes, gql))
	playground.Mount(mux, "/graphql")
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.ready)
	if d.Config.MetricsAddr == "" {
		mux.Handle("GET /metrics", s.metricsHandler())
	}
	for pattern, h := range d.Extra {
		mux.Handle(pattern, h)
	}

	cop := http.NewCrossOriginProtection()
	for _, o := range d.Config.AllowedOrigins {
		if o != "*" {
			_ = cop.AddTrustedOrigin(strings.TrimRight(o, "/"))
		}
	}
	var h http.Handler = mux
	h = withAuth(d.Auth, d.Presence, d.Log, h)
	h = withCrossOriginProtection(cop, d.Origins, h)
	h = withCORS(d.Config.AllowedOrigins, d.Origins, h)
	h = withAccessLog(d.Log, d.Metrics, h)
	h = withRecover(d.Log, h)
	h = withClientIP(d.Config.TrustedProxies, h)
	h = withRequestID(h)
	s.handler = h
	return s
}

// Handler returns the root handler (for tests with httptest).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := map[string]string{}
	code := http.StatusOK
	for name, p := range s.d.Ready {
		if err := p.Ping(ctx); err != nil {
			status[name] = "unavailable"
			code = http.StatusServiceUnavailable
			s.d.Log.Warn("not ready", "check", name, "err", err)
		} else {
			status[name] = "ok"
		}
	}
	if s.closing.Err() != nil {
		status["server"] = "shutting down"
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, status)
}

// Serve serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, ends every websocket subscription, and waits up to grace for
// requests in flight.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	// Cancelling closing closes every websocket (1001); then wait for
	// their close handshakes, which Shutdown does not track.
	return s.serve(ctx, s.handler, ln, grace, s.close, func(ctx context.Context) { _ = s.ws.Wait(ctx) })
}

// ServeMetrics serves /metrics alone on ln (PARLEY_METRICS_ADDR, where the
// main listener does not serve it) until ctx ends, then shuts down like
// Serve.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener, grace time.Duration) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metricsHandler())
	return s.serve(ctx, withRecover(s.d.Log, mux), ln, grace, nil, nil)
}

func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.d.Metrics.Registry, promhttp.HandlerOpts{})
}

// serve runs an http.Server for h on ln until ctx ends; then begin (when
// set) runs, the server stops accepting and waits for requests in flight,
// and wait (when set) waits for what Shutdown does not track, all within
// grace.
func (s *Server) serve(ctx context.Context, h http.Handler, ln net.Listener, grace time.Duration, begin func(), wait func(context.Context)) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(s.d.Log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.d.Log.Info("shutting down", "addr", ln.Addr().String())
	if begin != nil {
		begin()
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if wait != nil {
		wait(sctx)
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// RecheckWebsockets checks the tokens of every open websocket now, instead
// of at the next PARLEY_WS_RECHECK_INTERVAL: sockets of revoked tokens close
// with 4403 at once. It does not wait.
func (s *Server) RecheckWebsockets() { s.ws.RecheckNow() }

// Websockets reports how many websockets are open on this server.
func (s *Server) Websockets() int { return s.ws.Connections() }
