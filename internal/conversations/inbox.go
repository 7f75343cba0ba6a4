package conversations

import (
	"context"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/contact"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/readstate"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/labels"
	"github.com/parleyhq/parley/internal/paging"
	"github.com/parleyhq/parley/internal/store"
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
	// LabelIDs keeps the conversations carrying any of these labels (none
	// for an id that is no label); empty: no filter.
	LabelIDs []int
	// SLADue orders by service-level due time, soonest first, those with
	// nothing due last (newest activity first otherwise).
	SLADue bool
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

// soonestDue orders the inbox by service-level due time, soonest first:
// the sort key of a conversation with nothing due is after every real one
// (schematype.SLANever), and ties go by id, so keyset paging is stable.
var soonestDue = ent.WithConversationOrder(&ent.ConversationOrder{
	Direction: entgql.OrderDirectionAsc, Field: ent.ConversationOrderFieldSLASortAt,
})

// Inbox lists the caller's conversations in one view, newest activity first
// (or soonest due, f.SLADue).
func (s *Service) Inbox(ctx context.Context, f InboxFilter, pg Page) (*ent.ConversationConnection, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	// A live chat whose visitor has not written yet is nobody's business.
	q := s.client.Conversation.Query().Where(conversation.LastMessageIDNotNil(), listed)
	// Each view narrows what the caller may see (access.go).
	switch f.View {
	case ViewRecent:
		// Conversations I was mentioned in show until they are dealt with.
		q.Where(conversation.Archived(false), visibleVia(p, relOwner|relParticipant|relOffered|relMentioned))
	case ViewMine:
		q.Where(conversation.Archived(false), visibleVia(p, relOwner))
	case ViewQueue:
		q.Where(conversation.OwnerIDIsNil(), conversation.Archived(false), conversation.QueueIDNotNil(),
			conversation.StatusEQ(schematype.ConversationOpen), conversation.ChannelNEQ(schematype.ChannelInternal),
			visibleVia(p, relMember|relAdmin))
	case ViewArchived:
		q.Where(conversation.Archived(true), visibleVia(p, seeing))
	case ViewAll:
		if !p.IsAdmin() {
			return nil, apperr.New(apperr.Forbidden, "only admins see every conversation")
		}
		q.Where(visibleVia(p, relAdmin))
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
	if len(f.LabelIDs) > 0 {
		if len(f.LabelIDs) > labels.MaxFilter {
			return nil, apperr.Invalid("labelIDs", "at most %d labels at once", labels.MaxFilter)
		}
		q.Where(labels.ConversationHasAny(f.LabelIDs))
	}
	first, last := paging.Clamp(pg.First, pg.Last)
	order := newestFirst
	if f.SLADue {
		order = soonestDue
	}
	conn, err := q.WithLastMessage().Paginate(ctx, pg.After, first, pg.Before, last, order)
	if err != nil {
		return nil, err
	}
	ids := make([]int, 0, len(conn.Edges))
	lasts := make([]*ent.Message, 0, len(conn.Edges))
	for _, e := range conn.Edges {
		ids = append(ids, e.Node.ID)
		if m := e.Node.Edges.LastMessage; m != nil {
			lasts = append(lasts, m)
		}
	}
	sc := scopeOf(ctx)
	sc.note(p.AgentID, true, ids...)
	sc.prime(p.AgentID, ids)
	labels.Prime(ctx, ids)
	sc.primeNotes(lasts)
	return conn, nil
}

// Get returns one conversation the caller may see.
func (s *Service) Get(ctx context.Context, id int) (*ent.Conversation, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	c, _, err := s.load(ctx, s.client, p, id)
	if err != nil {
		return nil, err
	}
	scopeOf(ctx).note(p.AgentID, true, id)
	return c, nil
}

// oldestFirst orders messages: newest last.
var oldestFirst = ent.WithMessageOrder(&ent.MessageOrder{
	Direction: entgql.OrderDirectionAsc, Field: ent.MessageOrderFieldCreatedAt,
})

// Messages pages through a conversation's messages, newest last; without
// first or last, the newest 20. A visitor's page leaves notes out.
func (s *Service) Messages(ctx context.Context, c *ent.Conversation, pg Page) (*ent.MessageConnection, error) {
	if ok, err := s.sees(ctx, c.ID); err != nil || !ok {
		if err == nil {
			err = apperr.NotFoundf("conversation")
		}
		return nil, err
	}
	first, last := pg.First, pg.Last
	if first == nil && last == nil {
		n := paging.Default
		last = &n
	}
	first, last = paging.Clamp(first, last)
	q := s.client.Message.Query().Where(message.ConversationID(c.ID))
	if p, _ := auth.FromContext(ctx); !p.IsAgent() {
		q.Where(message.KindEQ(schematype.KindMessage))
	}
	conn, err := q.WithSenderAgent().WithSenderContact().
		Paginate(ctx, pg.After, first, pg.Before, last, oldestFirst)
	if err != nil {
		return nil, err
	}
	ms := make([]*ent.Message, 0, len(conn.Edges))
	for _, e := range conn.Edges {
		ms = append(ms, e.Node)
	}
	scopeOf(ctx).primeNotes(ms)
	return conn, nil
}

// LastMessage returns a conversation's newest message, if the caller may see
// the conversation (a conversation reached through a contact's history shows
// its status, not its content).
func (s *Service) LastMessage(ctx context.Context, c *ent.Conversation) (*ent.Message, error) {
	if ok, err := s.sees(ctx, c.ID); err != nil || !ok {
		return nil, err
	}
	if m, err := c.Edges.LastMessageOrErr(); err == nil {
		return m, nil // loaded with the inbox page
	}
	if c.LastMessageID == nil {
		return nil, nil
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
				return nil, store.Coded(err, "agent")
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
		c, err := s.client.Contact.Get(ctx, *m.SenderContactID)
		return c, store.Coded(err, "contact")
	}
	return nil, nil
}

// UnreadCount is how many messages of the conversation the caller has not
// read (0 for a conversation the caller may not see). The conversations of
// an inbox page are counted together, in one query, the first time one of
// them asks.
func (s *Service) UnreadCount(ctx context.Context, c *ent.Conversation) (int, error) {
	p, ok := auth.FromContext(ctx)
	if !ok || !p.IsAgent() {
		return 0, nil
	}
	if ok, err := s.sees(ctx, c.ID); err != nil || !ok {
		return 0, err
	}
	return scopeOf(ctx).unread(ctx, s.client, p.AgentID, c.ID)
}

// Visitor is what agents see of a live-chat visitor.
type Visitor struct {
	IP, UserAgent, PageURL *string
}

// Visitor returns the visitor details of a live chat the caller may see, nil
// otherwise.
func (s *Service) Visitor(ctx context.Context, c *ent.Conversation) (*Visitor, error) {
	if ok, err := s.sees(ctx, c.ID); err != nil || !ok {
		return nil, err
	}
	if c.Channel != schematype.ChannelLiveChat {
		return nil, nil
	}
	return &Visitor{IP: nonEmpty(c.VisitorIP), UserAgent: nonEmpty(c.VisitorUserAgent), PageURL: nonEmpty(c.VisitorPageURL)}, nil
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
