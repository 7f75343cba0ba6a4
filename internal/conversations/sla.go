package conversations

// Service levels: the at-risk timer. A conversation queued under a target
// carries sla_risk_at (80 % of the target, internal/stats); the worker
// claims each due timer with a conditional update in the transaction that
// announces it, so with several instances, and across restarts, each
// conversation is announced once: the claim and the event-log entry commit
// together or not at all.

import (
	"context"
	"fmt"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/store"
)

// DefaultSLAEvery is how often the at-risk timers are looked at.
const DefaultSLAEvery = time.Second

// NotifyAtRisk announces SLA_AT_RISK for every conversation whose at-risk
// time has come, by the router's clock, and returns how many it announced.
// The event goes to the inbox of everyone who sees the conversation through
// a relation of their own (its queue's members while it is unowned, its
// owner once taken) and of the admins; each delivery checks again that the
// subscriber may see it.
func (s *Service) NotifyAtRisk(ctx context.Context) (int, error) {
	now := s.router.Now()
	due, err := s.client.Conversation.Query().Where(conversation.SLARiskAtLTE(now)).
		Order(ent.Asc(conversation.FieldSLARiskAt), ent.Asc(conversation.FieldID)).Limit(100).IDs(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range due {
		err := store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
			k, err := tx.Conversation.Update().Where(conversation.ID(id), conversation.SLARiskAtLTE(now)).
				ClearSLARiskAt().Save(ctx)
			if err != nil || k == 0 {
				return err // another instance, or a reply, was first
			}
			c, err := tx.Conversation.Get(ctx, id)
			if err != nil {
				return err
			}
			if c.Status != schematype.ConversationOpen || c.Archived || c.FirstReplyAt != nil || c.SLADueAt == nil || c.ContactBlocked {
				return nil
			}
			v, err := viewersOf(ctx, tx.Client(), c)
			if err != nil {
				return err
			}
			admins, err := tx.Agent.Query().
				Where(agent.Active(true), agent.RoleIn(schematype.RoleAdmin, schematype.RoleSystemOwner)).IDs(ctx)
			if err != nil {
				return err
			}
			to := dedupe(append(v.Agents(), admins...))
			topics := make([]string, 0, len(to))
			for _, a := range to {
				topics = append(topics, pubsub.AgentTopic(a))
			}
			s.elog.Emit(after, pubsub.Event{Kind: pubsub.KindSLAAtRisk, ConversationID: id}, topics...)
			n++
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("service level of conversation %d: %w", id, err)
		}
	}
	return n, nil
}

// SLAAtRisk says whether c is at 80 % of its service-level target or past
// it without an agent reply, by the router's clock (Conversation.slaAtRisk;
// asking for it loads the whole row, see ent's field collection).
func (s *Service) SLAAtRisk(c *ent.Conversation) bool { return stats.AtRisk(c, s.router.Now()) }
