package conversations

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/contact"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/offer"
	"github.com/parleyhq/parley/ent/queue"
	"github.com/parleyhq/parley/ent/queuemember"
	"github.com/parleyhq/parley/ent/readstate"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/paging"
	"github.com/parleyhq/parley/internal/textsearch"
)

// View selects which conversations the inbox lists.
type View string

// Inbox views, as the contract describes them.
const (
	ViewRecent   View = "RECENT"
	ViewMine     View = "MINE"
	ViewQueue    View = "QUEUE"
	ViewArchived View = "ARCHIVED"
	ViewAll      View = "ALL"
)

// InboxFilter narrows the inbox.
type InboxFilter struct {
	View    View
	Channel *schematype.Channel
	QueueID *int
	Search  *string
}

// Page is a Relay page request.
type Page struct {
	After  *entgql.Cursor[int]
	First  *int
	Before *entgql.Cursor[int]
	Last   *int
}

// newestFirst orders the inbox by activity, newest first.
var newestFirst = ent.WithConversationOrder(&ent.ConversationOrder{
	Direction: entgql.OrderDirectionDesc, Field: ent.ConversationOrderFieldLastMessageAt,
})

// Inbox lists the caller's conversations in one view, newest activity first.
func (s *Service) Inbox(ctx context.Context, f InboxFilter, pg Page) (*ent.ConversationConnection, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	me := p.AgentID
	// A live chat whose visitor has not written yet is nobody's business.
	q := s.client.Conversation.Query().Where(conversation.LastMessageIDNotNil())
	switch f.View {
	case ViewRecent:
		q.Where(conversation.Archived(false), conversation.Or(
			conversation.OwnerID(me),
			conversation.And(conversation.ChannelEQ(schematype.ChannelInternal), conversation.HasParticipantsWith(agent.ID(me))),
			conversation.And(conversation.OwnerIDIsNil(), conversation.ChannelNEQ(schematype.ChannelInternal),
				conversation.HasOffersWith(offer.AgentID(me), offer.Active(true))),
		))
	case ViewMine:
		q.Where(conversation.OwnerID(me), conversation.Archived(false))
	case ViewQueue:
		q.Where(conversation.OwnerIDIsNil(), conversation.Archived(false),
			conversation.StatusEQ(schematype.ConversationOpen), conversation.ChannelNEQ(schematype.ChannelInternal))
		if !p.IsAdmin() {
			q.Where(conversation.HasQueueWith(queue.HasMembersWith(queuemember.AgentID(me))))
		} else {
			q.Where(conversation.QueueIDNotNil())
		}
	case ViewArchived:
		q.Where(conversation.Archived(true))
		if !p.IsAdmin() {
			visiblePredicate(me)(q)
		}
	case ViewAll:
		if !p.IsAdmin() {
			return nil, apperr.New(apperr.Forbidden, "only admins see every conversation")
		}
	default:
		return nil, apperr.Invalid("view", "unknown view %q", f.View)
	}
	if f.Channel != nil {
		q.Where(conversation.ChannelEQ(*f.Channel))
	}
	if f.QueueID != nil {
		q.Where(conversation.QueueID(*f.QueueID))
	}
	if f.Search != nil && len(*f.Search) > 0 {
		if err := textsearch.CheckQuery(*f.Search); err != nil {
			return nil, err
		}
		q.Where(conversation.Or(
			conversation.HasContactWith(func(s *sql.Selector) { textsearch.Match(contact.FieldSearchKey, *f.Search)(s) }),
			conversation.HasMessagesWith(func(s *sql.Selector) { textsearch.Match(message.FieldSearchBody, *f.Search)(s) }),
		))
	}
	first, last := paging.Clamp(pg.First, pg.Last)
	conn, err := q.WithLastMessage().Paginate(ctx, pg.After, first, pg.Before, last, newestFirst)
	if err != nil {
		return nil, err
	}
	if sc, ok := ctx.Value(scopeKey{}).(*requestScope); ok {
		ids := make([]int, 0, len(conn.Edges))
		for _, e := range conn.Edges {
			ids = append(ids, e.Node.ID)
		}
		sc.prime(me, ids)
	}
	return conn, nil
}

type scopeKey struct{}

// requestScope lets one GraphQL operation count the unread messages of a
// whole inbox page in one query, the first time a row asks: Inbox primes it
// with the page, UnreadCount reads it. A subscription never primes it, so
// its counts are never stale.
type requestScope struct {
	mu     sync.Mutex
	pages  []*unreadPage
	client *ent.Client
}

