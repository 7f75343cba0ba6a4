package channels

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	mrand "math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/attachment"
	"github.com/parleyhq/parley/ent/channelaccount"
	"github.com/parleyhq/parley/ent/contactidentity"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/pendingstatus"
	"github.com/parleyhq/parley/ent/predicate"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/ent/webhookevent"
	"github.com/parleyhq/parley/ent/webhookshard"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/conversations"
	"github.com/parleyhq/parley/internal/worker"
)

// The events worker. The intake stores each webhook as one event per
// conversation (Batch.Lanes), with an order key naming the customer and a
// shard, the key's hash out of Shards. The worker processes them:
//
//   - Exclusion: a worker claims a shard (a WebhookShard row) with a
//     conditional update that sets a lease; of several instances exactly one
//     wins it, and only the holder processes the shard's events. One
//     customer's events share a shard, so they never run on two instances
//     at once. Shards with due events are claimed least recently served
//     first, several at a time.
//   - Order: the holder reads the shard's pending events in id order (the
//     order they were stored) and groups them by order key. Each key's
//     events run one after the other; different keys run in parallel,
//     EventConcurrency at a time over all shards held. A key whose oldest
//     pending event waits for a retry is left out until then, and an event
//     that fails stops its key's line for this round: nothing of one
//     customer overtakes an earlier message of theirs. An event given up
//     (next_attempt_at cleared) no longer holds its line.
//   - Work: a shard's accounts are loaded once, and which of its messages
//     are stored already is asked once, so redeliveries cost no Receive;
//     each message goes through the conversations service (the one inbound
//     entry point, idempotent on the provider's message id).
//   - Outcome: the successes of a shard are recorded in one UPDATE, retries
//     and failures one by one, each guarded by the shard's lease token, then
//     the shard is released. Work stops before the lease ends. A crash
//     before the outcome is recorded processes the events again when the
//     lease ends, which changes nothing.
//
// Run keeps shards claimed as they finish; ProcessEvents is one synchronous
// pass (tests, tools).

// Shards is how many shards webhook events are spread over. Changing it
// re-shards events in flight, which may reorder them: keep it.
const Shards = 64

// dropError marks an event that can never be processed (its account is
// gone, its body no longer parses): it is closed with the error recorded,
// not retried.
type dropError struct{ error }

// shardOf is the shard of an order key (a random one for no key).
func shardOf(account int, key *string) int {
	if key == nil {
		return mrand.IntN(Shards)
	}
	h := fnv.New32a()
	fmt.Fprintf(h, "%d\x00%s", account, *key)
	return int(h.Sum32() % Shards)
}

// heldShard is a shard this worker holds, with what its events share.
type heldShard struct {
	number int
	token  string
	until  time.Time
	// accounts of the shard's events; broken ones could not be opened
	// (their events are retried).
	accounts map[int]*Account
	broken   map[int]error
	// stored are the provider message ids of the shard's messages
	// already stored; checked the accounts they were asked for.
	stored  map[seenKey]bool
	checked map[int]bool
}

type seenKey struct {
	account int
	id      string
}

// owned keeps rows only while the shard's lease is still the holder's.
func (h *heldShard) owned() predicate.WebhookEvent {
	return predicate.WebhookEvent(func(sel *sql.Selector) {
		t := sql.Table(webhookshard.Table)
		sel.Where(sql.Exists(sql.Select(t.C(webhookshard.FieldID)).From(t).Where(sql.And(
			sql.EQ(t.C(webhookshard.FieldNumber), h.number), sql.EQ(t.C(webhookshard.FieldLeaseToken), h.token),
		))))
	})
}

// eventSlots bounds the events in flight over all shards held to
// EventConcurrency (as it was at the first pass).
func (s *Service) eventSlots() chan struct{} {
	s.shardsMu.Lock()
	defer s.shardsMu.Unlock()
	if s.slots == nil {
		s.slots = make(chan struct{}, max(s.EventConcurrency, 1))
	}
	return s.slots
}

// ensureShards creates the shard rows once.
func (s *Service) ensureShards(ctx context.Context) error {
	s.shardsMu.Lock()
	defer s.shardsMu.Unlock()
	if s.shardsReady {
		return nil
	}
	rows := make([]*ent.WebhookShardCreate, Shards)
	for i := range rows {
		rows[i] = s.db.WebhookShard.Create().SetNumber(i).SetLeaseUntil(time.Unix(0, 0))
	}
	if err := s.db.WebhookShard.CreateBulk(rows...).OnConflictColumns(webhookshard.FieldNumber).DoNothing().Exec(ctx); err != nil {
		return err
	}
	s.shardsReady = true
	return nil
}

