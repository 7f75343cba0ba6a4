package conversations

// Release: a conversation going back to a queue without an owner, and being
// routed there again. Four moves share it: transfer to a queue, release by
// its owner (or an admin), owner away (the queue's ownerAwayTimeoutSeconds),
// and ReturnOwned (an agent's conversations when they are deactivated).
//
// Where a conversation goes back to: the queue it is in (conversation.
// queue_id: the queue its account routes to, the queue it was transferred
// to, or the fallback queue it moved to). A conversation that came straight
// to an agent (no queue) goes to its account's fallback queue; without one,
// Release refuses (BAD_USER_INPUT: transfer it instead), and ReturnOwned
// leaves it unowned and waiting for its account's agent, as routing does
// for any direct conversation without a fallback (admins see it and can
// transfer it).
//
// Sticky ownership holds otherwise: nothing else takes a conversation away
// from its owner.

import (
	"context"
	"fmt"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/queue"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/routing"
	"github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/worker"
)

// DefaultAwayEvery is how often the owner-away pass runs.
const DefaultAwayEvery = 15 * time.Second

// move is one conversation going back unowned.
type move struct {
	// queueID is where it goes; nil leaves its queue as it is (none, for a
	// direct conversation without a fallback).
	queueID *int
	// from, when set, is the owner it must still have (a conditional
	// update: of concurrent moves, one happens).
	from *int
	kind schematype.InteractionKind
	// agentID and detail are the interaction entry's.
	agentID *int
	detail  string
}

// requeue makes the open conversation c unowned as m says, records the
// move in the contact's history, routes it, and tells everyone concerned:
// REMOVED to those who saw it (before) and no longer do, CONVERSATION_CREATED
// (with the newest message) to those who see it now and did not, offered
// agents included, CONVERSATION_UPDATED to those who still do. It reports
// false, changing nothing, when c is no longer open (or no longer m.from's).
func (s *Service) requeue(ctx context.Context, tx *ent.Tx, after *store.After, c *ent.Conversation, before *Viewers, m move) (bool, error) {
	now := s.now()
	u := tx.Conversation.Update().
		Where(conversation.ID(c.ID), conversation.StatusEQ(schematype.ConversationOpen)).
		ClearOwnerID().ClearRouteAt().ClearRoundStartedAt().SetArchived(false).SetUpdatedAt(now)
	if m.from != nil {
		u.Where(conversation.OwnerID(*m.from))
	}
	if m.queueID != nil {
		u.SetQueueID(*m.queueID)
	}
	n, err := u.Save(ctx)
	if err != nil || n == 0 {
		return false, err
	}
	cur, err := tx.Conversation.Get(ctx, c.ID)
	if err != nil {
		return false, err
	}
	if m.queueID != nil && (c.QueueID == nil || *c.QueueID != *m.queueID) {
		// Another queue: its period and its target from now. Back to the
		// same queue, the customer has waited since they first did.
		if err := stats.Queued(ctx, tx, cur, *m.queueID, now); err != nil {
			return false, err
		}
	}
	if err := logInteraction(ctx, tx, cur, m.kind, m.agentID, m.detail, now); err != nil {
		return false, err
	}
	d, err := s.router.Route(ctx, tx, cur)
	if err != nil {
		return false, err
	}
	s.router.Record(after, d)
	if cur, err = tx.Conversation.Get(ctx, c.ID); err != nil {
		return false, err
	}
	now2, err := viewersOf(ctx, tx.Client(), cur)
	if err != nil {
		return false, err
	}
	was, is := before.Agents(), now2.Agents()
	if lost := without(was, append(is, d.Lost...)); len(lost) > 0 {
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationRemoved, ConversationID: c.ID, AgentIDs: lost}, lost, false)
	}
	if gained := without(is, append(was, d.Offered...)); len(gained) > 0 {
		s.emit(after, pubsub.Event{Kind: pubsub.KindConversationCreated, ConversationID: c.ID, AgentIDs: gained}, gained, false)
	}
	stayed := without(is, without(is, was))
	s.emit(after, pubsub.Event{Kind: pubsub.KindConversationUpdated, ConversationID: c.ID}, stayed, false)
	// The former owner freed a slot.
	after.Do(func() { s.wake() })
	*c = *cur
	return true, nil
}

// TransferTo is transferConversation: to an agent (Transfer) or to a
// queue (TransferToQueue), exactly one of the two.
func (s *Service) TransferTo(ctx context.Context, id int, agentID, queueID *int) (*ent.Conversation, error) {
	switch {
	case (agentID == nil) == (queueID == nil):
		return nil, apperr.Invalid("agentID", "give exactly one of agentID and queueID")
	case agentID != nil:
		return s.Transfer(ctx, id, *agentID)
	}
	return s.TransferToQueue(ctx, id, *queueID)
}

