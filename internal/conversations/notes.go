package conversations

// Private notes and mentions: agents' own messages inside a conversation's
// timeline, which never leave Parley.
//
// A note is a message of kind NOTE. It is stored like an agent's message
// but never through storeOutbound, so it is never PENDING in the provider
// outbox, never logged as a reply (first reply, handle time) and never
// claims: an unowned conversation stays unowned and offered. It is
// published as MESSAGE_ADDED on the conversation's topic and to the inboxes
// of the agents who see the conversation, never on the visitor's topic, and
// the visitor's queries leave notes out (Messages, SubscribeVisitor).
//
// A note is activity for the agents: it moves the conversation's
// lastMessage and last activity (the inbox order, and the unread count of
// everyone but its author), as a colleague's message in an internal chat
// does; clients show lastMessage.kind. It does not touch what the customer
// side reads (customer_last_message_at, the reply window), does not bring a
// conversation back from the archive, and a conversation no customer has
// written in yet (a live chat before the visitor's first message) keeps no
// last message, so that it stays out of the inbox until then.

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/textsearch"
)

// MaxMentions is how many agents one note may mention.
const MaxMentions = MaxParticipants

// NoteInput is an agent's private note.
type NoteInput struct {
	ConversationID int
	Body           string
	// Mentions are agent ids; the author mentioning themselves is ignored.
	Mentions []int
}

