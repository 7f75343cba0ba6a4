// Package eventlog makes realtime events durable and resumable.
//
// An event is written to the event_logs table in the transaction that
// caused it (one row per topic), as the last thing before the commit, so it
// exists exactly when its change committed; it is published on the broker
// after the commit. Its seq comes from a single counter row whose lock the
// transaction takes at that last moment: seqs are gap-free and follow
// commit order, so when an event is visible every earlier one is too. That
// makes a seq a cursor: "every event of this topic after N" is a plain,
// complete query, whatever instance asks and whenever.
//
// A subscriber ([Log.Subscribe]) reads the broker for speed and the log for
// completeness. Each published event carries its seq and the seq of the
// previous event on its topic (Prev): a subscriber that sees a Prev newer
// than its last event missed something (a publish lost to a crash between
// commit and publish, a Redis restart, a drop for being slow) and reads the
// gap from the log before going on. A poll of the log every PollInterval
// catches what no later event reveals. Resuming after a cursor replays the
// log, then continues live, without a gap or a duplicate.
//
// Why a counter lock rather than a database sequence: a sequence hands out
// numbers in call order, not commit order, so a subscriber could see 11
// before 10 commits and resume past 10 for good. The lock costs one short
// serialised step per event-writing transaction (the counter update and the
// commit), which bounds event-writing transactions to roughly one per
// commit latency across the cluster; every transaction's events are written
// in one statement under one lock, so a transaction that causes many events
// pays once.
package eventlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/eventcounter"
	"github.com/parleyhq/parley/ent/eventlog"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/worker"
)

// Defaults.
const (
	// DefaultRetention is how long events are kept for resuming.
	DefaultRetention = 24 * time.Hour
	// DefaultPollInterval is how often the log is checked for events that
	// were committed but never reached the broker.
	DefaultPollInterval = time.Second
	// replayPage bounds the rows of one replay query.
	replayPage = 500
)

// KindResync is the kind of the marker a subscriber gets first when its
// cursor is unknown or older than the log keeps: refetch, then continue
// from the marker's Seq.
const KindResync = "resync"

// Log writes and reads the event log.
type Log struct {
	client *ent.Client
	broker pubsub.Broker
	log    *slog.Logger

	// Retention is how long events are kept; PollInterval how often the
	// log is checked for unpublished events. Set them before Run.
	Retention    time.Duration
	PollInterval time.Duration

	// Derived, when set, is asked for further messages to publish with
	// each transaction's events, after its commit; they are not logged,
	// so a lost one is never replayed: it suits nudges whose receivers
	// also look again now and then (queuelive.Nudges). Set it before any
	// transaction.
	Derived func(events []pubsub.Event) []pubsub.Message

	// dropPublish makes the next committed events go unpublished, as if
	// the process died between commit and publish (tests).
	dropPublish atomic.Bool

	mu      sync.Mutex
	streams map[string]map[*stream]struct{}
	polled  int64
}

// counterName names the counter's single row.
const counterName = "events"

// New returns a log over client's database publishing on broker.
func New(client *ent.Client, broker pubsub.Broker, log *slog.Logger) *Log {
	return &Log{
		client: client, broker: broker, log: log,
		Retention: DefaultRetention, PollInterval: DefaultPollInterval,
		streams: map[string]map[*stream]struct{}{},
	}
}

// Broker is the broker events are published on, for events that are not
// logged (typing indicators).
func (l *Log) Broker() pubsub.Broker { return l.broker }

// Init creates the counter row if this is a new database; instances
// starting at once create one.
func (l *Log) Init(ctx context.Context) error {
	if err := createCounter(ctx, l.client.EventCounter); err != nil {
		return err
	}
	head, _, err := l.Head(ctx)
	if err != nil {
		return fmt.Errorf("event counter: %w", err)
	}
	l.mu.Lock()
	l.polled = head
	l.mu.Unlock()
	return nil
}

// DropNextPublish makes the events of the next committed transaction go
// unpublished, as a crash between commit and publish would (tests).
func (l *Log) DropNextPublish() { l.dropPublish.Store(true) }

// pending is what one transaction has emitted so far.
type pending struct {
	events []pubsub.Event
	topics [][]string
}

