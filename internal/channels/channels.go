// Package channels connects Parley to the messaging providers (WhatsApp
// Cloud API, Facebook Messenger, Twilio SMS/MMS) with nothing lost or
// doubled:
//
//   - Intake: a provider's webhook is verified (signature over the raw body)
//     and stored as a WebhookEvent row before the provider gets its answer,
//     so the answer is fast and a crash loses nothing.
//   - Events worker: claims stored events with a conditional update (a
//     lease), turns them into messages and delivery statuses through the
//     conversations service (the one inbound entry point), downloads media,
//     and retries with backoff on failure. With several instances each event
//     is processed by one at a time; processing is idempotent anyway.
//   - Outbox: claims PENDING outbound messages the same way, sends them
//     through the provider's API under a per-account rate limit, retries with
//     exponential backoff and jitter, and marks them SENT or FAILED.
//
// The provider specifics (payload formats, signatures, send APIs) live in
// the subpackages whatsapp, messenger and twilio, which implement Provider;
// what the rest of Parley needs to know of each provider (config rules,
// webhook path, reply window, send rate, throttling codes) lives in
// subpackage provider.
package channels

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/channels/provider"
	"github.com/parleyhq/parley/internal/conversations"
)

// Account is what an adapter knows of a channel account.
type Account struct {
	ID      int
	Channel schematype.Channel
	// ExternalID is the provider's id of our side: the WhatsApp phone
	// number id, the Facebook page id, the Twilio number.
	ExternalID string
	Config     schematype.ChannelConfig
	// WebhookURL is the account's public webhook URL (Twilio's
	// StatusCallback).
	WebhookURL string
	// Enabled is false for an account an admin turned off: its webhooks
	// are acknowledged and dropped, items naming it in another account's
	// delivery are skipped, and its queued replies fail.
	Enabled bool
}

// SignedRequest is a webhook request as a signature check sees it.
type SignedRequest struct {
	Header http.Header
	Body   []byte
	// URL is the URL the provider requested as the provider sees it: the
	// public URL, path and query (Twilio signs it).
	URL string
}

// Batch is what one webhook delivery asks of Parley.
type Batch struct {
	Messages   []Message
	Statuses   []Status
	Watermarks []Watermark
}

// Empty reports whether the delivery carries nothing to act on (an event
// type we do not handle), so it is acknowledged without being stored.
func (b *Batch) Empty() bool {
	return b == nil || len(b.Messages)+len(b.Statuses)+len(b.Watermarks) == 0
}

