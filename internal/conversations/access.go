package conversations

import (
	"context"

	"entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/offer"
	"github.com/parleyhq/parley/ent/predicate"
	"github.com/parleyhq/parley/ent/queue"
	"github.com/parleyhq/parley/ent/queuemember"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
)

// This file is the one place that decides who may see, reply to, claim,
// manage and delete a conversation. Everything else asks it: actions through
// Service.act (or load), lists through visibleVia, field resolvers through
// fieldAccess, node(id) and downloads through MaySee, subscriptions through
// Viewers.
//
// The rule, by how a caller relates to a conversation (relation):
//
//   - An INTERNAL chat: its participants see it, write in it and manage it.
//   - An owned conversation: its owner sees it, replies, manages it,
//     releases it back to its queue and deletes it.
//   - An unowned conversation: the agents it is offered to, and the members
//     of its queue, see it, manage it, and may claim it by replying or taking
//     it; the first to do so becomes the owner. They may not delete it.
//   - An agent mentioned in a note of an open customer conversation reads
//     it (its messages, notes and events) and adds notes, and nothing more
//     (no reply, Take, transfer or other change), whoever owns it, until it
//     is dealt with or ended. The grant is derived from what is stored (the
//     note's mentions and the conversation's status), so it ends with the
//     conversation's status and needs no cleanup.
//   - Whoever sees a conversation may add a private note to it (addNote).
//   - ADMIN and SYSTEM_OWNER see, manage and delete every conversation,
//     release any owned one, and reply only to one they own or claim (they
//     may take an unowned one).
//   - Whoever sees a conversation may put workspace labels on it and take
//     them off (OpLabel).
//   - Someone who could see a conversation until another agent took it (it
//     was offered to them, or they are a member of its queue) may learn that
//     it was taken: Take and Send answer CONFLICT, Release FORBIDDEN,
//     nothing more.
//   - A conversation whose contact is blocked (blockContact) is nobody's
//     but the admins': agents hold no relation with it, and admins see,
//     manage and delete it but reply to it and claim it only once the
//     contact is unblocked. No inbox view lists it, for admins neither
//     (listed).
//
// Anyone else gets NOT_FOUND, exactly as for a conversation that does not
// exist, in queries, mutations and subscriptions alike.
//
// Decide judges one conversation's Facts, which factsOf loads from the full
// row (never from a row holding only the columns a client selected); the
// lists use the SQL form of the same relations (relation.where), and a test
// checks that both forms agree on every kind of conversation. A later rule
// (deactivated agents see nothing, blocked visitors) is a fact in Facts, a
// case in relationsOf or Decide, and its SQL in where, as the mention rule
// (Facts.Mentioned, relMentioned) is.

// Access is what a caller may do with one conversation.
type Access struct {
	// View: see the conversation, its messages and its visitor.
	View bool
	// Reply: write in it (in an unowned one, by claiming it).
	Reply bool
	// Claim: become its owner with Take (the owner's Take changes nothing).
	Claim bool
	// Manage: transfer, close, archive, end, block, edit its contact.
	Manage bool
	// Delete: remove it with its messages (its owner, the participants of
	// an internal chat, admins).
	Delete bool
	// Release: give an owned conversation back to its queue, unowned (its
	// owner and admins).
	Release bool
	// Taken: the caller may not see it but could until another agent took
	// it; Take and Send say CONFLICT instead of NOT_FOUND.
	Taken bool
	// Note: add a private note (whoever sees it).
	Note bool

	// owned, internal and blocked shape the refusals of Check; mentionOnly:
	// the caller sees it through a mention alone (read-only).
	owned, internal, blocked, mentionOnly bool
}

// Op is one thing a caller does with a conversation.
type Op int

// Operations Check judges.
const (
	OpView Op = iota
	OpReply
	OpClaim
	OpManage
	OpDelete
	OpRelease
	// OpLabel: put a workspace label on it or take one off; whoever sees
	// the conversation may.
	OpLabel
	OpNote
)