// Emit records ev for topics in after's transaction: it is written to the
// log just before the commit and published once the commit succeeded.
// Duplicate topics are published once.
func (l *Log) Emit(after *store.After, ev pubsub.Event, topics ...string) {
	if len(topics) == 0 {
		return
	}
	p := after.Local(l, func() (any, func(context.Context, *ent.Tx) error) {
		p := &pending{}
		return p, func(ctx context.Context, tx *ent.Tx) error { return l.write(ctx, tx, after, p) }
	}).(*pending)
	seen := make(map[string]bool, len(topics))
	uniq := make([]string, 0, len(topics))
	for _, t := range topics {
		if !seen[t] {
			seen[t] = true
			uniq = append(uniq, t)
		}
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	ev.At = ev.At.UTC()
	p.events = append(p.events, ev)
	p.topics = append(p.topics, uniq)
}

// write numbers the transaction's events under the counter lock, writes
// them in one statement and registers their publication.
func (l *Log) write(ctx context.Context, tx *ent.Tx, after *store.After, p *pending) error {
	if len(p.events) == 0 {
		return nil
	}
	last, err := l.advance(ctx, tx, int64(len(p.events)))
	if err != nil {
		return err
	}
	first := last - int64(len(p.events)) + 1

	var all []string
	for _, ts := range p.topics {
		all = append(all, ts...)
	}
	heads, err := l.heads(ctx, tx, all)
	if err != nil {
		return err
	}
	var (
		rows []*ent.EventLogCreate
		msgs []pubsub.Message
	)
	for i, ev := range p.events {
		ev.Seq = first + int64(i)
		for _, t := range p.topics[i] {
			e := ev
			e.Prev = heads[t]
			heads[t] = e.Seq
			rows = append(rows, tx.EventLog.Create().SetSeq(e.Seq).SetTopic(t).SetPrev(e.Prev).
				SetKind(e.Kind).SetConversationID(e.ConversationID).SetMessageID(e.MessageID).
				SetAgentIds(joinIDs(e.AgentIDs)).SetAt(e.At))
			msgs = append(msgs, pubsub.Message{Topic: t, Event: e})
		}
	}
	if err := tx.EventLog.CreateBulk(rows...).Exec(ctx); err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	if l.Derived != nil {
		msgs = append(msgs, l.Derived(p.events)...)
	}
	after.Do(func() { l.publish(msgs) })
	return nil
}

// advance adds n to the counter and returns its new value in one
// statement; the row lock it takes is held until the transaction ends. A
// new database gets its counter row here (instances racing to create it
// create one).
func (l *Log) advance(ctx context.Context, tx *ent.Tx, n int64) (int64, error) {
	// Only numbers and a constant are in the statement: no placeholders,
	// so one text serves PostgreSQL and SQLite alike.
	q := "UPDATE " + eventcounter.Table + " SET " + eventcounter.FieldSeq + " = " + eventcounter.FieldSeq + " + " +
		strconv.FormatInt(n, 10) + " WHERE " + eventcounter.FieldName + " = '" + counterName + "' RETURNING " + eventcounter.FieldSeq
	for range 2 {
		var last int64
		found, err := queryInt(ctx, tx, q, &last)
		if err != nil {
			return 0, fmt.Errorf("event counter: %w", err)
		}
		if found {
			return last, nil
		}
		if err := createCounter(ctx, tx.EventCounter); err != nil {
			return 0, err
		}
	}
	return 0, errors.New("event counter: could not create its row")
}

// createCounter creates the counter row unless it exists; instances
// racing to create it create one.
func createCounter(ctx context.Context, c *ent.EventCounterClient) error {
	err := c.Create().SetName(counterName).OnConflictColumns(eventcounter.FieldName).DoNothing().Exec(ctx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("event counter: %w", err)
	}
	return nil
}

func queryInt(ctx context.Context, tx *ent.Tx, q string, into *int64) (bool, error) {
	rows, err := tx.QueryContext(ctx, q)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return false, rows.Err()
	}
	if err := rows.Scan(into); err != nil {
		return false, err
	}
	return true, rows.Close()
}

// heads returns the last seq of each topic.
func (l *Log) heads(ctx context.Context, tx *ent.Tx, topics []string) (map[string]int64, error) {
	var rows []struct {
		Topic string `json:"topic"`
		Max   int64  `json:"max"`
	}
	err := tx.EventLog.Query().Where(eventlog.TopicIn(topics...)).
		GroupBy(eventlog.FieldTopic).Aggregate(ent.Max(eventlog.FieldSeq)).Scan(ctx, &rows)
	if err != nil {
		return nil, fmt.Errorf("event heads: %w", err)
	}
	heads := make(map[string]int64, len(topics))
	for _, r := range rows {
		heads[r.Topic] = r.Max
	}
	return heads, nil
}

func (l *Log) publish(msgs []pubsub.Message) {
	if l.dropPublish.CompareAndSwap(true, false) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.broker.PublishBatch(ctx, msgs); err != nil {
		// Subscribers read what they missed from the log (poll).
		l.log.Warn("publish events", "events", len(msgs), "err", err)
	}
}

// Head is the last seq handed out, workspace-wide, and the highest seq
// pruned.
func (l *Log) Head(ctx context.Context) (seq, pruned int64, err error) {
	c, err := l.client.EventCounter.Query().Where(eventcounter.Name(counterName)).Only(ctx)
	if ent.IsNotFound(err) {
		return 0, 0, nil // nothing was ever written
	}
	if err != nil {
		return 0, 0, err
	}
	return c.Seq, c.Pruned, nil
}