// Lanes are the order keys of the batch's conversations, sorted: one per
// customer (and our number or page, when an item names another than home,
// the receiving account's external id). The intake stores one event per
// lane, so that the worker keeps each customer's messages in order and
// processes different customers in parallel. Statuses carry no customer
// and keep no order (they only move forward, and wait for their message):
// they belong to the first lane, or to an event of no lane.
func (b *Batch) Lanes(home string) []string {
	var keys []string
	add := func(route, party string) {
		if k := laneKey(route, party, home); !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	for _, m := range b.Messages {
		add(m.Route, m.SenderID)
	}
	for _, wm := range b.Watermarks {
		add(wm.Route, wm.Recipient)
	}
	slices.Sort(keys)
	return keys
}

// Lane is the part of the batch that is lane key's (see Lanes): its
// messages and watermarks, and the statuses when key is the first lane.
func (b *Batch) Lane(key, home string) *Batch {
	lanes := b.Lanes(home)
	out := &Batch{}
	if len(lanes) > 0 && lanes[0] == key {
		out.Statuses = b.Statuses
	}
	for _, m := range b.Messages {
		if laneKey(m.Route, m.SenderID, home) == key {
			out.Messages = append(out.Messages, m)
		}
	}
	for _, wm := range b.Watermarks {
		if laneKey(wm.Route, wm.Recipient, home) == key {
			out.Watermarks = append(out.Watermarks, wm)
		}
	}
	return out
}

// laneKey is "{route}|{customer}", the route empty for the receiving
// account's own number or page.
func laneKey(route, party, home string) string {
	if route == home {
		route = ""
	}
	return route + "|" + party
}

// Message is a customer's message as an adapter parsed it.
type Message struct {
	// Route is the provider's id of our side the message was sent to (a
	// WhatsApp phone number id, a page id); empty means the account whose
	// webhook received it.
	Route string
	// ProviderMessageID deduplicates redeliveries (wamid, mid, MessageSid).
	ProviderMessageID string
	SenderID          string
	SenderName        string
	// At is the provider's timestamp; zero means when the webhook arrived.
	At   time.Time
	Text string
	// Media are files to download and attach.
	Media []MediaRef
}

// MediaRef points at a file of an inbound message.
type MediaRef struct {
	// Kind is the provider's word: image, video, audio, document, sticker,
	// file.
	Kind string
	// ID is a provider media id (WhatsApp), resolved to a URL on download.
	ID string
	// URL is a direct download URL (Messenger, Twilio).
	URL         string
	ContentType string
	Filename    string
	// SHA256 is the provider's digest of the file (hex or base64), checked
	// after download when set.
	SHA256 string
}

// Status is a provider's delivery status for one of our messages.
type Status struct {
	Route             string
	ProviderMessageID string
	Status            schematype.DeliveryStatus
	Reason            string
	At                time.Time
}

// Watermark says that every message we sent to Recipient up to Until has
// reached Status (Messenger's delivery and read watermarks).
type Watermark struct {
	Route     string
	Recipient string
	Status    schematype.DeliveryStatus
	Until     time.Time
}

// Download is a media file being fetched from a provider.
type Download struct {
	Body        io.ReadCloser
	ContentType string
	Filename    string
	// SHA256 is the digest the provider announced, if any.
	SHA256 string
}

// Outgoing is an agent's reply as an adapter sends it.
type Outgoing struct {
	Body  string
	Media []OutMedia
	// Template, when set, is sent instead of Body (a WhatsApp template:
	// Body is its rendered text, kept for the timeline).
	Template *schematype.TemplateMessage
	// Tag is the message tag of a reply outside the standard window
	// (Messenger's HUMAN_AGENT); empty for none.
	Tag string
}

// OutMedia is an attachment of a reply, as a signed, expiring public URL.
type OutMedia struct {
	URL         string
	ContentType string
	Filename    string
}

// Part is one provider API call of a reply: WhatsApp and Messenger take one
// text or one file per message, Twilio takes a body and several files.
type Part struct {
	Text  string
	Media []OutMedia
	// Template and Tag: see Outgoing.
	Template *schematype.TemplateMessage
	Tag      string
}

// Provider is one messaging provider's adapter.
type Provider interface {
	// Facts are what Parley knows of the provider beside the adapter: the
	// kind of account it serves, its name in webhook paths and stored
	// webhook events, its send rate and throttling codes.
	Facts() provider.Facts
	// Verify checks a webhook's signature: ErrNoSignature, ErrBadSignature
	// or ErrMalformed when it does not hold.
	Verify(req SignedRequest, acct *Account) error
	// Parse turns a verified webhook body into a Batch; an error means the
	// body is malformed.
	Parse(body []byte) (*Batch, error)
	// Ack answers a webhook that was accepted.
	Ack(w http.ResponseWriter)
	// Fetch starts downloading an inbound media file.
	Fetch(ctx context.Context, acct *Account, ref MediaRef) (*Download, error)
	// Split turns a reply into the provider calls that send it, in order.
	Split(out Outgoing) []Part
	// Send makes one call and returns the provider's message id. A refusal
	// by the provider is a *SendError; any other error is a network
	// failure, worth another try.
	Send(ctx context.Context, acct *Account, to string, part Part) (string, error)
}

// Handshaker is a Provider with a webhook verification handshake (GET).
type Handshaker interface {
	// Handshake returns the challenge to echo, and whether the request
	// carries the account's verify token.
	Handshake(q url.Values, acct *Account) (challenge string, ok bool)
}

// Profiler is a Provider that can name a new sender (Messenger's profile
// API).
type Profiler interface {
	ProfileName(ctx context.Context, acct *Account, senderID string) (string, error)
}

// Signature errors of Verify.
var (
	ErrNoSignature  = errors.New("missing signature")
	ErrBadSignature = errors.New("signature does not match")
	ErrMalformed    = errors.New("malformed request")
)

// SendError is a provider's refusal of a send call.
type SendError struct {
	// Code is the provider's error code, if any ("131047", "20429").
	Code string
	// Reason is what the agent sees when the message fails.
	Reason string
	// Retryable says another attempt may succeed (rate limits, 5xx).
	Retryable bool
	// RetryAfter is the provider's requested pause, if it said.
	RetryAfter time.Duration
	// Status is the HTTP status code.
	Status int
}

// Error implements error.
func (e *SendError) Error() string {
	return fmt.Sprintf("provider refused (status %d, code %s): %s", e.Status, e.Code, e.Reason)
}

// MediaError is a failed media download; Permanent ones (not found, too
// large, digest mismatch) are not retried.
type MediaError struct {
	Reason    string
	Permanent bool
}

// Error implements error.
func (e *MediaError) Error() string { return "media: " + e.Reason }

// Conversations is the part of the conversations service the channels use:
// the inbound entry point and the delivery status updates.
type Conversations interface {
	Receive(ctx context.Context, in conversations.Inbound) (*conversations.Received, error)
	ApplyStatus(ctx context.Context, u conversations.StatusUpdate) error
	MarkSent(ctx context.Context, messageID int, providerMessageID string) error
	MarkFailed(ctx context.Context, messageID int, reason string) error
}

// Endpoint joins an account's apiBaseURL (scheme and host, possibly a path
// prefix, of a proxy or test double) or the provider's default base with
// path.
func Endpoint(apiBaseURL, def, path string) string {
	base := def
	if apiBaseURL != "" {
		base = apiBaseURL
	}
	return strings.TrimRight(base, "/") + path
}

// NetworkReason describes a failed HTTP call without its URL, which may
// carry an access token (Messenger's is a query parameter).
func NetworkReason(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "the provider did not answer in time"
	case errors.Is(err, context.Canceled):
		return "the request was cancelled"
	}
	return err.Error()
}

// ParseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return time.Duration(max(secs, 0)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
