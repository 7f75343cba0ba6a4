// Package storetest gives each test its own freshly migrated database, on
// SQLite and on PostgreSQL, so that the same suite runs on both and tests
// never share state.
//
// PostgreSQL comes from TEST_DATABASE_URL (default: the local server, user
// postgres, database test). When it is unreachable the PostgreSQL variant is
// skipped, unless PARLEY_REQUIRE_SERVICES=1, which turns that into a failure.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/store"
)

// DefaultPostgresURL is the local test server of the developer machines.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Backend names a database flavour a test can run on.
type Backend string

// The two backends.
const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// Backends lists both, in the order tests run them.
func Backends() []Backend { return []Backend{SQLite, Postgres} }

// RequireServices reports whether a missing service must fail the run.
func RequireServices() bool { return os.Getenv("PARLEY_REQUIRE_SERVICES") == "1" }

// Each runs fn as a subtest on every backend.
func Each(t *testing.T, fn func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(string(b), func(t *testing.T) { fn(t, b) })
	}
}

// Open returns a new, migrated, empty database on backend b, closed (and, for
// PostgreSQL, dropped) when the test ends.
func Open(t testing.TB, b Backend) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var (
		db  *store.DB
		err error
	)
	switch b {
	case SQLite:
		db, err = store.OpenSQLite(ctx, store.SQLiteDSN(filepath.Join(t.TempDir(), "test.db")))
	case Postgres:
		db, err = store.OpenPostgres(ctx, NewPostgresDatabase(t))
	default:
		t.Fatalf("unknown backend %q", b)
	}
	if err != nil {
		t.Fatalf("open %s: %v", b, err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", b, err)
	}
	return db
}

// PostgresURL is the server tests create their databases on.
func PostgresURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultPostgresURL
}

// NewPostgresDatabase creates an empty database for this test and returns
// its URL; it is dropped when the test ends. The test is skipped (or failed,
// with PARLEY_REQUIRE_SERVICES=1) when PostgreSQL is unreachable.
func NewPostgresDatabase(t testing.TB) string {
	t.Helper()
	base := PostgresURL()
	admin, err := sql.Open("postgres", base)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = admin.PingContext(ctx)
		cancel()
	}
	if err != nil {
		if RequireServices() {
			t.Fatalf("PostgreSQL required but unreachable at %s: %v", redacted(base), err)
		}
		t.Skipf("PostgreSQL unreachable (%v); set PARLEY_REQUIRE_SERVICES=1 to fail instead", err)
	}
	name := "parley_t_" + randomHex(8)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
