package provider

import (
	"regexp"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// Twilio is SMS and MMS through Twilio's Messaging API (package
// channels/twilio).
var Twilio = Facts{
	Channel: schematype.ChannelSMS,
	Name:    "twilio",
	Label:   "Twilio",
	// A customer is their E.164 number.
	PhoneSenders: true,
	SenderIDOf:   func(e164 string) string { return e164 },
	ConfigField:  "sms",
	Check: func(cfg schematype.ChannelConfig, given bool) (string, error) {
		if !given {
			return "", apperr.Invalid("sms", "an SMS account needs the sms config")
		}
		if err := required(field{"accountSID", cfg.AccountSID}, field{"authToken", cfg.AuthToken}); err != nil {
			return "", err
		}
		if !e164.MatchString(cfg.FromNumber) {
			return "", apperr.Invalid("fromNumber", "fromNumber must be an E.164 number such as +14155550100")
		}
		return cfg.FromNumber, nil
	},
	// SMS has no reply window.
	ReplyWindow: 0,
	// A long code sends about one segment a second; Twilio queues the
	// rest, so a small burst is fine.
	Rate: Rate{PerSecond: 1, Burst: 5},
	// 20429: too many requests.
	ThrottleCodes: []string{"20429"},
}
