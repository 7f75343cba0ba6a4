package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// commandEnv configures the commands the way an operator does, through the
// environment, for backend b, and returns how to open the same database.
func commandEnv(t *testing.T, b storetest.Backend) (open func() *store.DB) {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("PARLEY_DATA_DIR", dir)
	t.Setenv("PARLEY_LOG_LEVEL", "error")
	t.Setenv("DATABASE_URL", "")
	t.Setenv("REDIS_URL", "")
	if b == storetest.Postgres {
		t.Setenv("DATABASE_URL", storetest.NewPostgresDatabase(t))
	}
	return func() *store.DB {
		t.Helper()
		db, err := store.Open(context.Background(), os.Getenv("DATABASE_URL"), filepath.Join(dir, "parley.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
}

// TestMigrateAndCreateAgent runs the binary's commands on both databases.
func TestMigrateAndCreateAgent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		open := commandEnv(t, b)
		var out bytes.Buffer
		if err := run(context.Background(), []string{"migrate"}, strings.NewReader(""), &out); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		if !strings.Contains(out.String(), "up to date") {
			t.Fatalf("migrate said %q", out.String())
		}
		out.Reset()
		err := run(context.Background(), []string{"create-agent", "-name", "Root", "-email", "root@x.example", "-extension", "1", "-role", "system_owner"},
			strings.NewReader("a-long-password\n"), &out)
		if err != nil {
			t.Fatalf("create-agent: %v", err)
		}
		if !strings.Contains(out.String(), "root@x.example") || !strings.Contains(out.String(), "SYSTEM_OWNER") {
			t.Fatalf("create-agent said %q", out.String())
		}
		// The same email again is refused, and says why.
		err = run(context.Background(), []string{"create-agent", "-name", "Root", "-email", "root@x.example", "-extension", "2"},
			strings.NewReader("a-long-password\n"), &out)
		if err == nil || !strings.Contains(err.Error(), "exists") {
			t.Fatalf("duplicate create-agent: %v", err)
		}
		// The agent is really in the configured database.
		if n, _ := open().Client.Agent.Query().Count(context.Background()); n != 1 {
			t.Fatalf("%d agents in the database, want 1", n)
		}
	})
}

