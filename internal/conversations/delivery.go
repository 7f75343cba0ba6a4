package conversations

import (
	"context"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/pendingstatus"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/store"
)

// StatusUpdate is a provider's word on an outbound message.
type StatusUpdate struct {
	ChannelAccountID  int
	ProviderMessageID string
	Status            schematype.DeliveryStatus
	// Reason says why, for FAILED.
	Reason string
	At     time.Time
}

// ApplyStatus records a provider delivery status. Statuses only move
// forward (pending < sent < delivered < read); FAILED is final unless a
// later success shows a retry went through. A status for a message not
// stored yet is kept and applied when the message gets its provider id
// (see MarkSent). Applying the same status twice changes nothing.
func (s *Service) ApplyStatus(ctx context.Context, u StatusUpdate) error {
	if u.At.IsZero() {
		u.At = s.now()
	}
	return store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		m, err := tx.Message.Query().Where(
			message.ChannelAccountID(u.ChannelAccountID), message.ProviderMessageID(u.ProviderMessageID),
		).Only(ctx)
		if ent.IsNotFound(err) {
			return tx.PendingStatus.Create().SetChannelAccountID(u.ChannelAccountID).
				SetProviderMessageID(u.ProviderMessageID).SetStatus(u.Status).SetReason(u.Reason).SetAt(u.At).Exec(ctx)
		}
		if err != nil {
			return err
		}
		return s.applyStatusTx(ctx, tx, after, m, u.Status, u.Reason)
	})
}

// advances reports whether status next may replace cur.
func advances(cur *schematype.DeliveryStatus, next schematype.DeliveryStatus) bool {
	if cur == nil {
		return true
	}
	if next == schematype.DeliveryFailed {
		// Failure after delivery (a late "failed" for a message already
		// read) is noise; failure of a pending or sent message is news.
		return *cur == schematype.DeliveryPending || *cur == schematype.DeliverySent
	}
	if *cur == schematype.DeliveryFailed {
		return true // a retry of ours went through after all
	}
	return next.Rank() > cur.Rank()
}

func (s *Service) applyStatusTx(ctx context.Context, tx *ent.Tx, after *store.After, m *ent.Message, st schematype.DeliveryStatus, reason string) error {
	if !advances(m.DeliveryStatus, st) {
		return nil
	}
	u := tx.Message.UpdateOneID(m.ID).SetDeliveryStatus(st)
	if st == schematype.DeliveryFailed {
		if reason == "" {
			reason = "the provider could not deliver the message"
		}
		u.SetFailureReason(reason).ClearNextAttemptAt().ClearLeaseUntil()
	} else {
		u.ClearFailureReason()
	}
	if err := u.Exec(ctx); err != nil {
		return err
	}
	s.emit(after, pubsub.Event{Kind: pubsub.KindMessageUpdated, ConversationID: m.ConversationID, MessageID: m.ID}, nil, false)
	return nil
}

// MarkSent records that the provider accepted an outbound message under
// providerMessageID, and applies any status that arrived for that id first.
func (s *Service) MarkSent(ctx context.Context, messageID int, providerMessageID string) error {
	return store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		m, err := tx.Message.Get(ctx, messageID)
		if err != nil {
			return err
		}
		u := tx.Message.UpdateOneID(m.ID).ClearNextAttemptAt().ClearLeaseUntil()
		if providerMessageID != "" {
			u.SetProviderMessageID(providerMessageID)
		}
		if err := u.Exec(ctx); err != nil {
			return err
		}
		if err := s.applyStatusTx(ctx, tx, after, m, schematype.DeliverySent, ""); err != nil {
			return err
		}
		if providerMessageID == "" || m.ChannelAccountID == nil {
			return nil
		}
		pending, err := tx.PendingStatus.Query().Where(
			pendingstatus.ChannelAccountID(*m.ChannelAccountID), pendingstatus.ProviderMessageID(providerMessageID),
		).Order(ent.Asc(pendingstatus.FieldAt), ent.Asc(pendingstatus.FieldID)).All(ctx)
		if err != nil {
			return err
		}
		for _, p := range pending {
			cur, err := tx.Message.Get(ctx, m.ID)
			if err != nil {
				return err
			}
			if err := s.applyStatusTx(ctx, tx, after, cur, p.Status, p.Reason); err != nil {
				return err
			}
			if err := tx.PendingStatus.DeleteOneID(p.ID).Exec(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}

// MarkFailed records that delivery failed for good, with the reason the
// agent sees.
func (s *Service) MarkFailed(ctx context.Context, messageID int, reason string) error {
	return store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		m, err := tx.Message.Get(ctx, messageID)
		if err != nil {
			return err
		}
		return s.applyStatusTx(ctx, tx, after, m, schematype.DeliveryFailed, reason)
	})
}
