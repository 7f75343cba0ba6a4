// Package app wires Parley together from a Config: database, broker,
// services, resolvers and the HTTP server. The binary and the integration
// tests build the same thing through it, so tests exercise what ships.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/graph"
	"github.com/parleyhq/parley/internal/attachments"
	"github.com/parleyhq/parley/internal/attachments/download"
	"github.com/parleyhq/parley/internal/audit"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/channels"
	channelsetup "github.com/parleyhq/parley/internal/channels/setup"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/contacts"
	"github.com/parleyhq/parley/internal/conversations"
	"github.com/parleyhq/parley/internal/eventlog"
	"github.com/parleyhq/parley/internal/httpserver"
	"github.com/parleyhq/parley/internal/labels"
	"github.com/parleyhq/parley/internal/livechat"
	"github.com/parleyhq/parley/internal/metrics"
	"github.com/parleyhq/parley/internal/nodes"
	"github.com/parleyhq/parley/internal/presence"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/queuelive"
	"github.com/parleyhq/parley/internal/ratelimit"
	"github.com/parleyhq/parley/internal/routing"
	"github.com/parleyhq/parley/internal/secrets"
	"github.com/parleyhq/parley/internal/seed"
	"github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/templates"
	"github.com/parleyhq/parley/internal/widget"
	"github.com/parleyhq/parley/internal/worker"
	"github.com/parleyhq/parley/internal/workspace"
)

// App is a running Parley instance's parts.
type App struct {
	Config  config.Config
	Log     *slog.Logger
	DB      *store.DB
	Redis   *redis.Client
	Broker  pubsub.Broker
	Metrics *metrics.Metrics
	// Secrets seals and opens the channel accounts' credentials.
	Secrets   *secrets.Ring
	Auth      *auth.Service
	Workspace *workspace.Service
	// Presence says who is online.
	Presence *presence.Service
	// Events is the durable event log behind every subscription.
	Events *eventlog.Log
	Router *routing.Router
	Convs  *conversations.Service
	// Stats computes queue statistics (queueStats) and live figures.
	Stats  *stats.Service
	Server *httpserver.Server
	// Attachments stores uploads; tests call its Sweep.
	Attachments *attachments.Service
	// Channels receives the WhatsApp, Messenger and SMS webhooks and
	// delivers replies (its workers run from Start).
	Channels *channels.Service
	// QueueFigures reads queues' live figures (queueEvents, the gauges);
	// QueueLive streams them. Its Period (issue 13's queueStats, without
	// the caller check) fills the streams' period figures once wired.
	QueueFigures *queuelive.Service
	QueueLive    *graph.QueueLiveHub
	// Contacts is the contact directory; Start backfills its phone keys.
	Contacts *contacts.Service
	// DemoLogins is set when this start seeded the demo workspace.
	DemoLogins []seed.Login

	stop   context.CancelFunc
	bg     sync.WaitGroup
	ownsDB bool
}

// Options tune what New builds, for tests.
type Options struct {
	// HashCost overrides the bcrypt cost (tests use the minimum).
	HashCost int
	// RedisPrefix isolates a test's pub/sub channels and counters.
	RedisPrefix string
	// DB, when set, is used instead of opening Config's database.
	DB *store.DB
}