// Check returns the refusal of op, or nil when a allows it. Who may not see
// the conversation gets NOT_FOUND (CONFLICT for a reply or claim when it was
// taken from under them), who sees it but may not do op gets FORBIDDEN, or
// CONFLICT for claiming one someone owns.
func (a Access) Check(op Op) error {
	allowed := map[Op]bool{OpView: a.View, OpReply: a.Reply, OpClaim: a.Claim, OpManage: a.Manage, OpDelete: a.Delete, OpRelease: a.Release, OpLabel: a.View, OpNote: a.Note}[op]
	switch {
	case allowed:
		return nil
	case a.mentionOnly:
		return apperr.New(apperr.Forbidden, "a mention lets you read this conversation and add notes, not reply to it or change it")
	case op == OpNote && a.Taken:
		return apperr.New(apperr.Forbidden, "another agent took this conversation; only those who see it add notes")
	case op == OpRelease && (a.Taken || (a.View && a.owned)):
		return apperr.New(apperr.Forbidden, "only the owner or an admin releases a conversation")
	case (op == OpReply || op == OpClaim) && (a.Taken || (a.View && a.owned)):
		if op == OpReply && a.View {
			return apperr.New(apperr.Forbidden, "only the owner replies; take or transfer the conversation first")
		}
		return apperr.New(apperr.Conflict, "another agent took this conversation")
	case !a.View:
		return apperr.NotFoundf("conversation")
	case (op == OpReply || op == OpClaim) && a.blocked:
		return apperr.New(apperr.Forbidden, "the contact is blocked; unblock it first")
	case (op == OpClaim || op == OpRelease) && a.internal:
		return apperr.Invalid("id", "internal chats have no owner")
	case op == OpRelease:
		return apperr.Invalid("id", "the conversation has no owner to release it")
	case op == OpReply:
		return apperr.New(apperr.Forbidden, "only the participants write in an internal chat")
	case op == OpDelete:
		return apperr.New(apperr.Forbidden, "only the owner or an admin deletes a conversation")
	}
	return apperr.New(apperr.Forbidden, "you may not change this conversation")
}

// Facts are what the rule reads of one conversation for one principal.
type Facts struct {
	Channel schematype.Channel
	OwnerID *int
	// Participant: the principal takes part in this internal chat.
	Participant bool
	// Offered: an offer to the principal is active.
	Offered bool
	// Member: the principal is a member of the conversation's queue.
	Member bool
	// WasOffered: the conversation was offered to the principal at some
	// point (active or not).
	WasOffered bool
	// Blocked: the conversation's contact is blocked.
	Blocked bool
	// Status is the conversation's status (a mention grants access while
	// it is OPEN).
	Status schematype.ConversationStatus
	// Mentioned: a note of the conversation mentions the principal.
	Mentioned bool
}

// relation is one way a principal relates to a conversation; a principal
// may hold several.
type relation uint8

const (
	relOwner relation = 1 << iota
	relParticipant
	relOffered
	relMember
	relAdmin
	// relFormer: could see it until another agent took it.
	relFormer
	// relMentioned: mentioned in a note of the open conversation.
	relMentioned

	relations = relOwner | relParticipant | relOffered | relMember | relAdmin | relFormer | relMentioned
	// seeing are the relations that let a principal see a conversation.
	seeing = relOwner | relParticipant | relOffered | relMember | relAdmin | relMentioned
)

// relationsOf is which relations p holds with a conversation of facts f.
func relationsOf(p auth.Principal, f Facts) relation {
	if !p.IsAgent() {
		return 0
	}
	var r relation
	internal := f.Channel == schematype.ChannelInternal
	switch {
	case f.Blocked && !internal:
		// Nobody's but the admins'.
	case internal:
		if f.Participant {
			r |= relParticipant
		}
	case f.OwnerID != nil && *f.OwnerID == p.AgentID:
		r |= relOwner
	case f.OwnerID != nil:
		if f.WasOffered || f.Member {
			r |= relFormer
		}
	default:
		if f.Offered {
			r |= relOffered
		}
		if f.Member {
			r |= relMember
		}
	}
	if f.Mentioned && !internal && !f.Blocked && f.Status == schematype.ConversationOpen {
		r |= relMentioned
	}
	if p.IsAdmin() {
		r |= relAdmin
	}
	return r
}

// Decide is the rule: what principal p may do with a conversation of
// facts f.
func Decide(p auth.Principal, f Facts) Access {
	r := relationsOf(p, f)
	a := Access{owned: f.OwnerID != nil, internal: f.Channel == schematype.ChannelInternal}
	a.blocked = f.Blocked && !a.internal
	if r&(relOwner|relParticipant|relOffered|relMember) != 0 {
		a.View, a.Reply, a.Manage = true, true, true
		a.Claim = !a.internal
	}
	if r&(relOwner|relParticipant) != 0 {
		a.Delete = true
	}
	a.Release = r&relOwner != 0
	if r&relAdmin != 0 {
		a.View, a.Manage, a.Delete = true, true, true
		a.Release = a.owned && !a.internal && !a.blocked
		if !a.internal && !a.owned && !a.blocked {
			a.Reply, a.Claim = true, true
		}
	}
	if r&relMentioned != 0 {
		a.View = true
		a.mentionOnly = r&seeing == relMentioned
	}
	a.Note = a.View
	a.Taken = !a.View && r&relFormer != 0
	return a
}

