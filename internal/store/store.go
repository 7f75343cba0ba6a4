// Package store opens Parley's database: PostgreSQL through lib/pq when a
// DATABASE_URL is set, otherwise an SQLite file through the pure-Go modernc
// driver, so that a newcomer needs nothing installed. Both are wrapped in an
// ent client and migrated on start.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	_ "github.com/lib/pq"  // PostgreSQL driver "postgres"
	_ "modernc.org/sqlite" // pure-Go SQLite driver "sqlite"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/migrate"
)

// DB is an open database: the ent client for the rules, the raw handle for
// health checks and hand-written SQL, and which dialect it speaks.
type DB struct {
	Client  *ent.Client
	SQL     *sql.DB
	Dialect string
}

// Close closes the database.
func (d *DB) Close() error { return d.Client.Close() }

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.SQL.PingContext(ctx) }

// SQLiteDSN is the DSN that holds up under concurrent writers: foreign keys
// on, WAL, a busy timeout, and immediate transactions (deferred ones answer
// SQLITE_BUSY on upgrade even with a busy timeout).
func SQLiteDSN(path string) string {
	return "file:" + path + "?_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// Open opens PostgreSQL when databaseURL is set, else the SQLite file at
// sqlitePath (its directory is created).
func Open(ctx context.Context, databaseURL, sqlitePath string) (*DB, error) {
	if databaseURL != "" {
		return OpenPostgres(ctx, databaseURL)
	}
	if err := os.MkdirAll(filepath.Dir(sqlitePath), 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	return OpenSQLite(ctx, SQLiteDSN(sqlitePath))
}

// OpenPostgres opens a PostgreSQL database.
func OpenPostgres(ctx context.Context, url string) (*DB, error) {
	db, err := sql.Open("postgres", url)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(20)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return wrap(ctx, db, dialect.Postgres)
}

// OpenSQLite opens an SQLite database from a modernc DSN.
func OpenSQLite(ctx context.Context, dsn string) (*DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	// SQLite has one writer at a time; a small pool keeps readers
	// concurrent under WAL while immediate transactions queue writers.
	db.SetMaxOpenConns(4)
	return wrap(ctx, db, dialect.SQLite)
}

func wrap(ctx context.Context, db *sql.DB, dia string) (*DB, error) {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", dia, redact(err))
	}
	drv := entsql.OpenDB(dia, db)
	return &DB{Client: ent.NewClient(ent.Driver(drv)), SQL: db, Dialect: dia}, nil
}

// Migrate brings the schema up to date. It is additive: it never drops
// columns or indexes, so an older binary's data survives an upgrade.
func (d *DB) Migrate(ctx context.Context) error {
	if err := d.Client.Schema.Create(ctx, migrate.WithForeignKeys(true)); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// redact keeps passwords in a connection error out of logs.
func redact(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "password="); i >= 0 {
		return fmt.Errorf("%s", msg[:i]+"password=***")
	}
	return err
}