// claimShards claims up to n free shards that have due events.
func (s *Service) claimShards(ctx context.Context, n int) ([]*heldShard, error) {
	if err := s.ensureShards(ctx); err != nil {
		return nil, err
	}
	now := s.Now()
	tok := newToken()
	due := predicate.WebhookShard(func(sel *sql.Selector) {
		b := sql.Dialect(sel.Dialect())
		sh := b.Table(webhookshard.Table).As("sh")
		ev := b.Table(webhookevent.Table).As("ev")
		free := b.Select(sh.C(webhookshard.FieldID)).From(sh).Where(sql.And(
			sql.LT(sh.C(webhookshard.FieldLeaseUntil), now),
			sql.Exists(b.Select(ev.C(webhookevent.FieldID)).From(ev).Where(sql.And(
				sql.ColumnsEQ(ev.C(webhookevent.FieldShard), sh.C(webhookshard.FieldNumber)),
				sql.LTE(ev.C(webhookevent.FieldNextAttemptAt), now),
			))),
		)).OrderBy(sh.C(webhookshard.FieldLeaseUntil)).Limit(n)
		sel.Where(sql.In(sel.C(webhookshard.FieldID), free))
	})
	until := now.Add(s.EventLease)
	// The shard's own condition is repeated outside the subquery: a
	// concurrent claim of the same row is re-checked against it.
	c, err := s.db.WebhookShard.Update().Where(webhookshard.LeaseUntilLT(now), due).
		SetLeaseUntil(until).SetLeaseToken(tok).Save(ctx)
	if err != nil || c == 0 {
		return nil, err
	}
	rows, err := s.db.WebhookShard.Query().Where(webhookshard.LeaseToken(tok)).All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*heldShard, len(rows))
	for i, r := range rows {
		out[i] = &heldShard{number: r.Number, token: tok, until: until}
	}
	return out, nil
}

// releaseShard ends the holder's lease.
func (s *Service) releaseShard(h *heldShard) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.db.WebhookShard.Update().Where(webhookshard.Number(h.number), webhookshard.LeaseToken(h.token)).
		SetLeaseUntil(s.Now()).SetLeaseToken("").Exec(ctx); err != nil {
		s.log.Warn("release webhook shard", "shard", h.number, "err", err)
	}
}

// load reads the shard's accounts (one query) and which of its messages
// are stored already (one query).
func (s *Service) load(ctx context.Context, h *heldShard, evs []*ent.WebhookEvent) error {
	h.accounts, h.broken, h.stored, h.checked = map[int]*Account{}, map[int]error{}, map[seenKey]bool{}, map[int]bool{}
	var ids []int
	for _, ev := range evs {
		if !slices.Contains(ids, ev.ChannelAccountID) {
			ids = append(ids, ev.ChannelAccountID)
		}
	}
	rows, err := s.db.ChannelAccount.Query().Where(channelaccount.IDIn(ids...)).All(ctx)
	if err != nil {
		return err
	}
	for _, r := range rows {
		a, err := s.toAccount(r)
		if err != nil {
			h.broken[r.ID] = err
			continue
		}
		h.accounts[a.ID] = a
		h.checked[a.ID] = true
	}
	var pids []string
	for _, ev := range evs {
		if p := s.providers[ev.Provider]; p != nil && h.accounts[ev.ChannelAccountID] != nil {
			if batch, err := p.Parse(ev.Body); err == nil {
				for _, m := range batch.Messages {
					if m.ProviderMessageID != "" {
						pids = append(pids, m.ProviderMessageID)
					}
				}
			}
		}
	}
	if len(pids) == 0 {
		return nil
	}
	seen, err := s.db.Message.Query().Where(
		message.ChannelAccountIDIn(ids...), message.ProviderMessageIDIn(pids...),
	).Select(message.FieldChannelAccountID, message.FieldProviderMessageID).All(ctx)
	if err != nil {
		return err
	}
	for _, m := range seen {
		if m.ChannelAccountID != nil && m.ProviderMessageID != nil {
			h.stored[seenKey{*m.ChannelAccountID, *m.ProviderMessageID}] = true
		}
	}
	return nil
}

