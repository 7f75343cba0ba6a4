package provider

import (
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
)

// LiveChat is Parley's own website widget (package livechat): no provider
// API, so no webhook, no reply window and no send rate.
var LiveChat = Facts{
	Channel:     schematype.ChannelLiveChat,
	Label:       "live chat",
	ConfigField: "liveChat",
	// The config is optional: without allowed origins the widget works
	// only on Parley's own demo page; "*" allows every origin.
	Check: func(cfg schematype.ChannelConfig, _ bool) (string, error) {
		for _, o := range cfg.AllowedOrigins {
			if o == "*" {
				continue
			}
			if u, ok := httpURL(o); !ok || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
				return "", apperr.Invalid("allowedOrigins", "%q is not an origin such as https://www.example.com", o)
			}
		}
		return "", nil
	},
}
