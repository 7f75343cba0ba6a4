// Package provider is what Parley knows of each messaging provider beside
// its adapter: the kind of account it serves, the rules of its
// configuration, where its webhooks arrive and how they are counted, how
// long after a customer's message it accepts a free-form reply, how fast an
// account may send and which of its error codes mean "slow down". One file
// per provider; the adapters (channels.Provider), the workspace service,
// the conversations service and the HTTP server all read it from here.
//
// It imports nothing of ours but the schema types and the error codes, so
// that every package may import it.
package provider

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
)

// Facts describe one provider.
type Facts struct {
	// Channel is the kind of account the provider serves.
	Channel schematype.Channel
	// Name is the adapter's name: its path segment in webhook URLs, its
	// name in stored webhook events, and (as RouteLabel) its metric label.
	// Empty for a channel that takes no webhooks (live chat).
	Name string
	// Label names the provider in what agents read.
	Label string
	// PhoneSenders says that a customer's id on the channel is their phone
	// number (with or without the +), which a new contact keeps as its
	// phone.
	PhoneSenders bool
	// SenderIDOf, for PhoneSenders, is the customer's id on the channel
	// for an E.164 number: what inbound messages from that number carry,
	// so that a conversation an agent starts and the customer's answer
	// meet in one identity.
	SenderIDOf func(e164 string) string
	// ConfigField is the field of CreateChannelAccountInput that carries
	// the provider's config.
	ConfigField string
	// Check validates an account's config, given says whether the caller
	// filled in ConfigField; it returns the account's external id (what
	// inbound webhooks are routed by).
	Check func(cfg schematype.ChannelConfig, given bool) (externalID string, err error)
	// ReplyWindow is how long after the customer's last message the
	// provider accepts a free-form reply (the customer service window);
	// zero means always.
	ReplyWindow time.Duration
	// Templates says that outside ReplyWindow the provider still takes
	// approved template messages (WhatsApp).
	Templates bool
	// TagWindow is how long after the customer's last message a human
	// agent may still answer with Tag, where the account enables it
	// (Messenger's HUMAN_AGENT tag: 7 days); zero means never.
	TagWindow time.Duration
	// Tag is the message tag of TagWindow.
	Tag string
	// Rate is an account's default send rate; zero means unlimited (no
	// provider API to protect).
	Rate Rate
	// ThrottleCodes are the provider's error codes that mean the account
	// as a whole should slow down (beside HTTP 429).
	ThrottleCodes []string
}

// Rate is a token bucket's refill rate (per second) and size.
type Rate struct {
	PerSecond float64
	Burst     int
}

// WebhookPrefix is where every webhook path starts.
const WebhookPrefix = "/webhooks/"

// all lists the providers, in the order they are documented.
var all = []*Facts{&WhatsApp, &Messenger, &Twilio, &LiveChat}

// All returns every provider's facts, one per channel kind that has
// accounts.
func All() []Facts {
	out := make([]Facts, len(all))
	for i, f := range all {
		out[i] = *f
	}
	return out
}

// For returns the facts of the provider that serves ch.
func For(ch schematype.Channel) (Facts, bool) {
	for _, f := range all {
		if f.Channel == ch {
			return *f, true
		}
	}
	return Facts{}, false
}

// Named returns the facts of the provider whose webhooks arrive under
// name (a webhook path segment).
func Named(name string) (Facts, bool) {
	for _, f := range all {
		if f.Name != "" && f.Name == name {
			return *f, true
		}
	}
	return Facts{}, false
}

// WebhookPath is where the provider delivers account id's webhooks, below
// the public URL; "" when it takes no webhooks.
func (f Facts) WebhookPath(id int) string {
	if f.Name == "" {
		return ""
	}
	return WebhookPrefix + f.Name + "/" + strconv.Itoa(id)
}

// WebhookPattern is the ServeMux path pattern of the provider's webhooks;
// "" when it takes none.
func (f Facts) WebhookPattern() string {
	if f.Name == "" {
		return ""
	}
	return WebhookPrefix + f.Name + "/{id}"
}

// RouteLabel is the metric label of the provider's webhook requests: the
// path without the account id; "" when it takes no webhooks.
func (f Facts) RouteLabel() string {
	if f.Name == "" {
		return ""
	}
	return WebhookPrefix + f.Name
}

// Throttles reports whether the provider's error code asks the account to
// slow down.
func (f Facts) Throttles(code string) bool {
	return code != "" && slices.Contains(f.ThrottleCodes, code)
}

// WebhookPath is where the provider of channel ch delivers account id's
// webhooks; "" for a channel without webhooks.
func WebhookPath(ch schematype.Channel, id int) string {
	f, _ := For(ch)
	return f.WebhookPath(id)
}

// graphThrottle are the Graph API's rate-limit codes, which WhatsApp and
// Messenger share.
var graphThrottle = []string{"4", "80007", "613"}

// field is a config field and its value, for required.
type field struct{ name, value string }

// required refuses the first of fields left empty.
func required(fields ...field) error {
	for _, f := range fields {
		if strings.TrimSpace(f.value) == "" {
			return apperr.Invalid(f.name, "%s is required", f.name)
		}
	}
	return nil
}

// httpURL reports whether s is an absolute http(s) URL.
func httpURL(s string) (*url.URL, bool) {
	u, err := url.Parse(s)
	return u, err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
