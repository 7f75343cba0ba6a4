package httpserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/channels/provider"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/presence"
)

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to ("" outside one).
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey{}).(string)
	return s
}

var requestIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// withRequestID takes a sane X-Request-ID from the client (or a proxy) or
// makes one, echoes it in the response and puts it in the context, so that
// a client's bug report leads to the log lines of its request.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !requestIDRe.MatchString(id) {
			b := make([]byte, 8)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-ID", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// clientIP returns the address of the client: the peer, unless the peer is
// a trusted proxy, in which case the right-most X-Forwarded-For entry that
// is not itself a trusted proxy. Entries further left are client-supplied
// and never believed.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a.String()
		}
	}
	return peer.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func withClientIP(trusted []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := auth.WithClientIP(r.Context(), clientIP(r, trusted))
		ctx = auth.WithClient(ctx, auth.Client{UserAgent: r.UserAgent(), Origin: r.Header.Get("Origin")})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// statusWriter records the status code for logs and metrics. It passes
// Hijack and Flush through, which websockets and streaming need.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// route names a request for metrics with a bounded set of labels: the
// path's first segment, never ids or client-chosen strings.
func route(path string) string {
	switch {
	case path == "/":
		return "/"
	case path == "/graphql":
		return "/graphql"
	case strings.HasPrefix(path, provider.WebhookPrefix):
		name, _, _ := strings.Cut(strings.TrimPrefix(path, provider.WebhookPrefix), "/")
		if f, ok := provider.Named(name); ok {
			return f.RouteLabel()
		}
		return provider.WebhookPrefix + "other"
	case path == "/healthz", path == "/readyz", path == "/metrics", path == "/widget.js", path == "/demo":
		return path
	case strings.HasPrefix(path, "/attachments/"):
		return "/attachments"
	}
	return "other"
}

// withAccessLog logs one structured line per request and updates the HTTP
// metrics. Headers are not logged: they carry tokens.
func withAccessLog(log *slog.Logger, m *metrics.Metrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		code := sw.code
		if code == 0 {
			code = http.StatusOK
		}
		rt := route(r.URL.Path)
		m.HTTPRequests.WithLabelValues(rt, strconv.Itoa(code)).Inc()
		m.HTTPDuration.WithLabelValues(rt).Observe(d.Seconds())
		if rt == "/healthz" || rt == "/readyz" || rt == "/metrics" {
			return
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", RequestID(r.Context())),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", code),
			slog.Duration("duration", d),
			slog.String("ip", auth.ClientIP(r.Context())),
		)
	})
}

// withRecover turns a panic in a handler into a 500 and a log line with the
// request id, instead of a dropped connection and a crashed process.
func withRecover(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic", "request_id", RequestID(r.Context()), "panic", v)
				http.Error(w, "internal error", http.StatusInternalServerError)
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// withAuth resolves the bearer token, if any, into the caller. A token that
// does not authenticate is remembered (auth.WithFailure) rather than refused
// here, so that public operations such as login still work for a client
// holding a stale token.
func withAuth(a *auth.Service, pres *presence.Service, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		token, err := auth.BearerToken(r.Header.Get("Authorization"))
		switch {
		case err == auth.ErrNoToken:
		case err != nil:
			ctx = auth.WithFailure(ctx, err)
		default:
			p, err := a.Authenticate(ctx, token)
			if err != nil {
				if !isCoded(err) {
					log.Error("authenticate", "request_id", RequestID(ctx), "err", err)
				}
				ctx = auth.WithFailure(ctx, err)
			} else {
				ctx = auth.WithPrincipal(ctx, p)
				if pres != nil && p.IsAgent() {
					pres.Touch(ctx, p.AgentID)
				}
			}
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// withCORS answers browsers calling the API from another origin: only the
// configured origins are allowed. Tokens travel in the Authorization header,
// never in cookies, so credentials are not allowed.
func withCORS(allowed []string, dyn OriginPolicy, next http.Handler) http.Handler {
	set := map[string]bool{}
	any := false
	for _, o := range allowed {
		if o == "*" {
			any = true
		}
		set[strings.TrimRight(o, "/")] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && (any || set[origin] || (dyn != nil && dyn.AnyAllows(r.Context(), origin))) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-ID")
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Expose-Headers", "X-Request-ID")
			h.Set("Access-Control-Max-Age", "600")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// withCrossOriginProtection refuses cross-origin browser writes except from
// trusted origins: the configured ones (inside cop) and the websites of the
// live-chat accounts.
func withCrossOriginProtection(cop *http.CrossOriginProtection, dyn OriginPolicy, next http.Handler) http.Handler {
	protected := cop.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && dyn != nil && dyn.AnyAllows(r.Context(), o) {
			next.ServeHTTP(w, r)
			return
		}
		protected.ServeHTTP(w, r)
	})
}
