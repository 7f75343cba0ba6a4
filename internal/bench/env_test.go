package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/store/storetest"
	"github.com/parleyhq/parley/internal/workspace"
)

// startServer runs a real Parley server on a fresh PostgreSQL database and
// real Redis pub/sub, with the routing worker off (nothing times out behind
// the benchmark's back). apitest skips the benchmark when PostgreSQL or
// Redis does not answer, or fails it with PARLEY_REQUIRE_SERVICES=1.
func startServer(b *testing.B, opts ...func(*apitest.Options)) *apitest.Server {
	b.Helper()
	o := apitest.Options{Backend: storetest.Postgres, Redis: true, NoWorkers: true}
	for _, f := range opts {
		f(&o)
	}
	return apitest.Start(b, o)
}

// requireServices skips the benchmark, with a message that the table
// repeats, when PostgreSQL or Redis does not answer, or fails it with
// PARLEY_REQUIRE_SERVICES=1.
func requireServices(b *testing.B) {
	b.Helper()
	var problems []string
	db, err := sql.Open("postgres", storetest.PostgresURL())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err != nil {
		where := "(unparsable URL)"
		if u, perr := url.Parse(storetest.PostgresURL()); perr == nil {
			where = u.Redacted()
		}
		problems = append(problems, fmt.Sprintf("PostgreSQL at %s: %v", where, err))
	}
	opt, err := redis.ParseURL(apitest.RedisURL())
	if err == nil {
		opt.MaxRetries = -1
		c := redis.NewClient(opt)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = c.Ping(ctx).Err()
		cancel()
		c.Close()
	}
	if err != nil {
		problems = append(problems, fmt.Sprintf("Redis at %s: %v", apitest.RedisURL(), err))
	}
	if len(problems) == 0 {
		return
	}
	msg := "needs PostgreSQL and Redis: " + strings.Join(problems, "; ")
	if storetest.RequireServices() {
		b.Fatal(msg)
	}
	results.skip(b.Name(), msg+" (set PARLEY_REQUIRE_SERVICES=1 to fail instead)")
	b.Skip(msg)
}

// redisClient is a client of the test Redis of its own (not the server's),
// closed when the benchmark ends.
func redisClient(b *testing.B) *redis.Client {
	b.Helper()
	opt, err := redis.ParseURL(apitest.RequireRedis(b))
	if err != nil {
		b.Fatal(err)
	}
	c := redis.NewClient(opt)
	b.Cleanup(func() { _ = c.Close() })
	return c
}

// addAgents creates n agents through the workspace service (as the
// create-agent command does) and issues each a token without a login, so
// that the login rate limit does not get in the way. They are AVAILABLE.
func addAgents(b *testing.B, s *apitest.Server, prefix string, first, n int) []benchAgent {
	b.Helper()
	ctx := context.Background()
	out := make([]benchAgent, 0, n)
	for i := range n {
		ext := first + i
		a, err := s.App.Workspace.CreateAgentUnchecked(ctx, workspace.NewAgent{
			Name: fmt.Sprintf("%s %d", prefix, ext), Email: fmt.Sprintf("%s%d@bench.parley", prefix, ext),
			Extension: fmt.Sprint(ext), Role: schematype.RoleAgent, Password: "bench-password",
		})
		if err != nil {
			b.Fatalf("create agent: %v", err)
		}
		if _, err := s.App.DB.SQL.ExecContext(ctx, `UPDATE agents SET status = 'AVAILABLE' WHERE id = $1`, a.ID); err != nil {
			b.Fatal(err)
		}
		tok, _, err := s.App.Auth.IssueAgentToken(ctx, a.ID)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, benchAgent{ID: a.ID, Token: tok})
	}
	return out
}

// benchAgent is an agent the benchmark acts as.
type benchAgent struct {
	ID    int
	Token string
}

// ctxAs is a context carrying the agent as the caller, for service calls.
func ctxAs(ctx context.Context, id int) context.Context {
	return auth.WithPrincipal(ctx, auth.Principal{AgentID: id, Role: schematype.RoleAgent})
}

// raiseFileLimit lifts the soft open-file limit to the hard one and returns
// the limit in force.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, err
		}
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	return lim.Cur, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// waitUntil polls cond until it holds or the timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// activeSubscriptions reads the server's parley_active_subscriptions gauge
// from /metrics, as Prometheus would.
func activeSubscriptions(b *testing.B, s *apitest.Server) int {
	b.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(s.URL + "/metrics")
	if err != nil {
		b.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "parley_active_subscriptions "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				b.Fatalf("parley_active_subscriptions: %v", err)
			}
			return int(f)
		}
	}
	return 0
}

// countPublishes runs fn and returns how many messages the server published
// on its Redis channels meanwhile, counted by a pattern subscription to its
// prefix (other users of the same Redis do not count). It waits until the
// count has been still for 100ms.
func countPublishes(b *testing.B, s *rig, fn func()) int64 {
	b.Helper()
	ctx := context.Background()
	ps := redisClient(b).PSubscribe(ctx, s.prefix+"*")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		b.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := ps.ReceiveMessage(ctx); err != nil {
				return
			}
			n.Add(1)
		}
	}()
	fn()
	last, still := n.Load(), time.Now()
	for time.Since(still) < 100*time.Millisecond {
		time.Sleep(10 * time.Millisecond)
		if cur := n.Load(); cur != last {
			last, still = cur, time.Now()
		}
	}
	ps.Close()
	<-done
	return last
}
