package channels

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/channels/provider"
	"github.com/parleyhq/parley/internal/ratelimit"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/worker"
)

// Settings are the channels' settings from the configuration.
type Settings struct {
	// GraphVersion is the Graph API version for WhatsApp and Messenger
	// (config.Config.GraphAPIVersion).
	GraphVersion string
}

// NewHTTPClient is the client the adapters call providers with: bounded in
// time, never following a redirect to something that is not http(s), and
// never taking credentials along to another host (Twilio's media URLs
// redirect to a storage host that must not see the account's token; Go
// itself only drops them for another domain, not another port).
func NewHTTPClient() *http.Client {
	return &http.Client{
		// A safety net: API calls are bounded by APITimeout, downloads by
		// the service's MediaTimeout.
		Timeout: 10 * time.Minute,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return fmt.Errorf("too many redirects")
			}
			if req.URL.Scheme != "https" && req.URL.Scheme != "http" {
				return fmt.Errorf("redirect to a %s URL", req.URL.Scheme)
			}
			if req.URL.Host != via[0].URL.Host {
				req.Header.Del("Authorization")
			}
			return nil
		},
	}
}

// Deps are what the Service is built from.
type Deps struct {
	DB            *ent.Client
	Conversations Conversations
	Media         MediaStore
	Links         Links
	Log           *slog.Logger
	// PublicURL is PARLEY_PUBLIC_URL: webhook URLs and Twilio signatures.
	PublicURL string
	Providers []Provider
	// Shared, when set, caps each account's sends per second across
	// instances (the Redis limiter), on top of each instance's bucket.
	Shared ratelimit.Limiter
	// Secrets opens the credentials the workspace service sealed; nil
	// opens only plaintext (rows from before encryption).
	Secrets *secrets.Ring
}

// Service runs the webhook intake, the events worker and the outbox.
// Its exported fields tune it; set them before Run.
type Service struct {
	db        *ent.Client
	convs     Conversations
	media     MediaStore
	links     Links
	log       *slog.Logger
	publicURL string
	providers map[string]Provider
	byChannel map[schematype.Channel]Provider
	shared    ratelimit.Limiter
	secrets   *secrets.Ring
	buckets   *buckets

	// MaxWebhookBody is the largest webhook body accepted (1 MiB).
	MaxWebhookBody int64
	// MaxMediaBytes is the largest inbound file kept (100 MB, WhatsApp's
	// document limit).
	MaxMediaBytes int64
	// MediaTimeout bounds one media download.
	MediaTimeout time.Duration
	// MediaURLTTL is how long the signed URL of a reply's attachment
	// works: long enough for a provider that queues the message (Twilio)
	// to fetch the file.
	MediaURLTTL time.Duration

	// EventInterval is how often the events worker looks for due events
	// when not woken by the intake.
	EventInterval time.Duration
	// EventLease is how long a claimed event is its worker's.
	EventLease time.Duration
	// EventAttempts is how often an event is tried before it is left for
	// an operator (last_error says why); media that cannot be fetched by
	// the last attempt becomes a note in the message instead.
	EventAttempts int
	EventBackoff  Backoff

	// OutboxInterval is how often the outbox looks for due messages.
	OutboxInterval time.Duration
	// OutboxLease is how long a claimed message is its worker's; a send
	// never runs past it.
	OutboxLease time.Duration
	// OutboxAttempts is how often a send is tried before the message is
	// FAILED.
	OutboxAttempts int
	OutboxBackoff  Backoff
	// MaxRetryAfter caps a provider's Retry-After.
	MaxRetryAfter time.Duration
	// ThrottlePause pauses an account's sends after a provider's "slow
	// down" that named no Retry-After.
	ThrottlePause time.Duration
	// Rates are the per-account send rates by channel (each provider's
	// provider.Facts.Rate by default).
	Rates map[schematype.Channel]Rate

	// Batch is how many events or messages one pass claims.
	Batch int
	// Concurrency is how many replies the outbox sends at once.
	Concurrency int
	// EventConcurrency is how many webhook events (of different
	// customers) the events worker processes at once.
	EventConcurrency int
	// Retention is how long processed webhook events and unclaimed
	// early statuses are kept.
	Retention time.Duration
	// SweepInterval is how often old rows are deleted.
	SweepInterval time.Duration
	// ProfileLookup asks Messenger's profile API for a new sender's name.
	ProfileLookup bool

	Now func() time.Time

	kickEvents chan struct{}
	stored     *groupInsert
	// slots bounds the events in flight (EventConcurrency, fixed at the
	// first pass).
	slots       chan struct{}
	shardsMu    sync.Mutex
	shardsReady bool
}

