package routing

import (
	"context"
	"fmt"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/schema/schematype"
	qstats "github.com/parleyhq/parley/internal/stats"
)

// Direct routing: an account routed to one agent offers its conversations to
// that agent under the same conditions as a queue does (active, AVAILABLE,
// online, below their maximum of open conversations). The wait for the
// agent starts with the conversation's first routing turn
// (round_started_at) and lasts the fallback queue's offer timeout, or
// DirectTimeout without a fallback:
//
//   - the agent can take it: they are offered it until the deadline;
//   - with a fallback queue, when the deadline passes without the agent
//     taking it (AWAY, at capacity, or not answering), or at once when the
//     agent is deactivated, OFFLINE or not online (nobody to wait for),
//     the conversation moves to the fallback
//     queue (queue_id set, a RELEASED interaction saying why) and is routed
//     there like any of that queue's conversations;
//   - without a fallback it keeps waiting for the agent: offered whenever
//     they can take it, withdrawn when they cannot, never moved.
//
// The deadline is the conversation's route_at, so it survives restarts and
// runs once across instances like every other offer timer.

// Owner-away limits of a queue (queue.owner_away_timeout_seconds; 0 in the
// API turns it off). The conversations service releases the conversations
// of owners away that long (conversations.ReleaseAway).
const (
	MinOwnerAway = 60 * time.Second
	MaxOwnerAway = 7 * 24 * time.Hour
)

// routeDirect routes the unowned conversation c of an agent-routed account.
func (r *Router) routeDirect(ctx context.Context, tx *ent.Tx, c *ent.Conversation, active []*ent.Offer, now time.Time, d *Decision) (Decision, error) {
	if c.ChannelAccountID == nil {
		return *d, nil
	}
	acct, err := tx.ChannelAccount.Get(ctx, *c.ChannelAccountID)
	if err != nil || acct.AgentID == nil {
		return *d, err
	}
	a, err := tx.Agent.Get(ctx, *acct.AgentID)
	if err != nil {
		return *d, err
	}
	var fallback *ent.Queue
	timeout := DirectTimeout
	if acct.FallbackQueueID != nil {
		if fallback, err = tx.Queue.Get(ctx, *acct.FallbackQueueID); err != nil {
			return *d, err
		}
		timeout = time.Duration(fallback.OfferTimeoutSeconds) * time.Second
	}
	start := now
	if c.RoundStartedAt != nil {
		start = *c.RoundStartedAt
	}
	deadline := start.Add(timeout)
	free, err := r.canTake(ctx, tx, a)
	if err != nil {
		return *d, err
	}
	switch {
	case fallback != nil && (!a.Active || r.offline(a) || !now.Before(deadline)):
		return r.toFallback(ctx, tx, c, a, fallback, free, timeout, now, d)
	case free:
		// Offered until the deadline; without a fallback the offer is
		// renewed then, for as long as the agent can take it.
		expires := deadline
		if fallback == nil {
			expires = now.Add(timeout)
		}
		if err := r.apply(ctx, tx, c, []int{a.ID}, active, &expires, expires, d, true); err != nil {
			return *d, err
		}
	default:
		// The agent cannot take it now: no offer. With a fallback the
		// deadline is the next turn; without one, the conversation waits
		// until the agent frees a slot or becomes AVAILABLE (WakeWaiting).
		var routeAt *time.Time
		if fallback != nil {
			routeAt = &deadline
		}
		if err := r.apply(ctx, tx, c, nil, active, routeAt, now, d, true); err != nil {
			return *d, err
		}
	}
	// Withdrawn offers of a direct conversation leave nobody seeing it.
	d.Lost = append(d.Lost, d.Withdrawn...)
	return *d, tx.Conversation.UpdateOneID(c.ID).SetRoundStartedAt(start).Exec(ctx)
}

// offline says whether a is OFFLINE or has given no sign of life within the
// presence grace: a customer does not wait for them.
func (r *Router) offline(a *ent.Agent) bool {
	if a.Status == schematype.StatusOffline {
		return true
	}
	return r.Online != nil && (a.LastSeenAt == nil || !a.LastSeenAt.After(r.Online()))
}

// canTake says whether a may be offered one more conversation now.
func (r *Router) canTake(ctx context.Context, tx *ent.Tx, a *ent.Agent) (bool, error) {
	if !r.eligible(a) {
		return false, nil
	}
	load, err := openLoad(ctx, tx, []int{a.ID})
	if err != nil {
		return false, err
	}
	return load[a.ID] < a.MaxConcurrentChats, nil
}

// toFallback moves the direct conversation c to the account's fallback queue
// q, records why, and routes it there.
func (r *Router) toFallback(ctx context.Context, tx *ent.Tx, c *ent.Conversation, a *ent.Agent, q *ent.Queue, offered bool, timeout time.Duration, now time.Time, d *Decision) (Decision, error) {
	why := fmt.Sprintf("%s was not available within %s", a.Name, timeout)
	switch {
	case !a.Active:
		why = a.Name + " is deactivated"
	case r.offline(a):
		why = a.Name + " is offline"
	case offered:
		why = fmt.Sprintf("%s did not take it within %s", a.Name, timeout)
	}
	if err := tx.Conversation.UpdateOneID(c.ID).SetQueueID(q.ID).SetRoundStartedAt(now).Exec(ctx); err != nil {
		return *d, err
	}
	c.QueueID, c.RoundStartedAt = &q.ID, &now
	if err := qstats.Queued(ctx, tx, c, q.ID, now); err != nil {
		return *d, err
	}
	err := tx.Interaction.Create().SetAt(now).SetKind(schematype.InteractionReleased).SetChannel(c.Channel).
		SetConversationID(c.ID).SetAgentID(a.ID).SetNillableContactID(c.ContactID).SetQueueID(q.ID).
		SetDetail(why + ": moved to the fallback queue " + q.Name).Exec(ctx)
	if err != nil {
		return *d, err
	}
	return r.Route(ctx, tx, c)
}
