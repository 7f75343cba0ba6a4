// Package playground serves the GraphQL playground (GraphiQL) at / from
// assets embedded in the binary, so that it works where the browser reaches
// nothing but Parley: the page, one script and one stylesheet built from the
// npm packages (build/, see its README), and the licences of the packages in
// them at /playground/licenses.txt. The built assets are committed under
// assets/: building or running Parley needs no Node.js.
//
// Queries and mutations go to the endpoint over HTTP with the headers of
// GraphiQL's headers editor ({"Authorization": "Bearer <token>"}), and
// subscriptions over graphql-ws to ws(s)://<host><endpoint>, with the same
// headers as the connection_init payload.
package playground

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"net/http"
	"regexp"
	"strings"
	"sync"
)

// The assets build/build.mjs writes.
var (
	//go:embed assets/playground.js
	scriptJS []byte
	//go:embed assets/playground.css
	styleCSS []byte
	//go:embed assets/THIRD_PARTY_LICENSES.txt
	licenses []byte
	//go:embed page.html
	pageHTML string
)

var page = template.Must(template.New("playground").Parse(pageHTML))

// Where the handlers are mounted. The script and stylesheet carry a hash of
// their content in their names, so that browsers may keep them for a year
// and a new build is fetched at once.
const (
	PagePattern   = "GET /{$}"
	AssetsPattern = "GET /playground/"
	LicensesPath  = "/playground/licenses.txt"
)

var (
	script       = newAsset("/playground/playground.%s.js", "text/javascript; charset=utf-8", scriptJS)
	style        = newAsset("/playground/playground.%s.css", "text/css; charset=utf-8", styleCSS)
	licensesFile = newAsset(LicensesPath, "text/plain; charset=utf-8", licenses)
)

// ScriptPath is the versioned path of the page's script.
func ScriptPath() string { return script.path }

// StylePath is the versioned path of the page's stylesheet.
func StylePath() string { return style.path }

// asset is one embedded file, with its gzipped form made on first use.
type asset struct {
	path, contentType, etag string
	body                    []byte
	gzipOnce                sync.Once
	gz                      []byte
}

// newAsset names body's content hash in path where path has "%s".
func newAsset(path, contentType string, body []byte) *asset {
	sum := sha256.Sum256(body)
	tag := hex.EncodeToString(sum[:6])
	return &asset{
		path:        strings.Replace(path, "%s", tag, 1),
		contentType: contentType,
		etag:        `"` + tag + `"`,
		body:        body,
	}
}

func (a *asset) gzipped() []byte {
	a.gzipOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(a.body)
		_ = zw.Close()
		a.gz = buf.Bytes()
	})
	return a.gz
}

// serve writes the asset, gzipped when the client accepts it.
func (a *asset) serve(w http.ResponseWriter, r *http.Request, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Add("Vary", "Accept-Encoding")
	body, etag := a.body, a.etag
	if acceptsGzip(r) {
		body, etag = a.gzipped(), a.etag[:len(a.etag)-1]+`-gz"`
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// Mux is where Mount registers the handlers (an *http.ServeMux).
type Mux interface {
	Handle(pattern string, handler http.Handler)
}

// Mount serves the page at / and its assets under /playground/, for the
// GraphQL endpoint at the path endpoint ("/graphql").
func Mount(mux Mux, endpoint string) {
	mux.Handle(PagePattern, Page(endpoint))
	mux.Handle(AssetsPattern, Assets())
}

// Assets serves the script, the stylesheet and the licences.
func Assets() http.Handler {
	const forever = "public, max-age=31536000, immutable"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case script.path:
			script.serve(w, r, forever)
		case style.path:
			style.serve(w, r, forever)
		case licensesFile.path:
			licensesFile.serve(w, r, "public, max-age=3600")
		default:
			http.NotFound(w, r)
		}
	})
}

// Page serves the playground's HTML. Its Content-Security-Policy lets it
// load and connect to this server only: scripts and stylesheets from 'self',
// fetches and websockets to the same host, and inline style elements only
// with the page's nonce (GraphiQL's dialogs add one).
func Page(endpoint string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nonce := newNonce()
		var buf bytes.Buffer
		err := page.Execute(&buf, map[string]string{
			"Endpoint": endpoint,
			"Script":   script.path,
			"Style":    style.path,
			"Nonce":    nonce,
		})
		if err != nil {
			http.Error(w, "the playground page failed", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", ContentSecurityPolicy(r.Host, nonce))
		_, _ = w.Write(buf.Bytes())
	})
}

// hostRE is what a Host header may hold to be named in the policy: a name
// or an address, with an optional port. Anything else is left to 'self'.
var hostRE = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:[0-9]{1,5})?$`)

// ContentSecurityPolicy is the page's policy for a request to host. The
// websocket sources are named as well as 'self', which browsers that predate
// CSP level 3 do not extend to ws: and wss:.
func ContentSecurityPolicy(host, nonce string) string {
	connect := "'self'"
	if hostRE.MatchString(host) {
		connect += " ws://" + host + " wss://" + host
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self' 'nonce-" + nonce + "'",
		"img-src 'self' data:",
		"font-src 'self' data:",
		"connect-src " + connect,
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

func newNonce() string {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
