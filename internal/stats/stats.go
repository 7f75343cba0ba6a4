// Package stats computes a queue's statistics (queueStats) and live figures
// (waiting, longest wait, agents online and available) from what the
// workflow records on each conversation as it happens (record.go): when it
// entered the queue, its first claim and first agent reply, its close, a
// missed offer round, and its service-level due time.
//
// Every figure over a period is SQL aggregation, in a handful of
// statements whatever the number of conversations, alike on SQLite and
// PostgreSQL: counts and averages with GROUP BY, percentiles with window
// functions (ROW_NUMBER over the sorted durations), so that only the rows
// at the two ranks wanted leave the database.
//
// Percentiles are nearest-rank: p50 and p90 of n durations are the values
// at rank ceil(n*p/100) in ascending order (the smallest value that at
// least p % of them do not exceed); with one duration both are it.
package stats

import (
	"context"
	stdsql "database/sql"
	"fmt"
	"strconv"
	"time"

	"entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/predicate"
	"github.com/parleyhq/parley/ent/queuemember"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/labels"
	"github.com/parleyhq/parley/internal/store"
)

// MaxSpan is the longest period queueStats answers for.
const MaxSpan = 366 * 24 * time.Hour

// Duration is a set of durations in seconds: nil when there was nothing
// to measure.
type Duration struct {
	Average, P50, P90 *float64
}

// AgentStats is one agent's figures within a queue over a period.
type AgentStats struct {
	Agent *ent.Agent
	// Answered: conversations of the period this agent claimed first.
	Answered int
	// Owned: open conversations of the queue the agent owns now.
	Owned int
	// FirstReplySeconds: of the conversations whose first agent reply was
	// this agent's.
	FirstReplySeconds Duration
	// HandleSeconds: of the conversations this agent owned when they were
	// closed.
	HandleSeconds Duration
}

// QueueStats is a queue's live figures and its figures over a period.
type QueueStats struct {
	Queue *ent.Queue
	LiveFigures
	// Offered: conversations that entered the queue in the period.
	Offered int
	// Answered: of those, claimed by an agent (first reply or Take).
	Answered int
	// Missed: of those, offered in a round that timed out with nobody
	// taking it (once per conversation).
	Missed int
	// Abandoned: of those, closed (ended by the visitor or an agent, or
	// dealt with) without an agent reply.
	Abandoned int
	// FirstReplySeconds: from entering the queue to the first agent reply.
	FirstReplySeconds Duration
	// HandleSeconds: from the first claim to the close.
	HandleSeconds Duration
	// WithinServiceLevel: the share of answered conversations whose first
	// reply came within the queue's target; nil without a target or
	// nothing answered.
	WithinServiceLevel *float64
	// Agents: the queue's members and everyone else with a figure in the
	// period, by name.
	Agents []*AgentStats
}

// Service computes statistics.
type Service struct {
	client  *ent.Client
	dialect string
	// OnlineSince is the earliest last sign of life of an agent who counts
	// as online now (presence.Service.OnlineSince).
	OnlineSince func() time.Time
	now         func() time.Time
}

// New returns the statistics service for client, whose SQL dialect is
// dialect (store.DB.Dialect).
func New(client *ent.Client, dialect string, onlineSince func() time.Time) *Service {
	return &Service{client: client, dialect: dialect, OnlineSince: onlineSince, now: time.Now}
}

// SetClock replaces time.Now (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Period is what queueStats asks for.
type Period struct {
	QueueID  int
	From, To time.Time
	LabelIDs []int
}

// Authorize refuses the caller unless they may read queueID's statistics
// ([Supervisor]: NOT_FOUND for a queue that does not exist, FORBIDDEN for
// a caller the rule refuses), and returns the queue.
func (s *Service) Authorize(ctx context.Context, queueID int) (*ent.Queue, error) {
	if _, err := Supervisor(ctx, s.client, queueID); err != nil {
		return nil, err
	}
	q, err := s.client.Queue.Get(ctx, queueID)
	if err != nil {
		return nil, store.Coded(err, "queue")
	}
	return q, nil
}

// labelled narrows the counted conversations to those carrying any of
// labelIDs (the inbox's rule, labels.ConversationHasAny); nil: no filter.
func labelled(ids []int) predicate.Conversation {
	if len(ids) == 0 {
		return nil
	}
	return labels.ConversationHasAny(ids)
}

// QueueStats computes the figures of period pr for the caller, who must
// be allowed to see them ([Service.Authorize]).
func (s *Service) QueueStats(ctx context.Context, pr Period) (*QueueStats, error) {
	if err := checkPeriod(pr); err != nil {
		return nil, err
	}
	q, err := s.Authorize(ctx, pr.QueueID)
	if err != nil {
		return nil, err
	}
	return s.compute(ctx, q, pr)
}

