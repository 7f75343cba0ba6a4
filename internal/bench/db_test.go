package bench

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"entgo.io/ent/dialect"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// sqlMeter wraps the server's ent driver to count the statements the
// service sends and, when asked, to record them for EXPLAIN. Counting is one
// atomic add per statement; recording is off unless a benchmark turns it on
// for one request.
type sqlMeter struct {
	dialect.Driver
	n         atomic.Int64
	recording atomic.Bool
	mu        sync.Mutex
	recorded  []statement
}

// statement is one recorded SQL statement with its arguments.
type statement struct {
	Query string
	Args  []any
}

func (m *sqlMeter) see(query string, args any) {
	m.n.Add(1)
	if !m.recording.Load() {
		return
	}
	a, _ := args.([]any)
	m.mu.Lock()
	m.recorded = append(m.recorded, statement{Query: query, Args: append([]any(nil), a...)})
	m.mu.Unlock()
}

func (m *sqlMeter) Exec(ctx context.Context, query string, args, v any) error {
	m.see(query, args)
	return m.Driver.Exec(ctx, query, args, v)
}

func (m *sqlMeter) Query(ctx context.Context, query string, args, v any) error {
	m.see(query, args)
	return m.Driver.Query(ctx, query, args, v)
}

func (m *sqlMeter) Tx(ctx context.Context) (dialect.Tx, error) {
	tx, err := m.Driver.Tx(ctx)
	if err != nil {
		return nil, err
	}
	return &meteredTx{Tx: tx, m: m}, nil
}

// record runs fn with recording on and returns the statements it sent.
func (m *sqlMeter) record(fn func()) []statement {
	m.mu.Lock()
	m.recorded = nil
	m.mu.Unlock()
	m.recording.Store(true)
	fn()
	m.recording.Store(false)
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recorded
}

type meteredTx struct {
	dialect.Tx
	m *sqlMeter
}

func (t *meteredTx) Exec(ctx context.Context, query string, args, v any) error {
	t.m.see(query, args)
	return t.Tx.Exec(ctx, query, args, v)
}

func (t *meteredTx) Query(ctx context.Context, query string, args, v any) error {
	t.m.see(query, args)
	return t.Tx.Query(ctx, query, args, v)
}

// QueryContext and ExecContext pass the raw statements some services send
// (the event log's counter, advisory locks) through the meter, as the
// drivers under it support them.
func (t *meteredTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	t.m.see(query, args)
	q, ok := t.Tx.(interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	})
	if !ok {
		return nil, fmt.Errorf("QueryContext is not supported by %T", t.Tx)
	}
	return q.QueryContext(ctx, query, args...)
}

func (t *meteredTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	t.m.see(query, args)
	e, ok := t.Tx.(interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	})
	if !ok {
		return nil, fmt.Errorf("ExecContext is not supported by %T", t.Tx)
	}
	return e.ExecContext(ctx, query, args...)
}

// rig is a running server with its instruments.
type rig struct {
	*apitest.Server
	// meter counts (and can record) the SQL statements of the server's
	// ent client.
	meter *sqlMeter
	// prefix is the server's Redis channel prefix (see countPublishes).
	prefix string
}

// newRig starts a server (PostgreSQL + Redis, no workers) whose ent client
// goes through an sqlMeter and whose Redis channels have a prefix of their
// own. Raw SQL (seeding, floors) uses s.App.DB.SQL, the same connection
// pool, and is not counted.
func newRig(b *testing.B) *rig {
	b.Helper()
	requireServices(b)
	db := storetest.Open(b, storetest.Postgres)
	m := &sqlMeter{Driver: entsql.OpenDB(db.Dialect, db.SQL)}
	metered := &store.DB{Client: ent.NewClient(ent.Driver(m)), SQL: db.SQL, Dialect: db.Dialect}
	prefix := "parley-bench-" + randomHex(6) + ":"
	s := startServer(b, func(o *apitest.Options) { o.DB, o.RedisPrefix = metered, prefix })
	describeServices(b, s)
	return &rig{Server: s, meter: m, prefix: prefix}
}

