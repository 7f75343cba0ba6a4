package channels

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/attachment"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/predicate"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/channels/provider"
	"github.com/parleyhq/parley/internal/worker"
)

// The outbox. conversations.Send stores an agent's reply to a provider
// conversation PENDING with next_attempt_at = now, in the same transaction
// as the rest of the reply; this worker delivers it:
//
//   - A pass selects due messages (PENDING, next_attempt_at reached, no
//     live lease) that are the oldest PENDING message of their
//     conversation, so a customer receives replies in the order they were
//     written; a message waiting for a retry holds back the ones after it.
//   - Each is claimed with a conditional update that sets lease_until and
//     counts the attempt; of several instances exactly one wins it. A send
//     runs under a deadline inside the lease, so no other instance can
//     claim it while the call is under way.
//   - Success: conversations.MarkSent with the provider's id. A network
//     error, a 429, a 5xx or a throttling code: retried after exponential
//     backoff with jitter (or the provider's Retry-After), up to
//     OutboxAttempts, then FAILED. Any other refusal: FAILED at once, with
//     the provider's reason for the agent.
//   - A reply the provider takes in several calls (a text and files on
//     WhatsApp or Messenger) records its progress after each call (see
//     progressPrefix), so a retry resumes after the last part accepted
//     instead of sending the first parts again.
//
// What remains is the window that no outbox can close without the
// provider's help: a crash after the provider accepted a call but before
// the answer was recorded sends that call again after the lease expires.

// progressPrefix marks provider_message_id of a reply whose first parts
// were accepted: "parley-part:{index}:{provider id}". MarkSent replaces it
// with the last part's id.
const progressPrefix = "parley-part:"

func parseProgress(id *string) (next int, last string) {
	if id == nil || !strings.HasPrefix(*id, progressPrefix) {
		return 0, ""
	}
	rest := strings.TrimPrefix(*id, progressPrefix)
	i := strings.IndexByte(rest, ':')
	if i < 0 {
		return 0, ""
	}
	n, err := strconv.Atoi(rest[:i])
	if err != nil || n < 0 {
		return 0, ""
	}
	return n + 1, rest[i+1:]
}

// outboxLoop delivers due replies every OutboxInterval, again at once
// while a pass found any.
func (s *Service) outboxLoop() worker.Loop {
	return worker.Loop{Name: "outbox", Every: s.OutboxInterval, AtStart: true, Log: s.log,
		Pass: func(ctx context.Context) (bool, error) {
			n, err := s.DeliverDue(ctx)
			return n > 0, err
		}}
}

// headOfLine keeps messages that have an older PENDING message in the same
// conversation.
func headOfLine() predicate.Message {
	return predicate.Message(func(sel *sql.Selector) {
		b := sql.Dialect(sel.Dialect())
		older := b.Table(message.Table).As("older")
		sel.Where(sql.Not(sql.Exists(
			b.Select(older.C(message.FieldID)).From(older).Where(sql.And(
				sql.ColumnsEQ(older.C(message.FieldConversationID), sel.C(message.FieldConversationID)),
				sql.EQ(older.C(message.FieldDeliveryStatus), string(schematype.DeliveryPending)),
				sql.ColumnsLT(older.C(message.FieldID), sel.C(message.FieldID)),
			)),
		)))
	})
}

func leaseFree(now time.Time) predicate.Message {
	return message.Or(message.LeaseUntilIsNil(), message.LeaseUntilLT(now))
}

// DeliverDue claims due outbound messages, up to Batch, and sends them; it
// returns how many it sent or settled.
func (s *Service) DeliverDue(ctx context.Context) (int, error) {
	now := s.Now()
	cands, err := s.db.Message.Query().Where(
		message.DeliveryStatusEQ(schematype.DeliveryPending), message.NextAttemptAtLTE(now),
		leaseFree(now), message.ChannelAccountIDNotNil(), headOfLine(),
		// A note is never PENDING; should one be, it still never leaves.
		message.KindEQ(schematype.KindMessage),
	).Order(ent.Asc(message.FieldNextAttemptAt), ent.Asc(message.FieldID)).Limit(s.Batch).All(ctx)
	if err != nil {
		return 0, err
	}
	var (
		wg       sync.WaitGroup
		done     int
		accounts = map[int]*Account{}
		deferred = map[int]int{}
		sem      = make(chan struct{}, max(s.Concurrency, 1))
	)
	defer wg.Wait()
	for _, m := range cands {
		if ctx.Err() != nil {
			break
		}
		acctID := *m.ChannelAccountID
		acct, ok := accounts[acctID]
		if !ok {
			acct, err = s.account(ctx, acctID)
			if ent.IsNotFound(err) {
				acct, err = nil, nil
			}
			if err != nil {
				return done, err
			}
			accounts[acctID] = acct
		}
		if acct == nil || !acct.Enabled {
			reason := "the channel account was removed"
			if acct != nil {
				reason = "the channel account is disabled"
			}
			if s.claim(ctx, m.ID, now) {
				s.fail(ctx, m.ID, reason)
				done++
			}
			continue
		}
		// A slot first, then the claim: the lease starts when the send can.
		sem <- struct{}{}
		now := s.Now()
		if wait := s.throttle(ctx, acct, now); wait > 0 {
			<-sem
			// Over the account's rate: come back when a token is due,
			// later ones of this pass spaced out behind it.
			r := s.Rates[acct.Channel]
			step := time.Duration(0)
			if r.PerSecond > 0 {
				step = time.Duration(float64(time.Second) / r.PerSecond)
			}
			at := now.Add(wait + time.Duration(deferred[acctID])*step)
			deferred[acctID]++
			_ = s.db.Message.Update().Where(message.ID(m.ID), message.DeliveryStatusEQ(schematype.DeliveryPending), leaseFree(now)).
				SetNextAttemptAt(at).Exec(ctx)
			continue
		}
		if !s.claim(ctx, m.ID, now) {
			<-sem
			continue
		}
		done++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			s.deliver(ctx, m.ID, acct, now.Add(s.OutboxLease))
		}()
	}
	return done, nil
}

