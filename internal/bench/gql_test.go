package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
)

// gqlClient posts the client contract's operations over HTTP, exactly as
// clients do (the whole document with an operationName), from any
// goroutine: unlike apitest.Client it reports errors instead of failing the
// benchmark, so it can run in worker goroutines.
type gqlClient struct {
	url  string
	doc  string
	http *http.Client
}

// newGQLClient keeps up to conns idle connections, so that concurrent
// workers reuse connections instead of opening one per request.
func newGQLClient(s *apitest.Server, doc string, conns int) *gqlClient {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, IdleConnTimeout: time.Minute}
	return &gqlClient{url: s.GraphQLURL(), doc: doc, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// gqlResult is a decoded response: data, and the first error's code.
type gqlResult struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// Code is the first error's extensions.code ("" without errors).
func (r *gqlResult) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	if c == "" {
		return "ERROR: " + r.Errors[0].Message
	}
	return c
}

// op sends operation name with vars as the holder of token.
func (c *gqlClient) op(ctx context.Context, token, name string, vars map[string]any) (*gqlResult, error) {
	body, err := json.Marshal(map[string]any{"query": c.doc, "operationName": name, "variables": vars})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &gqlResult{}
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, fmt.Errorf("%s: status %d, not GraphQL JSON: %.200s", name, resp.StatusCode, raw)
	}
	return r, nil
}

func (c *gqlClient) close() { c.http.CloseIdleConnections() }