// AddNote stores a private note in a conversation the caller may see (see
// access.go: including a conversation the caller was mentioned in). Each
// mentioned agent must be one a conversation could be transferred to (an
// active agent), else BAD_USER_INPUT naming the id; each gets a MENTIONED
// inbox event and may read the conversation until it is dealt with.
// Mentions need an open customer conversation: in an internal chat, or
// once it is closed, they would grant nothing.
func (s *Service) AddNote(ctx context.Context, in NoteInput) (*ent.Message, error) {
	p, err := auth.Agent(ctx)
	if err != nil {
		return nil, err
	}
	body := strings.TrimSpace(in.Body)
	switch n := utf8.RuneCountInString(body); {
	case n == 0:
		return nil, apperr.Invalid("body", "a note needs a body")
	case n > MaxBodyLen:
		return nil, apperr.Invalid("body", "the note is longer than %d characters", MaxBodyLen)
	}
	mentions := without(dedupe(in.Mentions), []int{p.AgentID})
	if len(mentions) > MaxMentions {
		return nil, apperr.Invalid("mentions", "a note mentions at most %d agents", MaxMentions)
	}
	var out *ent.Message
	err = s.act(ctx, in.ConversationID, OpNote, func(tx *ent.Tx, after *store.After, p auth.Principal, sub *subject) error {
		c := sub.c
		if len(mentions) > 0 {
			switch {
			case c.Channel == schematype.ChannelInternal:
				return apperr.Invalid("mentions", "internal chats take no mentions: everyone in them sees them already")
			case c.Status != schematype.ConversationOpen:
				return apperr.Invalid("mentions", "the conversation is closed: a mention would grant nothing")
			}
			found, err := tx.Agent.Query().Where(targetable(mentions...)).IDs(ctx)
			if err != nil {
				return err
			}
			for _, id := range mentions {
				if !slices.Contains(found, id) {
					return apperr.Invalid("mentions", "agent %s is not an active agent", strconv.Itoa(id))
				}
			}
		}
		now := s.now()
		m, err := tx.Message.Create().SetConversationID(c.ID).SetKind(schematype.KindNote).
			SetDirection(schematype.DirectionOutbound).SetBody(body).SetSearchBody(textsearch.Fold(body)).
			SetCreatedAt(now).SetSenderAgentID(p.AgentID).AddMentionIDs(mentions...).Save(ctx)
		if err != nil {
			return err
		}
		upd := tx.Conversation.UpdateOneID(c.ID)
		if c.LastMessageID != nil {
			upd.SetLastMessageAt(now).SetLastMessageID(m.ID)
		}
		if len(mentions) > 0 {
			upd.SetHasMentions(true)
		}
		if err := upd.Exec(ctx); err != nil {
			return err
		}
		if err := s.markReadTx(ctx, tx, c.ID, p.AgentID); err != nil {
			return err
		}
		// Who saw the conversation hears of the note; the agents it newly
		// mentions hear of it as a mention instead. Never the visitor.
		s.emit(after, pubsub.Event{Kind: pubsub.KindMessageAdded, ConversationID: c.ID, MessageID: m.ID},
			without(sub.viewer.Agents(), mentions), false)
		if len(mentions) > 0 {
			topics := make([]string, 0, len(mentions))
			for _, id := range mentions {
				topics = append(topics, pubsub.AgentTopic(id))
			}
			s.elog.Emit(after, pubsub.Event{Kind: pubsub.KindMentioned, ConversationID: c.ID, MessageID: m.ID, AgentIDs: mentions}, topics...)
		}
		out, err = tx.Message.Query().Where(message.ID(m.ID)).WithMentions().Only(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, a := range out.Edges.Mentions {
		a.Unwrap()
	}
	return out.Unwrap(), nil
}

// Mentions returns the agents a note mentions (none for other messages).
// The notes of a page of messages are loaded together, in one query, the
// first time one of them asks.
func (s *Service) Mentions(ctx context.Context, m *ent.Message) ([]*ent.Agent, error) {
	if m.Kind != schematype.KindNote {
		return nil, nil
	}
	if as, err := m.Edges.MentionsOrErr(); err == nil {
		return as, nil
	}
	return scopeOf(ctx).mentions(ctx, s.client, m.ID)
}

// mentionPage is the notes of one page of messages, for the mentions
// loader.
type mentionPage struct {
	ids    []int
	once   sync.Once
	agents map[int][]*ent.Agent
	err    error
}

// primeNotes registers the notes of a page of messages for the mentions
// loader.
func (sc *requestScope) primeNotes(ms []*ent.Message) {
	if sc == nil {
		return
	}
	pg := &mentionPage{}
	for _, m := range ms {
		if m.Kind == schematype.KindNote {
			pg.ids = append(pg.ids, m.ID)
		}
	}
	if len(pg.ids) == 0 {
		return
	}
	sc.mu.Lock()
	sc.notes = append(sc.notes, pg)
	sc.mu.Unlock()
}

// mentions loads note id's mentions: with its whole page when it has one
// (once per page), alone otherwise.
func (sc *requestScope) mentions(ctx context.Context, client *ent.Client, id int) ([]*ent.Agent, error) {
	var pg *mentionPage
	if sc != nil {
		sc.mu.Lock()
		for _, p := range sc.notes {
			if slices.Contains(p.ids, id) {
				pg = p
			}
		}
		sc.mu.Unlock()
	}
	if pg == nil {
		return client.Message.Query().Where(message.ID(id)).QueryMentions().All(ctx)
	}
	pg.once.Do(func() {
		ms, err := client.Message.Query().Where(message.IDIn(pg.ids...)).Select(message.FieldID).WithMentions().All(ctx)
		pg.agents, pg.err = map[int][]*ent.Agent{}, err
		for _, m := range ms {
			pg.agents[m.ID] = m.Edges.Mentions
		}
	})
	return pg.agents[id], pg.err
}

// emitMentionsEnded tells the agents who saw conversation c through a
// mention alone, and no longer see it now (it was dealt with or ended),
// that it left their inbox (REMOVED); their conversation streams learn it
// from the change's own event.
func (s *Service) emitMentionsEnded(ctx context.Context, tx *ent.Tx, after *store.After, before *Viewers, c *ent.Conversation) error {
	if len(before.mentioned) == 0 {
		return nil
	}
	now, err := viewersOf(ctx, tx.Client(), c)
	if err != nil {
		return err
	}
	var lost []int
	for id := range before.mentioned {
		lost = append(lost, id)
	}
	lost = without(lost, now.Agents())
	if len(lost) == 0 {
		return nil
	}
	topics := make([]string, 0, len(lost))
	for _, id := range lost {
		topics = append(topics, pubsub.AgentTopic(id))
	}
	s.elog.Emit(after, pubsub.Event{Kind: pubsub.KindConversationRemoved, ConversationID: c.ID, AgentIDs: lost}, topics...)
	return nil
}