func newKey(t *testing.T) (string, secrets.Key) {
	t.Helper()
	raw := make([]byte, secrets.KeySize)
	_, _ = rand.Read(raw)
	s := hex.EncodeToString(raw)
	k, err := secrets.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// TestReencryptSecrets: after a key rotation, `parley reencrypt-secrets`
// with the old key configured reseals every account (one sealed with the
// old key, one stored in plaintext before encryption) with the new key;
// without the old key it refuses and changes nothing; run again it has
// nothing to do; afterwards the new key alone opens everything.
func TestReencryptSecrets(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		ctx := context.Background()
		open := commandEnv(t, b)
		oldHex, oldKey := newKey(t)
		newHex, newKey := newKey(t)
		t.Setenv("PARLEY_SECRET_KEY", oldHex)
		if err := run(ctx, []string{"migrate"}, strings.NewReader(""), io.Discard); err != nil {
			t.Fatal(err)
		}
		db := open()
		oldRing, err := secrets.NewRing(oldKey)
		if err != nil {
			t.Fatal(err)
		}
		plain := map[string]schematype.ChannelConfig{
			"sealed": {PhoneNumberID: "1065", AccessToken: "EAAG-token", AppSecret: "meta-secret", VerifyToken: "verify-me"},
			"legacy": {AccountSID: "AC1", AuthToken: "twilio-token", FromNumber: "+14155550100"},
		}
		ids := map[string]int{}
		for name, cfg := range plain {
			ch := schematype.ChannelWhatsApp
			if name == "legacy" {
				ch = schematype.ChannelSMS
			} else if err := oldRing.SealAll(cfg.Secrets()...); err != nil {
				t.Fatal(err)
			}
			a, err := db.Client.ChannelAccount.Create().SetChannel(ch).SetName(name).SetConfig(cfg).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ids[name] = a.ID
		}
		raw := func(name string) string {
			t.Helper()
			var s string
			q := fmt.Sprintf("SELECT config FROM channel_accounts WHERE id = %d", ids[name])
			if err := db.SQL.QueryRowContext(ctx, q).Scan(&s); err != nil {
				t.Fatal(err)
			}
			return s
		}
		before := raw("sealed") + raw("legacy")

		// The new key alone cannot open the old key's row: refused, named,
		// and nothing is half done.
		t.Setenv("PARLEY_SECRET_KEY", newHex)
		err = run(ctx, []string{"reencrypt-secrets"}, strings.NewReader(""), io.Discard)
		if err == nil || !strings.Contains(err.Error(), oldKey.ID()) || !strings.Contains(err.Error(), "PARLEY_SECRET_KEY_OLD") {
			t.Fatalf("reencrypt without the old key: %v", err)
		}
		if raw("sealed")+raw("legacy") != before {
			t.Fatal("a refused reencrypt-secrets changed rows")
		}

		t.Setenv("PARLEY_SECRET_KEY_OLD", oldHex)
		var out bytes.Buffer
		if err := run(ctx, []string{"reencrypt-secrets"}, strings.NewReader(""), &out); err != nil {
			t.Fatalf("reencrypt-secrets: %v", err)
		}
		if !strings.Contains(out.String(), "2 of 2") || !strings.Contains(out.String(), newKey.ID()) {
			t.Fatalf("reencrypt-secrets said %q", out.String())
		}
		newRing, err := secrets.NewRing(newKey)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range plain {
			row := raw(name)
			var got schematype.ChannelConfig
			if err := json.Unmarshal([]byte(row), &got); err != nil {
				t.Fatal(err)
			}
			for i, f := range got.Secrets() {
				clear := *want.Secrets()[i]
				if clear == "" {
					continue
				}
				if strings.Contains(row, clear) || !strings.HasPrefix(*f, "v1:"+newKey.ID()+":") {
					t.Fatalf("%s: not sealed with the new key: field %d of %s", name, i, row)
				}
			}
			if err := newRing.OpenAll(got.Secrets()...); err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s: the new key alone does not open it back: %v", name, err)
			}
		}

		out.Reset()
		t.Setenv("PARLEY_SECRET_KEY_OLD", "")
		if err := run(ctx, []string{"reencrypt-secrets"}, strings.NewReader(""), &out); err != nil || !strings.Contains(out.String(), "0 of 2") {
			t.Fatalf("second reencrypt-secrets: %q %v", out.String(), err)
		}
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestMetricsAddr: with PARLEY_METRICS_ADDR set, `parley serve` answers
// /metrics on that address and 404 on the main one, which serves the rest;
// a cancelled context (SIGTERM) stops both.
func TestMetricsAddr(t *testing.T) {
	commandEnv(t, storetest.SQLite)
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	t.Setenv("PARLEY_ADDR", addr)
	t.Setenv("PARLEY_METRICS_ADDR", metricsAddr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, strings.NewReader(""), io.Discard) }()

	get := func(u string) int {
		resp, err := http.Get(u)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(60 * time.Second)
	for get("http://"+addr+"/healthz") != 200 || get("http://"+metricsAddr+"/metrics") == 0 {
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the server did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, tc := range []struct {
		url  string
		want int
	}{
		{"http://" + metricsAddr + "/metrics", 200},
		{"http://" + addr + "/metrics", 404},
		{"http://" + metricsAddr + "/graphql", 404},
		{"http://" + metricsAddr + "/healthz", 404},
	} {
		if got := get(tc.url); got != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.url, got, tc.want)
		}
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "# TYPE") {
		t.Fatalf("/metrics is not Prometheus text: %.200s", body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if get("http://"+metricsAddr+"/metrics") != 0 || get("http://"+addr+"/healthz") != 0 {
		t.Fatal("a listener is still open after shutdown")
	}
}

func TestUnknownCommand(t *testing.T) {
	if err := run(context.Background(), []string{"frobnicate"}, strings.NewReader(""), &bytes.Buffer{}); err == nil {
		t.Fatal("unknown command accepted")
	}
}
