package apitest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProbesAndMetrics(t *testing.T) {
	for _, redis := range []bool{false, true} {
		t.Run(map[bool]string{false: "in-process", true: "redis"}[redis], func(t *testing.T) {
			s := apitest.Start(t, apitest.Options{Redis: redis})
			if code, body := get(t, s.URL+"/healthz"); code != 200 || !strings.Contains(body, "ok") {
				t.Fatalf("healthz %d %s", code, body)
			}
			code, body := get(t, s.URL+"/readyz")
			if code != 200 || !strings.Contains(body, `"database":"ok"`) {
				t.Fatalf("readyz %d %s", code, body)
			}
			if redis != strings.Contains(body, `"redis":"ok"`) {
				t.Fatalf("readyz redis check: %s", body)
			}
			s.Client().Op(t, "Me", nil) // one GraphQL error
			code, body = get(t, s.URL+"/metrics")
			for _, want := range []string{
				`parley_http_requests_total{code="200",route="/graphql"}`,
				`parley_graphql_errors_total{code="UNAUTHENTICATED"} 1`,
				`parley_graphql_operations_total{outcome="error",type="query"} 1`,
				"parley_active_subscriptions", "parley_websocket_connections", "go_goroutines",
			} {
				if !strings.Contains(body, want) {
					t.Fatalf("metrics lack %q:\n%s", want, body)
				}
			}
			// The playground is served at /.
			if code, body := get(t, s.URL+"/"); code != 200 || !strings.Contains(body, "/graphql") {
				t.Fatalf("playground %d", code)
			}
		})
	}
}

func TestReadyzReportsDatabaseDown(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	s.App.DB.SQL.Close()
	if code, body := get(t, s.URL+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, `"database":"unavailable"`) {
		t.Fatalf("readyz with the database closed: %d %s", code, body)
	}
	if code, _ := get(t, s.URL+"/healthz"); code != 200 {
		t.Fatalf("healthz %d: the process is alive", code)
	}
}

func TestWebsocketAuth(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	token, _ := s.Client().Login(t, apitest.AdminEmail, apitest.AdminPassword)
	for _, proto := range []string{apitest.TransportWS, apitest.LegacyWS} {
		t.Run(proto, func(t *testing.T) {
			for _, tc := range []struct{ name, token string }{{"no token", ""}, {"bad token", "plt_nope"}} {
				ws := s.DialWS(t, proto)
				ws.Init(t, tc.token)
				for {
					m, err := ws.Read(5 * time.Second)
					if err != nil {
						break // closed by the server: good
					}
					if m.Type == "connection_ack" {
						t.Fatalf("%s: connection acknowledged", tc.name)
					}
					if m.Type == "connection_error" {
						break
					}
				}
			}
			ws := s.DialWS(t, proto)
			ws.Init(t, token)
			m, err := ws.Read(5 * time.Second)
			if err != nil || m.Type != "connection_ack" {
				t.Fatalf("valid token: %+v %v", m, err)
			}
		})
	}
}

func TestGracefulShutdownEndsWebsockets(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	token, _ := s.Client().Login(t, apitest.AdminEmail, apitest.AdminPassword)
	ws := s.DialWS(t, apitest.TransportWS)
	ws.Init(t, token)
	if m, err := ws.Read(5 * time.Second); err != nil || m.Type != "connection_ack" {
		t.Fatalf("ack: %+v %v", m, err)
	}
	stopped := make(chan error, 1)
	start := time.Now()
	go func() { stopped <- s.Stop() }()
	_, err := ws.Read(10 * time.Second)
	if err == nil {
		t.Fatal("websocket still open after shutdown")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("websocket not closed by the server: %v", err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not finish")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown waited %v for an idle websocket", d)
	}
}

func TestDemoSeed(t *testing.T) {
	s := apitest.Start(t, apitest.Options{Env: map[string]string{"PARLEY_DEMO": "true"}})
	c := s.Client()
	tok, _ := c.Login(t, "owner@demo.parley.chat", "parley-demo")
	r := c.As(tok).Query(t, `{ queues { name strategy members { priority agent { name extension } } } channelAccounts { channel snippet } }`, nil)
	body := string(r.Raw)
	for _, want := range []string{`"Sales"`, `"Support"`, `"RING_ALL"`, `"Ana García"`, `"LIVE_CHAT"`, "widget.js"} {
		if !strings.Contains(body, want) {
			t.Fatalf("demo lacks %s: %s", want, body)
		}
	}
}
