// Package download serves attachments over HTTP: GET (and HEAD)
// /attachments/{id}/{name}. The attachments service decides who may
// download; this package only speaks HTTP.
//
// A request is authorized by a signed link's query (exp, sig), or by the
// bearer token the server's middleware already resolved: an agent or the
// visitor who may see the conversation, or the uploader of an upload not
// yet sent. Tokens are not accepted in the query string: URLs end up in
// logs, browser history and Referer headers, and the signed link that
// Attachment.url returns serves browsers that cannot send headers. Every
// refusal is the same 404 as for an attachment that does not exist. The
// {name} segment is only for the browser's benefit and is not checked.
package download

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/attachments"
)

// Pattern is the route to mount the handler on (httpserver.Deps.Extra).
const Pattern = "GET /attachments/{id}/{name}"

// Response headers that keep a stored file from acting as a page of ours:
// no type sniffing; a sandbox (a unique origin, no scripts, no forms, no
// plugins) and no fetches of anything for whatever a browser renders. PDF
// gets a sandbox that allows scripts, because Safari's viewer is reported
// not to render PDFs without them (Chromium does not apply the policy to its
// PDF viewer); the file still runs in an opaque origin, and never as HTML,
// thanks to nosniff and the exact Content-Type.
const (
	cspDefault = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
	cspPDF     = "sandbox allow-scripts"
	// cacheControl lets the caller's own browser keep the file for an
	// hour; shared caches never store it.
	cacheControl = "private, max-age=3600"
)

// Handler returns the download handler.
func Handler(svc *attachments.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil || id <= 0 {
			notFound(w)
			return
		}
		q := r.URL.Query()
		a, err := svc.Authorize(r.Context(), id, q.Get("exp"), q.Get("sig"))
		if apperr.Is(err, apperr.NotFound) {
			notFound(w)
			return
		}
		if err != nil {
			log.Error("authorize download", "attachment", id, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		f, err := svc.Open(r.Context(), a)
		if errors.Is(err, attachments.ErrNotExist) {
			log.Error("attachment file missing", "attachment", id, "sha256", a.Sha256)
			notFound(w)
			return
		}
		if err != nil {
			log.Error("open attachment", "attachment", id, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		defer f.Close()

		h := w.Header()
		h.Set("Content-Type", ServedType(a.ContentType))
		disp, csp := "attachment", cspDefault
		if attachments.IsInline(a.ContentType) {
			disp = "inline"
		}
		if a.ContentType == attachments.KindPDF.MIME {
			csp = cspPDF
		}
		h.Set("Content-Disposition", ContentDisposition(disp, a.Filename))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", cacheControl)
		h.Add("Vary", "Authorization")
		// Content-addressed: the hash is a perfect validator.
		h.Set("ETag", `"`+a.Sha256+`"`)

		if rs, ok := f.(io.ReadSeeker); ok {
			// Content-Length, Range, If-None-Match, If-Modified-Since, HEAD.
			http.ServeContent(w, r, "", a.CreatedAt, rs)
			return
		}
		h.Set("Content-Length", strconv.FormatInt(a.Size, 10))
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = io.Copy(w, f)
		}
	})
}

// notFound answers every refusal exactly as a missing route does.
func notFound(w http.ResponseWriter) {
	http.Error(w, "404 page not found", http.StatusNotFound)
}

// ServedType is the Content-Type header for a stored content type: text is
// served as UTF-8, which detection made sure it is.
func ServedType(contentType string) string {
	if contentType == attachments.KindTXT.MIME {
		return contentType + "; charset=utf-8"
	}
	return contentType
}

// ContentDisposition formats the header per RFC 6266: an ASCII fallback
// filename for old clients and the exact name as an RFC 8187 filename*.
func ContentDisposition(disposition, name string) string {
	var fallback, exact strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '%' {
			fallback.WriteByte(c)
		} else if c < 0x80 || name[i]&0xc0 == 0xc0 {
			// one "_" per non-ASCII character (at its lead byte), or per
			// quote, backslash or percent sign
			fallback.WriteByte('_')
		}
		if isAttrChar(c) {
			exact.WriteByte(c)
		} else {
			fmt.Fprintf(&exact, "%%%02X", c)
		}
	}
	return disposition + `; filename="` + fallback.String() + `"; filename*=UTF-8''` + exact.String()
}

// isAttrChar is RFC 8187's attr-char: what filename* carries unescaped.
func isAttrChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}
