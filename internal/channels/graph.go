package channels

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Meta's WhatsApp Cloud API and Messenger Platform share the Graph API: the
// same webhook handshake, the same X-Hub-Signature-256 scheme and the same
// error shape. The helpers below serve both adapters.

// GraphBaseURL is the Graph API's scheme and host.
const GraphBaseURL = "https://graph.facebook.com"

// DefaultGraphVersion is the Graph API version in request paths.
const DefaultGraphVersion = "v21.0"

// HubSignatureHeader carries the HMAC-SHA256 of the raw body.
const HubSignatureHeader = "X-Hub-Signature-256"

// HubSignature returns the X-Hub-Signature-256 value for body under secret.
func HubSignature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifyHubSignature checks X-Hub-Signature-256 against the raw body, in
// constant time.
func VerifyHubSignature(h http.Header, body []byte, secret string) error {
	v := strings.TrimSpace(h.Get(HubSignatureHeader))
	if v == "" {
		return ErrNoSignature
	}
	hexSig, ok := strings.CutPrefix(v, "sha256=")
	if !ok || secret == "" {
		return ErrBadSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return ErrBadSignature
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// HubHandshake answers Meta's webhook verification: the challenge, when
// hub.mode is subscribe and hub.verify_token is the account's.
func HubHandshake(q url.Values, verifyToken string) (string, bool) {
	if q.Get("hub.mode") != "subscribe" || verifyToken == "" {
		return "", false
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("hub.verify_token")), []byte(verifyToken)) != 1 {
		return "", false
	}
	return q.Get("hub.challenge"), true
}

// graphRetryable are Graph API error codes that mean "not now": throttling
// and temporary outages.
var graphRetryable = map[int]bool{
	1: true, 2: true, // unknown / temporary API error
	4: true, 17: true, 32: true, 613: true, 80007: true, // rate limits
	130429: true, // WhatsApp throughput limit
	131056: true, // WhatsApp pair rate limit
	131000: true, // WhatsApp: something went wrong
	131016: true, // WhatsApp service unavailable
	133004: true, // WhatsApp server temporarily unavailable
	1200:   true, // Messenger temporary send failure
}

// GraphError turns a Graph API error answer into a SendError. label names
// the provider in the reason the agent reads.
func GraphError(label string, status int, h http.Header, body []byte, now time.Time) *SendError {
	var e struct {
		Error struct {
			Message      string `json:"message"`
			Type         string `json:"type"`
			Code         int    `json:"code"`
			ErrorSubcode int    `json:"error_subcode"`
			ErrorData    struct {
				Details string `json:"details"`
			} `json:"error_data"`
			UserTitle string `json:"error_user_title"`
			UserMsg   string `json:"error_user_msg"`
		} `json:"error"`
	}
	_ = json.Unmarshal(body, &e)
	se := &SendError{Status: status, RetryAfter: ParseRetryAfter(h.Get("Retry-After"), now)}
	if e.Error.Code != 0 {
		se.Code = strconv.Itoa(e.Error.Code)
	}
	se.Retryable = status == http.StatusTooManyRequests || status >= 500 || graphRetryable[e.Error.Code]
	msg := strings.TrimSpace(e.Error.Message)
	if e.Error.UserMsg != "" && !strings.Contains(msg, e.Error.UserMsg) {
		msg = strings.TrimSpace(msg + " " + e.Error.UserMsg)
	}
	if d := strings.TrimSpace(e.Error.ErrorData.Details); d != "" && !strings.Contains(msg, d) {
		msg = strings.TrimSpace(msg + " (" + d + ")")
	}
	if msg == "" {
		msg = fmt.Sprintf("HTTP %d", status)
	}
	if se.Code != "" {
		se.Reason = fmt.Sprintf("%s error %s: %s", label, se.Code, msg)
	} else {
		se.Reason = fmt.Sprintf("%s error: %s", label, msg)
	}
	return se
}

// MaxAPIResponse bounds what is read of a provider's API answer.
const MaxAPIResponse = 1 << 20

// Call is one HTTP request to a provider API.
type Call struct {
	Method string
	URL    string
	Header http.Header
	// Body is sent as is; JSON sets Content-Type application/json and
	// marshals it, Form sends it form-encoded.
	JSON any
	Form url.Values
	// User and Password set basic auth.
	User, Password string
}

// Answer is a provider API's answer, read whole (up to MaxAPIResponse).
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// OK reports a 2xx answer.
func (a *Answer) OK() bool { return a.Status >= 200 && a.Status < 300 }

// APITimeout bounds one provider API call, so a hanging provider cannot
// hold a worker (or a lease) for long.
const APITimeout = 30 * time.Second

// Do makes the call. Errors are network failures only; any HTTP answer,
// error statuses included, is returned as an Answer.
func Do(ctx context.Context, client *http.Client, c Call) (*Answer, error) {
	ctx, cancel := context.WithTimeout(ctx, APITimeout)
	defer cancel()
	var body io.Reader
	ct := ""
	switch {
	case c.JSON != nil:
		b, err := json.Marshal(c.JSON)
		if err != nil {
			return nil, err
		}
		body, ct = bytes.NewReader(b), "application/json"
	case c.Form != nil:
		body, ct = strings.NewReader(c.Form.Encode()), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, c.Method, c.URL, body)
	if err != nil {
		return nil, err
	}
	for k, v := range c.Header {
		req.Header[k] = v
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	req.Header.Set("Accept", "application/json")
	if c.User != "" {
		req.SetBasicAuth(c.User, c.Password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxAPIResponse))
	if err != nil {
		return nil, err
	}
	return &Answer{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Get starts a download: the body is the caller's to close. A non-2xx
// answer is a MediaError (permanent for 4xx other than 408 and 429).
func Get(ctx context.Context, client *http.Client, rawURL string, header http.Header, user, password string) (*http.Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, &MediaError{Reason: "the media URL is not an http(s) URL", Permanent: true}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, &MediaError{Reason: "bad media URL", Permanent: true}
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, &MediaError{Reason: NetworkReason(err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		resp.Body.Close()
		perm := resp.StatusCode >= 400 && resp.StatusCode < 500 &&
			resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusRequestTimeout
		return nil, &MediaError{Reason: fmt.Sprintf("download answered HTTP %d", resp.StatusCode), Permanent: perm}
	}
	return resp, nil
}

// GraphApp is what the two Meta adapters (WhatsApp and Messenger) share: the
// Graph API version in their paths, the HTTP client and clock, the verify
// token handshake, the X-Hub-Signature-256 check and the plain 200 answer.
// Each adapter embeds it.
type GraphApp struct {
	// Version is the Graph API version in paths (default v21.0).
	Version string
	HTTP    *http.Client
	Now     func() time.Time
}

// NewGraphApp returns the shared part; version "" means DefaultGraphVersion.
func NewGraphApp(version string, client *http.Client) GraphApp {
	if version == "" {
		version = DefaultGraphVersion
	}
	return GraphApp{Version: version, HTTP: client, Now: time.Now}
}

// Handshake implements Handshaker: the GET verification with the account's
// verify token.
func (GraphApp) Handshake(q url.Values, acct *Account) (string, bool) {
	return HubHandshake(q, acct.Config.VerifyToken)
}

// Verify implements Provider: X-Hub-Signature-256 keyed with the app secret.
func (GraphApp) Verify(req SignedRequest, acct *Account) error {
	return VerifyHubSignature(req.Header, req.Body, acct.Config.AppSecret)
}

// Ack implements Provider: Meta wants a plain 200.
func (GraphApp) Ack(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }
