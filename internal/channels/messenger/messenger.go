// Package messenger is the Facebook Messenger Platform adapter: webhook
// handshake and X-Hub-Signature-256 check, the page webhook payload
// (messages, attachments, postbacks, delivery and read watermarks, echoes
// ignored), attachment download, the profile API for a new sender's name,
// and the Send API.
package messenger

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/channels/provider"
)

// MaxText is the Send API's text limit.
const MaxText = 2000

// Provider is the Messenger adapter.
type Provider struct {
	channels.GraphApp
}

// New returns the adapter; version "" means channels.DefaultGraphVersion.
func New(version string, client *http.Client) *Provider {
	return &Provider{GraphApp: channels.NewGraphApp(version, client)}
}

// Facts implements channels.Provider.
func (*Provider) Facts() provider.Facts { return provider.Messenger }

func (p *Provider) endpoint(acct *channels.Account, path string, q url.Values) string {
	q.Set("access_token", acct.Config.PageAccessToken)
	return channels.Endpoint(acct.Config.APIBaseURL, channels.GraphBaseURL, "/"+p.Version+path) + "?" + q.Encode()
}

// Fetch implements channels.Provider: attachment URLs are public CDN URLs.
func (p *Provider) Fetch(ctx context.Context, _ *channels.Account, ref channels.MediaRef) (*channels.Download, error) {
	resp, err := channels.Get(ctx, p.HTTP, ref.URL, nil, "", "")
	if err != nil {
		return nil, err
	}
	return &channels.Download{Body: resp.Body, ContentType: resp.Header.Get("Content-Type"), Filename: filenameOf(ref.URL)}, nil
}

// filenameOf takes the last path segment of a CDN URL as a file name.
func filenameOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	seg := u.Path[strings.LastIndex(u.Path, "/")+1:]
	if strings.Contains(seg, ".") {
		return seg
	}
	return ""
}

// ProfileName implements channels.Profiler: GET /{PSID}?fields=first_name,last_name.
func (p *Provider) ProfileName(ctx context.Context, acct *channels.Account, psid string) (string, error) {
	a, err := channels.Do(ctx, p.HTTP, channels.Call{
		Method: http.MethodGet,
		URL:    p.endpoint(acct, "/"+url.PathEscape(psid), url.Values{"fields": {"first_name,last_name"}}),
	})
	if err != nil {
		return "", err
	}
	if !a.OK() {
		return "", channels.GraphError(provider.Messenger.Label, a.Status, a.Header, a.Body, p.Now())
	}
	var prof struct {
		FirstName string `json:"first_name"`
		LastName  string `json:"last_name"`
	}
	if err := json.Unmarshal(a.Body, &prof); err != nil {
		return "", err
	}
	return strings.TrimSpace(prof.FirstName + " " + prof.LastName), nil
}

// attachmentType is the Send API's attachment type for a file.
func attachmentType(contentType string) string {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	switch {
	case strings.HasPrefix(ct, "image/"):
		return "image"
	case strings.HasPrefix(ct, "video/"):
		return "video"
	case strings.HasPrefix(ct, "audio/"):
		return "audio"
	}
	return "file"
}

// Split implements channels.Provider: a message is a text or one
// attachment, so the text goes first and each file after it.
func (*Provider) Split(out channels.Outgoing) []channels.Part {
	var parts []channels.Part
	for _, t := range channels.SplitText(out.Body, MaxText) {
		parts = append(parts, channels.Part{Text: t, Tag: out.Tag})
	}
	for _, m := range out.Media {
		parts = append(parts, channels.Part{Media: []channels.OutMedia{m}, Tag: out.Tag})
	}
	return parts
}

// Send implements channels.Provider: POST /{version}/me/messages with the
// page token, messaging_type RESPONSE, or MESSAGE_TAG with the part's tag
// (HUMAN_AGENT) outside the standard window.
func (p *Provider) Send(ctx context.Context, acct *channels.Account, to string, part channels.Part) (string, error) {
	var msg map[string]any
	if len(part.Media) == 0 {
		msg = map[string]any{"text": part.Text}
	} else {
		m := part.Media[0]
		msg = map[string]any{"attachment": map[string]any{
			"type":    attachmentType(m.ContentType),
			"payload": map[string]any{"url": m.URL, "is_reusable": false},
		}}
	}
	body := map[string]any{
		"recipient":      map[string]any{"id": to},
		"messaging_type": "RESPONSE",
		"message":        msg,
	}
	if part.Tag != "" {
		body["messaging_type"], body["tag"] = "MESSAGE_TAG", part.Tag
	}
	a, err := channels.Do(ctx, p.HTTP, channels.Call{
		Method: http.MethodPost, URL: p.endpoint(acct, "/me/messages", url.Values{}), JSON: body,
	})
	if err != nil {
		return "", err
	}
	if !a.OK() {
		return "", channels.GraphError(provider.Messenger.Label, a.Status, a.Header, a.Body, p.Now())
	}
	var ok struct {
		MessageID string `json:"message_id"`
	}
	_ = json.Unmarshal(a.Body, &ok)
	return ok.MessageID, nil
}

// Signal implements channels.Signaler with the Send API's sender actions:
// typing_on, typing_off and mark_seen (the page has seen the chat).
func (p *Provider) Signal(ctx context.Context, acct *channels.Account, to string, sig channels.Signal) (bool, error) {
	action := map[string]string{
		channels.SignalTyping: "typing_on", channels.SignalTypingOff: "typing_off", channels.SignalRead: "mark_seen",
	}[sig.Kind]
	if action == "" || to == "" {
		return false, nil
	}
	a, err := channels.Do(ctx, p.HTTP, channels.Call{
		Method: http.MethodPost, URL: p.endpoint(acct, "/me/messages", url.Values{}),
		JSON: map[string]any{"recipient": map[string]any{"id": to}, "sender_action": action},
	})
	if err != nil {
		return true, err
	}
	if !a.OK() {
		return true, channels.GraphError(provider.Messenger.Label, a.Status, a.Header, a.Body, p.Now())
	}
	return true, nil
}