// Compute is QueueStats without the caller check, for the queueEvents
// streams, which authorise each subscriber themselves.
func (s *Service) Compute(ctx context.Context, pr Period) (*QueueStats, error) {
	if err := checkPeriod(pr); err != nil {
		return nil, err
	}
	q, err := s.client.Queue.Get(ctx, pr.QueueID)
	if err != nil {
		return nil, store.Coded(err, "queue")
	}
	return s.compute(ctx, q, pr)
}

func checkPeriod(pr Period) error {
	if !pr.From.Before(pr.To) {
		return apperr.Invalid("to", "to must be after from")
	}
	if pr.To.Sub(pr.From) > MaxSpan {
		return apperr.Invalid("to", "the period spans at most 366 days")
	}
	if len(pr.LabelIDs) > labels.MaxFilter {
		return apperr.Invalid("labelIDs", "at most %d labels at once", labels.MaxFilter)
	}
	return nil
}

func (s *Service) compute(ctx context.Context, q *ent.Queue, pr Period) (*QueueStats, error) {
	var err error
	out := &QueueStats{Queue: q}
	if out.LiveFigures, err = s.Live(ctx, q.ID); err != nil {
		return nil, err
	}
	// Every conversation figure reads the conversations of the period
	// through these predicates, and only through them.
	period := []predicate.Conversation{
		conversation.QueueID(q.ID), conversation.QueuedAtGTE(pr.From), conversation.QueuedAtLT(pr.To),
	}
	owned := []predicate.Conversation{
		conversation.QueueID(q.ID), conversation.StatusEQ(schematype.ConversationOpen), conversation.OwnerIDNotNil(),
	}
	if l := labelled(pr.LabelIDs); l != nil {
		period, owned = with(period, l), with(owned, l)
	}
	if err := s.totals(ctx, period, q.ServiceLevelSeconds, out); err != nil {
		return nil, fmt.Errorf("queue totals: %w", err)
	}
	agents := map[int]*AgentStats{}
	row := func(id int) *AgentStats {
		if agents[id] == nil {
			agents[id] = &AgentStats{Agent: &ent.Agent{ID: id}}
		}
		return agents[id]
	}
	if err := s.durations(ctx, period, out, row); err != nil {
		return nil, fmt.Errorf("queue durations: %w", err)
	}
	if err := s.counts(ctx, period, owned, row); err != nil {
		return nil, fmt.Errorf("queue agent counts: %w", err)
	}
	ids, err := s.client.QueueMember.Query().Where(queuemember.QueueID(q.ID)).
		Select(queuemember.FieldAgentID).Ints(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		row(id)
	}
	all := make([]int, 0, len(agents))
	for id := range agents {
		all = append(all, id)
	}
	list, err := s.client.Agent.Query().Where(agent.IDIn(all...)).
		Order(ent.Asc(agent.FieldName), ent.Asc(agent.FieldID)).All(ctx)
	if err != nil {
		return nil, err
	}
	out.Agents = make([]*AgentStats, 0, len(list))
	for _, a := range list {
		r := agents[a.ID]
		r.Agent = a
		out.Agents = append(out.Agents, r)
	}
	return out, nil
}

// with is preds and more, in a slice of its own.
func with(preds []predicate.Conversation, more ...predicate.Conversation) []predicate.Conversation {
	return append(append(make([]predicate.Conversation, 0, len(preds)+len(more)), preds...), more...)
}

// base is the conversations of preds, in a statement of s's dialect.
func (s *Service) base(preds []predicate.Conversation) *sql.Selector {
	t := sql.Table(conversation.Table)
	sel := sql.Dialect(s.dialect).Select().From(t)
	for _, p := range preds {
		p(sel)
	}
	return sel
}