type unreadPage struct {
	agent  int
	ids    map[int]bool
	once   sync.Once
	counts map[int]int
	err    error
}

// WithRequestScope returns ctx carrying a scope for one GraphQL operation.
func (s *Service) WithRequestScope(ctx context.Context) context.Context {
	return context.WithValue(ctx, scopeKey{}, &requestScope{client: s.client})
}

func (sc *requestScope) prime(agent int, ids []int) {
	pg := &unreadPage{agent: agent, ids: map[int]bool{}}
	for _, id := range ids {
		pg.ids[id] = true
	}
	sc.mu.Lock()
	sc.pages = append(sc.pages, pg)
	sc.mu.Unlock()
}

func (sc *requestScope) lookup(ctx context.Context, agent, conv int) (int, bool, error) {
	sc.mu.Lock()
	var pg *unreadPage
	for _, p := range sc.pages {
		if p.agent == agent && p.ids[conv] {
			pg = p
		}
	}
	sc.mu.Unlock()
	if pg == nil {
		return 0, false, nil
	}
	pg.once.Do(func() {
		ids := make([]int, 0, len(pg.ids))
		for id := range pg.ids {
			ids = append(ids, id)
		}
		pg.counts, pg.err = unreadCounts(ctx, sc.client, agent, ids)
	})
	return pg.counts[conv], true, pg.err
}

// Get returns one conversation the caller may see.
func (s *Service) Get(ctx context.Context, id int) (*ent.Conversation, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	c, _, err := s.load(ctx, s.client, p, id)
	return c, err
}

// oldestFirst orders messages: newest last.
var oldestFirst = ent.WithMessageOrder(&ent.MessageOrder{
	Direction: entgql.OrderDirectionAsc, Field: ent.MessageOrderFieldCreatedAt,
})

// Messages pages through a conversation's messages, newest last; without
// first or last, the newest 20.
func (s *Service) Messages(ctx context.Context, c *ent.Conversation, pg Page) (*ent.MessageConnection, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, apperr.ErrUnauthenticated
	}
	if !(p.IsVisitor() && p.ConversationID == c.ID) {
		if _, _, err := s.load(ctx, s.client, p, c.ID); err != nil {
			return nil, err
		}
	}
	first, last := pg.First, pg.Last
	if first == nil && last == nil {
		n := paging.Default
		last = &n
	}
	first, last = paging.Clamp(first, last)
	return s.client.Message.Query().Where(message.ConversationID(c.ID)).
		WithSenderAgent().WithSenderContact().
		Paginate(ctx, pg.After, first, pg.Before, last, oldestFirst)
}

// LastMessage returns a conversation's newest message, if the caller may see
// the conversation (a conversation reached through a contact's history shows
// its status, not its content).
func (s *Service) LastMessage(ctx context.Context, c *ent.Conversation) (*ent.Message, error) {
	if m, err := c.Edges.LastMessageOrErr(); err == nil {
		return m, nil // loaded by an authorized query
	}
	if c.LastMessageID == nil {
		return nil, nil
	}
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, apperr.ErrUnauthenticated
	}
	if !(p.IsVisitor() && p.ConversationID == c.ID) {
		if a, err := s.access(ctx, s.client, p, c); err != nil || !a.View {
			return nil, err
		}
	}
	m, err := s.client.Message.Get(ctx, *c.LastMessageID)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return m, err
}

// Sender returns who wrote a message: an agent or a contact (nil for
// system messages).
func (s *Service) Sender(ctx context.Context, m *ent.Message) (ent.Noder, error) {
	switch {
	case m.SenderAgentID != nil:
		a, err := m.Edges.SenderAgentOrErr()
		if err != nil {
			if a, err = s.client.Agent.Get(ctx, *m.SenderAgentID); err != nil {
				return nil, err
			}
		}
		if p, _ := auth.FromContext(ctx); p.IsVisitor() {
			// A visitor sees the agent's name, not the email or extension.
			return &ent.Agent{ID: a.ID, Name: a.Name}, nil
		}
		return a, nil
	case m.SenderContactID != nil:
		if c, err := m.Edges.SenderContactOrErr(); err == nil {
			return c, nil
		}
		return s.client.Contact.Get(ctx, *m.SenderContactID)
	}
	return nil, nil
}