// New builds the service with production defaults.
func New(d Deps) *Service {
	s := &Service{
		db: d.DB, convs: d.Conversations, media: d.Media, links: d.Links, log: d.Log,
		publicURL: d.PublicURL, providers: map[string]Provider{}, byChannel: map[schematype.Channel]Provider{},
		shared: d.Shared, secrets: d.Secrets, buckets: newBuckets(),

		MaxWebhookBody: 1 << 20,
		MaxMediaBytes:  100 << 20,
		MediaTimeout:   2 * time.Minute,
		MediaURLTTL:    24 * time.Hour,
		EventInterval:  time.Second,
		EventLease:     5 * time.Minute,
		EventAttempts:  12,
		EventBackoff:   Backoff{Base: 2 * time.Second, Max: 30 * time.Minute},
		OutboxInterval: 500 * time.Millisecond,
		OutboxLease:    5 * time.Minute,
		OutboxAttempts: 8,
		OutboxBackoff:  Backoff{Base: 5 * time.Second, Max: 10 * time.Minute},
		MaxRetryAfter:  time.Hour,
		ThrottlePause:  time.Second,
		Rates:          map[schematype.Channel]Rate{},
		Batch:          50,
		Concurrency:    4,
		// Each event in flight holds a database connection for its
		// transaction; the pool has 20.
		EventConcurrency: 12,
		Retention:        7 * 24 * time.Hour,
		SweepInterval:    time.Hour,
		ProfileLookup:    true,
		Now:              time.Now,
		kickEvents:       worker.NewWake(),
	}
	s.stored = &groupInsert{db: d.DB, max: 64}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, f := range provider.All() {
		if f.Rate.PerSecond > 0 {
			s.Rates[f.Channel] = f.Rate
		}
	}
	for _, p := range d.Providers {
		f := p.Facts()
		s.providers[f.Name] = p
		s.byChannel[f.Channel] = p
	}
	return s
}

// Routes are the webhook endpoints, by ServeMux pattern: a GET handshake
// and a POST for WhatsApp and Messenger, a POST for Twilio, each at its
// provider.Facts.WebhookPattern.
func (s *Service) Routes() map[string]http.Handler {
	out := map[string]http.Handler{}
	for _, p := range s.providers {
		path := p.Facts().WebhookPattern()
		out["POST "+path] = s.intake(p)
		if h, ok := p.(Handshaker); ok {
			out["GET "+path] = s.handshake(p, h)
		}
	}
	return out
}

// AddRoutes adds the webhook endpoints to extra (httpserver.Deps.Extra)
// and returns it.
func (s *Service) AddRoutes(extra map[string]http.Handler) map[string]http.Handler {
	if extra == nil {
		extra = map[string]http.Handler{}
	}
	for p, h := range s.Routes() {
		extra[p] = h
	}
	return extra
}

// Run runs the events worker, the outbox and the sweeper until ctx ends.
func (s *Service) Run(ctx context.Context) {
	d := s.newDispatcher()
	defer d.wait()
	worker.RunAll(ctx, d.loop(), s.outboxLoop(), s.sweepLoop())
}

// account loads a channel account as the adapters see it.
func (s *Service) account(ctx context.Context, id int) (*Account, error) {
	a, err := s.db.ChannelAccount.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return s.toAccount(a)
}

// toAccount is where stored credentials are opened: the adapters get them
// in plaintext, and only through an Account.
func (s *Service) toAccount(a *ent.ChannelAccount) (*Account, error) {
	cfg := a.Config
	if err := s.secrets.OpenAll(cfg.Secrets()...); err != nil {
		return nil, fmt.Errorf("channel account %d: %w", a.ID, err)
	}
	return &Account{
		ID: a.ID, Channel: a.Channel, ExternalID: a.ExternalID, Config: cfg,
		WebhookURL: s.publicURL + provider.WebhookPath(a.Channel, a.ID),
		Enabled:    a.Enabled,
	}, nil
}

// sweepLoop deletes what is no longer needed: webhook events done (or
// given up) longer than Retention ago, and early delivery statuses whose
// message never appeared (a status for a message another tool sent).
func (s *Service) sweepLoop() worker.Loop {
	return worker.Loop{Name: "channels sweep", Every: s.SweepInterval, Log: s.log, Pass: worker.Once(s.Sweep)}
}