func (s *Service) query(ctx context.Context, sel *sql.Selector, scan func(*stdsql.Rows) error) error {
	q, args := sel.Query()
	rows, err := s.client.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// totals counts the period's conversations in one statement.
func (s *Service) totals(ctx context.Context, period []predicate.Conversation, target int, out *QueueStats) error {
	sel := s.base(period)
	within := "0"
	if target > 0 {
		within = "COALESCE(SUM(CASE WHEN " + conversation.FieldClaimedAt + " IS NOT NULL AND " +
			conversation.FieldFirstReplySeconds + " <= " + strconv.Itoa(target) + " THEN 1 ELSE 0 END), 0)"
	}
	sel.Select().
		AppendSelectExprAs(sql.Raw("COUNT(*)"), "offered").
		AppendSelectExprAs(sql.Raw("COUNT("+conversation.FieldClaimedAt+")"), "answered").
		AppendSelectExprAs(sql.Raw("COUNT("+conversation.FieldMissedAt+")"), "missed").
		AppendSelectExprAs(sql.Raw("COALESCE(SUM(CASE WHEN "+conversation.FieldAbandoned+" THEN 1 ELSE 0 END), 0)"), "abandoned").
		AppendSelectExprAs(sql.Raw(within), "within")
	var inTime int
	err := s.query(ctx, sel, func(r *stdsql.Rows) error {
		return r.Scan(&out.Offered, &out.Answered, &out.Missed, &out.Abandoned, &inTime)
	})
	if err != nil {
		return err
	}
	if target > 0 && out.Answered > 0 {
		share := float64(inTime) / float64(out.Answered)
		out.WithinServiceLevel = &share
	}
	return nil
}

// durations fills the averages and percentiles of first reply and handle
// time, for the queue and per agent, in one statement: each duration's rows
// ranked within its group (ROW_NUMBER), and only the rows at the p50 and
// p90 ranks returned, each with its group's size and average.
func (s *Service) durations(ctx context.Context, period []predicate.Conversation, out *QueueStats, row func(int) *AgentStats) error {
	type measure struct {
		kind, column, by string
		queue            *Duration
		agent            func(*AgentStats) *Duration
	}
	measures := []measure{
		{"f", conversation.FieldFirstReplySeconds, conversation.FieldFirstReplyAgentID, &out.FirstReplySeconds,
			func(a *AgentStats) *Duration { return &a.FirstReplySeconds }},
		{"h", conversation.FieldHandleSeconds, conversation.FieldHandledByID, &out.HandleSeconds,
			func(a *AgentStats) *Duration { return &a.HandleSeconds }},
	}
	var union *sql.Selector
	for _, m := range measures {
		for _, group := range []string{"", m.by} {
			g, part := "0", ""
			if group != "" {
				g, part = "COALESCE("+group+", 0)", "PARTITION BY "+group+" "
			}
			inner := s.base(with(period, func(sel *sql.Selector) { sel.Where(sql.NotNull(sel.C(m.column))) }))
			inner.Select().
				AppendSelectExprAs(sql.Raw("'"+m.kind+"'"), "k").
				AppendSelectExprAs(sql.Raw(g), "g").
				AppendSelectExprAs(sql.Raw(m.column), "v").
				AppendSelectExprAs(sql.Raw("ROW_NUMBER() OVER ("+part+"ORDER BY "+m.column+", id)"), "rn").
				AppendSelectExprAs(sql.Raw("COUNT(*) OVER ("+part+")"), "n").
				AppendSelectExprAs(sql.Raw("AVG("+m.column+") OVER ("+part+")"), "a")
			outer := sql.Dialect(s.dialect).Select("k", "g", "v", "rn", "n", "a").From(inner.As("t_" + m.kind + strconv.Itoa(len(group)))).
				Where(sql.ExprP("rn = (n * 50 + 99) / 100 OR rn = (n * 90 + 99) / 100"))
			if union == nil {
				union = outer
			} else {
				union.UnionAll(outer)
			}
		}
	}
	return s.query(ctx, union, func(r *stdsql.Rows) error {
		var (
			kind      string
			g, rn, n  int
			v, avg    float64
			durations *Duration
		)
		if err := r.Scan(&kind, &g, &v, &rn, &n, &avg); err != nil {
			return err
		}
		for _, m := range measures {
			if m.kind != kind {
				continue
			}
			durations = m.queue
			if g != 0 {
				durations = m.agent(row(g))
			}
		}
		if durations == nil {
			return nil
		}
		durations.Average = &avg
		if rn == (n*50+99)/100 {
			durations.P50 = &v
		}
		if rn == (n*90+99)/100 {
			durations.P90 = &v
		}
		return nil
	})
}

// counts fills each agent's answered (in the period) and owned (now)
// conversations, in one statement.
func (s *Service) counts(ctx context.Context, period, owned []predicate.Conversation, row func(int) *AgentStats) error {
	answered := s.base(with(period, conversation.ClaimedByIDNotNil()))
	answered.Select().AppendSelectExprAs(sql.Raw("'a'"), "k").
		AppendSelectExprAs(sql.Raw(conversation.FieldClaimedByID), "g").
		AppendSelectExprAs(sql.Raw("COUNT(*)"), "n").
		GroupBy(conversation.FieldClaimedByID)
	own := s.base(owned)
	own.Select().AppendSelectExprAs(sql.Raw("'o'"), "k").
		AppendSelectExprAs(sql.Raw(conversation.FieldOwnerID), "g").
		AppendSelectExprAs(sql.Raw("COUNT(*)"), "n").
		GroupBy(conversation.FieldOwnerID)
	answered.UnionAll(own)
	return s.query(ctx, answered, func(r *stdsql.Rows) error {
		var (
			kind string
			g, n int
		)
		if err := r.Scan(&kind, &g, &n); err != nil {
			return err
		}
		if kind == "a" {
			row(g).Answered = n
		} else {
			row(g).Owned = n
		}
		return nil
	})
}