// UnreadCount is how many messages of the conversation the caller has not
// read. Concurrent calls (one per conversation of an inbox page) are batched
// into one query.
func (s *Service) UnreadCount(ctx context.Context, c *ent.Conversation) (int, error) {
	p, ok := auth.FromContext(ctx)
	if !ok || !p.IsAgent() {
		return 0, nil
	}
	if sc, ok := ctx.Value(scopeKey{}).(*requestScope); ok {
		if n, found, err := sc.lookup(ctx, p.AgentID, c.ID); found || err != nil {
			return n, err
		}
	}
	return s.unread.load(ctx, p.AgentID, c.ID)
}

// Visitor is what agents see of a live-chat visitor.
type Visitor struct {
	IP, UserAgent, PageURL *string
}

// VisitorOf returns the visitor details of a live chat, nil otherwise.
func VisitorOf(c *ent.Conversation) *Visitor {
	if c.Channel != schematype.ChannelLiveChat {
		return nil
	}
	return &Visitor{IP: nonEmpty(c.VisitorIP), UserAgent: nonEmpty(c.VisitorUserAgent), PageURL: nonEmpty(c.VisitorPageURL)}
}

// unreadBatcher counts unread messages for many conversations in one query.
// It batches concurrent calls for a millisecond; it caches nothing, so a
// subscription never sees a stale count.
type unreadBatcher struct {
	client *ent.Client
	log    *slog.Logger
	mu     sync.Mutex
	batch  map[int]*unreadBatch // by agent
}

type unreadBatch struct {
	convs  map[int]bool
	done   chan struct{}
	counts map[int]int
	err    error
	// running is set once the batch stops taking new conversations; a
	// caller for a conversation it already counts still joins it until
	// its query ends (a burst of subscribers of one event shares it).
	running bool
}

func newUnreadBatcher(client *ent.Client, log *slog.Logger) *unreadBatcher {
	return &unreadBatcher{client: client, log: log, batch: map[int]*unreadBatch{}}
}

func (u *unreadBatcher) load(ctx context.Context, agentID, convID int) (int, error) {
	u.mu.Lock()
	b := u.batch[agentID]
	if b == nil || (b.running && !b.convs[convID]) || (!b.running && len(b.convs) >= 100) {
		b = &unreadBatch{convs: map[int]bool{}, done: make(chan struct{})}
		u.batch[agentID] = b
		go u.run(agentID, b)
	}
	b.convs[convID] = true
	u.mu.Unlock()
	select {
	case <-b.done:
		return b.counts[convID], b.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (u *unreadBatcher) run(agentID int, b *unreadBatch) {
	time.Sleep(time.Millisecond)
	u.mu.Lock()
	b.running = true
	ids := make([]int, 0, len(b.convs))
	for id := range b.convs {
		ids = append(ids, id)
	}
	u.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	counts, err := unreadCounts(ctx, u.client, agentID, ids)
	if err != nil {
		u.log.Warn("unread counts", "err", err)
	}
	u.mu.Lock()
	b.counts, b.err = counts, err
	if u.batch[agentID] == b {
		delete(u.batch, agentID)
	}
	u.mu.Unlock()
	close(b.done)
}

// unreadCounts counts, per conversation, the messages after the agent's
// read marker that the agent did not write (system messages excluded).
func unreadCounts(ctx context.Context, client *ent.Client, agentID int, convIDs []int) (map[int]int, error) {
	marks, err := client.ReadState.Query().
		Where(readstate.AgentID(agentID), readstate.ConversationIDIn(convIDs...)).All(ctx)
	if err != nil {
		return nil, err
	}
	mark := map[int]int{}
	for _, m := range marks {
		mark[m.ConversationID] = m.LastReadMessageID
	}
	var rows []struct {
		ConversationID int `json:"conversation_id"`
		Count          int `json:"count"`
	}
	err = client.Message.Query().
		Where(
			message.ConversationIDIn(convIDs...),
			message.DirectionNEQ(schematype.DirectionSystem),
			message.Or(message.SenderAgentIDIsNil(), message.SenderAgentIDNEQ(agentID)),
			func(s *sql.Selector) {
				// id > the agent's marker for that conversation (0 if none).
				preds := make([]*sql.Predicate, 0, len(convIDs))
				for _, id := range convIDs {
					preds = append(preds, sql.And(sql.EQ(s.C(message.FieldConversationID), id), sql.GT(s.C(message.FieldID), mark[id])))
				}
				s.Where(sql.Or(preds...))
			},
		).
		GroupBy(message.FieldConversationID).Aggregate(ent.Count()).Scan(ctx, &rows)
	if err != nil {
		return nil, err
	}
	out := map[int]int{}
	for _, r := range rows {
		out[r.ConversationID] = r.Count
	}
	return out, nil
}
