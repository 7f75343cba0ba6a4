package httpserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/parleyhq/parley/internal/apperr"
)

// withBodyLimit refuses a GraphQL request body longer than limit bytes with
// 413 and a BAD_USER_INPUT error, without reading it whole: at once when
// Content-Length says so, otherwise when byte limit+1 arrives. The body is
// read here, not by the POST transport, because the transport answers 200
// once it has started writing. Multipart uploads keep the multipart
// transport's own, larger limit; other methods (GET queries bounded by
// MaxHeaderBytes, websocket upgrades, OPTIONS) carry no body to bound.
func withBodyLimit(limit int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || isMultipart(r) {
			next.ServeHTTP(w, r)
			return
		}
		tooLarge := apperr.New(apperr.BadUserInput, "the request body is larger than %d bytes", limit)
		if r.ContentLength > limit {
			writeGraphQLError(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeGraphQLError(w, http.StatusRequestEntityTooLarge, tooLarge)
			} else {
				writeGraphQLError(w, http.StatusBadRequest, apperr.New(apperr.BadUserInput, "the request body could not be read"))
			}
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

func isMultipart(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "multipart/form-data"
}

// writeGraphQLError answers a request refused before it reached GraphQL with
// a GraphQL-style body, so that clients read its extensions.code as they
// read any other.
func writeGraphQLError(w http.ResponseWriter, status int, e *apperr.Error) {
	resp := graphql.Response{Errors: gqlerror.List{{
		Message:    e.Message,
		Extensions: map[string]any{"code": string(e.Code)},
	}}}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}
