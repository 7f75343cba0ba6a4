package whatsapp

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/channels"
)

// The webhook payload, as far as Parley reads it.
type payload struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string `json:"field"`
			Value value  `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

type value struct {
	Metadata struct {
		PhoneNumberID string `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []struct {
		WaID    string `json:"wa_id"`
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
	} `json:"contacts"`
	Messages []message `json:"messages"`
	Statuses []status  `json:"statuses"`
}

type message struct {
	From      string `json:"from"`
	ID        string `json:"id"`
	Timestamp flex   `json:"timestamp"`
	Type      string `json:"type"`
	Text      *struct {
		Body string `json:"body"`
	} `json:"text"`
	Image       *media        `json:"image"`
	Video       *media        `json:"video"`
	Audio       *media        `json:"audio"`
	Sticker     *media        `json:"sticker"`
	Document    *media        `json:"document"`
	Location    *location     `json:"location"`
	Contacts    []contactCard `json:"contacts"`
	Interactive *struct {
		Type        string `json:"type"`
		ButtonReply *struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"button_reply"`
		ListReply *struct {
			ID          string `json:"id"`
			Title       string `json:"title"`
			Description string `json:"description"`
		} `json:"list_reply"`
	} `json:"interactive"`
	Button *struct {
		Text    string `json:"text"`
		Payload string `json:"payload"`
	} `json:"button"`
	Reaction *struct {
		MessageID string `json:"message_id"`
		Emoji     string `json:"emoji"`
	} `json:"reaction"`
	System *struct {
		Body string `json:"body"`
	} `json:"system"`
	Errors []apiError `json:"errors"`
}

type media struct {
	ID       string `json:"id"`
	MimeType string `json:"mime_type"`
	SHA256   string `json:"sha256"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
	Voice    bool   `json:"voice"`
}

type location struct {
	Latitude  flex   `json:"latitude"`
	Longitude flex   `json:"longitude"`
	Name      string `json:"name"`
	Address   string `json:"address"`
}

type contactCard struct {
	Name struct {
		FormattedName string `json:"formatted_name"`
		FirstName     string `json:"first_name"`
		LastName      string `json:"last_name"`
	} `json:"name"`
	Phones []struct {
		Phone string `json:"phone"`
		Type  string `json:"type"`
	} `json:"phones"`
	Emails []struct {
		Email string `json:"email"`
	} `json:"emails"`
	Org struct {
		Company string `json:"company"`
	} `json:"org"`
}

type status struct {
	ID          string     `json:"id"`
	Status      string     `json:"status"`
	Timestamp   flex       `json:"timestamp"`
	RecipientID string     `json:"recipient_id"`
	Errors      []apiError `json:"errors"`
}

type apiError struct {
	Code      flex   `json:"code"`
	Title     string `json:"title"`
	Message   string `json:"message"`
	ErrorData struct {
		Details string `json:"details"`
	} `json:"error_data"`
}

// flex is a scalar Meta sends as a string or as a number (timestamps,
// coordinates, codes).
type flex string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flex) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flex(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("expected a string or a number")
	}
	*f = flex(n.String())
	return nil
}

