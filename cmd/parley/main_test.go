package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestMigrateAndCreateAgent runs the binary's commands on both databases,
// configured the way an operator does: through the environment.
func TestMigrateAndCreateAgent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		dir := t.TempDir()
		t.Setenv("PARLEY_DATA_DIR", dir)
		t.Setenv("PARLEY_LOG_LEVEL", "error")
		t.Setenv("DATABASE_URL", "")
		t.Setenv("REDIS_URL", "")
		if b == storetest.Postgres {
			t.Setenv("DATABASE_URL", storetest.NewPostgresDatabase(t))
		}
		var out bytes.Buffer
		if err := run([]string{"migrate"}, strings.NewReader(""), &out); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		if !strings.Contains(out.String(), "up to date") {
			t.Fatalf("migrate said %q", out.String())
		}
		out.Reset()
		err := run([]string{"create-agent", "-name", "Root", "-email", "root@x.example", "-extension", "1", "-role", "system_owner"},
			strings.NewReader("a-long-password\n"), &out)
		if err != nil {
			t.Fatalf("create-agent: %v", err)
		}
		if !strings.Contains(out.String(), "root@x.example") || !strings.Contains(out.String(), "SYSTEM_OWNER") {
			t.Fatalf("create-agent said %q", out.String())
		}
		// The same email again is refused, and says why.
		err = run([]string{"create-agent", "-name", "Root", "-email", "root@x.example", "-extension", "2"},
			strings.NewReader("a-long-password\n"), &out)
		if err == nil || !strings.Contains(err.Error(), "exists") {
			t.Fatalf("duplicate create-agent: %v", err)
		}
		// The agent is really in the configured database.
		var db *store.DB
		if b == storetest.Postgres {
			db, err = store.Open(context.Background(), os.Getenv("DATABASE_URL"), "")
		} else {
			db, err = store.Open(context.Background(), "", filepath.Join(dir, "parley.db"))
		}
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if n, _ := db.Client.Agent.Query().Count(context.Background()); n != 1 {
			t.Fatalf("%d agents in the database, want 1", n)
		}
	})
}

func TestUnknownCommand(t *testing.T) {
	if err := run([]string{"frobnicate"}, strings.NewReader(""), &bytes.Buffer{}); err == nil {
		t.Fatal("unknown command accepted")
	}
}