// throttle takes a send token for the account, or says how long to wait.
func (s *Service) throttle(ctx context.Context, acct *Account, now time.Time) time.Duration {
	r := s.Rates[acct.Channel]
	if wait := s.buckets.take(acct.ID, r, now); wait > 0 {
		return wait
	}
	if s.shared != nil && r.PerSecond > 0 {
		limit := max(int(r.PerSecond), 1)
		ok, after, err := s.shared.Allow(ctx, "channel-send:"+strconv.Itoa(acct.ID), limit, time.Second)
		if err == nil && !ok {
			return max(after, 10*time.Millisecond)
		}
	}
	return 0
}

// claim takes a due message with a conditional update: lease and attempt.
func (s *Service) claim(ctx context.Context, id int, now time.Time) bool {
	n, err := s.db.Message.Update().Where(
		message.ID(id), message.DeliveryStatusEQ(schematype.DeliveryPending),
		message.NextAttemptAtLTE(now), leaseFree(now),
	).SetLeaseUntil(now.Add(s.OutboxLease)).AddAttempts(1).Save(ctx)
	if err != nil {
		s.log.Warn("outbox claim", "message", id, "err", err)
		return false
	}
	return n == 1
}

// deliver sends one claimed message.
func (s *Service) deliver(ctx context.Context, id int, acct *Account, lease time.Time) {
	m, err := s.db.Message.Get(ctx, id)
	if err != nil {
		s.log.Warn("outbox load", "message", id, "err", err)
		return
	}
	p := s.byChannel[acct.Channel]
	if p == nil {
		s.fail(ctx, id, "Parley cannot send on this channel")
		return
	}
	to, err := s.recipient(ctx, m)
	if err != nil {
		s.retryOrFail(ctx, m, acct, internalError{err})
		return
	}
	if to == "" {
		s.fail(ctx, id, "the conversation has no recipient")
		return
	}
	atts, err := m.QueryAttachments().Order(ent.Asc(attachment.FieldID)).All(ctx)
	if err != nil {
		s.retryOrFail(ctx, m, acct, internalError{err})
		return
	}
	out := Outgoing{Body: m.Body, Template: m.WhatsappTemplate, Tag: m.MessagingTag}
	for _, a := range atts {
		if s.links == nil {
			s.fail(ctx, id, "attachments cannot be sent: no download links")
			return
		}
		out.Media = append(out.Media, OutMedia{URL: s.links.SignedURL(a, s.MediaURLTTL), ContentType: a.ContentType, Filename: a.Filename})
	}
	parts := p.Split(out)
	if len(parts) == 0 {
		s.fail(ctx, id, "nothing to send")
		return
	}
	// The calls end before the lease does: no other worker can claim the
	// message while one of them is under way.
	sctx, cancel := context.WithDeadline(ctx, lease.Add(-s.OutboxLease/10))
	defer cancel()
	next, last := parseProgress(m.ProviderMessageID)
	marked := m.ProviderMessageID != nil
	for i := next; i < len(parts); i++ {
		pid, err := p.Send(sctx, acct, to, parts[i])
		if err != nil {
			if i > 0 {
				err = partError{err: err, part: i + 1, of: len(parts)}
			}
			s.retryOrFail(ctx, m, acct, err)
			return
		}
		last = pid
		if i < len(parts)-1 {
			if err := s.saveProgress(ctx, m, i, pid); err != nil {
				s.log.Warn("outbox progress", "message", id, "err", err)
			} else {
				marked = true
			}
		}
	}
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer fcancel()
	if last == "" && marked {
		_ = s.db.Message.UpdateOneID(id).ClearProviderMessageID().Exec(fctx)
	}
	// The provider has the message: recording that must not be given up
	// lightly, or the lease runs out and it is sent again.
	for try := 1; ; try++ {
		err := s.convs.MarkSent(fctx, id, last)
		if err == nil {
			return
		}
		if try == 5 || fctx.Err() != nil {
			s.log.Error("outbox mark sent", "message", id, "err", err)
			return
		}
		time.Sleep(time.Duration(try) * 100 * time.Millisecond)
	}
}

