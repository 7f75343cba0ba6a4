// Package twilio is the Twilio Programmable Messaging (SMS/MMS) adapter:
// the X-Twilio-Signature check over the public URL and the sorted POST
// parameters, inbound message and status callback webhooks, media download
// with the account's credentials, and the Messages API.
package twilio

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/channels/provider"
)

// BaseURL is Twilio's API scheme and host.
const BaseURL = "https://api.twilio.com"

// MaxBody is the Messages API's body limit, in characters.
const MaxBody = 1600

// MaxMedia is how many MediaUrl one message takes.
const MaxMedia = 10

// SignatureHeader carries Twilio's request signature.
const SignatureHeader = "X-Twilio-Signature"

// EmptyTwiML tells Twilio to do nothing more.
const EmptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// Provider is the Twilio adapter.
type Provider struct {
	HTTP *http.Client
	Now  func() time.Time
}

// New returns the adapter.
func New(client *http.Client) *Provider { return &Provider{HTTP: client, Now: time.Now} }

// Facts implements channels.Provider.
func (*Provider) Facts() provider.Facts { return provider.Twilio }

// Signature computes X-Twilio-Signature: base64 of HMAC-SHA1 keyed with the
// auth token over the full URL followed by each POST parameter's name and
// value, sorted by name.
func Signature(authToken, fullURL string, params url.Values) string {
	m := hmac.New(sha1.New, []byte(authToken))
	m.Write([]byte(fullURL))
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vals := append([]string(nil), params[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			m.Write([]byte(k))
			m.Write([]byte(v))
		}
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// urlVariants lists the URL as requested, and with the default port added
// or removed: Twilio signs the URL as configured, and a console URL may or
// may not spell out :443.
func urlVariants(raw string) []string {
	out := []string{raw}
	u, err := url.Parse(raw)
	if err != nil {
		return out
	}
	def := map[string]string{"https": "443", "http": "80"}[u.Scheme]
	if def == "" {
		return out
	}
	host, port, err := net.SplitHostPort(u.Host)
	v := *u
	switch {
	case err == nil && port == def:
		v.Host = host
	case err != nil:
		v.Host = net.JoinHostPort(u.Host, def)
	default:
		return out
	}
	return append(out, v.String())
}

// Verify implements channels.Provider.
func (*Provider) Verify(req channels.SignedRequest, acct *channels.Account) error {
	sig := strings.TrimSpace(req.Header.Get(SignatureHeader))
	if sig == "" {
		return channels.ErrNoSignature
	}
	params, err := url.ParseQuery(string(req.Body))
	if err != nil {
		return channels.ErrMalformed
	}
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || acct.Config.AuthToken == "" {
		return channels.ErrBadSignature
	}
	for _, u := range urlVariants(req.URL) {
		want, _ := base64.StdEncoding.DecodeString(Signature(acct.Config.AuthToken, u, params))
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return channels.ErrBadSignature
}

// Ack implements channels.Provider: an empty TwiML document.
func (*Provider) Ack(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(EmptyTwiML))
}

// Fetch implements channels.Provider. Twilio media URLs redirect to the
// file; the account's credentials go only to Twilio's own API host (or the
// account's apiBaseURL), never to the redirect target or a foreign host.
func (p *Provider) Fetch(ctx context.Context, acct *channels.Account, ref channels.MediaRef) (*channels.Download, error) {
	user, pass := "", ""
	if u, err := url.Parse(ref.URL); err == nil && trustedHost(u.Host, acct.Config.APIBaseURL) {
		user, pass = acct.Config.AccountSID, acct.Config.AuthToken
	}
	resp, err := channels.Get(ctx, p.HTTP, ref.URL, nil, user, pass)
	if err != nil {
		return nil, err
	}
	ct := ref.ContentType
	if ct == "" {
		ct = resp.Header.Get("Content-Type")
	}
	return &channels.Download{Body: resp.Body, ContentType: ct}, nil
}

func trustedHost(host, apiBase string) bool {
	if strings.EqualFold(host, "api.twilio.com") {
		return true
	}
	if apiBase == "" {
		return false
	}
	b, err := url.Parse(apiBase)
	return err == nil && strings.EqualFold(b.Host, host)
}

// Split implements channels.Provider: the body (cut at MaxBody) and up to
// ten files go in one call; longer texts and more files take more calls.
func (*Provider) Split(out channels.Outgoing) []channels.Part {
	texts := channels.SplitText(out.Body, MaxBody)
	media := out.Media
	var parts []channels.Part
	for i := 0; i < len(texts) || len(media) > 0; i++ {
		var p channels.Part
		if i < len(texts) {
			p.Text = texts[i]
		}
		n := min(len(media), MaxMedia)
		p.Media, media = media[:n], media[n:]
		parts = append(parts, p)
	}
	return parts
}

// Send implements channels.Provider: POST
// /2010-04-01/Accounts/{AccountSid}/Messages.json with basic auth.
func (p *Provider) Send(ctx context.Context, acct *channels.Account, to string, part channels.Part) (string, error) {
	form := url.Values{"To": {to}, "From": {acct.Config.FromNumber}}
	if part.Text != "" {
		form.Set("Body", part.Text)
	}
	for _, m := range part.Media {
		form.Add("MediaUrl", m.URL)
	}
	if acct.WebhookURL != "" {
		form.Set("StatusCallback", acct.WebhookURL)
	}
	a, err := channels.Do(ctx, p.HTTP, channels.Call{
		Method: http.MethodPost,
		URL: channels.Endpoint(acct.Config.APIBaseURL, BaseURL,
			"/2010-04-01/Accounts/"+url.PathEscape(acct.Config.AccountSID)+"/Messages.json"),
		Form: form, User: acct.Config.AccountSID, Password: acct.Config.AuthToken,
	})
	if err != nil {
		return "", err
	}
	if !a.OK() {
		return "", apiError(a, p.Now())
	}
	var ok struct {
		SID string `json:"sid"`
	}
	_ = json.Unmarshal(a.Body, &ok)
	return ok.SID, nil
}

// apiError reads a Twilio REST error: {code, message, more_info, status}.
func apiError(a *channels.Answer, now time.Time) *channels.SendError {
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(a.Body, &e)
	se := &channels.SendError{Status: a.Status, RetryAfter: channels.ParseRetryAfter(a.Header.Get("Retry-After"), now)}
	if e.Code != 0 {
		se.Code = fmt.Sprint(e.Code)
	}
	se.Retryable = a.Status == http.StatusTooManyRequests || a.Status >= 500 || e.Code == 20429
	msg := strings.TrimSpace(e.Message)
	if msg == "" {
		msg = fmt.Sprintf("HTTP %d", a.Status)
	}
	if se.Code != "" {
		se.Reason = fmt.Sprintf("Twilio error %s: %s", se.Code, msg)
	} else {
		se.Reason = "Twilio error: " + msg
	}
	return se
}
