package channels

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/worker"
)

// webhookAccount resolves the {id} of a webhook path to an account of the
// provider's channel; anything else is 404, whether the id is unknown or
// belongs to another channel.
func (s *Service) webhookAccount(w http.ResponseWriter, r *http.Request, p Provider) *Account {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id <= 0 {
		http.NotFound(w, r)
		return nil
	}
	a, err := s.db.ChannelAccount.Get(r.Context(), id)
	if ent.IsNotFound(err) || (err == nil && a.Channel != p.Facts().Channel) {
		http.NotFound(w, r)
		return nil
	}
	var acct *Account
	if err == nil {
		acct, err = s.toAccount(a)
	}
	if err != nil {
		s.log.Error("webhook account", "provider", p.Facts().Name, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return nil
	}
	return acct
}

// handshake answers Meta's GET verification: the challenge as plain text
// for the account's verify token, 403 otherwise.
func (s *Service) handshake(p Provider, h Handshaker) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		acct := s.webhookAccount(w, r, p)
		if acct == nil {
			return
		}
		challenge, ok := h.Handshake(r.URL.Query(), acct)
		if !ok {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = io.WriteString(w, challenge)
	}
}

// intake receives a webhook: size limit, signature over the raw body, a
// parse to refuse malformed bodies, then the body is stored as a
// WebhookEvent before the provider gets its answer, and the events worker
// is woken. Nothing is stored for a request that fails any check, nor for
// an event type Parley does not handle.
//
// A disabled account's deliveries get the provider's ordinary answer at
// once (Meta's 200, Twilio's empty TwiML), unread and unchecked, so that
// the provider counts them delivered and retries nothing, and nothing of
// them is stored. Its GET handshake is answered as usual: it stores
// nothing either, and lets an admin (re)subscribe the webhook before
// turning the account back on.
func (s *Service) intake(p Provider) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		acct := s.webhookAccount(w, r, p)
		if acct == nil {
			return
		}
		if !acct.Enabled {
			s.log.Debug("webhook of a disabled account dropped", "provider", p.Facts().Name, "account", acct.ID)
			p.Ack(w)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.MaxWebhookBody))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "cannot read the request body", http.StatusBadRequest)
			return
		}
		req := SignedRequest{Header: r.Header, Body: body, URL: s.publicURL + r.URL.RequestURI()}
		switch err := p.Verify(req, acct); {
		case errors.Is(err, ErrNoSignature):
			http.Error(w, "signature required", http.StatusUnauthorized)
			return
		case errors.Is(err, ErrMalformed):
			http.Error(w, "malformed request", http.StatusBadRequest)
			return
		case err != nil:
			s.log.Warn("webhook signature refused", "provider", p.Facts().Name, "account", acct.ID)
			http.Error(w, "invalid signature", http.StatusForbidden)
			return
		}
		batch, err := p.Parse(body)
		if err != nil {
			http.Error(w, "malformed body", http.StatusBadRequest)
			return
		}
		if batch.Empty() {
			p.Ack(w)
			return
		}
		// The provider's disconnect must not undo a store under way.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
		defer cancel()
		now := s.Now()
		lanes := batch.Lanes(acct.ExternalID)
		rows := make([]*ent.WebhookEventCreate, 0, max(len(lanes), 1))
		mk := func() *ent.WebhookEventCreate {
			return s.db.WebhookEvent.Create().SetChannelAccountID(acct.ID).SetProvider(p.Facts().Name).
				SetBody(body).SetReceivedAt(now).SetNextAttemptAt(now)
		}
		if len(lanes) == 0 {
			rows = append(rows, mk().SetShard(shardOf(acct.ID, nil)))
		}
		for _, k := range lanes {
			rows = append(rows, mk().SetOrderKey(k).SetShard(shardOf(acct.ID, &k)))
		}
		if err := s.stored.add(ctx, rows); err != nil {
			s.log.Error("store webhook event", "provider", p.Facts().Name, "account", acct.ID, "err", err)
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		worker.Kick(s.kickEvents)
		p.Ack(w)
	}
}

// groupInsert stores the webhook events of concurrent deliveries together:
// a delivery's rows join a queue, and one of the waiting deliveries
// inserts everything queued in one statement (one commit) while the others
// wait for its outcome. Each delivery is still answered only after its
// rows are committed; under load, 16 deliveries cost one INSERT instead of
// 16.
type groupInsert struct {
	db *ent.Client
	// max is the most rows of one statement.
	max     int
	mu      sync.Mutex
	queue   []*pendingRows
	running bool
}

type pendingRows struct {
	rows []*ent.WebhookEventCreate
	done chan error
}

// add stores rows and returns when they are committed (or failed).
func (g *groupInsert) add(ctx context.Context, rows []*ent.WebhookEventCreate) error {
	p := &pendingRows{rows: rows, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, p)
	lead := !g.running
	g.running = true
	g.mu.Unlock()
	if lead {
		g.flush(p)
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush inserts queued rows, batch after batch, until the queue is empty;
// once mine (the leader's) is done, the rest is left to a goroutine, so
// that no delivery waits for more than its own batch and the one before.
func (g *groupInsert) flush(mine *pendingRows) {
	for {
		g.mu.Lock()
		var batch []*pendingRows
		n := 0
		for len(g.queue) > 0 && (n == 0 || n+len(g.queue[0].rows) <= g.max) {
			n += len(g.queue[0].rows)
			batch = append(batch, g.queue[0])
			g.queue = g.queue[1:]
		}
		if len(batch) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		rows := make([]*ent.WebhookEventCreate, 0, n)
		for _, p := range batch {
			rows = append(rows, p.rows...)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := g.db.WebhookEvent.CreateBulk(rows...).Exec(ctx)
		cancel()
		for _, p := range batch {
			p.done <- err
		}
		if mine != nil && slices.Contains(batch, mine) {
			g.mu.Lock()
			if len(g.queue) == 0 {
				g.running = false
				g.mu.Unlock()
				return
			}
			g.mu.Unlock()
			go g.flush(nil)
			return
		}
	}
}