// where is the SQL form of one relation for p: the conversations with which
// p holds it. A test checks it against relationsOf for every kind of
// conversation.
func (r relation) where(p auth.Principal) predicate.Conversation {
	if !p.IsAgent() {
		return none
	}
	me := p.AgentID
	// A blocked contact's conversations are nobody's but the admins'.
	notInternal := conversation.And(conversation.ChannelNEQ(schematype.ChannelInternal), conversation.ContactBlocked(false))
	offeredTo := func(active bool) predicate.Conversation {
		if active {
			return conversation.HasOffersWith(offer.AgentID(me), offer.Active(true))
		}
		return conversation.HasOffersWith(offer.AgentID(me))
	}
	member := conversation.HasQueueWith(queue.HasMembersWith(queuemember.AgentID(me)))
	switch r {
	case relOwner:
		return conversation.And(notInternal, conversation.OwnerID(me))
	case relParticipant:
		return conversation.And(conversation.ChannelEQ(schematype.ChannelInternal), conversation.HasParticipantsWith(agent.ID(me)))
	case relOffered:
		return conversation.And(notInternal, conversation.OwnerIDIsNil(), offeredTo(true))
	case relMember:
		return conversation.And(notInternal, conversation.OwnerIDIsNil(), member)
	case relAdmin:
		if p.IsAdmin() {
			return all
		}
		return none
	case relFormer:
		return conversation.And(notInternal, conversation.OwnerIDNotNil(), conversation.OwnerIDNEQ(me),
			conversation.Or(offeredTo(false), member))
	case relMentioned:
		return conversation.And(notInternal, conversation.StatusEQ(schematype.ConversationOpen), conversation.HasMentions(true),
			conversation.HasMessagesWith(message.KindEQ(schematype.KindNote), message.HasMentionsWith(agent.ID(me))))
	}
	panic("conversations: where of a combination of relations")
}

// visibleVia is the SQL predicate of the conversations p sees through any of
// the relations rs (which must grant View): visibleVia(p, seeing) is every
// conversation p may see, and the inbox views narrow it.
func visibleVia(p auth.Principal, rs relation) predicate.Conversation {
	var ors []predicate.Conversation
	for r := relation(1); r&relations != 0; r <<= 1 {
		if rs&r&seeing != 0 {
			ors = append(ors, r.where(p))
		}
	}
	if len(ors) == 0 {
		return none
	}
	return conversation.Or(ors...)
}

// listed is what every inbox view requires of a conversation beside the
// caller's relations: its contact is not blocked (internal chats have
// none). A blocked contact's conversations stay reachable by id, for those
// who may see them.
var listed = conversation.ContactBlocked(false)

var (
	all  = predicate.Conversation(func(s *sql.Selector) { s.Where(sql.Not(sql.False())) })
	none = predicate.Conversation(func(s *sql.Selector) { s.Where(sql.False()) })
)

// Viewers is who sees a conversation through a relation of their own (owner,
// participants, offered agents and queue members of an unowned one, agents
// mentioned in its notes while it is open; admins see it by role), computed
// once per event and shared by every subscriber of an instance.
type Viewers struct {
	conv *ent.Conversation
	// participants, offered (actively), members and mentioned, by agent id.
	participants, offered, members, mentioned map[int]bool
}

// viewersOf computes who sees c, with the given client (a transaction's or
// the root one), in at most one query, and one more for a conversation
// whose notes mention agents.
func viewersOf(ctx context.Context, client *ent.Client, c *ent.Conversation) (*Viewers, error) {
	v := &Viewers{conv: c, participants: map[int]bool{}, offered: map[int]bool{}, members: map[int]bool{}, mentioned: map[int]bool{}}
	switch {
	case c.Channel == schematype.ChannelInternal:
		ids, err := client.Conversation.QueryParticipants(c).IDs(ctx)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			v.participants[id] = true
		}
	case c.OwnerID == nil:
		// The active offers and the queue's members in one statement.
		var rows []struct {
			AgentID int `json:"agent_id"`
			Member  int `json:"member"`
		}
		err := client.Offer.Query().Where(offer.ConversationID(c.ID), offer.Active(true)).
			Modify(func(s *sql.Selector) {
				s.Select(s.C(offer.FieldAgentID)).AppendSelectExprAs(sql.Raw("0"), "member")
				if c.QueueID != nil {
					m := sql.Table(queuemember.Table)
					s.UnionAll(sql.Select(m.C(queuemember.FieldAgentID)).AppendSelectExprAs(sql.Raw("1"), "member").From(m).
						Where(sql.EQ(m.C(queuemember.FieldQueueID), *c.QueueID)))
				}
			}).Scan(ctx, &rows)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if r.Member == 1 {
				v.members[r.AgentID] = true
			} else {
				v.offered[r.AgentID] = true
			}
		}
	}
	if c.HasMentions && c.Status == schematype.ConversationOpen && c.Channel != schematype.ChannelInternal && !c.ContactBlocked {
		ids, err := client.Message.Query().Where(message.ConversationID(c.ID), message.KindEQ(schematype.KindNote)).
			QueryMentions().IDs(ctx)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			v.mentioned[id] = true
		}
	}
	return v, nil
}

