package channels

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/attachment"
	"github.com/parleyhq/parley/ent/channelaccount"
	"github.com/parleyhq/parley/ent/contactidentity"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/pendingstatus"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/ent/webhookevent"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/conversations"
)

// dropError marks an event that can never be processed (its account is
// gone, its body no longer parses): it is closed with the error recorded,
// not retried.
type dropError struct{ error }

func (s *Service) runEvents(ctx context.Context) {
	t := time.NewTicker(s.EventInterval)
	defer t.Stop()
	for {
		for {
			n, err := s.ProcessEvents(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("webhook events", "err", err)
			}
			if n < s.Batch || err != nil || ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kickEvents:
		}
	}
}

// ProcessEvents claims the due webhook events, up to Batch, and processes
// them; it returns how many it claimed. A claim is a conditional update
// (due, not leased by a live worker) that sets a lease and counts the
// attempt: of several instances exactly one wins each event.
func (s *Service) ProcessEvents(ctx context.Context) (int, error) {
	now := s.Now()
	ids, err := s.db.WebhookEvent.Query().Where(
		webhookevent.ProcessedAtIsNil(), webhookevent.NextAttemptAtLTE(now),
		webhookevent.Or(webhookevent.LeaseUntilIsNil(), webhookevent.LeaseUntilLT(now)),
	).Order(ent.Asc(webhookevent.FieldNextAttemptAt), ent.Asc(webhookevent.FieldID)).Limit(s.Batch).IDs(ctx)
	if err != nil {
		return 0, err
	}
	var (
		wg      sync.WaitGroup
		claimed int
		sem     = make(chan struct{}, max(s.Concurrency, 1))
	)
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		// A slot first, then the claim: the lease starts when the work can.
		sem <- struct{}{}
		now := s.Now()
		n, err := s.db.WebhookEvent.Update().Where(
			webhookevent.ID(id), webhookevent.ProcessedAtIsNil(), webhookevent.NextAttemptAtLTE(now),
			webhookevent.Or(webhookevent.LeaseUntilIsNil(), webhookevent.LeaseUntilLT(now)),
		).SetLeaseUntil(now.Add(s.EventLease)).AddAttempts(1).Save(ctx)
		if err != nil || n == 0 {
			<-sem
			if err != nil {
				wg.Wait()
				return claimed, err
			}
			continue // another worker has it
		}
		claimed++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.handleEvent(ctx, id, now.Add(s.EventLease)); err != nil {
				s.log.Warn("webhook event", "event", id, "err", err)
			}
		}()
	}
	wg.Wait()
	return claimed, nil
}

// handleEvent processes one claimed event and records the outcome. Every
// write is guarded by the attempt count the claim set, so a worker whose
// lease ran out cannot overwrite the next one's outcome.
func (s *Service) handleEvent(ctx context.Context, id int, lease time.Time) error {
	ev, err := s.db.WebhookEvent.Get(ctx, id)
	if err != nil {
		return err
	}
	final := ev.Attempts >= s.EventAttempts
	// Work stops before the lease ends, so no other worker starts on the
	// event while this one still runs.
	pctx, cancel := context.WithDeadline(ctx, lease.Add(-s.EventLease/10))
	perr := s.process(pctx, ev, final)
	cancel()

	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer fcancel()
	now := s.Now()
	u := s.db.WebhookEvent.Update().Where(webhookevent.ID(id), webhookevent.Attempts(ev.Attempts)).ClearLeaseUntil()
	var drop dropError
	switch {
	case perr == nil:
		u.SetProcessedAt(now).ClearNextAttemptAt().SetLastError("")
	case errors.As(perr, &drop):
		s.log.Error("webhook event dropped", "event", id, "provider", ev.Provider, "err", perr)
		u.SetProcessedAt(now).ClearNextAttemptAt().SetLastError(clip(perr.Error(), 1000))
	case ctx.Err() != nil:
		// Shutting down: the attempt does not count; another instance
		// (or this one, restarted) takes it at once.
		u.SetNextAttemptAt(now).AddAttempts(-1).SetLastError(clip(perr.Error(), 1000))
	case final:
		s.log.Error("webhook event failed for good", "event", id, "provider", ev.Provider, "attempts", ev.Attempts, "err", perr)
		u.ClearNextAttemptAt().SetLastError(clip(perr.Error(), 1000))
	default:
		u.SetNextAttemptAt(now.Add(s.EventBackoff.Delay(ev.Attempts))).SetLastError(clip(perr.Error(), 1000))
	}
	if err := u.Exec(fctx); err != nil {
		return err
	}
	if perr != nil && drop.error == nil {
		return perr
	}
	return nil
}

// process turns one stored webhook into messages and statuses. It is
// idempotent: run twice (a retry, a redelivery stored twice) it changes
// nothing more.
func (s *Service) process(ctx context.Context, ev *ent.WebhookEvent, final bool) error {
	p := s.providers[ev.Provider]
	if p == nil {
		return dropError{fmt.Errorf("no adapter for provider %q", ev.Provider)}
	}
	acct, err := s.account(ctx, ev.ChannelAccountID)
	if ent.IsNotFound(err) {
		return dropError{fmt.Errorf("channel account %d is gone", ev.ChannelAccountID)}
	}
	if err != nil {
		return err
	}
	batch, err := p.Parse(ev.Body)
	if err != nil {
		return dropError{fmt.Errorf("parse: %w", err)}
	}
	r := &router{s: s, home: acct, cache: map[string]*Account{}}
	var errs []error
	for _, m := range batch.Messages {
		a, err := r.route(ctx, m.Route)
		if err == nil && a != nil {
			err = s.receive(ctx, p, a, ev, m, final)
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
// have held for it. Items for numbers or pages Parley does not know are
// skipped.
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
	if found == nil {
		r.s.log.Warn("webhook item for an unknown account skipped", "account", r.home.ID, "external_id", ext)
	}
	r.cache[ext] = found
	return found, nil
}

// receive hands one customer message to the inbound entry point, after
// downloading its media. A message already stored is skipped before any
// download; the unique index behind Receive settles any race.
func (s *Service) receive(ctx context.Context, p Provider, acct *Account, ev *ent.WebhookEvent, m Message, final bool) error {
	if m.ProviderMessageID == "" || strings.TrimSpace(m.SenderID) == "" {
		s.log.Warn("inbound message without id or sender skipped", "event", ev.ID)
		return nil
	}
	seen, err := s.db.Message.Query().Where(
		message.ChannelAccountID(acct.ID), message.ProviderMessageID(m.ProviderMessageID),
	).Exist(ctx)
	if err != nil || seen {
		return err
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
