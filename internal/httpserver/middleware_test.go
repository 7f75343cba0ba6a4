package httpserver

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/channels/provider"
	"github.com/parleyhq/parley/internal/channels/setup"
	"github.com/parleyhq/parley/internal/config"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name, peer, xff, want string
	}{
		{"direct client, header ignored", "203.0.113.9:5000", "1.2.3.4", "203.0.113.9"},
		{"trusted proxy", "10.0.0.2:5000", "198.51.100.7", "198.51.100.7"},
		{"spoofed left entries ignored", "10.0.0.2:5000", "1.2.3.4, 198.51.100.7", "198.51.100.7"},
		{"chain of trusted proxies", "10.0.0.2:5000", "198.51.100.7, 10.0.0.3", "198.51.100.7"},
		{"trusted proxy without header", "10.0.0.2:5000", "", "10.0.0.2"},
		{"garbage header", "10.0.0.2:5000", "nonsense", "10.0.0.2"},
		{"ipv6 peer", "[2001:db8::1]:443", "", "2001:db8::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := clientIP(r, trusted); got != tc.want {
				t.Fatalf("clientIP = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRouteLabelsAreBounded(t *testing.T) {
	for path, want := range map[string]string{
		"/graphql": "/graphql", "/webhooks/whatsapp/123": "/webhooks/whatsapp",
		"/webhooks/evil/1": "/webhooks/other", "/random/123": "other", "/": "/",
		"/attachments/42/a.pdf": "/attachments", "/widget.js": "/widget.js",
	} {
		if got := route(path); got != want {
			t.Errorf("route(%q) = %q, want %q", path, got, want)
		}
	}
}

// TestRouteLabelsOfEveryWebhook checks that each webhook route the
// application mounts is counted under its provider's label, never as
// "/webhooks/other".
func TestRouteLabelsOfEveryWebhook(t *testing.T) {
	svc, err := setup.New(nil, nil, nil, nil, config.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for pattern := range svc.Routes() {
		_, path, _ := strings.Cut(pattern, " ")
		name := strings.TrimSuffix(strings.TrimPrefix(path, provider.WebhookPrefix), "/{id}")
		f, ok := provider.Named(name)
		if !ok {
			t.Fatalf("%s is no provider's webhook", pattern)
		}
		if got := route(f.WebhookPath(42)); got != f.RouteLabel() || got == "/webhooks/other" {
			t.Errorf("route(%q) = %q, want %q", f.WebhookPath(42), got, f.RouteLabel())
		}
		seen[f.Name] = true
	}
	for _, f := range provider.All() {
		if f.Name != "" && !seen[f.Name] {
			t.Errorf("%s has a webhook path but no mounted route", f.Name)
		}
	}
}