// TransferToQueue sends a conversation to a queue: unowned, routed there.
// Whoever may manage it may do so, as with a transfer to an agent; the
// caller loses access at once unless they still see it (a member of that
// queue, an admin).
func (s *Service) TransferToQueue(ctx context.Context, id, queueID int) (*ent.Conversation, error) {
	var out *ent.Conversation
	err := s.act(ctx, id, OpManage, func(tx *ent.Tx, after *store.After, p auth.Principal, sub *subject) error {
		c := sub.c
		if c.Channel == schematype.ChannelInternal {
			return apperr.Invalid("id", "internal chats cannot be transferred")
		}
		if c.Status != schematype.ConversationOpen {
			return apperr.Invalid("id", "only open conversations can be transferred")
		}
		q, err := tx.Queue.Get(ctx, queueID)
		if ent.IsNotFound(err) {
			return apperr.Invalid("queueID", "no such queue")
		}
		if err != nil {
			return err
		}
		if c.OwnerID == nil && c.QueueID != nil && *c.QueueID == q.ID {
			return apperr.Invalid("queueID", "the conversation already waits in that queue")
		}
		by, err := tx.Agent.Get(ctx, p.AgentID)
		if err != nil {
			return err
		}
		ok, err := s.requeue(ctx, tx, after, c, sub.viewer, move{
			queueID: &q.ID, kind: schematype.InteractionTransferred, agentID: &p.AgentID,
			detail: fmt.Sprintf("to the queue %s by %s", q.Name, by.Name),
		})
		if err != nil {
			return err
		}
		if !ok {
			return apperr.New(apperr.Conflict, "the conversation changed meanwhile; try again")
		}
		out = c
		return nil
	})
	return unwrap(out, err)
}

// Release gives an owned, open conversation back to its queue (see the top
// of this file for which), unowned and routed there. Its owner or an admin
// may; anyone else who knows of it gets FORBIDDEN.
func (s *Service) Release(ctx context.Context, id int) (*ent.Conversation, error) {
	var out *ent.Conversation
	err := s.act(ctx, id, OpRelease, func(tx *ent.Tx, after *store.After, p auth.Principal, sub *subject) error {
		c := sub.c
		if c.Status != schematype.ConversationOpen {
			return apperr.Invalid("id", "only open conversations can be released")
		}
		dest, err := destination(ctx, tx, c)
		if err != nil {
			return err
		}
		if dest == nil {
			return apperr.Invalid("id", "this conversation came straight to an agent and its channel account has no fallback queue: transfer it instead")
		}
		q, err := tx.Queue.Get(ctx, *dest)
		if err != nil {
			return err
		}
		detail := "released by its owner"
		if *c.OwnerID != p.AgentID {
			by, err := tx.Agent.Get(ctx, p.AgentID)
			if err != nil {
				return err
			}
			detail = "released by " + by.Name
		}
		ok, err := s.requeue(ctx, tx, after, c, sub.viewer, move{
			queueID: dest, from: c.OwnerID, kind: schematype.InteractionReleased, agentID: c.OwnerID,
			detail: detail + " to the queue " + q.Name,
		})
		if err != nil {
			return err
		}
		if !ok {
			return apperr.New(apperr.Conflict, "the conversation changed meanwhile; try again")
		}
		out = c
		return nil
	})
	return unwrap(out, err)
}

// destination is the queue an owned conversation goes back to: its own, or
// for one that came straight to an agent its account's fallback; nil when
// it has neither.
func destination(ctx context.Context, tx *ent.Tx, c *ent.Conversation) (*int, error) {
	if c.QueueID != nil {
		return c.QueueID, nil
	}
	if c.ChannelAccountID == nil {
		return nil, nil
	}
	acct, err := tx.ChannelAccount.Get(ctx, *c.ChannelAccountID)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return acct.FallbackQueueID, nil
}

// ReturnOwned gives back every open conversation (internal chats aside)
// agentID owns: to the queue it came from, or for a direct conversation to
// its account's fallback queue (without one it stays unowned, waiting for
// its account's agent), routed again, each with a RELEASED entry whose
// detail is reason. The agent is told each is gone (REMOVED), the agents
// offered it are told it arrived. Then the agent's live offers are
// withdrawn and moved on. It checks no caller: the administration service
// calls it once it has decided (an agent deactivated), after that decision
// committed, so that routing no longer counts the agent eligible. It
// returns how many conversations it gave back; a conversation the agent no
// longer owns by then is left alone, so a second call (or another instance
// calling at once) returns nothing twice.
func (s *Service) ReturnOwned(ctx context.Context, agentID int, reason string) (int, error) {
	if reason == "" {
		reason = "returned by the system"
	}
	ids, err := s.client.Conversation.Query().
		Where(conversation.OwnerID(agentID), conversation.StatusEQ(schematype.ConversationOpen),
			conversation.ChannelNEQ(schematype.ChannelInternal)).
		Order(ent.Asc(conversation.FieldID)).IDs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		moved, err := s.giveBack(ctx, id, agentID, func(*ent.Tx, *ent.Conversation) (string, bool, error) { return reason, true, nil })
		if err != nil {
			return n, fmt.Errorf("return conversation %d: %w", id, err)
		}
		if moved {
			n++
		}
	}
	if err := s.router.Withdraw(ctx, []int{agentID}); err != nil {
		return n, err
	}
	return n, nil
}

