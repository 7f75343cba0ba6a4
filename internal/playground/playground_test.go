package playground_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/playground"
)

func server(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	playground.Mount(mux, "/graphql")
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	// A transport of its own, so that Go does not ask for gzip by itself.
	res, err := (&http.Transport{DisableCompression: true}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

var (
	// Any absolute or scheme-relative URL.
	absoluteURL = regexp.MustCompile(`(?i)(\b[a-z][a-z0-9+.-]*:)?//[^\s"'<>)]+`)
	// The values of src and href attributes.
	srcHref = regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*"([^"]*)"`)
	nonceRE = regexp.MustCompile(`'nonce-([^']+)'`)
)

// TestPageIsSelfContained: the page names no URL outside the server, so
// nothing it loads can come from anywhere else; its script and stylesheet
// are served from this package.
func TestPageIsSelfContained(t *testing.T) {
	s := server(t)
	res, html := get(t, s.URL+"/", nil)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if m := absoluteURL.FindAllString(html, -1); len(m) > 0 {
		t.Fatalf("the page names URLs outside the server: %q\n%s", m, html)
	}
	refs := srcHref.FindAllStringSubmatch(html, -1)
	if len(refs) < 2 {
		t.Fatalf("the page references %d assets, want its script and stylesheet:\n%s", len(refs), html)
	}
	for _, ref := range refs {
		u := ref[1]
		if u == "data:," {
			continue // the empty favicon, which stops a request for /favicon.ico
		}
		if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") {
			t.Fatalf("the page references %q, not a path on the server", u)
		}
		if r, _ := get(t, s.URL+u, nil); r.StatusCode != http.StatusOK {
			t.Fatalf("the page's %s answers %d", u, r.StatusCode)
		}
	}
	for _, want := range []string{`src="` + playground.ScriptPath() + `"`, `href="` + playground.StylePath() + `"`, `data-endpoint="/graphql"`} {
		if !strings.Contains(html, want) {
			t.Fatalf("the page lacks %s:\n%s", want, html)
		}
	}
	if strings.Contains(html, "<script>") || strings.Contains(html, " style=") {
		t.Fatalf("the page has inline script or style, which its policy refuses:\n%s", html)
	}
}

// TestStylesheetLoadsNothingOutside: a url() or @import in the stylesheet
// would be fetched by the page (fonts, say); none may leave the server.
func TestStylesheetLoadsNothingOutside(t *testing.T) {
	s := server(t)
	_, css := get(t, s.URL+playground.StylePath(), nil)
	if strings.Contains(css, "@import") {
		t.Fatal("the stylesheet imports another")
	}
	for _, m := range regexp.MustCompile(`url\(\s*['"]?([^'")]*)`).FindAllStringSubmatch(css, -1) {
		if u := m[1]; !strings.HasPrefix(u, "data:") && !strings.HasPrefix(u, "#") {
			t.Fatalf("the stylesheet loads %q", u)
		}
	}
}

func TestPagePolicy(t *testing.T) {
	s := server(t)
	res, html := get(t, s.URL+"/", nil)
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{
		"default-src 'none'", "script-src 'self'", "base-uri 'none'", "frame-ancestors 'none'",
		"connect-src 'self' ws://" + strings.TrimPrefix(s.URL, "http://") + " wss://",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") || strings.Contains(csp, "*") || strings.Contains(csp, "http") {
		t.Errorf("Content-Security-Policy %q allows more than the server", csp)
	}
	m := nonceRE.FindStringSubmatch(csp)
	if m == nil || !strings.Contains(html, `nonce="`+m[1]+`"`) {
		t.Fatalf("the stylesheet link does not carry the policy's nonce: %q\n%s", csp, html)
	}
	res2, _ := get(t, s.URL+"/", nil)
	if m2 := nonceRE.FindStringSubmatch(res2.Header.Get("Content-Security-Policy")); m2 == nil || m2[1] == m[1] {
		t.Fatal("two pages share a nonce")
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("the page's Cache-Control %q: a new build must reach the browser", cc)
	}
}

func TestPolicyHost(t *testing.T) {
	tests := []struct {
		host, want string
	}{
		{"parley.example.com", "connect-src 'self' ws://parley.example.com wss://parley.example.com;"},
		{"127.0.0.1:8080", "connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080;"},
		{"[::1]:8080", "connect-src 'self' ws://[::1]:8080 wss://[::1]:8080;"},
		{"evil.example; script-src *", "connect-src 'self';"},
		{"a b", "connect-src 'self';"},
		{"", "connect-src 'self';"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			if got := playground.ContentSecurityPolicy(tt.host, "n"); !strings.Contains(got, tt.want) {
				t.Fatalf("policy for %q = %q, want %q in it", tt.host, got, tt.want)
			}
		})
	}
}

func TestAssets(t *testing.T) {
	s := server(t)
	tests := []struct {
		path, contentType, cache, contains string
	}{
		{playground.ScriptPath(), "text/javascript; charset=utf-8", "public, max-age=31536000, immutable", "createRoot"},
		{playground.StylePath(), "text/css; charset=utf-8", "public, max-age=31536000, immutable", ".graphiql-container"},
		{playground.LicensesPath, "text/plain; charset=utf-8", "public, max-age=3600", "graphiql@"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res, body := get(t, s.URL+tt.path, nil)
			if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != tt.contentType ||
				res.Header.Get("Cache-Control") != tt.cache || res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Fatalf("GET %s = %d, headers %v", tt.path, res.StatusCode, res.Header)
			}
			if !strings.Contains(body, tt.contains) {
				t.Fatalf("GET %s lacks %q", tt.path, tt.contains)
			}
			etag := res.Header.Get("ETag")
			if r, _ := get(t, s.URL+tt.path, map[string]string{"If-None-Match": etag}); etag == "" || r.StatusCode != http.StatusNotModified {
				t.Fatalf("revalidating with ETag %q answers %d", etag, r.StatusCode)
			}

			gz, zbody := get(t, s.URL+tt.path, map[string]string{"Accept-Encoding": "br, gzip"})
			if gz.Header.Get("Content-Encoding") != "gzip" || gz.Header.Get("ETag") == etag || len(zbody) >= len(body) {
				t.Fatalf("gzip: encoding %q, ETag %q (plain %q), %d bytes of %d",
					gz.Header.Get("Content-Encoding"), gz.Header.Get("ETag"), etag, len(zbody), len(body))
			}
			zr, err := gzip.NewReader(strings.NewReader(zbody))
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil || string(plain) != body {
				t.Fatalf("the gzipped body is not the asset (%v)", err)
			}
		})
	}
	for _, p := range []string{"/playground/", "/playground/playground.000000000000.js", "/playground/playground.js"} {
		if res, _ := get(t, s.URL+p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404", p, res.StatusCode)
		}
	}
}

// TestLicenses: every package in the bundle has its licence in the file,
// React's and GraphiQL's among them.
func TestLicenses(t *testing.T) {
	s := server(t)
	_, text := get(t, s.URL+playground.LicensesPath, nil)
	for _, want := range []string{"react@", "react-dom@", "graphiql@", "@graphiql/react@", "@graphiql/toolkit@", "graphql@", "graphql-ws@", "codemirror@", "MIT License"} {
		if !strings.Contains(text, "\n"+want) && !strings.Contains(text, " "+want) {
			t.Errorf("the licences lack %q", want)
		}
	}
}
