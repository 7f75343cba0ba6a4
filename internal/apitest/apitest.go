// Package apitest runs real Parley servers for integration tests: the same
// wiring as the binary (internal/app), a real TCP listener, a fresh database
// per test on SQLite or PostgreSQL, and in-process pub/sub or real Redis.
// Its client speaks GraphQL over real HTTP and sends the operations of the
// client contract (api/operations.graphql) unchanged.
package apitest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/parleyhq/parley/internal/app"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// DefaultRedisURL is the local test Redis of the developer machines.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// RedisURL is where tests find Redis (TEST_REDIS_URL).
func RedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return DefaultRedisURL
}

// RequireRedis skips the test when Redis is unreachable, or fails it with
// PARLEY_REQUIRE_SERVICES=1.
func RequireRedis(t testing.TB) string {
	t.Helper()
	u := RedisURL()
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatalf("TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if storetest.RequireServices() {
			t.Fatalf("Redis required but unreachable: %v", err)
		}
		t.Skipf("Redis unreachable (%v); set PARLEY_REQUIRE_SERVICES=1 to fail instead", err)
	}
	return u
}

// Options say what kind of server to start.
type Options struct {
	Backend storetest.Backend
	// Redis uses real Redis pub/sub (and rate limits) instead of in-process.
	Redis bool
	// DB shares a database with another server (multi-instance tests).
	DB *store.DB
	// RedisPrefix shares Redis channels with another server.
	RedisPrefix string
	// Env overrides configuration variables.
	Env map[string]string
	// NoWorkers leaves the routing worker off, for tests that drive
	// routing passes themselves.
	NoWorkers bool
}

// Server is a running Parley instance.
type Server struct {
	URL  string
	App  *app.App
	stop context.CancelFunc
	done chan error
}

// Admin is the system owner every test server starts with.
const (
	AdminEmail    = "root@test.parley"
	AdminPassword = "root-password"
)

// Start runs a server until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Backend == "" {
		o.Backend = storetest.SQLite
	}
	db := o.DB
	if db == nil {
		db = storetest.Open(t, o.Backend)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	env := map[string]string{
		"PARLEY_ADDR":           ln.Addr().String(),
		"PARLEY_DATA_DIR":       filepath.Join(t.TempDir(), "data"),
		"PARLEY_PUBLIC_URL":     url,
		"PARLEY_ADMIN_EMAIL":    AdminEmail,
		"PARLEY_ADMIN_PASSWORD": AdminPassword,
		"PARLEY_LOG_LEVEL":      "error",
	}
	prefix := o.RedisPrefix
	if o.Redis {
		env["REDIS_URL"] = RequireRedis(t)
		if prefix == "" {
			prefix = "parley-test-" + randomHex(6) + ":"
		}
	}
	for k, v := range o.Env {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	if os.Getenv("PARLEY_TEST_LOG") == "1" {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, log, app.Options{HashCost: bcrypt.MinCost, RedisPrefix: prefix, DB: db})
	if err != nil {
		cancel()
		t.Fatalf("start parley: %v", err)
	}
	s := &Server{URL: url, App: a, stop: cancel, done: make(chan error, 1)}
	if !o.NoWorkers {
		a.Start()
	}
	go func() { s.done <- a.Server.Serve(ctx, ln, 5*time.Second) }()
	t.Cleanup(func() {
		s.Stop()
		a.Close()
	})
	return s
}

// Stop shuts the server down gracefully and waits for it (idempotent).
func (s *Server) Stop() error {
	s.stop()
	err, ok := <-s.done
	if ok {
		close(s.done)
	}
	return err
}

// GraphQLURL is the GraphQL endpoint.
func (s *Server) GraphQLURL() string { return s.URL + "/graphql" }

// WebsocketURL is the GraphQL endpoint for websockets.
func (s *Server) WebsocketURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/graphql" }

// Error is one GraphQL error of a response.
type Error struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code is the error's extensions.code.
func (e Error) Code() string { s, _ := e.Extensions["code"].(string); return s }

// Response is a decoded GraphQL response.
type Response struct {
	Data   json.RawMessage `json:"data"`
	Errors []Error         `json:"errors"`
	Status int             `json:"-"`
	Raw    []byte          `json:"-"`
}

// Code is the first error's code, or "" when there are none.
func (r *Response) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Code()
}

