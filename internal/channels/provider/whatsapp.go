package provider

import (
	"strings"
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
)

// WhatsApp is the WhatsApp Business Cloud API (package channels/whatsapp).
var WhatsApp = Facts{
	Channel: schematype.ChannelWhatsApp,
	Name:    "whatsapp",
	Label:   "WhatsApp",
	// A customer's wa_id is their number without the +.
	PhoneSenders: true,
	SenderIDOf:   func(e164 string) string { return strings.TrimPrefix(e164, "+") },
	ConfigField:  "whatsapp",
	Check: func(cfg schematype.ChannelConfig, given bool) (string, error) {
		if !given {
			return "", apperr.Invalid("whatsapp", "a WHATSAPP account needs the whatsapp config")
		}
		if err := required(field{"phoneNumberID", cfg.PhoneNumberID}, field{"accessToken", cfg.AccessToken},
			field{"appSecret", cfg.AppSecret}, field{"verifyToken", cfg.VerifyToken}); err != nil {
			return "", err
		}
		return cfg.PhoneNumberID, nil
	},
	// Outside the window only template messages are accepted.
	ReplyWindow: 24 * time.Hour,
	Templates:   true,
	// The default throughput is 80 messages a second per number.
	Rate: Rate{PerSecond: 20, Burst: 20},
	// 130429: the number's throughput limit.
	ThrottleCodes: append([]string{"130429"}, graphThrottle...),
}
