// Package widget serves the website live-chat widget: /widget.js, the
// script that a website embeds with an account's snippet, and /demo, a page
// that embeds it so that anyone can chat as a visitor right after
// `make run`. Both are files embedded in the binary; the widget itself talks
// to the visitor API (internal/livechat) like any other client.
package widget

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/ent"
)

//go:embed widget.js
var script []byte

//go:embed demo.html
var demoHTML string

var demoPage = template.Must(template.New("demo").Parse(demoHTML))

// The script compressed once (about a third of its size), and the ETags of
// both forms, which change whenever the embedded script does.
var (
	scriptGzip                 = gzipped(script)
	scriptETag, scriptGzipETag = func() (string, string) {
		sum := sha256.Sum256(script)
		tag := hex.EncodeToString(sum[:8])
		return `"` + tag + `"`, `"` + tag + `-gz"`
	}()
)

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// ScriptMaxAge is how long browsers and CDNs may keep /widget.js without
// asking again. Short, because the snippet's URL never changes: a new
// version reaches every website within minutes (then by ETag revalidation).
const ScriptMaxAge = 5 * time.Minute

// Accounts finds the live-chat account the demo page embeds when none is
// given (livechat.Service).
type Accounts interface {
	// FirstAccount returns the oldest LIVE_CHAT account, nil when none.
	FirstAccount(ctx context.Context) (*ent.ChannelAccount, error)
}

// Where the handlers are mounted (httpserver.Deps.Extra patterns). The
// script's path is in every snippet already pasted into a website
// (workspace.Service.Snippet): it never changes.
const (
	ScriptPattern = "GET /widget.js"
	DemoPattern   = "GET /demo"
)

// Script serves the widget's JavaScript.
func Script() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(ScriptMaxAge.Seconds())))
		h.Set("X-Content-Type-Options", "nosniff")
		// Websites with Cross-Origin-Embedder-Policy may load it too.
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		h.Add("Vary", "Accept-Encoding")
		body, etag := script, scriptETag
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			body, etag = scriptGzip, scriptGzipETag
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("ETag", etag)
		http.ServeContent(w, r, "widget.js", time.Time{}, bytes.NewReader(body))
	})
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(params, " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// demoCSP is the demo page's content security policy: about as strict as a
// careful website's, so the demo shows the widget works under one.
const demoCSP = "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data: blob: https:; " +
	"style-src 'self' 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type demoData struct {
	AccountID, AccountName string
	ScriptSrc, Snippet     string
	PublicURL              string
	PublicDemoURL          string
	RequestOrigin          string
	OtherOrigin            bool
}

// Demo serves a page that embeds the widget for ?account=ID, or for the
// first live-chat account, or explains how to create one.
func Demo(publicURL string, accounts Accounts, log *slog.Logger) http.Handler {
	publicURL = strings.TrimRight(publicURL, "/")
	publicHost := ""
	if u, err := url.Parse(publicURL); err == nil {
		publicHost = strings.ToLower(u.Host)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := demoData{ScriptSrc: "/widget.js", PublicURL: publicURL}
		if raw := r.URL.Query().Get("account"); raw != "" {
			if n, err := strconv.Atoi(raw); err != nil || n <= 0 {
				http.Error(w, "account must be a channel account id", http.StatusBadRequest)
				return
			}
			d.AccountID = raw
		} else if accounts != nil {
			a, err := accounts.FirstAccount(r.Context())
			if err != nil {
				log.Error("demo: find a live-chat account", "err", err)
				http.Error(w, "internal error", http.StatusInternalServerError)
				return
			}
			if a != nil {
				d.AccountID, d.AccountName = strconv.Itoa(a.ID), a.Name
			}
		}
		if d.AccountID != "" {
			d.Snippet = `<script src="` + publicURL + `/widget.js" data-parley-account="` + d.AccountID + `" async></script>`
			d.PublicDemoURL = publicURL + "/demo?account=" + d.AccountID
		}
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		d.RequestOrigin = scheme + "://" + r.Host
		d.OtherOrigin = publicHost != "" && !strings.EqualFold(r.Host, publicHost)

		var buf bytes.Buffer
		if err := demoPage.Execute(&buf, d); err != nil {
			log.Error("demo: render", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", demoCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		_, _ = w.Write(buf.Bytes())
	})
}
