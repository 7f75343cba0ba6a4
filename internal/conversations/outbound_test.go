package conversations

import (
	"testing"
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/channels/provider"
)

// TestOutboundRule: the window rule at its edges, for each provider.
func TestOutboundRule(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) *time.Time { v := now.Add(-d); return &v }
	tagOn := schematype.ChannelConfig{HumanAgentTag: true}
	for _, c := range []struct {
		name     string
		f        provider.Facts
		cfg      schematype.ChannelConfig
		last     *time.Time
		template bool
		tag      string
		code     apperr.Code
	}{
		{"sms never wrote", provider.Twilio, tagOn, nil, false, "", ""},
		{"sms template", provider.Twilio, tagOn, nil, true, "", apperr.BadUserInput},
		{"whatsapp in window", provider.WhatsApp, tagOn, ago(24 * time.Hour), false, "", ""},
		{"whatsapp just out", provider.WhatsApp, tagOn, ago(24*time.Hour + time.Second), false, "", apperr.BadUserInput},
		{"whatsapp never wrote", provider.WhatsApp, tagOn, nil, false, "", apperr.BadUserInput},
		{"whatsapp template out", provider.WhatsApp, tagOn, ago(30 * 24 * time.Hour), true, "", ""},
		{"whatsapp template in", provider.WhatsApp, tagOn, ago(time.Hour), true, "", ""},
		{"messenger in window", provider.Messenger, tagOn, ago(time.Hour), false, "", ""},
		{"messenger tag", provider.Messenger, tagOn, ago(25 * time.Hour), false, "HUMAN_AGENT", ""},
		{"messenger tag at 7 days", provider.Messenger, tagOn, ago(7 * 24 * time.Hour), false, "HUMAN_AGENT", ""},
		{"messenger past 7 days", provider.Messenger, tagOn, ago(7*24*time.Hour + time.Second), false, "", apperr.BadUserInput},
		{"messenger not enabled", provider.Messenger, schematype.ChannelConfig{}, ago(25 * time.Hour), false, "", apperr.BadUserInput},
		{"messenger never wrote", provider.Messenger, tagOn, nil, false, "", apperr.BadUserInput},
		{"messenger template", provider.Messenger, tagOn, ago(time.Hour), true, "", apperr.BadUserInput},
	} {
		t.Run(c.name, func(t *testing.T) {
			tag, err := outboundRule(c.f, c.cfg, c.last, now, c.template, "body")
			if c.code == "" && err != nil || c.code != "" && apperr.CodeOf(err) != c.code {
				t.Fatalf("err %v, want %q", err, c.code)
			}
			if tag != c.tag {
				t.Fatalf("tag %q, want %q", tag, c.tag)
			}
		})
	}
}