// topicHead is the last seq of one topic (0 when it has none).
func (l *Log) topicHead(ctx context.Context, topic string) (int64, error) {
	var rows []struct {
		Max *int64 `json:"max"`
	}
	err := l.client.EventLog.Query().Where(eventlog.Topic(topic)).
		Aggregate(ent.Max(eventlog.FieldSeq)).Scan(ctx, &rows)
	if err != nil || len(rows) == 0 || rows[0].Max == nil {
		return 0, err
	}
	return *rows[0].Max, nil
}

// read returns the events of topic after seq, oldest first, at most
// replayPage.
func (l *Log) read(ctx context.Context, topic string, after int64) ([]pubsub.Event, error) {
	rows, err := l.client.EventLog.Query().
		Where(eventlog.Topic(topic), eventlog.SeqGT(after)).
		Order(ent.Asc(eventlog.FieldSeq)).Limit(replayPage).All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]pubsub.Event, len(rows))
	for i, r := range rows {
		out[i] = pubsub.Event{
			V: pubsub.Version, Kind: r.Kind, ConversationID: r.ConversationID, MessageID: r.MessageID,
			AgentIDs: splitIDs(r.AgentIds), At: r.At.UTC(), Seq: r.Seq, Prev: r.Prev,
		}
	}
	return out, nil
}

// Run polls for events that were committed but not delivered, and prunes
// the log, until ctx ends.
func (l *Log) Run(ctx context.Context) {
	worker.RunAll(ctx,
		worker.Loop{Name: "event log poll", Every: l.PollInterval, Log: l.log, Pass: worker.Once(l.poll)},
		worker.Loop{Name: "event log prune", Every: min(l.Retention/24+time.Minute, 10*time.Minute), Log: l.log,
			Pass: worker.Once(func(ctx context.Context) error {
				_, err := l.PruneBefore(ctx, time.Now().Add(-l.Retention))
				return err
			})},
	)
}

// poll nudges the local streams of every topic that got events since the
// last poll: a stream that already has them does nothing.
func (l *Log) poll(ctx context.Context) error {
	l.mu.Lock()
	since, local := l.polled, len(l.streams)
	l.mu.Unlock()
	head, _, err := l.Head(ctx)
	if err != nil || head <= since {
		return err
	}
	if local > 0 {
		var rows []struct {
			Topic string `json:"topic"`
		}
		err := l.client.EventLog.Query().Where(eventlog.SeqGT(since), eventlog.SeqLTE(head)).
			GroupBy(eventlog.FieldTopic).Scan(ctx, &rows)
		if err != nil {
			return err
		}
		l.mu.Lock()
		for _, r := range rows {
			for st := range l.streams[r.Topic] {
				st.nudge()
			}
		}
		l.mu.Unlock()
	}
	l.mu.Lock()
	l.polled = max(l.polled, head)
	l.mu.Unlock()
	return nil
}

// PruneBefore deletes the events that happened before cutoff (Run prunes
// what is older than the retention) and records the highest seq deleted:
// cursors before it get a resync.
func (l *Log) PruneBefore(ctx context.Context, cutoff time.Time) (int, error) {
	var rows []struct {
		Max *int64 `json:"max"`
	}
	err := l.client.EventLog.Query().Where(eventlog.AtLT(cutoff)).
		Aggregate(ent.Max(eventlog.FieldSeq)).Scan(ctx, &rows)
	if err != nil || len(rows) == 0 || rows[0].Max == nil {
		return 0, err
	}
	upTo := *rows[0].Max
	// The bound is recorded first: a cursor in the range being deleted is
	// refused from now on rather than replayed with holes.
	if err := l.client.EventCounter.Update().Where(eventcounter.PrunedLT(upTo)).SetPruned(upTo).Exec(ctx); err != nil {
		return 0, err
	}
	return l.client.EventLog.Delete().Where(eventlog.SeqLTE(upTo)).Exec(ctx)
}

// Cursor is the opaque form of a seq that clients hold.
func Cursor(seq int64) string { return "1." + strconv.FormatInt(seq, 36) }

// ParseCursor reads a cursor; ok is false for anything Cursor did not
// write.
func ParseCursor(c string) (seq int64, ok bool) {
	rest, found := strings.CutPrefix(c, "1.")
	if !found || rest == "" || len(rest) > 13 {
		return 0, false
	}
	n, err := strconv.ParseInt(rest, 36, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

func joinIDs(ids []int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(id)
	}
	return strings.Join(parts, ",")
}

func splitIDs(s string) []int {
	if s == "" {
		return nil
	}
	var out []int
	for _, p := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(p); err == nil {
			out = append(out, n)
		}
	}
	return out
}