// New opens the database (migrating it), connects the broker, builds the
// services and the server, and seeds an empty database as configured.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opt Options) (*App, error) {
	a := &App{Config: cfg, Log: log, Metrics: metrics.New()}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if opt.DB != nil {
		a.DB = opt.DB
	} else {
		db, err := store.Open(ctx, cfg.DatabaseURL, cfg.SQLitePath())
		if err != nil {
			return nil, err
		}
		a.DB, a.ownsDB = db, true
		if err := db.Migrate(ctx); err != nil {
			return nil, err
		}
	}
	prefix := opt.RedisPrefix
	if prefix == "" {
		prefix = "parley:"
	}
	gauge := pubsub.WithActiveGauge(func(d int) { a.Metrics.BrokerSubscriptions.Add(float64(d)) })
	var limiter ratelimit.Limiter
	if cfg.RedisURL != "" {
		ropt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL: %w", err)
		}
		a.Redis = redis.NewClient(ropt)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = a.Redis.Ping(pctx).Err()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("connect to redis: %w", err)
		}
		b, err := pubsub.NewRedis(ctx, a.Redis, pubsub.WithPrefix(prefix), pubsub.WithLogger(log), gauge)
		if err != nil {
			return nil, err
		}
		a.Broker = b
		limiter = ratelimit.NewRedis(a.Redis, prefix+"rl:")
	} else {
		a.Broker = pubsub.NewInMemory(pubsub.WithLogger(log), gauge)
		limiter = ratelimit.NewMemory()
	}

	ring, err := secrets.LoadRing(cfg.SecretKey, cfg.OldSecretKeys, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	a.Secrets = ring

	client := a.DB.Client
	var authOpts []auth.Option
	if opt.HashCost > 0 {
		authOpts = append(authOpts, auth.WithHashCost(opt.HashCost))
	}
	a.Auth = auth.NewService(client, limiter, cfg.TokenTTL, authOpts...)
	a.Workspace = workspace.NewService(client, a.Auth, cfg.PublicURL, a.Secrets)
	a.Events = eventlog.New(client, a.Broker, log)
	a.Events.Retention, a.Events.PollInterval = cfg.EventRetention, cfg.EventPollInterval
	// Every transaction that may change a queue's live figures nudges the
	// queue wallboards of every instance.
	a.Events.Derived = queuelive.Nudges
	if err := a.Events.Init(ctx); err != nil {
		return nil, err
	}
	a.Presence = presence.New(client, a.Events, log)
	a.Presence.Grace = cfg.PresenceGrace
	a.Auth.LoggedIn = a.Presence.Touch
	a.Router = routing.New(client, a.Events, log)
	a.Router.Online = a.Presence.OnlineSince
	a.Presence.Away = func(ctx context.Context, ids []int) {
		if err := a.Router.Withdraw(ctx, ids); err != nil {
			log.Warn("withdraw offers of agents gone offline", "err", err)
		}
	}
	a.Convs = conversations.NewService(client, a.Events, a.Router, log)
	a.Stats = stats.New(client, a.DB.Dialect, a.Presence.OnlineSince)
	a.Stats.SetClock(a.Router.Now)
	a.QueueFigures = queuelive.New(client, a.Stats)
	a.QueueLive = queuelive.NewHub(a.QueueFigures, client, a.Broker, log, graph.RenderQueueStats)
	// The streams' period figures are the day so far, computed once per
	// queue for every subscriber (who are authorised by the hub).
	a.QueueLive.Period = func(ctx context.Context, queueID int, from, to time.Time) (*stats.QueueStats, error) {
		return a.Stats.Compute(ctx, stats.Period{QueueID: queueID, From: from, To: to})
	}
	a.Workspace.QueueChanged = func(ctx context.Context, _ int) {
		if err := queuelive.Nudge(ctx, a.Broker); err != nil {
			log.Warn("nudge queue wallboards", "err", err)
		}
	}
	a.Metrics.WatchQueues(a.queueGauges)
	a.Convs.PresenceGrace = cfg.PresenceGrace
	a.Workspace.Events = a.Events
	// returnOwned gives a deactivated agent's open conversations back to
	// the queues they came from (routed again, with an interaction entry).
	var returnOwned func(ctx context.Context, agentID int, reason string) (int, error)
	returnOwned = a.Convs.ReturnOwned
	a.Workspace.Deactivated = func(ctx context.Context, agentID int) {
		if err := a.Router.Withdraw(ctx, []int{agentID}); err != nil {
			log.Warn("withdraw offers of a deactivated agent", "agent", agentID, "err", err)
		}
		if returnOwned != nil {
			if n, err := returnOwned(ctx, agentID, "owner deactivated"); err != nil {
				log.Warn("return conversations of a deactivated agent", "agent", agentID, "err", err)
			} else if n > 0 {
				log.Info("returned conversations of a deactivated agent", "agent", agentID, "count", n)
			}
		}
	}
	a.Workspace.StatusChanged = func(ctx context.Context, agentID int, st schematype.AgentStatus) {
		if err := a.Presence.Changed(ctx, agentID); err != nil {
			log.Warn("announce status", "err", err)
		}
		if st == schematype.StatusAvailable {
			if err := a.Router.WakeWaiting(ctx); err != nil {
				log.Warn("wake routing", "err", err)
			}
		}
	}
	lookup := nodes.NewService(client)
	a.Convs.RegisterNodes(lookup)
	atts, err := newAttachments(cfg, a.DB, a.Convs, log)
	if err != nil {
		return nil, err
	}
	a.Attachments = atts
	if a.Channels, err = channelsetup.New(client, a.Convs, a.Attachments, log, cfg, limiter, a.Secrets); err != nil {
		return nil, err
	}
	a.Convs.Signals = a.Channels.Signal
	live := livechat.NewService(client, a.Convs, a.Auth, limiter, cfg.PublicURL)
	a.Workspace.MoveConversations = a.Convs.MoveOpenToQueue
	a.Workspace.AccountChanged = func(context.Context, int) { live.Origins.Invalidate() }
	a.Attachments.VisitorGate = live.CheckUpload
	tpls := templates.NewService(client)
	tpls.Conversations = a.Convs
	lbls := labels.NewService(client)
	lbls.Detached = a.Convs.LabelDeleted
	a.Contacts = contacts.NewService(client, a.Convs)
	resolver := &graph.Resolver{
		Auth: a.Auth, Workspace: a.Workspace, Lookup: lookup,
		Templates: tpls, Contacts: a.Contacts,
		Channels:      a.Channels,
		Conversations: a.Convs,
		Presence:      a.Presence,
		LiveChat:      live,
		Attachments:   a.Attachments,
		Audit:         audit.NewService(client),
		Labels:        lbls,
		QueueLive:     a.QueueLive,
		Stats:         a.Stats,
	}

	ready := map[string]httpserver.Pinger{"database": a.DB}
	if a.Redis != nil {
		ready["redis"] = a.Broker
	}
	a.Server = httpserver.New(httpserver.Deps{
		Config: cfg, Log: log, Metrics: a.Metrics, Auth: a.Auth, Presence: a.Presence, Resolver: resolver, Ready: ready,
		Origins: resolver.LiveChat.Origins,
		Extra: a.Channels.AddRoutes(map[string]http.Handler{
			download.Pattern: download.Handler(a.Attachments, log),
			// The website live-chat widget and a page that embeds it.
			widget.ScriptPattern: widget.Script(),
			widget.DemoPattern:   widget.Demo(cfg.PublicURL, resolver.LiveChat, log),
		}),
	})
	if err := a.bootstrap(ctx); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// Start runs the background workers (offer timers, owner away) until Close.
func (a *App) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	a.stop = cancel
	for _, run := range []func(context.Context){a.Router.Run, a.Convs.Run, a.Attachments.Run, a.Channels.Run, a.Events.Run, a.Presence.Run, a.purgeTokens, a.closeRevokedSockets, a.backfillPhoneKeys} {
		a.bg.Add(1)
		go func() {
			defer a.bg.Done()
			run(ctx)
		}()
	}
}

