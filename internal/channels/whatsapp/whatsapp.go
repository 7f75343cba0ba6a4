// Package whatsapp is the WhatsApp Business Cloud API adapter: webhook
// handshake and X-Hub-Signature-256 check, the webhook payload (messages of
// every type and delivery statuses), media download by media id, and the
// send API.
package whatsapp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/channels/provider"
)

// Limits of the Cloud API.
const (
	MaxText    = 4096
	MaxCaption = 1024
)

// Provider is the WhatsApp adapter.
type Provider struct {
	channels.GraphApp
}

// New returns the adapter; version "" means channels.DefaultGraphVersion.
func New(version string, client *http.Client) *Provider {
	return &Provider{GraphApp: channels.NewGraphApp(version, client)}
}

// Facts implements channels.Provider.
func (*Provider) Facts() provider.Facts { return provider.WhatsApp }

func (p *Provider) base(acct *channels.Account, path string) string {
	return channels.Endpoint(acct.Config.APIBaseURL, channels.GraphBaseURL, "/"+p.Version+path)
}

func (p *Provider) auth(acct *channels.Account) http.Header {
	return http.Header{"Authorization": {"Bearer " + acct.Config.AccessToken}}
}

// Fetch implements channels.Provider: the media id gives a short-lived URL,
// which is downloaded with the same bearer token.
func (p *Provider) Fetch(ctx context.Context, acct *channels.Account, ref channels.MediaRef) (*channels.Download, error) {
	if ref.ID == "" {
		return nil, &channels.MediaError{Reason: "no media id", Permanent: true}
	}
	a, err := channels.Do(ctx, p.HTTP, channels.Call{
		Method: http.MethodGet, URL: p.base(acct, "/"+url.PathEscape(ref.ID)), Header: p.auth(acct),
	})
	if err != nil {
		return nil, &channels.MediaError{Reason: channels.NetworkReason(err)}
	}
	if !a.OK() {
		se := channels.GraphError(provider.WhatsApp.Label, a.Status, a.Header, a.Body, p.Now())
		return nil, &channels.MediaError{Reason: se.Reason, Permanent: !se.Retryable}
	}
	var info struct {
		URL      string `json:"url"`
		MimeType string `json:"mime_type"`
		SHA256   string `json:"sha256"`
	}
	if err := json.Unmarshal(a.Body, &info); err != nil || info.URL == "" {
		return nil, &channels.MediaError{Reason: "the media lookup gave no URL", Permanent: true}
	}
	resp, err := channels.Get(ctx, p.HTTP, info.URL, p.auth(acct), "", "")
	if err != nil {
		return nil, err
	}
	ct := ref.ContentType
	if info.MimeType != "" {
		ct = info.MimeType
	}
	sum := ref.SHA256
	if info.SHA256 != "" {
		sum = info.SHA256
	}
	return &channels.Download{Body: resp.Body, ContentType: ct, Filename: ref.Filename, SHA256: sum}, nil
}

// kind picks the WhatsApp message type for a file: what WhatsApp plays or
// shows natively, everything else as a document.
func kind(contentType string) string {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0]))
	switch ct {
	case "image/jpeg", "image/png":
		return "image"
	case "video/mp4", "video/3gpp":
		return "video"
	case "audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg":
		return "audio"
	}
	return "document"
}

func captioned(k string) bool { return k == "image" || k == "video" || k == "document" }

// Split implements channels.Provider: one message per text piece or file;
// a single file takes a short text as its caption.
func (*Provider) Split(out channels.Outgoing) []channels.Part {
	if out.Template != nil {
		// A template is one message of its own; its one file, if any, is
		// its media header's.
		return []channels.Part{{Text: out.Body, Template: out.Template, Media: out.Media}}
	}
	texts := channels.SplitText(out.Body, MaxText)
	if len(out.Media) == 1 && len(texts) <= 1 && captioned(kind(out.Media[0].ContentType)) &&
		utf8.RuneCountInString(out.Body) <= MaxCaption {
		return []channels.Part{{Text: out.Body, Media: out.Media}}
	}
	var parts []channels.Part
	for _, t := range texts {
		parts = append(parts, channels.Part{Text: t})
	}
	for _, m := range out.Media {
		parts = append(parts, channels.Part{Media: []channels.OutMedia{m}})
	}
	return parts
}

