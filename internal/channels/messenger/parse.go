package messenger

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/channels"
)

type payload struct {
	Object string `json:"object"`
	Entry  []struct {
		ID        string  `json:"id"`
		Messaging []event `json:"messaging"`
	} `json:"entry"`
}

type event struct {
	Sender struct {
		ID string `json:"id"`
	} `json:"sender"`
	Recipient struct {
		ID string `json:"id"`
	} `json:"recipient"`
	Timestamp int64 `json:"timestamp"`
	Message   *struct {
		MID         string       `json:"mid"`
		Text        string       `json:"text"`
		IsEcho      bool         `json:"is_echo"`
		Attachments []attachment `json:"attachments"`
		QuickReply  *struct {
			Payload string `json:"payload"`
		} `json:"quick_reply"`
	} `json:"message"`
	Delivery *struct {
		MIDs      []string `json:"mids"`
		Watermark int64    `json:"watermark"`
	} `json:"delivery"`
	Read *struct {
		Watermark int64 `json:"watermark"`
	} `json:"read"`
	Postback *struct {
		MID     string `json:"mid"`
		Title   string `json:"title"`
		Payload string `json:"payload"`
	} `json:"postback"`
}

type attachment struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	URL     string `json:"url"`
	Payload *struct {
		URL         string `json:"url"`
		Title       string `json:"title"`
		Coordinates *struct {
			Lat  float64 `json:"lat"`
			Long float64 `json:"long"`
		} `json:"coordinates"`
	} `json:"payload"`
}

func ms(v int64) time.Time {
	if v <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// Parse implements channels.Provider. Echoes (is_echo: the page's own
// messages, ours included) never become customer messages; events other
// than messages, postbacks, deliveries and reads are ignored.
func (*Provider) Parse(body []byte) (*channels.Batch, error) {
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, err
	}
	b := &channels.Batch{}
	if p.Object != "page" {
		return b, nil
	}
	for _, e := range p.Entry {
		for _, ev := range e.Messaging {
			route := e.ID
			at := ms(ev.Timestamp)
			switch {
			case ev.Message != nil:
				if ev.Message.IsEcho {
					continue
				}
				if m, ok := toMessage(ev, at); ok {
					m.Route = route
					b.Messages = append(b.Messages, m)
				}
			case ev.Postback != nil:
				if ev.Sender.ID == "" {
					continue
				}
				id := ev.Postback.MID
				if id == "" {
					// Older postbacks carry no mid: the sender and the
					// time identify a tap.
					id = "postback:" + ev.Sender.ID + ":" + strconv.FormatInt(ev.Timestamp, 10)
				}
				text := strings.TrimSpace(ev.Postback.Title)
				if text == "" {
					text = "[button: " + ev.Postback.Payload + "]"
				}
				b.Messages = append(b.Messages, channels.Message{
					Route: route, ProviderMessageID: id, SenderID: ev.Sender.ID, At: at, Text: text,
				})
			case ev.Delivery != nil:
				for _, mid := range ev.Delivery.MIDs {
					if mid != "" {
						b.Statuses = append(b.Statuses, channels.Status{
							Route: route, ProviderMessageID: mid, Status: schematype.DeliveryDelivered, At: at,
						})
					}
				}
				if ev.Delivery.Watermark > 0 && ev.Sender.ID != "" {
					b.Watermarks = append(b.Watermarks, channels.Watermark{
						Route: route, Recipient: ev.Sender.ID, Status: schematype.DeliveryDelivered, Until: ms(ev.Delivery.Watermark),
					})
				}
			case ev.Read != nil:
				if ev.Read.Watermark > 0 && ev.Sender.ID != "" {
					b.Watermarks = append(b.Watermarks, channels.Watermark{
						Route: route, Recipient: ev.Sender.ID, Status: schematype.DeliveryRead, Until: ms(ev.Read.Watermark),
					})
				}
			}
		}
	}
	return b, nil
}

func toMessage(ev event, at time.Time) (channels.Message, bool) {
	m := ev.Message
	out := channels.Message{ProviderMessageID: m.MID, SenderID: ev.Sender.ID, At: at, Text: m.Text}
	if m.MID == "" || ev.Sender.ID == "" {
		return out, false
	}
	var notes []string
	for _, a := range m.Attachments {
		url := ""
		if a.Payload != nil {
			url = a.Payload.URL
		}
		switch a.Type {
		case "image", "video", "audio", "file":
			if url == "" {
				notes = append(notes, "["+a.Type+" without a link]")
				continue
			}
			out.Media = append(out.Media, channels.MediaRef{Kind: a.Type, URL: url})
		case "location":
			if a.Payload != nil && a.Payload.Coordinates != nil {
				notes = append(notes, channels.LocationText(a.Payload.Coordinates.Lat, a.Payload.Coordinates.Long, a.Title, ""))
			} else {
				notes = append(notes, channels.JoinText("Location: "+a.Title, a.URL))
			}
		case "fallback":
			// A shared link or something Messenger cannot show: title
			// and link.
			title, link := a.Title, a.URL
			if a.Payload != nil {
				title = firstNonEmpty(title, a.Payload.Title)
				link = firstNonEmpty(link, a.Payload.URL)
			}
			notes = append(notes, channels.JoinText(title, link))
		default:
			notes = append(notes, "[unsupported attachment: "+a.Type+"]")
		}
	}
	out.Text = channels.JoinText(append([]string{m.Text}, notes...)...)
	if strings.TrimSpace(out.Text) == "" && len(out.Media) == 0 {
		out.Text = "[empty message]"
	}
	return out, true
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}