// closeRevokedSockets listens to the sessions topic and, whenever some
// instance revoked tokens or changed a role, rechecks this instance's open
// websockets at once (sockets of those tokens close with 4403) instead of
// waiting for PARLEY_WS_RECHECK_INTERVAL, which stays the backstop. The
// event log makes a publish lost between commit and broker show up at its
// next poll.
func (a *App) closeRevokedSockets(ctx context.Context) {
	for ctx.Err() == nil {
		events, err := a.Events.Subscribe(ctx, pubsub.SessionsTopic, "")
		if err != nil {
			a.Log.Warn("subscribe to token revocations", "err", err)
		} else {
			for range events {
				a.Server.RecheckWebsockets()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// queueGauges is what the per-queue Prometheus gauges show: every queue's
// live figures, read at scrape time.
func (a *App) queueGauges(ctx context.Context) ([]metrics.QueueFigures, error) {
	all, err := a.QueueFigures.All(ctx)
	if err != nil {
		a.Log.Warn("queue gauges", "err", err)
		return nil, err
	}
	now := time.Now()
	out := make([]metrics.QueueFigures, len(all))
	for i, l := range all {
		out[i] = metrics.QueueFigures{ID: l.Queue.ID, Name: l.Queue.Name, Waiting: l.WaitingNow, AgentsAvailable: l.AgentsAvailable}
		if !l.OldestWaitingSince.IsZero() {
			out[i].OldestWaitingSeconds = max(0, now.Sub(l.OldestWaitingSince).Seconds())
		}
	}
	return out, nil
}

// backfillPhoneKeys keys the contacts written before the unique phone key
// existed, once per start (idempotent; instances may run it together).
// It logs counts only, never numbers or names.
func (a *App) backfillPhoneKeys(ctx context.Context) {
	n, err := a.Contacts.BackfillPhoneKeys(ctx)
	if err != nil && ctx.Err() == nil {
		a.Log.Warn("backfill contact phone keys", "err", err)
	}
	if n.Keyed > 0 || n.Shared > 0 || n.Invalid > 0 {
		a.Log.Info("backfilled contact phone keys", "keyed", n.Keyed,
			"unkeyed_shared_number", n.Shared, "unkeyed_invalid_number", n.Invalid)
	}
}

// TokenPurgeEvery is how often expired login and visitor tokens are deleted.
const TokenPurgeEvery = time.Hour

// purgeTokens deletes expired tokens now and then, so the table holds only
// tokens that can still authenticate.
func (a *App) purgeTokens(ctx context.Context) {
	worker.Loop{Name: "purge expired tokens", Every: TokenPurgeEvery, AtStart: true, Log: a.Log,
		Pass: worker.Once(func(ctx context.Context) error {
			n, err := a.Auth.PurgeExpired(ctx)
			if n > 0 {
				a.Log.Info("purged expired tokens", "count", n)
			}
			return err
		}),
	}.Run(ctx)
}

// bootstrap creates the first system owner from the environment and seeds
// the demo workspace, on a database that has no agents yet.
func (a *App) bootstrap(ctx context.Context) error {
	any, err := a.Workspace.AnyAgents(ctx)
	if err != nil || any {
		return err
	}
	if a.Config.AdminEmail != "" {
		if _, err := a.Workspace.CreateAgentUnchecked(ctx, workspace.NewAgent{
			Name: "System owner", Email: a.Config.AdminEmail, Extension: "1000",
			Role: schematype.RoleSystemOwner, Password: a.Config.AdminPassword,
		}); err != nil {
			return fmt.Errorf("create the first system owner: %w", err)
		}
		a.Log.Info("created the first system owner", "email", a.Config.AdminEmail)
	}
	if a.Config.Demo {
		logins, err := seed.Demo(ctx, a.DB.Client, a.Workspace)
		if err != nil {
			return fmt.Errorf("seed demo workspace: %w", err)
		}
		a.DemoLogins = logins
		a.Log.Info("seeded the demo workspace", "agents", len(logins))
	}
	return nil
}

// Close stops the workers and releases everything New opened, broker first
// so that subscriptions complete before the database goes away (a database
// passed in Options stays open).
func (a *App) Close() {
	if a.stop != nil {
		a.stop()
		a.bg.Wait()
	}
	if a.Broker != nil {
		_ = a.Broker.Close()
	}
	if a.Redis != nil {
		_ = a.Redis.Close()
	}
	if a.DB != nil && a.ownsDB {
		_ = a.DB.Close()
	}
}
