package widget_test

import (
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/apitest"
)

func get(t *testing.T, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestWidgetScriptServed(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	src, err := os.ReadFile("widget.js")
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, s.URL+"/widget.js", http.Header{"Accept-Encoding": {"identity"}})
	if resp.StatusCode != http.StatusOK || body != string(src) || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("GET /widget.js: %d, %d bytes (want the embedded %d)", resp.StatusCode, len(body), len(src))
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/javascript; charset=utf-8",
		"Cache-Control":          "public, max-age=300",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	if again, _ := get(t, s.URL+"/widget.js", http.Header{"If-None-Match": {etag}, "Accept-Encoding": {"identity"}}); again.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation: %d, want 304", again.StatusCode)
	}
	// Browsers get it compressed.
	zresp, zbody := get(t, s.URL+"/widget.js", http.Header{"Accept-Encoding": {"gzip, deflate, br"}})
	if zresp.Header.Get("Content-Encoding") != "gzip" || zresp.Header.Get("ETag") == etag || len(zbody) > len(src)/2 {
		t.Fatalf("compressed: %q, ETag %q, %d bytes", zresp.Header.Get("Content-Encoding"), zresp.Header.Get("ETag"), len(zbody))
	}
	zr, err := gzip.NewReader(strings.NewReader(zbody))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := io.ReadAll(zr); err != nil || string(plain) != string(src) {
		t.Fatalf("the compressed script is not the script: %v", err)
	}
	// User content is only ever set as text.
	if strings.Contains(string(src), "innerHTML") || strings.Contains(string(src), "insertAdjacentHTML") {
		t.Fatal("widget.js writes HTML")
	}
}

var scriptTag = regexp.MustCompile(`^<script src="([^"]+)" data-parley-account="([^"]+)" async></script>$`)

func TestWidgetSnippetLoadsTheScript(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	r := w.Admin.C.Query(t, `mutation($input: CreateChannelAccountInput!) { createChannelAccount(input: $input) { id snippet } }`,
		map[string]any{"input": map[string]any{"channel": "LIVE_CHAT", "name": "Shop", "queueID": w.QueueID,
			"liveChat": map[string]any{"allowedOrigins": []string{"https://shop.example.com"}}}})
	if len(r.Errors) > 0 {
		t.Fatal(string(r.Raw))
	}
	var out struct{ CreateChannelAccount struct{ ID, Snippet string } }
	r.Decode(t, &out)
	m := scriptTag.FindStringSubmatch(out.CreateChannelAccount.Snippet)
	if m == nil || m[2] != out.CreateChannelAccount.ID || m[1] != s.URL+"/widget.js" {
		t.Fatalf("snippet %q for account %s", out.CreateChannelAccount.Snippet, out.CreateChannelAccount.ID)
	}
	// What the website's page loads: a script, from another origin.
	resp, body := get(t, m[1], http.Header{"Origin": {"https://shop.example.com"}, "Sec-Fetch-Dest": {"script"}})
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") ||
		!strings.Contains(body, "data-parley-account") {
		t.Fatalf("the snippet's script: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestWidgetDemoPage(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})

	// No live-chat account yet: the page says how to make one.
	resp, body := get(t, s.URL+"/demo", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "No live-chat account yet") || strings.Contains(body, "<script") {
		t.Fatalf("demo without accounts: %d\n%s", resp.StatusCode, body)
	}

	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	second := w.Account(t, "LIVE_CHAT", map[string]any{"queueID": w.QueueID})
	for _, tc := range []struct {
		name, query, account string
	}{
		{"the first live-chat account", "", w.LiveChat},
		{"the account asked for", "?account=" + second, second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, s.URL+"/demo"+tc.query, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Fatalf("Content-Type %q", ct)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Fatalf("Content-Security-Policy %q", csp)
			}
			if !strings.Contains(body, `<script src="/widget.js" data-parley-account="`+tc.account+`" async></script>`) {
				t.Fatalf("the page does not embed account %s:\n%s", tc.account, body)
			}
			if !strings.Contains(body, "&lt;script src=&#34;"+s.URL+"/widget.js&#34; data-parley-account=&#34;"+tc.account+"&#34;") {
				t.Fatalf("the page does not show the snippet:\n%s", body)
			}
		})
	}
	if resp, _ := get(t, s.URL+"/demo?account=%22%3E%3Cscript%3E", nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a malformed account: %d", resp.StatusCode)
	}
}
