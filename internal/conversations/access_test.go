package conversations

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestDecide is the rule as a table: role x ownership x queue membership x
// offers x channel, and what each may do.
func TestDecide(t *testing.T) {
	const me, other = 1, 2
	agentP := auth.Principal{AgentID: me, Role: schematype.RoleAgent}
	groupOwner := auth.Principal{AgentID: me, Role: schematype.RoleGroupOwner}
	admin := auth.Principal{AgentID: me, Role: schematype.RoleAdmin}
	owner := auth.Principal{AgentID: me, Role: schematype.RoleSystemOwner}
	visitor := auth.Principal{ConversationID: 7}
	mine, theirs := new(int), new(int)
	*mine, *theirs = me, other
	wa, lc, in := schematype.ChannelWhatsApp, schematype.ChannelLiveChat, schematype.ChannelInternal
	open := schematype.ConversationOpen

	// V R C M D L T N: view, reply, claim, manage, delete, release, taken,
	// note (added to every want that has V).
	all := "VRCMDL"
	// candidate: what the agents offered it, and its queue's members, may do.
	const candidate = "VRCM"
	cases := []struct {
		name string
		p    auth.Principal
		f    Facts
		want string
	}{
		{"agent, unowned, offered", agentP, Facts{Channel: wa, Offered: true}, candidate},
		{"agent, unowned, queue member", agentP, Facts{Channel: wa, Member: true}, candidate},
		{"agent, unowned live chat, member", agentP, Facts{Channel: lc, Member: true}, candidate},
		{"agent, unowned, expired offer only", agentP, Facts{Channel: wa, WasOffered: true}, ""},
		{"agent, unowned, stranger", agentP, Facts{Channel: wa}, ""},
		{"agent, owns it", agentP, Facts{Channel: wa, OwnerID: mine}, all},
		{"agent, owns it, member too", agentP, Facts{Channel: lc, OwnerID: mine, Member: true}, all},
		{"agent, another's, member", agentP, Facts{Channel: wa, OwnerID: theirs, Member: true}, "T"},
		{"agent, another's, was offered", agentP, Facts{Channel: wa, OwnerID: theirs, WasOffered: true}, "T"},
		{"agent, another's, offered (stale offer)", agentP, Facts{Channel: wa, OwnerID: theirs, Offered: true, WasOffered: true}, "T"},
		{"agent, another's, stranger", agentP, Facts{Channel: wa, OwnerID: theirs}, ""},
		{"agent, internal, participant", agentP, Facts{Channel: in, Participant: true}, "VRMD"},
		{"agent, internal, outsider", agentP, Facts{Channel: in}, ""},
		{"agent, internal, member facts ignored", agentP, Facts{Channel: in, Member: true, Offered: true}, ""},
		{"group owner is an agent here", groupOwner, Facts{Channel: wa, OwnerID: theirs}, ""},
		{"group owner, unowned, member", groupOwner, Facts{Channel: wa, Member: true}, candidate},
		{"admin, unowned, stranger", admin, Facts{Channel: wa}, "VRCMD"},
		{"admin, another's", admin, Facts{Channel: wa, OwnerID: theirs}, "VMDL"},
		{"admin, another's, member", admin, Facts{Channel: wa, OwnerID: theirs, Member: true}, "VMDL"},
		{"admin, owns it", admin, Facts{Channel: wa, OwnerID: mine}, all},
		{"admin, internal, outsider", admin, Facts{Channel: in}, "VMD"},
		{"admin, internal, participant", admin, Facts{Channel: in, Participant: true}, "VRMD"},
		{"system owner, unowned live chat", owner, Facts{Channel: lc}, "VRCMD"},
		{"system owner, another's", owner, Facts{Channel: lc, OwnerID: theirs}, "VMDL"},
		{"visitor", visitor, Facts{Channel: lc}, ""},
		{"agent, blocked contact, owns it", agentP, Facts{Channel: wa, OwnerID: mine, Blocked: true}, ""},
		{"agent, blocked contact, offered member", agentP, Facts{Channel: wa, Offered: true, Member: true, Blocked: true}, ""},
		{"agent, blocked contact, another's, member", agentP, Facts{Channel: wa, OwnerID: theirs, Member: true, Blocked: true}, ""},
		{"admin, blocked contact, unowned", admin, Facts{Channel: wa, Blocked: true}, "VMD"},
		{"admin, blocked contact, owns it", admin, Facts{Channel: lc, OwnerID: mine, Blocked: true}, "VMD"},
		{"nobody", auth.Principal{}, Facts{Channel: wa, Member: true}, ""},
		{"agent, another's, mentioned", agentP, Facts{Channel: wa, OwnerID: theirs, Mentioned: true, Status: open}, "VN"},
		{"agent, another's, member, mentioned", agentP, Facts{Channel: wa, OwnerID: theirs, Member: true, Mentioned: true, Status: open}, "VN"},
		{"agent, unowned, mentioned only", agentP, Facts{Channel: lc, Mentioned: true, Status: open}, "VN"},
		{"agent, unowned, member, mentioned", agentP, Facts{Channel: wa, Member: true, Mentioned: true, Status: open}, "VRCMN"},
		{"agent, owns it, mentioned", agentP, Facts{Channel: wa, OwnerID: mine, Mentioned: true, Status: open}, all + "N"},
		{"agent, another's, mentioned, dealt with", agentP, Facts{Channel: wa, OwnerID: theirs, Mentioned: true, Status: schematype.ConversationDealtWith}, ""},
		{"agent, another's, mentioned, ended", agentP, Facts{Channel: lc, OwnerID: theirs, Mentioned: true, Status: schematype.ConversationEnded}, ""},
		{"agent, another's, member, mentioned, dealt with", agentP, Facts{Channel: wa, OwnerID: theirs, Member: true, Mentioned: true, Status: schematype.ConversationDealtWith}, "T"},
		{"agent, blocked contact, mentioned", agentP, Facts{Channel: wa, OwnerID: theirs, Mentioned: true, Status: open, Blocked: true}, ""},
		{"agent, internal, mentioned outsider", agentP, Facts{Channel: in, Mentioned: true, Status: open}, ""},
		{"admin, another's, mentioned", admin, Facts{Channel: wa, OwnerID: theirs, Mentioned: true, Status: open}, "VMDLN"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := Decide(tc.p, tc.f)
			got := ""
			for _, x := range []struct {
				ok bool
				c  string
			}{{a.View, "V"}, {a.Reply, "R"}, {a.Claim, "C"}, {a.Manage, "M"}, {a.Delete, "D"}, {a.Release, "L"}, {a.Taken, "T"}, {a.Note, "N"}} {
				if x.ok {
					got += x.c
				}
			}
			want := tc.want
			if strings.Contains(want, "V") && !strings.HasSuffix(want, "N") {
				want += "N" // whoever sees a conversation adds notes
			}
			if got != want {
				t.Fatalf("Decide = %q, want %q", got, want)
			}
		})
	}
}