// lines groups a shard's pending events (in id order) by order key, in
// order, leaving out a key whose oldest pending event is not due yet.
func lines(evs []*ent.WebhookEvent, now time.Time) [][]*ent.WebhookEvent {
	type lane struct {
		account int
		key     string
	}
	var (
		out     [][]*ent.WebhookEvent
		at      = map[lane]int{}
		blocked = map[lane]bool{}
	)
	for _, ev := range evs {
		if ev.OrderKey == nil {
			if !ev.NextAttemptAt.After(now) {
				out = append(out, []*ent.WebhookEvent{ev})
			}
			continue
		}
		l := lane{ev.ChannelAccountID, *ev.OrderKey}
		if blocked[l] {
			continue
		}
		if ev.NextAttemptAt.After(now) {
			blocked[l] = true
			continue
		}
		i, ok := at[l]
		if !ok {
			i = len(out)
			at[l] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], ev)
	}
	return out
}

// processShard processes a held shard's pending events, up to Batch, and
// releases it; it returns how many it processed (successes or not).
func (s *Service) processShard(ctx context.Context, h *heldShard) (int, error) {
	defer s.releaseShard(h)
	evs, err := s.db.WebhookEvent.Query().Where(
		webhookevent.Shard(h.number), webhookevent.NextAttemptAtNotNil(),
	).Order(ent.Asc(webhookevent.FieldID)).Limit(max(s.Batch, 1)).All(ctx)
	if err != nil || len(evs) == 0 {
		return 0, err
	}
	if err := s.load(ctx, h, evs); err != nil {
		return 0, err
	}
	// Work stops before the lease ends, so no other worker starts on the
	// shard while this one still runs.
	wctx, cancel := context.WithDeadline(ctx, h.until.Add(-s.EventLease/10))
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done []int
		n    int
	)
	slots := s.eventSlots()
	for _, line := range lines(evs, s.Now()) {
		wg.Go(func() {
			for _, ev := range line {
				slots <- struct{}{}
				ok := s.handleEvent(wctx, ctx, h, ev)
				<-slots
				mu.Lock()
				n++
				if ok {
					done = append(done, ev.ID)
				}
				mu.Unlock()
				if !ok || wctx.Err() != nil {
					return // later events of the customer wait
				}
			}
		})
	}
	wg.Wait()
	if len(done) > 0 {
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer fcancel()
		if err := s.db.WebhookEvent.Update().Where(webhookevent.IDIn(done...), h.owned()).
			SetProcessedAt(s.Now()).ClearNextAttemptAt().ClearLeaseUntil().SetLastError("").AddAttempts(1).Exec(fctx); err != nil {
			return n, err
		}
	}
	return n, nil
}

// ProcessEvents claims shards with due events and processes them (up to
// Batch events each); it returns how many events it processed.
func (s *Service) ProcessEvents(ctx context.Context) (int, error) {
	held, err := s.claimShards(ctx, s.shardsAtOnce())
	if err != nil {
		return 0, err
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
		errs  []error
	)
	for _, h := range held {
		wg.Go(func() {
			n, err := s.processShard(ctx, h)
			mu.Lock()
			total += n
			errs = append(errs, err)
			mu.Unlock()
		})
	}
	wg.Wait()
	return total, errors.Join(errs...)
}

// shardsAtOnce is how many shards a worker holds at once: enough for its
// EventConcurrency to find work while a shard's slowest line finishes.
func (s *Service) shardsAtOnce() int { return max(s.EventConcurrency/2, 1) }

// dispatcher keeps shards held for Run: each pass claims as many shards as
// are free to hold, and every finished shard wakes the next pass.
type dispatcher struct {
	s    *Service
	wg   sync.WaitGroup
	mu   sync.Mutex
	held int
}

func (s *Service) newDispatcher() *dispatcher { return &dispatcher{s: s} }

// loop is the events worker's loop.
func (d *dispatcher) loop() worker.Loop {
	s := d.s
	return worker.Loop{Name: "webhook events", Every: s.EventInterval, Wake: s.kickEvents, AtStart: true, Log: s.log, Pass: d.pass}
}

func (d *dispatcher) pass(ctx context.Context) (bool, error) {
	s := d.s
	d.mu.Lock()
	free := s.shardsAtOnce() - d.held
	d.mu.Unlock()
	if free <= 0 {
		return false, nil
	}
	held, err := s.claimShards(ctx, free)
	if err != nil {
		return false, err
	}
	d.mu.Lock()
	d.held += len(held)
	d.mu.Unlock()
	for _, h := range held {
		d.wg.Go(func() {
			if _, err := s.processShard(ctx, h); err != nil && ctx.Err() == nil {
				s.log.Warn("webhook events", "shard", h.number, "err", err)
			}
			d.mu.Lock()
			d.held--
			d.mu.Unlock()
			worker.Kick(s.kickEvents)
		})
	}
	return len(held) == free, nil
}