// Decode unmarshals data into v.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode %s: %v", r.Data, err)
	}
}

// Client calls a server's GraphQL endpoint over HTTP.
type Client struct {
	URL   string
	Token string
	HTTP  *http.Client
	// Header adds headers to every request.
	Header http.Header
}

// Client returns a client with no token.
func (s *Server) Client() *Client {
	return &Client{URL: s.GraphQLURL(), HTTP: &http.Client{Timeout: 30 * time.Second}, Header: http.Header{}}
}

// As returns a copy of the client that sends token.
func (c *Client) As(token string) *Client {
	cc := *c
	cc.Token = token
	return &cc
}

// Query sends a query document with variables.
func (c *Client) Query(t testing.TB, query string, vars map[string]any) *Response {
	t.Helper()
	return c.post(t, map[string]any{"query": query, "variables": vars})
}

// Op sends the contract operation of that name, exactly as clients do.
func (c *Client) Op(t testing.TB, name string, vars map[string]any) *Response {
	t.Helper()
	doc := Contract(t)
	if !strings.Contains(doc, " "+name+"(") && !strings.Contains(doc, " "+name+" {") {
		t.Fatalf("the contract has no operation %s", name)
	}
	return c.post(t, map[string]any{"query": doc, "operationName": name, "variables": vars})
}

// MustOp is Op that fails the test on any error.
func (c *Client) MustOp(t testing.TB, name string, vars map[string]any, out any) {
	t.Helper()
	r := c.Op(t, name, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("%s: %s", name, r.Raw)
	}
	if out != nil {
		r.Decode(t, out)
	}
}

func (c *Client) post(t testing.TB, body map[string]any) *Response {
	t.Helper()
	b, _ := json.Marshal(body)
	return c.send(t, "application/json", bytes.NewReader(b))
}

// Post sends a hand-made request body of the given content type, for tests
// of what no well-behaved client sends (oversized or malformed bodies).
func (c *Client) Post(t testing.TB, contentType string, body io.Reader) *Response {
	t.Helper()
	return c.send(t, contentType, body)
}

// send POSTs a GraphQL request body of the given content type with the
// client's headers and token, and decodes the GraphQL response.
func (c *Client) send(t testing.TB, contentType string, body io.Reader) *Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.URL, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range c.Header {
		req.Header[k] = v
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", c.URL, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := &Response{Status: resp.StatusCode, Raw: raw}
	if err := json.Unmarshal(raw, r); err != nil {
		t.Fatalf("response is not GraphQL JSON (status %d): %s", resp.StatusCode, raw)
	}
	return r
}

// Login logs in through the contract's Login operation and returns the
// token and the agent's id.
func (c *Client) Login(t testing.TB, email, password string) (token, agentID string) {
	t.Helper()
	var out struct {
		Login struct {
			Token string
			Agent struct{ ID string }
		}
	}
	c.MustOp(t, "Login", map[string]any{"email": email, "password": password}, &out)
	return out.Login.Token, out.Login.Agent.ID
}

// CreateAgent creates an agent through the contract as the caller (an
// admin) and returns its id and a token for it.
func (c *Client) CreateAgent(t testing.TB, name, email, ext, role string) (id, token string) {
	t.Helper()
	var out struct{ CreateAgent struct{ ID string } }
	c.MustOp(t, "CreateAgent", map[string]any{"input": map[string]any{
		"name": name, "email": email, "extension": ext, "role": role, "password": "password-" + ext,
	}}, &out)
	token, _ = c.As("").Login(t, email, "password-"+ext)
	return out.CreateAgent.ID, token
}

var (
	contractOnce sync.Once
	contract     string
	contractErr  error
)

// ContractPath is where the client contract lives: the repository's
// api/operations.graphql.
func ContractPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "api", "operations.graphql")
}

// Contract returns the client contract's operations document.
func Contract(t testing.TB) string {
	t.Helper()
	contractOnce.Do(func() {
		b, err := os.ReadFile(ContractPath())
		contract, contractErr = string(b), err
	})
	if contractErr != nil {
		t.Fatalf("the client contract is required: %v", contractErr)
	}
	return contract
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Eventually polls cond until it holds or the timeout passes.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out: "+format, args...)
}
