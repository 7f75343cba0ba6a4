package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Upload sends the contract's UploadAttachment as a browser or app does,
// per the GraphQL multipart request spec: a multipart/form-data POST whose
// parts are "operations" (the operation with the file variable null),
// "map" (which part fills which variable) and the file part "0".
func (c *Client) Upload(t testing.TB, filename, contentType string, data []byte) *Response {
	t.Helper()
	ops, _ := json.Marshal(map[string]any{
		"query": Contract(t), "operationName": "UploadAttachment",
		"variables": map[string]any{"file": nil},
	})
	const boundary = "parley-test-boundary-7d1f0c"
	var b bytes.Buffer
	part := func(header, body string) {
		fmt.Fprintf(&b, "--%s\r\n%s\r\n\r\n%s\r\n", boundary, header, body)
	}
	part(`Content-Disposition: form-data; name="operations"`, string(ops))
	part(`Content-Disposition: form-data; name="map"`, `{"0":["variables.file"]}`)
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(filename)
	fmt.Fprintf(&b, "--%s\r\nContent-Disposition: form-data; name=\"0\"; filename=\"%s\"\r\n", boundary, quoted)
	if contentType != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", contentType)
	}
	b.WriteString("\r\n")
	b.Write(data)
	fmt.Fprintf(&b, "\r\n--%s--\r\n", boundary)

	return c.send(t, "multipart/form-data; boundary="+boundary, &b)
}

// Get fetches a URL of the server (a download) with the client's token, if
// any, and returns the response with its body read.
func (c *Client) Get(t testing.TB, url string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}