// facts are p's facts as far as v knows them: everything that decides
// whether p sees the conversation (not whether p saw it before: WasOffered,
// and Member of an owned conversation, are left false).
func (v *Viewers) facts(p auth.Principal) Facts {
	return Facts{
		Channel: v.conv.Channel, OwnerID: v.conv.OwnerID,
		Participant: v.participants[p.AgentID], Offered: v.offered[p.AgentID], Member: v.members[p.AgentID],
		Blocked: v.conv.ContactBlocked, Status: v.conv.Status, Mentioned: v.mentioned[p.AgentID],
	}
}

// For says what principal p may do, as far as seeing decides it (Taken is
// never set: see factsOf).
func (v *Viewers) For(p auth.Principal) Access { return Decide(p, v.facts(p)) }

// Agents lists the agents who see the conversation through a relation of
// their own (and so receive its inbox events): none for a blocked
// contact's conversation.
func (v *Viewers) Agents() []int {
	if v.conv.ContactBlocked && v.conv.Channel != schematype.ChannelInternal {
		return nil
	}
	var out []int
	if v.conv.OwnerID != nil && v.conv.Channel != schematype.ChannelInternal {
		out = append(out, *v.conv.OwnerID)
	}
	for _, set := range []map[int]bool{v.participants, v.offered, v.members, v.mentioned} {
		for id := range set {
			out = append(out, id)
		}
	}
	return dedupe(out)
}

// factsOf completes v's facts for p with what decides whether p saw the
// conversation before another agent took it (one query, only when it
// matters: an owned conversation, a caller who is not its owner).
func factsOf(ctx context.Context, client *ent.Client, p auth.Principal, v *Viewers) (Facts, error) {
	f := v.facts(p)
	if !p.IsAgent() || f.OwnerID == nil || *f.OwnerID == p.AgentID || f.Channel == schematype.ChannelInternal {
		return f, nil
	}
	var rows []struct {
		Member int `json:"member"`
	}
	err := client.Offer.Query().Where(offer.ConversationID(v.conv.ID), offer.AgentID(p.AgentID)).
		Modify(func(s *sql.Selector) {
			s.Select().AppendSelectExprAs(sql.Raw("0"), "member")
			if v.conv.QueueID != nil {
				m := sql.Table(queuemember.Table)
				s.UnionAll(sql.Select().AppendSelectExprAs(sql.Raw("1"), "member").From(m).Where(sql.And(
					sql.EQ(m.C(queuemember.FieldQueueID), *v.conv.QueueID), sql.EQ(m.C(queuemember.FieldAgentID), p.AgentID))))
			}
		}).Scan(ctx, &rows)
	if err != nil {
		return Facts{}, err
	}
	for _, r := range rows {
		if r.Member == 1 {
			f.Member = true
		} else {
			f.WasOffered = true
		}
	}
	return f, nil
}

// subject is a conversation loaded for an action: its full row, who sees
// it, and what the caller may do with it.
type subject struct {
	c      *ent.Conversation
	viewer *Viewers
	access Access
}

// judge loads the conversation id with every column the rule reads and
// decides what p may do with it. A conversation that does not exist is
// judged like one p may not see.
func judge(ctx context.Context, client *ent.Client, p auth.Principal, id int) (*subject, error) {
	c, err := client.Conversation.Get(ctx, id)
	if ent.IsNotFound(err) {
		return &subject{}, nil
	}
	if err != nil {
		return nil, err
	}
	v, err := viewersOf(ctx, client, c)
	if err != nil {
		return nil, err
	}
	f, err := factsOf(ctx, client, p, v)
	if err != nil {
		return nil, err
	}
	return &subject{c: c, viewer: v, access: Decide(p, f)}, nil
}

// targetable is who may be handed a conversation (Transfer) or mentioned
// in a note of it (addNote): an active agent, one of ids.
func targetable(ids ...int) predicate.Agent {
	return agent.And(agent.IDIn(ids...), agent.Active(true))
}