// giveBack moves conversation id, if agentID still owns it and judge (run
// in the transaction) agrees, back to where destination says, with judge's
// detail, in a transaction of its own.
func (s *Service) giveBack(ctx context.Context, id, agentID int, judge func(tx *ent.Tx, c *ent.Conversation) (string, bool, error)) (bool, error) {
	moved := false
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		c, err := tx.Conversation.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if c.OwnerID == nil || *c.OwnerID != agentID || c.Status != schematype.ConversationOpen {
			return nil
		}
		detail, ok, err := judge(tx, c)
		if err != nil || !ok {
			return err
		}
		dest, err := destination(ctx, tx, c)
		if err != nil {
			return err
		}
		before, err := viewersOf(ctx, tx.Client(), c)
		if err != nil {
			return err
		}
		moved, err = s.requeue(ctx, tx, after, c, before, move{
			queueID: dest, from: &agentID, kind: schematype.InteractionReleased, agentID: &agentID, detail: detail,
		})
		return err
	})
	return moved, err
}

// OwnerAway says whether owner a has been away for timeout at now, and
// why: their status OFFLINE since then, or offline (no connection: no sign
// of life for grace, see internal/presence) since then. An agent never
// seen, or whose status never changed, counts from their creation.
func OwnerAway(a *ent.Agent, timeout, grace time.Duration, now time.Time) (string, bool) {
	if a.Status == schematype.StatusOffline {
		since := a.CreatedAt
		if a.StatusChangedAt != nil {
			since = *a.StatusChangedAt
		}
		if now.Sub(since) >= timeout {
			return fmt.Sprintf("owner away: %s has been OFFLINE for over %s", a.Name, timeout), true
		}
	}
	seen := a.CreatedAt
	if a.LastSeenAt != nil {
		seen = *a.LastSeenAt
	}
	if now.Sub(seen.Add(grace)) >= timeout {
		return fmt.Sprintf("owner away: %s has been offline (no connection) for over %s", a.Name, timeout), true
	}
	return "", false
}

// ReleaseAway releases the open conversations whose owner has been away
// (OwnerAway) for their queue's ownerAwayTimeoutSeconds, by the router's
// clock: each goes back to its queue unowned and is routed again, with a
// RELEASED entry saying why. Each release re-reads the owner and claims the
// conversation with a conditional update inside its transaction, so
// several instances running it at once release each conversation once. It
// returns how many it released.
func (s *Service) ReleaseAway(ctx context.Context) (int, error) {
	now := s.router.Now()
	grace := s.PresenceGrace
	// Only owners who may be away by the shortest timeout are looked at.
	maybe := agent.Or(agent.StatusEQ(schematype.StatusOffline), agent.LastSeenAtIsNil(), agent.LastSeenAtLT(now.Add(-grace-routing.MinOwnerAway)))
	n, last := 0, 0
	for {
		batch, err := s.client.Conversation.Query().
			Where(conversation.IDGT(last), conversation.OwnerIDNotNil(), conversation.StatusEQ(schematype.ConversationOpen),
				conversation.ChannelNEQ(schematype.ChannelInternal),
				conversation.HasQueueWith(queue.OwnerAwayTimeoutSecondsNotNil()), conversation.HasOwnerWith(maybe)).
			Order(ent.Asc(conversation.FieldID)).Limit(100).
			Select(conversation.FieldID, conversation.FieldOwnerID).All(ctx)
		if err != nil {
			return n, err
		}
		for _, c := range batch {
			last = c.ID
			moved, err := s.giveBack(ctx, c.ID, *c.OwnerID, func(tx *ent.Tx, c *ent.Conversation) (string, bool, error) {
				if c.QueueID == nil {
					return "", false, nil
				}
				q, err := tx.Queue.Get(ctx, *c.QueueID)
				if err != nil || q.OwnerAwayTimeoutSeconds == nil {
					return "", false, err
				}
				owner, err := tx.Agent.Get(ctx, *c.OwnerID)
				if err != nil {
					return "", false, err
				}
				why, away := OwnerAway(owner, time.Duration(*q.OwnerAwayTimeoutSeconds)*time.Second, grace, now)
				return why + "; back to the queue " + q.Name, away, nil
			})
			if err != nil {
				return n, fmt.Errorf("release conversation %d: %w", c.ID, err)
			}
			if moved {
				n++
			}
		}
		if len(batch) < 100 {
			return n, nil
		}
	}
}

// Run runs the owner-away pass every AwayEvery and the service-level
// at-risk pass every SLAEvery until ctx ends.
func (s *Service) Run(ctx context.Context) {
	worker.RunAll(ctx,
		worker.Loop{Name: "owner away", Every: s.AwayEvery, Log: s.log, Pass: worker.Once(func(ctx context.Context) error {
			_, err := s.ReleaseAway(ctx)
			return err
		})},
		worker.Loop{Name: "service levels", Every: s.SLAEvery, Log: s.log, Pass: func(ctx context.Context) (bool, error) {
			n, err := s.NotifyAtRisk(ctx)
			return n == 100, err // a full batch: more may be due
		}},
	)
}
