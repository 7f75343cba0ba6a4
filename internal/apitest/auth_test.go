package apitest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/store/storetest"
)

func TestLoginMeLogout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		c := s.Client()

		for _, tc := range []struct{ name, email, password string }{
			{"wrong password", apitest.AdminEmail, "not-the-password"},
			{"unknown email", "nobody@test.parley", apitest.AdminPassword},
		} {
			r := c.Op(t, "Login", map[string]any{"email": tc.email, "password": tc.password})
			if r.Code() != "UNAUTHENTICATED" || strings.Contains(string(r.Data), "token") {
				t.Fatalf("%s: want UNAUTHENTICATED and no token, got %s", tc.name, r.Raw)
			}
		}

		// Emails are case-insensitive.
		token, id := c.Login(t, strings.ToUpper(apitest.AdminEmail), apitest.AdminPassword)
		if !strings.HasPrefix(token, "plt_") || id == "" {
			t.Fatalf("login gave token %q, agent %q", token, id)
		}
		var me struct {
			Me struct {
				ID, Email, Role, Status string
				ChatOptions             struct{ NotificationSound string }
			}
		}
		c.As(token).MustOp(t, "Me", nil, &me)
		if me.Me.ID != id || me.Me.Email != apitest.AdminEmail || me.Me.Role != "SYSTEM_OWNER" || me.Me.Status != "OFFLINE" {
			t.Fatalf("me = %+v", me.Me)
		}
		if me.Me.ChatOptions.NotificationSound != "default" {
			t.Fatalf("default chat options not set: %+v", me.Me.ChatOptions)
		}

		// The token is stored only as a digest.
		n, err := s.App.DB.Client.AuthToken.Query().Count(context.Background())
		if err != nil || n != 1 {
			t.Fatalf("%d tokens stored (err %v), want 1", n, err)
		}
		tok, _ := s.App.DB.Client.AuthToken.Query().Only(context.Background())
		if strings.Contains(string(tok.TokenHash), token) {
			t.Fatal("token stored in clear")
		}

		r := c.As(token).Query(t, "mutation { logout }", nil)
		if len(r.Errors) > 0 {
			t.Fatalf("logout: %s", r.Raw)
		}
		if r := c.As(token).Op(t, "Me", nil); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("Me after logout: %s", r.Raw)
		}
	})
}

func TestAuthFailures(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		c := s.Client()
		admin, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
		_, agentTok := c.As(admin).CreateAgent(t, "Ana", "ana@test.parley", "201", "AGENT")

		// An expired token: issued by a service whose clock is two months
		// behind, with a 30-day lifetime.
		old := auth.NewService(s.App.DB.Client, nil, 30*24*time.Hour,
			auth.WithHashCost(4), auth.WithClock(func() time.Time { return time.Now().Add(-60 * 24 * time.Hour) }))
		expired, _, err := old.IssueAgentToken(context.Background(), mustAgentID(t, s, "ana@test.parley"))
		if err != nil {
			t.Fatal(err)
		}

		cases := []struct {
			name, token, op, code string
			vars                  map[string]any
		}{
			{"no token", "", "Me", "UNAUTHENTICATED", nil},
			{"malformed token", "garbage", "Me", "UNAUTHENTICATED", nil},
			{"unknown token", "plt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Me", "UNAUTHENTICATED", nil},
			{"expired token", expired, "Me", "UNAUTHENTICATED", nil},
			{"no token, admin op", "", "CreateQueue", "UNAUTHENTICATED", map[string]any{"input": map[string]any{"name": "Q", "strategy": "HUNT"}}},
			{"agent creates agent", agentTok, "CreateAgent", "FORBIDDEN", map[string]any{"input": map[string]any{
				"name": "X", "email": "x@test.parley", "extension": "999", "role": "ADMIN", "password": "password-999"}}},
			{"agent creates queue", agentTok, "CreateQueue", "FORBIDDEN", map[string]any{"input": map[string]any{"name": "Q", "strategy": "HUNT"}}},
			{"agent updates queue", agentTok, "UpdateQueue", "FORBIDDEN", map[string]any{"id": "1", "input": map[string]any{"name": "Q"}}},
			{"agent creates channel account", agentTok, "CreateChannelAccount", "FORBIDDEN", map[string]any{"input": map[string]any{
				"channel": "LIVE_CHAT", "name": "Web", "queueID": "1", "liveChat": map[string]any{}}}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := c.As(tc.token).Op(t, tc.op, tc.vars)
				if r.Code() != tc.code {
					t.Fatalf("want %s, got %s", tc.code, r.Raw)
				}
			})
		}
		// Nothing was created by the refused calls.
		n, _ := s.App.DB.Client.Queue.Query().Count(context.Background())
		if n != 0 {
			t.Fatalf("%d queues exist after refused calls", n)
		}
		// A bad token does not stop a public operation.
		if tok, _ := c.As("garbage").Login(t, "ana@test.parley", "password-201"); tok == "" {
			t.Fatal("login with a stale Authorization header failed")
		}
	})
}

