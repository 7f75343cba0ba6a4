package whatsapp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/channels/provider"
)

// templatePage is how many templates one list call asks for.
const templatePage = 100

// maxTemplatePages bounds a sync: 100 pages of 100 is more templates than
// Meta lets an account have.
const maxTemplatePages = 100

// ListTemplates implements channels.TemplateLister: GET
// /{version}/{waba-id}/message_templates with the bearer token, page after
// page. The next page is asked for with paging.cursors.after on our own
// base URL rather than by following paging.next, so that the token only
// ever goes to the configured host.
func (p *Provider) ListTemplates(ctx context.Context, acct *channels.Account) ([]channels.RemoteTemplate, error) {
	var out []channels.RemoteTemplate
	after := ""
	for range maxTemplatePages {
		q := url.Values{"fields": {"name,language,status,category,components"}, "limit": {strconv.Itoa(templatePage)}}
		if after != "" {
			q.Set("after", after)
		}
		a, err := channels.Do(ctx, p.HTTP, channels.Call{
			Method: http.MethodGet,
			URL:    p.base(acct, "/"+url.PathEscape(acct.Config.BusinessAccountID)+"/message_templates") + "?" + q.Encode(),
			Header: p.auth(acct),
		})
		if err != nil {
			return nil, err
		}
		if !a.OK() {
			return nil, channels.GraphError(provider.WhatsApp.Label, a.Status, a.Header, a.Body, p.Now())
		}
		var page struct {
			Data []struct {
				ID         string            `json:"id"`
				Name       string            `json:"name"`
				Language   string            `json:"language"`
				Status     string            `json:"status"`
				Category   string            `json:"category"`
				Components []json.RawMessage `json:"components"`
			} `json:"data"`
			Paging struct {
				Cursors struct {
					After string `json:"after"`
				} `json:"cursors"`
				Next string `json:"next"`
			} `json:"paging"`
		}
		if err := json.Unmarshal(a.Body, &page); err != nil {
			return nil, &channels.SendError{Status: a.Status, Reason: "WhatsApp answered the template list with something that is not JSON"}
		}
		for _, d := range page.Data {
			t := channels.RemoteTemplate{ID: d.ID, Name: d.Name, Language: d.Language,
				Status: strings.ToUpper(d.Status), Category: strings.ToUpper(d.Category)}
			for _, raw := range d.Components {
				var c struct {
					Type    string `json:"type"`
					Format  string `json:"format"`
					Text    string `json:"text"`
					Buttons []struct {
						Type        string `json:"type"`
						Text        string `json:"text"`
						URL         string `json:"url"`
						PhoneNumber string `json:"phone_number"`
					} `json:"buttons"`
				}
				if json.Unmarshal(raw, &c) != nil {
					continue
				}
				switch strings.ToUpper(c.Type) {
				case "BODY":
					t.Body = c.Text
				case "HEADER":
					t.Header = string(raw)
					format := strings.ToUpper(c.Format)
					if !slices.Contains(provider.TemplateHeaderFormats, format) {
						t.Unsupported = "a " + format + " header"
						continue
					}
					t.HeaderComponent = &schematype.TemplateHeader{Format: format, Text: c.Text}
				case "BUTTONS":
					t.Buttons = string(raw)
					for _, b := range c.Buttons {
						typ := strings.ToUpper(b.Type)
						if !slices.Contains(provider.TemplateButtonTypes, typ) {
							t.Unsupported = "a " + typ + " button"
						}
						t.ButtonComponents = append(t.ButtonComponents,
							schematype.TemplateButton{Type: typ, Text: b.Text, URL: b.URL, PhoneNumber: b.PhoneNumber})
					}
				}
			}
			out = append(out, t)
		}
		if page.Paging.Next == "" || page.Paging.Cursors.After == "" || len(page.Data) == 0 {
			return out, nil
		}
		after = page.Paging.Cursors.After
	}
	return nil, &channels.SendError{Reason: "WhatsApp's template list did not end"}
}