// Send implements channels.Provider: POST /{version}/{phone-number-id}/messages.
func (p *Provider) Send(ctx context.Context, acct *channels.Account, to string, part channels.Part) (string, error) {
	msg := map[string]any{
		"messaging_product": "whatsapp",
		"recipient_type":    "individual",
		"to":                to,
	}
	switch {
	case part.Template != nil:
		msg["type"] = "template"
		msg["template"] = templateObject(part.Template, part.Media)
	case len(part.Media) == 0:
		msg["type"] = "text"
		msg["text"] = map[string]any{
			"body":        part.Text,
			"preview_url": strings.Contains(part.Text, "https://") || strings.Contains(part.Text, "http://"),
		}
	default:
		m := part.Media[0]
		k := kind(m.ContentType)
		obj := map[string]any{"link": m.URL}
		if part.Text != "" && captioned(k) {
			obj["caption"] = part.Text
		}
		if k == "document" && m.Filename != "" {
			obj["filename"] = m.Filename
		}
		msg["type"] = k
		msg[k] = obj
	}
	a, err := channels.Do(ctx, p.HTTP, channels.Call{
		Method: http.MethodPost, URL: p.base(acct, "/"+url.PathEscape(acct.Config.PhoneNumberID)+"/messages"),
		Header: p.auth(acct), JSON: msg,
	})
	if err != nil {
		return "", err
	}
	if !a.OK() {
		return "", channels.GraphError(provider.WhatsApp.Label, a.Status, a.Header, a.Body, p.Now())
	}
	var ok struct {
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(a.Body, &ok); err != nil || len(ok.Messages) == 0 || ok.Messages[0].ID == "" {
		// Accepted, but we cannot match later statuses: still sent.
		return "", nil
	}
	return ok.Messages[0].ID, nil
}

// templateObject is the Cloud API's template object: name, language code,
// and the components that fill in the template, in the documents' order:
// the header's parameter (text, or media by link: the template's own link
// or else the message's attachment), the body's parameters as text in
// placeholder order, and one button component per button parameter
// (sub_type url with its suffix as text, or quick_reply with a payload,
// index as a string).
func templateObject(t *schematype.TemplateMessage, media []channels.OutMedia) map[string]any {
	obj := map[string]any{"name": t.Name, "language": map[string]any{"code": t.Language}}
	var comps []any
	if h := t.Header; h != nil {
		var param map[string]any
		if h.Format == "TEXT" {
			param = map[string]any{"type": "text", "text": h.Text}
		} else {
			k := strings.ToLower(h.Format)
			m := map[string]any{"link": h.Link}
			if h.Link == "" && len(media) > 0 {
				m["link"] = media[0].URL
			}
			if k == "document" {
				fn := h.Filename
				if fn == "" && h.Link == "" && len(media) > 0 {
					fn = media[0].Filename
				}
				if fn != "" {
					m["filename"] = fn
				}
			}
			param = map[string]any{"type": k, k: m}
		}
		comps = append(comps, map[string]any{"type": "header", "parameters": []any{param}})
	}
	if len(t.Parameters) > 0 {
		params := make([]any, len(t.Parameters))
		for i, p := range t.Parameters {
			params[i] = map[string]any{"type": "text", "text": p}
		}
		comps = append(comps, map[string]any{"type": "body", "parameters": params})
	}
	for _, b := range t.Buttons {
		param := map[string]any{"type": "text", "text": b.Value}
		if b.Type == "QUICK_REPLY" {
			param = map[string]any{"type": "payload", "payload": b.Value}
		}
		comps = append(comps, map[string]any{"type": "button", "sub_type": strings.ToLower(b.Type),
			"index": strconv.Itoa(b.Index), "parameters": []any{param}})
	}
	if len(comps) > 0 {
		obj["components"] = comps
	}
	return obj
}

// Signal implements channels.Signaler. The Cloud API marks a customer's
// message read (status "read" with its wamid: the customer sees blue
// ticks), and shows a typing indicator only together with such a read
// receipt (typing_indicator, dismissed when the agent's reply arrives or
// after about 25 seconds); it has no "stopped typing".
func (p *Provider) Signal(ctx context.Context, acct *channels.Account, _ string, sig channels.Signal) (bool, error) {
	if sig.MessageID == "" || (sig.Kind != channels.SignalRead && sig.Kind != channels.SignalTyping) {
		return false, nil
	}
	msg := map[string]any{"messaging_product": "whatsapp", "status": "read", "message_id": sig.MessageID}
	if sig.Kind == channels.SignalTyping {
		msg["typing_indicator"] = map[string]any{"type": "text"}
	}
	a, err := channels.Do(ctx, p.HTTP, channels.Call{
		Method: http.MethodPost, URL: p.base(acct, "/"+url.PathEscape(acct.Config.PhoneNumberID)+"/messages"),
		Header: p.auth(acct), JSON: msg,
	})
	if err != nil {
		return true, err
	}
	if !a.OK() {
		return true, channels.GraphError(provider.WhatsApp.Label, a.Status, a.Header, a.Body, p.Now())
	}
	return true, nil
}

// String names the adapter in logs.
func (p *Provider) String() string { return fmt.Sprintf("whatsapp(%s)", p.Version) }
