package provider

import (
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
)

// Messenger is Facebook Messenger through a page (package
// channels/messenger).
var Messenger = Facts{
	Channel:     schematype.ChannelFacebook,
	Name:        "messenger",
	Label:       "Messenger",
	ConfigField: "messenger",
	Check: func(cfg schematype.ChannelConfig, given bool) (string, error) {
		if !given {
			return "", apperr.Invalid("messenger", "a FACEBOOK account needs the messenger config")
		}
		if err := required(field{"pageID", cfg.PageID}, field{"pageAccessToken", cfg.PageAccessToken},
			field{"appSecret", cfg.AppSecret}, field{"verifyToken", cfg.VerifyToken}); err != nil {
			return "", err
		}
		return cfg.PageID, nil
	},
	// Outside the window a page may only send tagged messages: a human
	// agent's answer with HUMAN_AGENT, for 7 days, when the account's
	// humanAgentTag says the app is approved for it.
	ReplyWindow: 24 * time.Hour,
	TagWindow:   7 * 24 * time.Hour,
	Tag:         "HUMAN_AGENT",
	// A page's limits are of the same order as WhatsApp's.
	Rate:          Rate{PerSecond: 20, Burst: 20},
	ThrottleCodes: graphThrottle,
}