func TestLoginRateLimited(t *testing.T) {
	for _, redis := range []bool{false, true} {
		name := map[bool]string{false: "in-process", true: "redis"}[redis]
		t.Run(name, func(t *testing.T) {
			s := apitest.Start(t, apitest.Options{Redis: redis})
			c := s.Client()
			for i := 0; i < auth.LoginPerEmail; i++ {
				r := c.Op(t, "Login", map[string]any{"email": apitest.AdminEmail, "password": "wrong-password"})
				if r.Code() != "UNAUTHENTICATED" {
					t.Fatalf("attempt %d: %s", i+1, r.Raw)
				}
			}
			// Now even the right password is refused for this email...
			r := c.Op(t, "Login", map[string]any{"email": apitest.AdminEmail, "password": apitest.AdminPassword})
			if r.Code() != "RATE_LIMITED" {
				t.Fatalf("attempt past the limit: %s", r.Raw)
			}
			// ...while the per-IP limit still leaves room for another email.
			r = c.Op(t, "Login", map[string]any{"email": "other@test.parley", "password": "whatever-pw"})
			if r.Code() != "UNAUTHENTICATED" {
				t.Fatalf("another email: %s", r.Raw)
			}
			// The per-IP limit holds across emails.
			for i := 0; i < auth.LoginPerIP; i++ {
				r = c.Op(t, "Login", map[string]any{"email": "spray@test.parley", "password": "whatever-pw"})
			}
			if r.Code() != "RATE_LIMITED" {
				t.Fatalf("per-IP limit not applied: %s", r.Raw)
			}
		})
	}
}

func mustAgentID(t *testing.T, s *apitest.Server, email string) int {
	t.Helper()
	a, err := s.App.DB.Client.Agent.Query().All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range a {
		if x.Email == email {
			return x.ID
		}
	}
	t.Fatalf("no agent %s", email)
	return 0
}

// TestExpiredTokensArePurged: the server deletes expired tokens when its
// workers start, and keeps valid ones.
func TestExpiredTokensArePurged(t *testing.T) {
	s := apitest.Start(t, apitest.Options{NoWorkers: true})
	ctx := context.Background()
	c := s.Client()
	valid, _ := c.Login(t, apitest.AdminEmail, apitest.AdminPassword)
	old := auth.NewService(s.App.DB.Client, nil, time.Hour,
		auth.WithHashCost(4), auth.WithClock(func() time.Time { return time.Now().Add(-2 * time.Hour) }))
	if _, _, err := old.IssueAgentToken(ctx, mustAgentID(t, s, apitest.AdminEmail)); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.App.DB.Client.AuthToken.Query().Count(ctx); n != 2 {
		t.Fatalf("%d tokens before the purge, want 2", n)
	}
	s.App.Start()
	apitest.Eventually(t, 5*time.Second, func() bool {
		n, err := s.App.DB.Client.AuthToken.Query().Count(ctx)
		return err == nil && n == 1
	}, "the expired token was not purged")
	c.As(valid).MustOp(t, "Me", nil, nil)
}