// internalError is a failure of ours (the database), not the provider's.
type internalError struct{ err error }

// Error implements error.
func (e internalError) Error() string { return e.err.Error() }

// Unwrap gives errors.As the cause.
func (e internalError) Unwrap() error { return e.err }

type partError struct {
	err      error
	part, of int
}

// Error implements error.
func (e partError) Error() string { return fmt.Sprintf("part %d of %d: %v", e.part, e.of, e.err) }

// Unwrap gives errors.As the provider's error.
func (e partError) Unwrap() error { return e.err }

func (s *Service) saveProgress(ctx context.Context, m *ent.Message, index int, pid string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return s.db.Message.Update().Where(message.ID(m.ID), message.Attempts(m.Attempts)).
		SetProviderMessageID(progressPrefix + strconv.Itoa(index) + ":" + pid).Exec(ctx)
}

// recipient is the customer's id on the channel: the conversation's
// identity (wa_id, PSID, E.164 number).
func (s *Service) recipient(ctx context.Context, m *ent.Message) (string, error) {
	c, err := s.db.Conversation.Get(ctx, m.ConversationID)
	if err != nil {
		return "", err
	}
	if c.IdentityID == nil {
		return "", nil
	}
	id, err := s.db.ContactIdentity.Get(ctx, *c.IdentityID)
	if ent.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return id.ExternalID, nil
}

// retryOrFail settles a failed attempt: FAILED for a permanent refusal or
// after the last attempt, otherwise due again after the backoff.
func (s *Service) retryOrFail(ctx context.Context, m *ent.Message, acct *Account, err error) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	reason, retry, after := s.classify(err, acct.Channel)
	var pe partError
	if errors.As(err, &pe) {
		reason = fmt.Sprintf("%s (part %d of %d; the earlier parts were sent)", reason, pe.part, pe.of)
	}
	now := s.Now()
	switch {
	case !retry:
		s.log.Info("outbox: provider refused", "message", m.ID, "account", acct.ID, "reason", reason)
		s.fail(fctx, m.ID, reason)
	case ctx.Err() != nil:
		// Shutting down: not the provider's fault; due again at once.
		_ = s.db.Message.Update().Where(message.ID(m.ID), message.Attempts(m.Attempts)).
			SetNextAttemptAt(now).ClearLeaseUntil().AddAttempts(-1).Exec(fctx)
	case m.Attempts >= s.OutboxAttempts:
		s.log.Warn("outbox: giving up", "message", m.ID, "account", acct.ID, "attempts", m.Attempts, "reason", reason)
		s.fail(fctx, m.ID, fmt.Sprintf("%s (gave up after %d attempts)", reason, m.Attempts))
	default:
		d := s.OutboxBackoff.Delay(m.Attempts)
		if after > 0 {
			d = max(d, min(after, s.MaxRetryAfter))
			s.buckets.pause(acct.ID, now.Add(min(after, s.MaxRetryAfter)))
		}
		s.log.Info("outbox: will retry", "message", m.ID, "account", acct.ID, "attempt", m.Attempts, "in", d, "reason", reason)
		if err := s.db.Message.Update().Where(message.ID(m.ID), message.Attempts(m.Attempts),
			message.DeliveryStatusEQ(schematype.DeliveryPending)).
			SetNextAttemptAt(now.Add(d)).ClearLeaseUntil().Exec(fctx); err != nil {
			s.log.Warn("outbox reschedule", "message", m.ID, "err", err)
		}
	}
}

// classify says what the agent reads, whether to try again, and the
// provider's requested pause. A provider's throttling (429 or one of the
// channel's provider.Facts.ThrottleCodes) pauses the account as a whole,
// with no Retry-After for ThrottlePause.
func (s *Service) classify(err error, ch schematype.Channel) (reason string, retry bool, after time.Duration) {
	var se *SendError
	if errors.As(err, &se) {
		after = se.RetryAfter
		if se.Retryable && after == 0 && (se.Status == 429 || throttles(ch, se.Code)) {
			after = s.ThrottlePause
		}
		return se.Reason, se.Retryable, after
	}
	var ie internalError
	if errors.As(err, &ie) {
		s.log.Warn("outbox", "err", err)
		return "an internal error kept the message from being sent", true, 0
	}
	return "could not reach the provider: " + NetworkReason(err), true, 0
}

// throttles reports whether the provider of channel ch means code as an
// account-wide "slow down".
func throttles(ch schematype.Channel, code string) bool {
	f, _ := provider.For(ch)
	return f.Throttles(code)
}

func (s *Service) fail(ctx context.Context, id int, reason string) {
	if err := s.convs.MarkFailed(ctx, id, reason); err != nil {
		s.log.Error("outbox mark failed", "message", id, "err", err)
	}
}