// wait waits for the shards in flight.
func (d *dispatcher) wait() { d.wg.Wait() }

// handleEvent processes one event of a held shard under wctx (ctx is the
// worker's own). It reports a success, for the shard's one UPDATE; any
// other outcome is recorded here.
func (s *Service) handleEvent(wctx, ctx context.Context, h *heldShard, ev *ent.WebhookEvent) bool {
	attempt := ev.Attempts + 1
	final := attempt >= s.EventAttempts
	perr := s.process(wctx, h, ev, final)
	if perr == nil {
		return true
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer fcancel()
	now := s.Now()
	u := s.db.WebhookEvent.Update().Where(webhookevent.ID(ev.ID), h.owned()).ClearLeaseUntil()
	var drop dropError
	switch {
	case errors.As(perr, &drop):
		s.log.Error("webhook event dropped", "event", ev.ID, "provider", ev.Provider, "err", perr)
		u.SetProcessedAt(now).ClearNextAttemptAt().AddAttempts(1).SetLastError(clip(perr.Error(), 1000))
	case ctx.Err() != nil || (wctx.Err() != nil && !final):
		// Shutting down, or out of lease: the attempt does not count;
		// another instance (or this one, restarted) takes it at once.
		u.SetNextAttemptAt(now).SetLastError(clip(perr.Error(), 1000))
	case final:
		s.log.Error("webhook event failed for good", "event", ev.ID, "provider", ev.Provider, "attempts", attempt, "err", perr)
		u.ClearNextAttemptAt().AddAttempts(1).SetLastError(clip(perr.Error(), 1000))
	default:
		s.log.Warn("webhook event", "event", ev.ID, "attempt", attempt, "err", perr)
		u.SetNextAttemptAt(now.Add(s.EventBackoff.Delay(attempt))).AddAttempts(1).SetLastError(clip(perr.Error(), 1000))
	}
	if err := u.Exec(fctx); err != nil {
		s.log.Warn("webhook event outcome", "event", ev.ID, "err", err)
	}
	return false
}

// newToken is a claim's random token.
func newToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// process turns one stored webhook into messages and statuses. It is
// idempotent: run twice (a retry, a redelivery stored twice) it changes
// nothing more.
func (s *Service) process(ctx context.Context, h *heldShard, ev *ent.WebhookEvent, final bool) error {
	p := s.providers[ev.Provider]
	if p == nil {
		return dropError{fmt.Errorf("no adapter for provider %q", ev.Provider)}
	}
	if err := h.broken[ev.ChannelAccountID]; err != nil {
		return err
	}
	acct := h.accounts[ev.ChannelAccountID]
	if acct == nil {
		return dropError{fmt.Errorf("channel account %d is gone", ev.ChannelAccountID)}
	}
	batch, err := p.Parse(ev.Body)
	if err != nil {
		return dropError{fmt.Errorf("parse: %w", err)}
	}
	if ev.OrderKey != nil {
		batch = batch.Lane(*ev.OrderKey, acct.ExternalID)
	}
	r := &router{s: s, home: acct, cache: map[string]*Account{}}
	var errs []error
	for _, m := range batch.Messages {
		a, err := r.route(ctx, m.Route)
		if err == nil && a != nil {
			err = s.receive(ctx, p, a, h, ev, m, final)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, st := range batch.Statuses {
		a, err := r.route(ctx, st.Route)
		if err == nil && a != nil {
			err = s.convs.ApplyStatus(ctx, conversations.StatusUpdate{
				ChannelAccountID: a.ID, ProviderMessageID: st.ProviderMessageID,
				Status: st.Status, Reason: st.Reason, At: s.clamp(st.At, ev.ReceivedAt),
			})
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, wm := range batch.Watermarks {
		a, err := r.route(ctx, wm.Route)
		if err == nil && a != nil {
			err = s.applyWatermark(ctx, a, wm)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// clamp keeps a provider timestamp sane: zero means when the webhook
// arrived, and a time in the future (a skewed clock) is now, so that it
// cannot stretch the 24-hour reply window.
func (s *Service) clamp(at, received time.Time) time.Time {
	if at.IsZero() {
		at = received
	}
	if now := s.Now(); at.After(now) {
		at = now
	}
	return at
}

// router finds the account an item of a webhook is for. One Meta app
// delivers the events of all its numbers or pages to one URL, so an item
// may name (by phone number id or page id) another account than the one
// whose webhook received it: that account is used only when it shares the
// receiving account's app secret, i.e. the same verified signature would
// have held for it. Items for numbers or pages Parley does not know, or of
// a disabled account, are skipped.
type router struct {
	s     *Service
	home  *Account
	cache map[string]*Account
}

func (r *router) route(ctx context.Context, ext string) (*Account, error) {
	if ext == "" || ext == r.home.ExternalID {
		return r.home, nil
	}
	if a, ok := r.cache[ext]; ok {
		return a, nil
	}
	cands, err := r.s.db.ChannelAccount.Query().Where(
		channelaccount.ChannelEQ(r.home.Channel), channelaccount.ExternalID(ext),
	).All(ctx)
	if err != nil {
		return nil, err
	}
	var found *Account
	for _, c := range cands {
		// Compared opened: two seals of one secret differ.
		a, err := r.s.toAccount(c)
		if err != nil {
			return nil, err
		}
		if a.Config.AppSecret != "" && a.Config.AppSecret == r.home.Config.AppSecret {
			found = a
			break
		}
	}
	switch {
	case found == nil:
		r.s.log.Warn("webhook item for an unknown account skipped", "account", r.home.ID, "external_id", ext)
	case !found.Enabled:
		// Turned off: nothing of it is stored, as at its own webhook.
		r.s.log.Debug("webhook item for a disabled account skipped", "account", r.home.ID, "disabled", found.ID)
		found = nil
	}
	r.cache[ext] = found
	return found, nil
}

// receive hands one customer message to the inbound entry point, after
// downloading its media. A message already stored is skipped before any
// download; the unique index behind Receive settles any race.
func (s *Service) receive(ctx context.Context, p Provider, acct *Account, h *heldShard, ev *ent.WebhookEvent, m Message, final bool) error {
	if m.ProviderMessageID == "" || strings.TrimSpace(m.SenderID) == "" {
		s.log.Warn("inbound message without id or sender skipped", "event", ev.ID)
		return nil
	}
	if h.checked[acct.ID] {
		if h.stored[seenKey{acct.ID, m.ProviderMessageID}] {
			return nil
		}
	} else {
		seen, err := s.db.Message.Query().Where(
			message.ChannelAccountID(acct.ID), message.ProviderMessageID(m.ProviderMessageID),
		).Exist(ctx)
		if err != nil || seen {
			return err
		}
	}
	name := m.SenderName
	if pr, ok := p.(Profiler); ok && name == "" && s.ProfileLookup {
		name = s.profileName(ctx, pr, acct, m.SenderID)
	}
	var (
		ids   []int
		notes []string
	)
	for i, ref := range m.Media {
		if i >= conversations.MaxAttachments {
			notes = append(notes, fmt.Sprintf("[%d more files were not kept]", len(m.Media)-i))
			break
		}
		id, err := s.fetchMedia(ctx, p, acct, ref)
		if err != nil {
			var me *MediaError
			if (errors.As(err, &me) && me.Permanent) || final {
				s.log.Warn("inbound media not kept", "account", acct.ID, "message", m.ProviderMessageID, "err", err)
				why := "an internal error"
				if me != nil {
					why = me.Reason
				}
				notes = append(notes, "["+mediaLabel(ref.Kind)+" could not be kept: "+why+"]")
				continue
			}
			s.discard(ctx, ids)
			return err
		}
		ids = append(ids, id)
	}
	body := clip(JoinText(append([]string{m.Text}, notes...)...), conversations.MaxBodyLen)
	if strings.TrimSpace(body) == "" && len(ids) == 0 {
		body = "[empty message]"
	}
	res, err := s.convs.Receive(ctx, conversations.Inbound{
		ChannelAccountID: acct.ID, SenderID: m.SenderID, SenderName: clip(name, 200),
		ProviderMessageID: m.ProviderMessageID, Body: body, AttachmentIDs: ids,
		At: s.clamp(m.At, ev.ReceivedAt),
	})
	if err != nil {
		s.discard(ctx, ids)
		if apperr.Is(err, apperr.BadUserInput) {
			s.log.Warn("inbound message refused", "account", acct.ID, "message", m.ProviderMessageID, "err", err)
			return nil
		}
		return err
	}
	if res.Duplicate {
		s.discard(ctx, ids)
	}
	return nil
}

func (s *Service) profileName(ctx context.Context, pr Profiler, acct *Account, sender string) string {
	known, err := s.db.ContactIdentity.Query().Where(
		contactidentity.ChannelAccountID(acct.ID), contactidentity.ExternalID(sender),
	).Exist(ctx)
	if err != nil || known {
		return ""
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	name, err := pr.ProfileName(pctx, acct, sender)
	if err != nil {
		s.log.Info("profile lookup", "account", acct.ID, "err", NetworkReason(err))
		return ""
	}
	return name
}

func mediaLabel(kind string) string {
	switch kind {
	case "image", "video", "audio", "sticker", "document":
		return "the " + kind
	case "voice":
		return "the voice message"
	}
	return "a file"
}

// discard deletes attachment rows stored for a message that was not
// stored (or was a duplicate). The content-addressed file may be shared
// with another attachment, so it stays.
func (s *Service) discard(ctx context.Context, ids []int) {
	if len(ids) == 0 {
		return
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := s.db.Attachment.Delete().Where(attachment.IDIn(ids...), attachment.Not(attachment.HasMessage())).Exec(dctx); err != nil {
		s.log.Warn("discard attachments", "err", err)
	}
}

// fetchMedia downloads a file into a temporary file (bounded in size, its
// digest checked), then hands it to the media store.
func (s *Service) fetchMedia(ctx context.Context, p Provider, acct *Account, ref MediaRef) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.MediaTimeout)
	defer cancel()
	dl, err := p.Fetch(ctx, acct, ref)
	if err != nil {
		return 0, err
	}
	defer dl.Body.Close()
	tmp, err := os.CreateTemp("", "parley-media-*")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(dl.Body, s.MaxMediaBytes+1))
	if err != nil {
		return 0, &MediaError{Reason: "download interrupted: " + NetworkReason(err)}
	}
	if n > s.MaxMediaBytes {
		return 0, &MediaError{Reason: fmt.Sprintf("larger than %d MB", s.MaxMediaBytes>>20), Permanent: true}
	}
	if dl.SHA256 != "" && !digestMatches(h.Sum(nil), dl.SHA256) {
		return 0, &MediaError{Reason: "the file does not match its SHA-256"}
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	claimed := dl.ContentType
	if claimed == "" {
		claimed = ref.ContentType
	}
	filename := dl.Filename
	if filename == "" {
		filename = ref.Filename
	}
	if filename == "" && ref.Kind != "" {
		filename = ref.Kind // the store adds the extension of what it finds
	}
	return s.media.Store(ctx, filename, claimed, tmp)
}

// applyWatermark marks every message we sent to the recipient up to the
// watermark as delivered or read (Messenger), through ApplyStatus so the
// forward-only rule and the events stay in one place.
func (s *Service) applyWatermark(ctx context.Context, acct *Account, wm Watermark) error {
	lower := []schematype.DeliveryStatus{schematype.DeliverySent}
	if wm.Status == schematype.DeliveryRead {
		lower = append(lower, schematype.DeliveryDelivered)
	}
	msgs, err := s.db.Message.Query().Where(
		message.ChannelAccountID(acct.ID), message.DirectionEQ(schematype.DirectionOutbound),
		message.ProviderMessageIDNotNil(), message.DeliveryStatusIn(lower...),
		message.CreatedAtLTE(wm.Until),
		message.HasConversationWith(conversation.HasIdentityWith(
			contactidentity.ChannelAccountID(acct.ID), contactidentity.ExternalID(wm.Recipient),
		)),
	).All(ctx)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := s.convs.ApplyStatus(ctx, conversations.StatusUpdate{
			ChannelAccountID: acct.ID, ProviderMessageID: *m.ProviderMessageID, Status: wm.Status, At: wm.Until,
		}); err != nil {
			return err
		}
	}
	return nil
}

// Sweep deletes webhook events finished (processed or given up) more than
// Retention ago, and early statuses that waited longer than that for their
// message.
func (s *Service) Sweep(ctx context.Context) error {
	cut := s.Now().Add(-s.Retention)
	if _, err := s.db.WebhookEvent.Delete().Where(
		webhookevent.NextAttemptAtIsNil(), webhookevent.ReceivedAtLT(cut),
	).Exec(ctx); err != nil {
		return err
	}
	_, err := s.db.PendingStatus.Delete().Where(pendingstatus.CreatedAtLT(cut)).Exec(ctx)
	return err
}

// clip shortens s to at most n characters.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
