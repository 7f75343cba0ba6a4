package wsgql

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gobwas/ws"
)

// Subprotocols.
const (
	// ProtocolTransportWS is graphql-transport-ws, the current protocol.
	ProtocolTransportWS = "graphql-transport-ws"
	// ProtocolLegacyWS is graphql-ws of subscriptions-transport-ws, for
	// older clients; it is also what a client that names no subprotocol
	// gets.
	ProtocolLegacyWS = "graphql-ws"
)

// Close codes of graphql-transport-ws, and the standard ones used here.
const (
	CloseNormal             ws.StatusCode = 1000
	CloseGoingAway          ws.StatusCode = 1001
	CloseProtocolError      ws.StatusCode = 1002
	CloseTooBig             ws.StatusCode = 1009
	CloseInternal           ws.StatusCode = 1011
	CloseTryAgainLater      ws.StatusCode = 1013
	CloseBadRequest         ws.StatusCode = 4400
	CloseUnauthorized       ws.StatusCode = 4401
	CloseForbidden          ws.StatusCode = 4403
	CloseSubprotocol        ws.StatusCode = 4406
	CloseInitTimeout        ws.StatusCode = 4408
	CloseSubscriberExists   ws.StatusCode = 4409
	CloseTooManyInitRequest ws.StatusCode = 4429
)

// Session is what connection_init established: who the connection acts
// for, how to recheck it, and when it expires.
type Session struct {
	// Key identifies what the caller may see: two connections with the
	// same key get the same results for the same operation, so their
	// subscriptions share one execution. It must cover everything a
	// resolver reads from the caller (for Parley: agent and role, or the
	// visitor's conversation).
	Key string
	// Token identifies the credential for [Config.Valid]; empty means
	// never rechecked.
	Token string
	// Expires is when the credential stops being valid; zero means never.
	Expires time.Time
	// Closed, when set, is called once when the connection ends.
	Closed func()
}

// Config configures a [Transport].
type Config struct {
	// Init authenticates connection_init's payload and returns the context
	// operations of the connection run in. An error refuses the connection
	// (4403, or connection_error then a close in the legacy protocol) with
	// the error's message.
	Init func(ctx context.Context, payload map[string]any) (context.Context, Session, error)
	// Valid reports which of the given tokens are still valid; sockets of
	// the others are closed with 4403. Nil disables the recheck.
	Valid func(ctx context.Context, tokens []string) (map[string]bool, error)
	// CheckOrigin reports whether the request's Origin may open a socket.
	// Nil allows same-origin requests and requests without Origin only.
	CheckOrigin func(r *http.Request) bool
	// Closing ends every connection (1001) when it is done: the server's
	// shutdown. Nil means never.
	Closing context.Context

	// InitTimeout is how long a client has to send connection_init
	// (default 10 s; then 4408).
	InitTimeout time.Duration
	// PingInterval is how often an idle connection is pinged (default
	// 20 s); a connection that sends nothing, not even a pong, for two
	// intervals is dropped.
	PingInterval time.Duration
	// RecheckInterval is how often tokens are rechecked (default 5 s).
	RecheckInterval time.Duration
	// WriteTimeout bounds one write to a socket (default 10 s).
	WriteTimeout time.Duration
	// MaxMessageBytes bounds a client message (default 1 MiB; then 1009).
	MaxMessageBytes int64
	// SendQueue bounds the frames queued for one socket (default 256);
	// SendQueueBytes bounds their size (default 8 MiB). A socket past
	// either is closed with 1013.
	SendQueue      int
	SendQueueBytes int

	// Log receives connection-level problems; nil discards them.
	Log *slog.Logger
	// Connections is called with +1 when a connection is acknowledged and
	// -1 when an acknowledged connection ends.
	Connections func(delta int)
	// Subscriptions is called with +1 when a subscription is live (events
	// published from then on reach it) and -1 when it ends.
	Subscriptions func(delta int)
	// Stateful reports whether a subscription streams a state (each result
	// is the whole of it, as queueEvents' figures are) rather than events:
	// a socket joining a running execution of one then gets its latest
	// result first, as a socket starting it would. Nil: none is.
	Stateful func(rc *graphql.OperationContext) bool
}

