package stats

// What the workflow records for the statistics and the service levels, in
// the transaction of the change itself. Each is one conditional update:
// what is recorded once (the first claim, the first reply, the first close,
// a missed round) is never overwritten.

import (
	"context"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/schema/schematype"
)

// RiskShare is the part of the service-level target after which an
// unanswered conversation is at risk.
const RiskShare = 0.8

// Due returns when a conversation that entered a queue at queued with a
// target of secs is due and at risk; ok is false without a target.
func Due(queued time.Time, secs int) (due, risk time.Time, ok bool) {
	if secs <= 0 {
		return time.Time{}, time.Time{}, false
	}
	target := time.Duration(secs) * time.Second
	return queued.Add(target), queued.Add(time.Duration(float64(target) * RiskShare)), true
}

// AtRisk says whether c is at risk now: a first reply is due (SLADueAt)
// and 80 % of the target has passed.
func AtRisk(c *ent.Conversation, now time.Time) bool {
	if c.SLADueAt == nil || c.QueuedAt == nil {
		return false
	}
	risk := c.QueuedAt.Add(time.Duration(float64(c.SLADueAt.Sub(*c.QueuedAt)) * RiskShare))
	return !now.Before(risk)
}

// Queued records that c entered queue queueID at at (its first routing in
// a queue, a move or a fall-back to another): the period its figures count
// in and, while no agent replied, its service-level due time under the
// queue's target. c is updated to what was written.
func Queued(ctx context.Context, tx *ent.Tx, c *ent.Conversation, queueID int, at time.Time) error {
	q, err := tx.Queue.Get(ctx, queueID)
	if err != nil {
		return err
	}
	u := tx.Conversation.UpdateOneID(c.ID).SetQueuedAt(at)
	c.QueuedAt = &at
	if c.FirstReplyAt == nil && c.Status == schematype.ConversationOpen {
		setDue(u.Mutation(), c, at, q.ServiceLevelSeconds)
	}
	return u.Exec(ctx)
}

// setDue sets (or clears, without a target) the due time, sort key and
// at-risk timer of c, queued at queued.
func setDue(m *ent.ConversationMutation, c *ent.Conversation, queued time.Time, secs int) {
	due, risk, ok := Due(queued, secs)
	if !ok {
		m.ClearSLADueAt()
		m.ClearSLARiskAt()
		m.SetSLASortAt(schematype.SLANever)
		c.SLADueAt, c.SLARiskAt, c.SLASortAt = nil, nil, schematype.SLANever
		return
	}
	m.SetSLADueAt(due)
	m.SetSLARiskAt(risk)
	m.SetSLASortAt(due)
	c.SLADueAt, c.SLARiskAt, c.SLASortAt = &due, &risk, due
}

// Retarget applies queue queueID's new target to its open conversations
// still waiting for a first reply (updateQueue).
func Retarget(ctx context.Context, tx *ent.Tx, queueID, secs int) error {
	convs, err := tx.Conversation.Query().
		Where(conversation.QueueID(queueID), conversation.StatusEQ(schematype.ConversationOpen),
			conversation.FirstReplyAtIsNil(), conversation.QueuedAtNotNil()).
		Select(conversation.FieldID, conversation.FieldQueuedAt, conversation.FieldSLARiskAt, conversation.FieldSLADueAt).All(ctx)
	if err != nil {
		return err
	}
	for _, c := range convs {
		u := tx.Conversation.UpdateOneID(c.ID)
		notified := c.SLADueAt != nil && c.SLARiskAt == nil
		setDue(u.Mutation(), c, *c.QueuedAt, secs)
		if notified {
			// Told once already: a new target moves the due time, not the
			// promise of one notification per conversation.
			u.ClearSLARiskAt()
		}
		if err := u.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Missed records that an offer round of c timed out with nobody taking it
// (the first such round only).
func Missed(ctx context.Context, tx *ent.Tx, c *ent.Conversation, at time.Time) error {
	if c.MissedAt != nil {
		return nil
	}
	c.MissedAt = &at
	return tx.Conversation.Update().Where(conversation.ID(c.ID), conversation.MissedAtIsNil()).
		SetMissedAt(at).Exec(ctx)
}

// Claimed records the first claim of c (a Take, a first reply, a transfer
// of an unowned conversation) by agentID; later claims change nothing.
func Claimed(m *ent.ConversationMutation, c *ent.Conversation, agentID int, at time.Time) {
	if c.ClaimedAt != nil {
		return
	}
	m.SetClaimedAt(at)
	m.SetClaimedByID(agentID)
	c.ClaimedAt, c.ClaimedByID = &at, &agentID
}

// Replied records agentID's customer-facing reply to c at at: the first
// one is c's first reply, and ends its service-level clock. Private notes
// never come here.
func Replied(ctx context.Context, tx *ent.Tx, c *ent.Conversation, agentID int, at time.Time) error {
	if c.FirstReplyAt != nil || c.Channel == schematype.ChannelInternal {
		return nil
	}
	from := c.CreatedAt
	if c.QueuedAt != nil {
		from = *c.QueuedAt
	}
	secs := max(0, at.Sub(from).Seconds())
	c.FirstReplyAt, c.FirstReplyAgentID, c.FirstReplySeconds = &at, &agentID, &secs
	c.SLADueAt, c.SLARiskAt, c.SLASortAt = nil, nil, schematype.SLANever
	return tx.Conversation.Update().Where(conversation.ID(c.ID), conversation.FirstReplyAtIsNil()).
		SetFirstReplyAt(at).SetFirstReplyAgentID(agentID).SetFirstReplySeconds(secs).
		ClearSLADueAt().ClearSLARiskAt().SetSLASortAt(schematype.SLANever).Exec(ctx)
}

// Closed records the first close of c (dealt with, or a live chat ended by
// either side) at at: its handle time from the first claim, who owned it,
// and whether it was abandoned (closed without an agent reply). Nothing is
// due any more.
func Closed(ctx context.Context, tx *ent.Tx, c *ent.Conversation, at time.Time) error {
	if c.ClosedAt != nil {
		return nil
	}
	u := tx.Conversation.UpdateOneID(c.ID).ClearSLADueAt().ClearSLARiskAt().SetSLASortAt(schematype.SLANever).
		SetAbandoned(c.FirstReplyAt == nil)
	if c.ClaimedAt != nil {
		u.SetHandleSeconds(max(0, at.Sub(*c.ClaimedAt).Seconds())).SetNillableHandledByID(c.OwnerID)
	}
	return u.Exec(ctx)
}