// TestCheck: the refusal each operation gets.
func TestCheck(t *testing.T) {
	const me, other = 1, 2
	mine, theirs := new(int), new(int)
	*mine, *theirs = me, other
	agentP := auth.Principal{AgentID: me, Role: schematype.RoleAgent}
	admin := auth.Principal{AgentID: me, Role: schematype.RoleAdmin}
	wa, in := schematype.ChannelWhatsApp, schematype.ChannelInternal
	mentioned := Facts{Channel: wa, OwnerID: theirs, Mentioned: true, Status: schematype.ConversationOpen}
	cases := []struct {
		name string
		p    auth.Principal
		f    Facts
		op   Op
		want apperr.Code // "" = allowed
	}{
		{"stranger views", agentP, Facts{Channel: wa}, OpView, apperr.NotFound},
		{"stranger takes", agentP, Facts{Channel: wa}, OpClaim, apperr.NotFound},
		{"stranger replies to an owned one", agentP, Facts{Channel: wa, OwnerID: theirs}, OpReply, apperr.NotFound},
		{"former candidate takes", agentP, Facts{Channel: wa, OwnerID: theirs, Member: true}, OpClaim, apperr.Conflict},
		{"former candidate replies", agentP, Facts{Channel: wa, OwnerID: theirs, WasOffered: true}, OpReply, apperr.Conflict},
		{"former candidate views", agentP, Facts{Channel: wa, OwnerID: theirs, Member: true}, OpView, apperr.NotFound},
		{"former candidate manages", agentP, Facts{Channel: wa, OwnerID: theirs, Member: true}, OpManage, apperr.NotFound},
		{"former candidate deletes", agentP, Facts{Channel: wa, OwnerID: theirs, Member: true}, OpDelete, apperr.NotFound},
		{"admin takes another's", admin, Facts{Channel: wa, OwnerID: theirs}, OpClaim, apperr.Conflict},
		{"admin replies to another's", admin, Facts{Channel: wa, OwnerID: theirs}, OpReply, apperr.Forbidden},
		{"admin takes an internal chat", admin, Facts{Channel: in}, OpClaim, apperr.BadUserInput},
		{"admin writes in an internal chat", admin, Facts{Channel: in}, OpReply, apperr.Forbidden},
		{"participant takes an internal chat", agentP, Facts{Channel: in, Participant: true}, OpClaim, apperr.BadUserInput},
		{"admin manages another's", admin, Facts{Channel: wa, OwnerID: theirs}, OpManage, ""},
		{"member takes", agentP, Facts{Channel: wa, Member: true}, OpClaim, ""},
		{"member deletes", agentP, Facts{Channel: wa, Member: true}, OpDelete, apperr.Forbidden},
		{"offered agent deletes", agentP, Facts{Channel: wa, Offered: true}, OpDelete, apperr.Forbidden},
		{"owner deletes", agentP, Facts{Channel: wa, OwnerID: mine}, OpDelete, ""},
		{"participant deletes an internal chat", agentP, Facts{Channel: in, Participant: true}, OpDelete, ""},
		{"owner releases", agentP, Facts{Channel: wa, OwnerID: mine}, OpRelease, ""},
		{"admin releases another's", admin, Facts{Channel: wa, OwnerID: theirs}, OpRelease, ""},
		{"member releases an unowned one", agentP, Facts{Channel: wa, Member: true}, OpRelease, apperr.BadUserInput},
		{"admin releases an unowned one", admin, Facts{Channel: wa}, OpRelease, apperr.BadUserInput},
		{"participant releases an internal chat", agentP, Facts{Channel: in, Participant: true}, OpRelease, apperr.BadUserInput},
		{"former candidate releases", agentP, Facts{Channel: wa, OwnerID: theirs, Member: true}, OpRelease, apperr.Forbidden},
		{"stranger releases", agentP, Facts{Channel: wa, OwnerID: theirs}, OpRelease, apperr.NotFound},
		{"member, blocked contact, views", agentP, Facts{Channel: wa, Member: true, Blocked: true}, OpView, apperr.NotFound},
		{"admin replies to a blocked contact", admin, Facts{Channel: wa, Blocked: true}, OpReply, apperr.Forbidden},
		{"admin takes a blocked contact's", admin, Facts{Channel: wa, Blocked: true}, OpClaim, apperr.Forbidden},
		{"admin manages a blocked contact's", admin, Facts{Channel: wa, Blocked: true}, OpManage, ""},
		{"mentioned views another's", agentP, mentioned, OpView, ""},
		{"mentioned adds a note", agentP, mentioned, OpNote, ""},
		{"mentioned replies", agentP, mentioned, OpReply, apperr.Forbidden},
		{"mentioned takes", agentP, mentioned, OpClaim, apperr.Forbidden},
		{"mentioned takes an unowned one", agentP, Facts{Channel: wa, Mentioned: true, Status: schematype.ConversationOpen}, OpClaim, apperr.Forbidden},
		{"mentioned transfers", agentP, mentioned, OpManage, apperr.Forbidden},
		{"mentioned releases", agentP, mentioned, OpRelease, apperr.Forbidden},
		{"mentioned deletes", agentP, mentioned, OpDelete, apperr.Forbidden},
		{"mentioned views after dealt with", agentP, Facts{Channel: wa, OwnerID: theirs, Mentioned: true, Status: schematype.ConversationDealtWith}, OpView, apperr.NotFound},
		{"member adds a note", agentP, Facts{Channel: wa, Member: true}, OpNote, ""},
		{"admin adds a note to another's", admin, Facts{Channel: wa, OwnerID: theirs}, OpNote, ""},
		{"former candidate adds a note", agentP, Facts{Channel: wa, OwnerID: theirs, Member: true}, OpNote, apperr.Forbidden},
		{"stranger adds a note", agentP, Facts{Channel: wa, OwnerID: theirs}, OpNote, apperr.NotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Decide(tc.p, tc.f).Check(tc.op)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if apperr.CodeOf(err) != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
}

// TestRuleAndSQLAgree builds every kind of conversation and checks, for
// every principal, that the facts judge loads from the database give the
// relations whose SQL form selects that conversation, and that the lists'
// visibility is exactly Decide's View.
func TestRuleAndSQLAgree(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		w := newWorld(t, b)
		ana, ben, cleo, dan := w.agent(schematype.RoleAgent), w.agent(schematype.RoleAgent), w.agent(schematype.RoleAgent), w.agent(schematype.RoleAgent)
		gina := w.agent(schematype.RoleGroupOwner)
		admin, root := w.agent(schematype.RoleAdmin), w.agent(schematype.RoleSystemOwner)
		people := []auth.Principal{ana, ben, cleo, dan, gina, admin, root}
		q := w.queue(ana, ben, gina)
		var specs []convSpec
		for _, ch := range []schematype.Channel{schematype.ChannelWhatsApp, schematype.ChannelLiveChat, schematype.ChannelSMS} {
			for _, queue := range []int{0, q} {
				for _, owner := range []auth.Principal{{}, ana, dan, admin} {
					for _, blocked := range []bool{false, true} {
						specs = append(specs,
							convSpec{channel: ch, queue: queue, owner: owner, blocked: blocked},
							convSpec{channel: ch, queue: queue, owner: owner, offered: []auth.Principal{ben}, expired: []auth.Principal{cleo}, blocked: blocked},
							convSpec{channel: ch, queue: queue, owner: owner, offered: []auth.Principal{dan, admin}, blocked: blocked},
							convSpec{channel: ch, queue: queue, owner: owner, expired: []auth.Principal{ana, dan}, blocked: blocked},
						)
					}
				}
			}
		}
		for _, owner := range []auth.Principal{{}, ana, dan} {
			for _, closed := range []bool{false, true} {
				for _, blocked := range []bool{false, true} {
					specs = append(specs,
						convSpec{channel: schematype.ChannelWhatsApp, queue: q, owner: owner, mentioned: []auth.Principal{cleo, ben}, closed: closed, blocked: blocked},
						convSpec{channel: schematype.ChannelLiveChat, owner: owner, mentioned: []auth.Principal{ana}, closed: closed, blocked: blocked},
					)
				}
			}
		}
		specs = append(specs,
			convSpec{channel: schematype.ChannelInternal, participants: []auth.Principal{ana, dan}},
			convSpec{channel: schematype.ChannelInternal, participants: []auth.Principal{ben, admin}},
			convSpec{channel: schematype.ChannelInternal, participants: []auth.Principal{ben, admin}, mentioned: []auth.Principal{cleo}},
		)
		var ids []int
		for _, s := range specs {
			ids = append(ids, w.conv(s).ID)
		}
		for _, p := range people {
			// What the SQL form of each relation selects.
			selected := map[relation][]int{}
			for r := relation(1); r&relations != 0; r <<= 1 {
				got, err := w.client.Conversation.Query().Where(r.where(p)).IDs(w.ctx)
				if err != nil {
					t.Fatal(err)
				}
				selected[r] = got
			}
			visible, err := w.client.Conversation.Query().Where(visibleVia(p, seeing)).IDs(w.ctx)
			if err != nil {
				t.Fatal(err)
			}
			for i, id := range ids {
				sub, err := judge(w.ctx, w.client, p, id)
				if err != nil {
					t.Fatal(err)
				}
				f, err := factsOf(w.ctx, w.client, p, sub.viewer)
				if err != nil {
					t.Fatal(err)
				}
				rels := relationsOf(p, f)
				sp := specs[i]
				where := fmt.Sprintf("agent %d (%s), conversation %d (%s, queue %d, owner %d, offered %v, expired %v, participants %v, blocked %v, mentioned %v, closed %v)",
					p.AgentID, p.Role, id, sp.channel, sp.queue, sp.owner.AgentID, agentIDs(sp.offered), agentIDs(sp.expired), agentIDs(sp.participants), sp.blocked,
					agentIDs(sp.mentioned), sp.closed)
				for r := relation(1); r&relations != 0; r <<= 1 {
					if in := slices.Contains(selected[r], id); in != (rels&r != 0) {
						t.Errorf("%s: relation %b: SQL selects it %v, facts say %v", where, r, in, rels&r != 0)
					}
				}
				if in := slices.Contains(visible, id); in != sub.access.View {
					t.Errorf("%s: visible in lists %v, Decide says View %v", where, in, sub.access.View)
				}
			}
		}
		// The fixture covers every relation, and conversations nobody but
		// the admins sees.
		covered := relation(0)
		for _, p := range people {
			for _, id := range ids {
				sub, _ := judge(w.ctx, w.client, p, id)
				f, _ := factsOf(w.ctx, w.client, p, sub.viewer)
				covered |= relationsOf(p, f)
			}
		}
		if covered != relations {
			t.Fatalf("the fixture covers relations %b of %b", covered, relations)
		}
		// The inbox lists no conversation of a blocked contact, for anyone.
		listedIDs := w.client.Conversation.Query().Where(listed).IDsX(w.ctx)
		for i, id := range ids {
			if in := slices.Contains(listedIDs, id); in == specs[i].blocked {
				t.Errorf("conversation %d (blocked %v): listed %v", id, specs[i].blocked, in)
			}
		}
		if n := w.client.Conversation.Query().Where(conversation.OwnerIDIsNil()).CountX(w.ctx); n == 0 {
			t.Fatal("no unowned conversations in the fixture")
		}
	})
}

func agentIDs(ps []auth.Principal) []int {
	var out []int
	for _, p := range ps {
		out = append(out, p.AgentID)
	}
	return out
}