// describeServices records the versions and durability settings of the
// services the figures were measured on.
func describeServices(b *testing.B, s *apitest.Server) {
	b.Helper()
	var version, fsync, syncCommit, buffers string
	err := s.App.DB.SQL.QueryRow(`SELECT current_setting('server_version'), current_setting('fsync'),
		current_setting('synchronous_commit'), current_setting('shared_buffers')`).Scan(&version, &fsync, &syncCommit, &buffers)
	if err != nil {
		b.Fatal(err)
	}
	redisVersion := "?"
	if s.App.Redis != nil {
		if info, err := s.App.Redis.Info(context.Background(), "server").Result(); err == nil {
			for _, l := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), "redis_version:"); ok {
					redisVersion = v
				}
			}
		}
	}
	results.environment(fmt.Sprintf("PostgreSQL %s (fsync %s, synchronous_commit %s, shared_buffers %s), Redis %s, all on this machine",
		version, fsync, syncCommit, buffers, redisVersion))
}

// reserveIDs takes n consecutive ids from table's identity sequence (so they
// stay inside the table's global-id range) and returns the first.
func reserveIDs(ctx context.Context, db *sql.DB, table string, n int) (int64, error) {
	var first int64
	if err := db.QueryRowContext(ctx, `SELECT nextval(pg_get_serial_sequence($1, 'id'))`, table).Scan(&first); err != nil {
		return 0, fmt.Errorf("reserve %s ids: %w", table, err)
	}
	if n > 1 {
		if _, err := db.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence($1, 'id'), $2)`, table, first+int64(n)-1); err != nil {
			return 0, fmt.Errorf("reserve %s ids: %w", table, err)
		}
	}
	return first, nil
}

func mustReserve(b *testing.B, db *sql.DB, table string, n int) int64 {
	b.Helper()
	id, err := reserveIDs(context.Background(), db, table, n)
	if err != nil {
		b.Fatal(err)
	}
	return id
}

// execAll runs statements in order on one connection, failing the
// benchmark on the first error. For bulk loads (bulk true) the session gets
// room to sort in memory and, where the role may (a superuser), skips
// foreign-key triggers: the seeded rows are consistent by construction, and
// checking a million references one by one would dominate the setup. It
// returns whether the triggers were skipped.
func execAll(b *testing.B, db *sql.DB, bulk bool, stmts []seedStmt) (skippedFKs bool) {
	b.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if bulk {
		if _, err := conn.ExecContext(ctx, `SET work_mem = '256MB'`); err != nil {
			b.Fatal(err)
		}
		_, err := conn.ExecContext(ctx, `SET session_replication_role = replica`)
		skippedFKs = err == nil
		defer func() {
			// The connection goes back to the pool the server uses.
			_, _ = conn.ExecContext(ctx, `RESET session_replication_role`)
			_, _ = conn.ExecContext(ctx, `RESET work_mem`)
		}()
	}
	for _, s := range stmts {
		start := time.Now()
		if _, err := conn.ExecContext(ctx, s.sql, s.args...); err != nil {
			b.Fatalf("seed (%s): %v\n%s", s.what, err, s.sql)
		}
		if d := time.Since(start); d > 2*time.Second {
			b.Logf("seed: %s took %s", s.what, d.Round(10*time.Millisecond))
		}
	}
	return skippedFKs
}

type seedStmt struct {
	what string
	sql  string
	args []any
}

// explain runs EXPLAIN ANALYZE on a recorded statement and returns the plan.
func explain(ctx context.Context, db *sql.DB, st statement) (string, error) {
	rows, err := db.QueryContext(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+st.Query, st.Args...)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return "", err
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n"), rows.Err()
}

var mainTable = regexp.MustCompile(`(?i)(?:^\s*UPDATE|\bFROM|\bINTO)\s+"?([a-z_]+)"?`)

// statementMix summarises statements as "VERB table ×count", in order of
// first appearance: enough to see what a path sends without the SQL text.
func statementMix(stmts []statement) string {
	var keys []string
	count := map[string]int{}
	for _, st := range stmts {
		q := strings.TrimSpace(st.Query)
		verb, _, _ := strings.Cut(q, " ")
		table := "?"
		if m := mainTable.FindStringSubmatch(q); m != nil {
			table = m[1]
		}
		k := strings.ToUpper(verb) + " " + table
		if count[k] == 0 {
			keys = append(keys, k)
		}
		count[k]++
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s ×%d", k, count[k])
	}
	return strings.Join(parts, ", ")
}

// mark returns how many statements have been recorded so far.
func (m *sqlMeter) mark() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recorded)
}