func (c *Config) defaults() {
	if c.InitTimeout <= 0 {
		c.InitTimeout = 10 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 20 * time.Second
	}
	if c.RecheckInterval <= 0 {
		c.RecheckInterval = 5 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 1 << 20
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.SendQueueBytes <= 0 {
		c.SendQueueBytes = 8 << 20
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Connections == nil {
		c.Connections = func(int) {}
	}
	if c.Subscriptions == nil {
		c.Subscriptions = func(int) {}
	}
}

// Transport is the websocket transport. Create it with [New]; it is safe
// for concurrent use by every request of a server.
type Transport struct {
	cfg Config

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup // one per connection

	groupsMu sync.Mutex
	groups   map[[sha256.Size]byte]*group

	// ready hands connections with frames to write to the writers.
	ready chan *conn

	// recheckNow asks the housekeeping loop for a recheck out of turn.
	recheckNow chan struct{}

	stop chan struct{}
	once sync.Once
}

// Writers: a few long-lived goroutines write to every socket, so that a
// fan-out to many sockets neither starts a goroutine per socket nor grows
// a fresh stack for each write.
const (
	writersPerCPU = 4
	readyQueue    = 1 << 14
)

var _ graphql.Transport = (*Transport)(nil)

// New returns a transport and starts its keep-alive and recheck loop, which
// ends with [Transport.Shutdown] (or cfg.Closing).
func New(cfg Config) *Transport {
	cfg.defaults()
	t := &Transport{
		cfg:    cfg,
		conns:  map[*conn]struct{}{},
		groups: map[[sha256.Size]byte]*group{},
		stop:   make(chan struct{}),
		ready:  make(chan *conn, readyQueue),

		recheckNow: make(chan struct{}, 1),
	}
	if cfg.Closing != nil {
		context.AfterFunc(cfg.Closing, t.Shutdown)
	}
	go t.housekeeping()
	for range writersPerCPU * runtime.GOMAXPROCS(0) {
		go t.writer()
	}
	return t
}

// writer flushes connections handed to it until the transport shuts down.
func (t *Transport) writer() {
	sc := &scratch{}
	for {
		select {
		case c := <-t.ready:
			c.flush(sc)
		case <-t.stop:
			return
		}
	}
}

// Supports implements [graphql.Transport]: websocket upgrade requests.
func (t *Transport) Supports(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// Do implements [graphql.Transport]: it upgrades the request and hands the
// socket to a goroutine of its own, so that nothing of the HTTP request
// (its goroutine, buffers and middleware frames) outlives the handshake.
func (t *Transport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	if !t.originAllowed(r) {
		http.Error(w, "websocket origin not allowed", http.StatusForbidden)
		return
	}
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	offered := offeredProtocols(r)
	proto := ""
	switch {
	case len(offered) == 0:
		proto = ProtocolLegacyWS // what gqlgen's transport did, for old clients
	case slices.Contains(offered, ProtocolTransportWS):
		proto = ProtocolTransportWS
	case slices.Contains(offered, ProtocolLegacyWS):
		proto = ProtocolLegacyWS
	}
	up := ws.HTTPUpgrader{Timeout: t.cfg.WriteTimeout}
	if proto != "" && len(offered) > 0 {
		up.Protocol = func(p string) bool { return p == proto }
	}
	nc, rw, _, err := up.Upgrade(r, w)
	if err != nil {
		if nc != nil {
			_ = nc.Close()
		}
		return
	}
	c := newConn(t, nc, proto, exec, context.WithoutCancel(r.Context()))
	if rw != nil && rw.Reader.Buffered() > 0 {
		// A client that did not wait for the handshake's answer.
		c.early, _ = rw.Reader.Peek(rw.Reader.Buffered())
		c.early = append([]byte(nil), c.early...)
	}
	if !t.add(c) {
		c.closeWith(CloseGoingAway, "server shutting down")
	}
	if proto == "" {
		c.closeWith(CloseSubprotocol, "Subprotocol not acceptable")
	}
	go c.serve()
}

func (t *Transport) add(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.wg.Add(1)
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *Transport) remove(c *conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	t.wg.Done()
}

// each calls f for every open connection, outside the registry's lock.
func (t *Transport) each(f func(*conn)) {
	t.mu.Lock()
	all := make([]*conn, 0, len(t.conns))
	for c := range t.conns {
		all = append(all, c)
	}
	t.mu.Unlock()
	for _, c := range all {
		f(c)
	}
}

// Shutdown closes every connection with 1001 (clients reconnect, to
// another instance) and refuses new ones. It does not wait; see
// [Transport.Wait].
func (t *Transport) Shutdown() {
	t.once.Do(func() { close(t.stop) })
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.each(func(c *conn) { c.closeWith(CloseGoingAway, "server shutting down") })
}

// Wait blocks until every connection has ended or ctx is done.
func (t *Transport) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { t.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Connections reports how many sockets are open, for tests and metrics.
func (t *Transport) Connections() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// housekeeping pings every connection each PingInterval and rechecks the
// tokens of every connection each RecheckInterval: one loop for all
// sockets, so that an idle socket costs no timer or goroutine of its own.
func (t *Transport) housekeeping() {
	ping := time.NewTicker(t.cfg.PingInterval)
	defer ping.Stop()
	recheck := time.NewTicker(t.cfg.RecheckInterval)
	defer recheck.Stop()
	for {
		select {
		case <-t.stop:
			return
		case <-ping.C:
			t.each(func(c *conn) { c.ping() })
		case now := <-recheck.C:
			t.recheck(now)
		case <-t.recheckNow:
			t.recheck(time.Now())
			recheck.Reset(t.cfg.RecheckInterval)
		}
	}
}

// RecheckNow rechecks every socket's token as soon as the housekeeping
// loop is free, instead of at the next RecheckInterval: a token revoked a
// moment ago (a deactivated agent, a password change) closes its sockets
// with 4403 at once. It never blocks; requests made while one is pending
// are served by that one (it reads the tokens after they were revoked).
func (t *Transport) RecheckNow() {
	select {
	case t.recheckNow <- struct{}{}:
	default:
	}
}

// recheck closes the sockets whose token expired or is no longer valid.
func (t *Transport) recheck(now time.Time) {
	byToken := map[string][]*conn{}
	t.each(func(c *conn) {
		sess, ok := c.session()
		if !ok {
			return
		}
		if !sess.Expires.IsZero() && !now.Before(sess.Expires) {
			c.closeWith(CloseForbidden, "token expired")
			return
		}
		if sess.Token != "" {
			byToken[sess.Token] = append(byToken[sess.Token], c)
		}
	})
	if t.cfg.Valid == nil || len(byToken) == 0 {
		return
	}
	tokens := make([]string, 0, len(byToken))
	for tok := range byToken {
		tokens = append(tokens, tok)
	}
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.RecheckInterval)
	defer cancel()
	valid, err := t.cfg.Valid(ctx, tokens)
	if err != nil {
		// A database hiccup is not a revocation: try again next time.
		if !errors.Is(err, context.Canceled) {
			t.cfg.Log.Warn("websocket: token recheck failed", "err", err)
		}
		return
	}
	checked := time.Now()
	for tok, cs := range byToken {
		if !valid[tok] {
			for _, c := range cs {
				// A token that expired while Valid ran is not revoked.
				reason := "token revoked"
				if sess, _ := c.session(); !sess.Expires.IsZero() && !checked.Before(sess.Expires) {
					reason = "token expired"
				}
				c.closeWith(CloseForbidden, reason)
			}
		}
	}
}

// originAllowed accepts requests without Origin (not from a browser), from
// the same origin, and whatever cfg.CheckOrigin allows.
func (t *Transport) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return t.cfg.CheckOrigin != nil && t.cfg.CheckOrigin(r)
}

// OriginMatcher returns a CheckOrigin that allows origins whose host
// matches one of patterns (path.Match syntax, "*" for any), lower-cased.
func OriginMatcher(patterns func(r *http.Request) []string) func(r *http.Request) bool {
	return func(r *http.Request) bool {
		u, err := url.Parse(r.Header.Get("Origin"))
		if err != nil || u.Host == "" {
			return false
		}
		host := strings.ToLower(u.Host)
		for _, p := range patterns(r) {
			if ok, _ := path.Match(strings.ToLower(p), host); ok {
				return true
			}
		}
		return false
	}
}

func offeredProtocols(r *http.Request) []string {
	var out []string
	for _, h := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(h, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}