func (f flex) unix() time.Time {
	n, err := strconv.ParseInt(strings.TrimSpace(string(f)), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

func (f flex) float() (float64, bool) {
	v, err := strconv.ParseFloat(strings.TrimSpace(string(f)), 64)
	return v, err == nil
}

// Parse implements channels.Provider. A body that is not the payload's JSON
// shape is an error; an object or field other than WhatsApp messages is an
// empty batch.
func (*Provider) Parse(body []byte) (*channels.Batch, error) {
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, err
	}
	b := &channels.Batch{}
	if p.Object != "whatsapp_business_account" {
		return b, nil
	}
	for _, e := range p.Entry {
		for _, c := range e.Changes {
			if c.Field != "messages" {
				continue
			}
			v := c.Value
			route := v.Metadata.PhoneNumberID
			names := map[string]string{}
			for _, ct := range v.Contacts {
				names[ct.WaID] = ct.Profile.Name
			}
			for _, m := range v.Messages {
				if msg, ok := toMessage(m); ok {
					msg.Route, msg.SenderName = route, names[m.From]
					b.Messages = append(b.Messages, msg)
				}
			}
			for _, s := range v.Statuses {
				if st, ok := toStatus(s); ok {
					st.Route = route
					b.Statuses = append(b.Statuses, st)
				}
			}
		}
	}
	return b, nil
}

func toMessage(m message) (channels.Message, bool) {
	out := channels.Message{ProviderMessageID: m.ID, SenderID: m.From, At: m.Timestamp.unix()}
	if m.ID == "" || m.From == "" {
		return out, false
	}
	withMedia := func(md *media) bool {
		if md == nil {
			return false
		}
		kind := m.Type
		if kind == "audio" && md.Voice {
			kind = "voice"
		}
		out.Text = md.Caption
		out.Media = []channels.MediaRef{{
			Kind: kind, ID: md.ID, ContentType: md.MimeType, Filename: md.Filename, SHA256: md.SHA256,
		}}
		return true
	}
	switch m.Type {
	case "text":
		if m.Text == nil {
			return out, false
		}
		out.Text = m.Text.Body
	case "image":
		withMedia(m.Image)
	case "video":
		withMedia(m.Video)
	case "audio":
		withMedia(m.Audio)
	case "sticker":
		withMedia(m.Sticker)
	case "document":
		withMedia(m.Document)
	case "location":
		if m.Location == nil {
			return out, false
		}
		lat, ok1 := m.Location.Latitude.float()
		lng, ok2 := m.Location.Longitude.float()
		if !ok1 || !ok2 {
			return out, false
		}
		out.Text = channels.LocationText(lat, lng, m.Location.Name, m.Location.Address)
	case "contacts":
		out.Text = contactsText(m.Contacts)
	case "interactive":
		if i := m.Interactive; i != nil && i.ButtonReply != nil {
			out.Text = i.ButtonReply.Title
		} else if i != nil && i.ListReply != nil {
			out.Text = channels.JoinText(i.ListReply.Title, i.ListReply.Description)
		} else {
			out.Text = "[interactive reply]"
		}
	case "button":
		if m.Button != nil {
			out.Text = m.Button.Text
		}
	case "reaction":
		// A reaction is noted for the agent; removing one (empty emoji)
		// is not news.
		if m.Reaction == nil || m.Reaction.Emoji == "" {
			return out, false
		}
		out.Text = "Reacted " + m.Reaction.Emoji + " to a message"
	case "system":
		if m.System != nil {
			out.Text = "[" + m.System.Body + "]"
		}
	default:
		out.Text = unsupportedText(m)
	}
	if strings.TrimSpace(out.Text) == "" && len(out.Media) == 0 {
		out.Text = unsupportedText(m)
	}
	return out, true
}

func unsupportedText(m message) string {
	why := ""
	if len(m.Errors) > 0 {
		why = errorText(m.Errors[0])
	}
	if why == "" {
		why = "type " + strings.TrimSpace(m.Type)
	}
	return "[unsupported message: " + why + "]"
}

func contactsText(cards []contactCard) string {
	var lines []string
	for _, c := range cards {
		name := strings.TrimSpace(c.Name.FormattedName)
		if name == "" {
			name = strings.TrimSpace(c.Name.FirstName + " " + c.Name.LastName)
		}
		fields := []string{}
		if name != "" {
			fields = append(fields, name)
		}
		for _, p := range c.Phones {
			if p.Phone != "" {
				fields = append(fields, p.Phone)
			}
		}
		for _, e := range c.Emails {
			if e.Email != "" {
				fields = append(fields, e.Email)
			}
		}
		if c.Org.Company != "" {
			fields = append(fields, c.Org.Company)
		}
		if len(fields) > 0 {
			lines = append(lines, "Contact: "+strings.Join(fields, ", "))
		}
	}
	if len(lines) == 0 {
		return "[contact card]"
	}
	return strings.Join(lines, "\n")
}

func errorText(e apiError) string {
	parts := []string{}
	if t := strings.TrimSpace(e.Title); t != "" {
		parts = append(parts, t)
	}
	if m := strings.TrimSpace(e.Message); m != "" && m != strings.TrimSpace(e.Title) {
		parts = append(parts, m)
	}
	if d := strings.TrimSpace(e.ErrorData.Details); d != "" {
		parts = append(parts, d)
	}
	s := strings.Join(parts, ": ")
	if c := strings.TrimSpace(string(e.Code)); c != "" && s != "" {
		s += " (" + c + ")"
	}
	return s
}

func toStatus(s status) (channels.Status, bool) {
	out := channels.Status{ProviderMessageID: s.ID, At: s.Timestamp.unix()}
	if s.ID == "" {
		return out, false
	}
	switch s.Status {
	case "sent":
		out.Status = schematype.DeliverySent
	case "delivered":
		out.Status = schematype.DeliveryDelivered
	case "read":
		out.Status = schematype.DeliveryRead
	case "failed":
		out.Status = schematype.DeliveryFailed
		for _, e := range s.Errors {
			if t := errorText(e); t != "" {
				out.Reason = "WhatsApp: " + t
				break
			}
		}
		if out.Reason == "" {
			out.Reason = "WhatsApp could not deliver the message"
		}
	default:
		return out, false
	}
	return out, true
}
