package twilio

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/channels"
)

// Parse implements channels.Provider. One form carries either an inbound
// message (no MessageStatus, or "received") or a status callback for one of
// ours; a form without a MessageSid (a voice webhook, say) is ignored.
func (*Provider) Parse(body []byte) (*channels.Batch, error) {
	q, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, err
	}
	b := &channels.Batch{}
	sid := firstOf(q, "MessageSid", "SmsMessageSid", "SmsSid")
	if sid == "" {
		return b, nil
	}
	status := firstOf(q, "MessageStatus", "SmsStatus")
	switch status {
	case "", "received", "receiving":
		from := NormalizeNumber(q.Get("From"))
		if from == "" {
			return b, nil
		}
		m := channels.Message{ProviderMessageID: sid, SenderID: from, Text: q.Get("Body")}
		for i := 0; i < MaxMedia; i++ {
			u := q.Get("MediaUrl" + strconv.Itoa(i))
			if u == "" {
				break
			}
			m.Media = append(m.Media, channels.MediaRef{
				Kind: "file", URL: u, ContentType: q.Get("MediaContentType" + strconv.Itoa(i)),
			})
		}
		if strings.TrimSpace(m.Text) == "" && len(m.Media) == 0 {
			m.Text = "[empty message]"
		}
		b.Messages = append(b.Messages, m)
	default:
		st, ok := statuses[status]
		if !ok {
			return b, nil // queued, sending, accepted...: nothing we show
		}
		s := channels.Status{ProviderMessageID: sid, Status: st}
		if st == schematype.DeliveryFailed {
			s.Reason = failureReason(status, q.Get("ErrorCode"), q.Get("ErrorMessage"))
		}
		b.Statuses = append(b.Statuses, s)
	}
	return b, nil
}

var statuses = map[string]schematype.DeliveryStatus{
	"sent":        schematype.DeliverySent,
	"delivered":   schematype.DeliveryDelivered,
	"read":        schematype.DeliveryRead,
	"undelivered": schematype.DeliveryFailed,
	"failed":      schematype.DeliveryFailed,
}

// errorTexts describe the delivery error codes agents meet most.
var errorTexts = map[string]string{
	"21211": "invalid 'To' phone number",
	"21408": "sending to this region is not enabled",
	"21610": "the recipient has opted out (replied STOP)",
	"21614": "the 'To' number is not a mobile number",
	"30003": "unreachable destination handset",
	"30004": "message blocked",
	"30005": "unknown destination handset",
	"30006": "landline or unreachable carrier",
	"30007": "message filtered by the carrier",
	"30008": "unknown error",
	"30034": "message from an unregistered number (10DLC)",
}

func failureReason(status, code, msg string) string {
	desc := strings.TrimSpace(msg)
	if desc == "" {
		desc = errorTexts[code]
	}
	switch {
	case code != "" && desc != "":
		return "Twilio error " + code + ": " + desc
	case code != "":
		return "Twilio error " + code + " (message " + status + ")"
	}
	return "Twilio reports the message " + status
}

func firstOf(q url.Values, keys ...string) string {
	for _, k := range keys {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			return v
		}
	}
	return ""
}

// NormalizeNumber returns a phone number in E.164 (+ and digits). Short
// codes and alphanumeric sender ids are returned as they are. A number
// whose + was lost in form encoding (decoded as a space) gets it back.
func NormalizeNumber(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	var digits strings.Builder
	plus := strings.HasPrefix(s, "+")
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits.WriteRune(r)
		case r == '+' || r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
		default:
			return s // alphanumeric sender id or channel address
		}
	}
	d := digits.String()
	if !plus && strings.HasPrefix(d, "00") {
		d = d[2:]
		plus = true
	}
	if d == "" {
		return s
	}
	if !plus && len(d) <= 8 {
		return d // a short code
	}
	return "+" + d
}
