package apitest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent/interaction"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// Tests of issue 13's private notes and mentions, over the contract's
// AddNote, NoteConversation, NoteInboxEvents and NoteConversationEvents:
// notes never leave Parley (provider doubles, the outbox, the live-chat
// visitor), a note does not claim, and a mention grants read-only access
// until the conversation is dealt with.

// noteMsg is a message as NoteConversation and AddNote select it.
type noteMsg struct {
	ID, Kind, Direction, Body string
	DeliveryStatus            *string
	Sender                    *struct{ Typename, ID, Name string }
	Mentions                  []struct{ ID, Name string }
}

// noteView is NoteConversation's answer.
type noteView struct {
	ID, Status  string
	Archived    bool
	Owner       *struct{ ID string }
	LastMessage *noteMsg
	Messages    struct {
		Edges []struct{ Node noteMsg }
	}
}

func (v *noteView) messages() []noteMsg {
	var out []noteMsg
	for _, e := range v.Messages.Edges {
		out = append(out, e.Node)
	}
	return out
}

// noteAdd calls AddNote and returns the response, errors included.
func noteAdd(t *testing.T, a *apitest.Agent, conv, body string, mentions ...string) *apitest.Response {
	t.Helper()
	vars := map[string]any{"conversationID": conv, "body": body}
	if mentions != nil {
		vars["mentions"] = mentions
	}
	return a.C.Op(t, "AddNote", vars)
}

// noteMustAdd calls AddNote and wants it to succeed.
func noteMustAdd(t *testing.T, a *apitest.Agent, conv, body string, mentions ...string) noteMsg {
	t.Helper()
	r := noteAdd(t, a, conv, body, mentions...)
	if len(r.Errors) > 0 {
		t.Fatalf("%s's note: %s", a.Name, r.Raw)
	}
	var out struct{ AddNote noteMsg }
	r.Decode(t, &out)
	return out.AddNote
}

// noteConv reads NoteConversation as a; nil with the response when refused.
func noteConv(t *testing.T, a *apitest.Agent, conv string) (*noteView, *apitest.Response) {
	t.Helper()
	r := a.C.Op(t, "NoteConversation", map[string]any{"id": conv})
	if len(r.Errors) > 0 {
		return nil, r
	}
	var out struct{ Conversation *noteView }
	r.Decode(t, &out)
	return out.Conversation, r
}

func noteMustConv(t *testing.T, a *apitest.Agent, conv string) *noteView {
	t.Helper()
	v, r := noteConv(t, a, conv)
	if v == nil {
		t.Fatalf("%s cannot read conversation %s: %s", a.Name, conv, r.Raw)
	}
	return v
}

// noteInboxEvent is NoteInboxEvents' selection.
type noteInboxEvent struct {
	Kind, ConversationID string
	Conversation         *struct {
		ID, Status string
		Owner      *struct{ ID string }
	}
	Message *struct {
		ID, Kind, Body string
		Mentions       []struct{ ID string }
	}
}

func noteNextInbox(t *testing.T, ws *apitest.WS, id string) (noteInboxEvent, json.RawMessage) {
	t.Helper()
	data := result(t, ws, id, eventTimeout)
	var out struct{ InboxEvents *noteInboxEvent }
	if err := json.Unmarshal(data, &out); err != nil || out.InboxEvents == nil {
		t.Fatalf("not an inboxEvents result: %s (%v)", data, err)
	}
	return *out.InboxEvents, data
}

// noteConvEvent is NoteConversationEvents' selection.
type noteConvEvent struct {
	Kind    string
	Message *struct{ ID, Kind, Body string }
}

func noteNextConv(t *testing.T, ws *apitest.WS, id string) (noteConvEvent, json.RawMessage) {
	t.Helper()
	data := result(t, ws, id, eventTimeout)
	var out struct{ ConversationEvents *noteConvEvent }
	if err := json.Unmarshal(data, &out); err != nil || out.ConversationEvents == nil {
		t.Fatalf("not a conversationEvents result: %s (%v)", data, err)
	}
	return *out.ConversationEvents, data
}

// TestNoteNeverLeavesParley: in a WhatsApp and an SMS conversation offered
// to the queue, Ben adds a note: it shows to the agents with kind NOTE as
// the last message, claims nothing (the conversation stays unowned and
// offered, and Ana can still take it), logs no reply, and is never in the
// outbox: the provider doubles get only Ana's later reply.
func TestNoteNeverLeavesParley(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s, w := startChannels(t, b)
		api := newProvider(t)
		wa, _ := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
			"phoneNumberID": "106540352242922", "accessToken": "EAAG-token", "appSecret": "app-secret",
			"verifyToken": "verify", "apiBaseURL": api.URL(),
		})
		sms, _ := createAccount(t, w, "SMS", "sms", map[string]any{
			"accountSID": "AC11111111111111111111111111111111", "authToken": "auth-token",
			"fromNumber": "+14155550100", "apiBaseURL": api.URL(),
		})
		db := s.App.DB.Client
		ctx := context.Background()
		for i, tc := range []struct{ name, acct, sender string }{
			{"whatsapp", wa, "34600111222"},
			{"sms", sms, "+14155550199"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				secret := "nota interna " + tc.name + ": cliente moroso, no ofrecer descuento"
				conv := w.Inbound(t, tc.acct, tc.sender, "Hola, ¿me ayudan?")

				n := noteMustAdd(t, w.Ben, conv, "  "+secret+"\n")
				if n.Kind != "NOTE" || n.Body != secret || n.DeliveryStatus != nil || len(n.Mentions) != 0 ||
					n.Sender == nil || n.Sender.ID != w.Ben.ID {
					t.Fatalf("the note as stored: %+v", n)
				}
				// Agents see it, as a note, as the last message; nobody owns
				// the conversation and it is still offered to the queue.
				v := noteMustConv(t, w.Cleo, conv)
				msgs := v.messages()
				if v.Owner != nil || len(msgs) != 2 || msgs[0].Kind != "MESSAGE" || msgs[1].Kind != "NOTE" || msgs[1].Body != secret {
					t.Fatalf("Cleo's view after the note: %+v", v)
				}
				if v.LastMessage == nil || v.LastMessage.ID != n.ID || v.LastMessage.Kind != "NOTE" {
					t.Fatalf("lastMessage after the note: %+v", v.LastMessage)
				}
				for _, a := range []*apitest.Agent{w.Ana, w.Ben, w.Cleo} {
					if !slices.Contains(a.InboxIDs(t, "RECENT", nil), conv) {
						t.Fatalf("%s's inbox lost the unowned conversation after a note", a.Name)
					}
				}
				// Nothing of it is in the outbox, nor logged as a reply.
				row := db.Message.GetX(ctx, apitest.Atoi(t, n.ID))
				if row.Kind != schematype.KindNote || row.DeliveryStatus != nil || row.NextAttemptAt != nil || row.ChannelAccountID != nil {
					t.Fatalf("the note's row is outbox-shaped: %+v", row)
				}
				if k := db.Message.Query().Where(message.DeliveryStatusEQ(schematype.DeliveryPending)).CountX(ctx); k != 0 {
					t.Fatalf("%d messages in the outbox after a note", k)
				}
				if k := db.Interaction.Query().Where(interaction.ConversationID(apitest.Atoi(t, conv)),
					interaction.KindIn(schematype.InteractionReplied, schematype.InteractionTaken)).CountX(ctx); k != 0 {
					t.Fatalf("a note logged %d replies or claims", k)
				}

				// Ana still takes it (a claim by the note would answer
				// CONFLICT) and replies: the provider gets that reply, and
				// only it; a note in the outbox would have gone first.
				w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": conv}, nil)
				const answer = "Claro, dígame"
				reply(t, w.Ana, conv, answer)
				sends := api.waitSends(i + 1)
				last := fmt.Sprint(sends[i].JSON, sends[i].Form)
				if !strings.Contains(last, answer) {
					t.Fatalf("the provider got %s, want Ana's reply", last)
				}
				for _, c := range sends {
					if all := fmt.Sprint(c.Path, c.JSON, c.Form); strings.Contains(all, "moroso") {
						t.Fatalf("the note reached the provider: %s", all)
					}
				}
			})
		}
		if got := len(api.waitSends(2)); got != 2 {
			t.Fatalf("%d provider calls, want the 2 replies", got)
		}
	})
}

// TestNoteLiveChatVisitorSeesNothing: a note in a live chat reaches
// neither the visitor's events (the agent's later reply is the first and
// only event) nor the visitor's history.
func TestNoteLiveChatVisitorSeesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		token, conv := startChat(t, s.Client(), w.LiveChat, "Eve")
		visitor := s.Client().As(token)
		visitor.MustOp(t, "VisitorSendMessage", map[string]any{"body": "¿Hacen envíos a Canarias?"}, nil)

		ws := dialAs(t, s, apitest.TransportWS, token)
		ws.SubscribeOp(t, "v", "VisitorEvents", nil)
		waitSubscribed(t, s, 1)

		const secret = "ojo: este visitante ya pidió reembolso dos veces"
		noteMustAdd(t, w.Ben, conv, secret)
		noteMustAdd(t, w.Cleo, conv, secret+" (confirmo)", w.Dan.ID)
		const answer = "¡Sí, enviamos!"
		if r := w.Ana.Send(t, conv, answer); len(r.Errors) > 0 {
			t.Fatalf("Ana's reply: %s", r.Raw)
		}
		data := result(t, ws, "v", eventTimeout)
		if strings.Contains(string(data), "reembolso") || !strings.Contains(string(data), answer) {
			t.Fatalf("the visitor's first event after two notes and a reply: %s", data)
		}
		ws.ExpectNone(t, "v", 300*time.Millisecond)

		var vc visitorConv
		r := visitor.Op(t, "VisitorConversation", nil)
		if strings.Contains(string(r.Raw), "reembolso") {
			t.Fatalf("the visitor's history shows a note: %s", r.Raw)
		}
		r.Decode(t, &vc)
		if n := len(vc.VisitorConversation.Messages.Edges); n != 2 {
			t.Fatalf("the visitor's history has %d messages, want 2: %s", n, r.Raw)
		}
		// The agents see all four, the notes as NOTE.
		var kinds []string
		for _, m := range noteMustConv(t, w.Ana, conv).messages() {
			kinds = append(kinds, m.Kind)
		}
		if strings.Join(kinds, " ") != "MESSAGE NOTE NOTE MESSAGE" {
			t.Fatalf("the agent's timeline kinds: %v", kinds)
		}
	})
}

// TestNoteMentions: Ana owns a conversation and mentions Cleo (a queue
// member, who lost sight of it when Ana took it) and Dan (in no queue):
// both get MENTIONED over their websockets and may read it, list it in
// RECENT and add notes, but not reply, take, transfer or close it. Once Ana
// deals with it, their access ends: REMOVED on the conversation stream (it
// completes) and the inbox, NOT_FOUND for the conversation, FORBIDDEN or
// NOT_FOUND for another note.
func TestNoteMentions(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		conv := w.Inbound(t, w.WhatsApp, "34600222333", "Me han cobrado dos veces")
		w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": conv}, nil)
		for _, a := range []*apitest.Agent{w.Cleo, w.Dan} {
			if _, r := noteConv(t, a, conv); r.Code() != "NOT_FOUND" {
				t.Fatalf("%s before the mention: %s", a.Name, r.Raw)
			}
		}

		ana := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
		ana.SubscribeOp(t, "conv", "NoteConversationEvents", map[string]any{"id": conv})
		cleo := dialAs(t, s, apitest.TransportWS, w.Cleo.Token)
		cleo.SubscribeOp(t, "inbox", "NoteInboxEvents", nil)
		dan := dialAs(t, s, apitest.LegacyWS, w.Dan.Token)
		dan.SubscribeOp(t, "inbox", "NoteInboxEvents", nil)
		waitSubscribed(t, s, 3)

		const ask = "@Cleo @Dan ¿es un cargo duplicado?"
		n := noteMustAdd(t, w.Ana, conv, ask, w.Cleo.ID, w.Dan.ID, w.Ana.ID, w.Cleo.ID)
		var mentioned []string
		for _, m := range n.Mentions {
			mentioned = append(mentioned, m.ID)
		}
		if len(mentioned) != 2 || !slices.Contains(mentioned, w.Cleo.ID) || !slices.Contains(mentioned, w.Dan.ID) {
			t.Fatalf("mentions %v, want Cleo and Dan once each (Ana mentioning herself is ignored)", mentioned)
		}
		ev, raw := noteNextConv(t, ana, "conv")
		if ev.Kind != "MESSAGE_ADDED" || ev.Message == nil || ev.Message.ID != n.ID || ev.Message.Kind != "NOTE" {
			t.Fatalf("Ana's stream, the note: %s", raw)
		}
		for _, c := range []struct {
			a  *apitest.Agent
			ws *apitest.WS
		}{{w.Cleo, cleo}, {w.Dan, dan}} {
			ev, raw := noteNextInbox(t, c.ws, "inbox")
			if ev.Kind != "MENTIONED" || ev.ConversationID != conv || ev.Conversation == nil || ev.Conversation.Owner == nil ||
				ev.Conversation.Owner.ID != w.Ana.ID || ev.Message == nil || ev.Message.ID != n.ID || ev.Message.Kind != "NOTE" ||
				ev.Message.Body != ask || len(ev.Message.Mentions) != 2 {
				t.Fatalf("%s's MENTIONED: %s", c.a.Name, raw)
			}
			c.ws.ExpectNone(t, "inbox", 200*time.Millisecond) // one event, not a MESSAGE_ADDED besides
			v := noteMustConv(t, c.a, conv)
			if v.Owner == nil || v.Owner.ID != w.Ana.ID || len(v.messages()) != 2 {
				t.Fatalf("%s reads: %+v", c.a.Name, v)
			}
			if !slices.Contains(c.a.InboxIDs(t, "RECENT", nil), conv) {
				t.Fatalf("%s's RECENT does not list the conversation they were mentioned in", c.a.Name)
			}
			// Read-only, as admins are: no reply, no Take, no transfer, no close.
			for _, op := range []struct {
				name string
				vars map[string]any
			}{
				{"SendMessage", map[string]any{"input": map[string]any{"conversationID": conv, "body": "Hola, soy " + c.a.Name}}},
				{"TakeConversation", map[string]any{"id": conv}},
				{"TransferConversation", map[string]any{"id": conv, "agentID": c.a.ID}},
				{"MarkDealtWith", map[string]any{"id": conv}},
			} {
				wantCode(t, c.a.C.Op(t, op.name, op.vars), "FORBIDDEN", c.a.Name+" "+op.name)
			}
		}
		if v := noteMustConv(t, w.Ana, conv); v.Owner == nil || v.Owner.ID != w.Ana.ID || len(v.messages()) != 2 {
			t.Fatalf("the refusals changed the conversation: %+v", v)
		}

		// Cleo follows the conversation and answers with a note.
		cleo.SubscribeOp(t, "conv", "NoteConversationEvents", map[string]any{"id": conv})
		waitSubscribed(t, s, 4)
		answer := noteMustAdd(t, w.Cleo, conv, "Sí, duplicado: devuélvele el segundo")
		for _, ws := range []*apitest.WS{ana, cleo} {
			if ev, raw := noteNextConv(t, ws, "conv"); ev.Kind != "MESSAGE_ADDED" || ev.Message == nil || ev.Message.ID != answer.ID || ev.Message.Kind != "NOTE" {
				t.Fatalf("Cleo's note on a stream: %s", raw)
			}
		}
		if ev, raw := noteNextInbox(t, dan, "inbox"); ev.Kind != "MESSAGE_ADDED" || ev.Message == nil || ev.Message.ID != answer.ID {
			t.Fatalf("Dan's inbox, Cleo's note: %s", raw)
		}
		w.Inbound(t, w.WhatsApp, "34600222333", "¿Alguna novedad?")
		if ev, raw := noteNextConv(t, cleo, "conv"); ev.Kind != "MESSAGE_ADDED" || ev.Message == nil || ev.Message.Kind != "MESSAGE" {
			t.Fatalf("the customer's message on Cleo's stream: %s", raw)
		}

		// Dealt with: the mentions' access ends.
		w.Ana.C.MustOp(t, "MarkDealtWith", map[string]any{"id": conv}, nil)
		for {
			ev, raw := noteNextConv(t, cleo, "conv")
			if ev.Kind == "REMOVED" {
				requireRemoved(t, raw, "conversationEvents", map[string]any{"kind": "REMOVED", "message": nil, "conversation": nil}, ask)
				break
			}
			if ev.Kind != "MESSAGE_ADDED" { // the customer's message may still be on its way to the inbox
				t.Fatalf("Cleo's stream after dealt-with: %s", raw)
			}
		}
		expectComplete(t, cleo, "conv")
		for _, c := range []struct {
			a  *apitest.Agent
			ws *apitest.WS
		}{{w.Cleo, cleo}, {w.Dan, dan}} {
			for {
				ev, raw := noteNextInbox(t, c.ws, "inbox")
				if ev.Kind == "REMOVED" {
					if ev.ConversationID != conv || ev.Conversation != nil || ev.Message != nil {
						t.Fatalf("%s's REMOVED: %s", c.a.Name, raw)
					}
					break
				}
				if ev.Kind != "MESSAGE_ADDED" {
					t.Fatalf("%s's inbox after dealt-with: %s", c.a.Name, raw)
				}
			}
			if _, r := noteConv(t, c.a, conv); r.Code() != "NOT_FOUND" {
				t.Fatalf("%s after dealt-with: %s", c.a.Name, r.Raw)
			}
			if slices.Contains(c.a.InboxIDs(t, "RECENT", nil), conv) || slices.Contains(c.a.InboxIDs(t, "ARCHIVED", nil), conv) {
				t.Fatalf("%s still lists the conversation after dealt-with", c.a.Name)
			}
		}
		// Cleo, a member who lost it, is told so; Dan is a stranger again.
		wantCode(t, noteAdd(t, w.Cleo, conv, "una más"), "FORBIDDEN", "Cleo's note after dealt-with")
		wantCode(t, noteAdd(t, w.Dan, conv, "una más"), "NOT_FOUND", "Dan's note after dealt-with")
		// The owner still writes notes in it, without mentions.
		noteMustAdd(t, w.Ana, conv, "Reembolsado")
		wantCode(t, noteAdd(t, w.Ana, conv, "mirad", w.Ben.ID), "BAD_USER_INPUT", "a mention in a closed conversation")
	})
}

// TestNoteMentionUnowned: a mention in an unowned conversation lets Dan
// (in no queue) read it but not take it, and the note claims nothing.
func TestNoteMentionUnowned(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		conv := w.Inbound(t, w.WhatsApp, "34600444555", "Quiero darme de baja")
		noteMustAdd(t, w.Ben, conv, "Dan, ¿esto es tuyo?", w.Dan.ID)
		if v := noteMustConv(t, w.Dan, conv); v.Owner != nil {
			t.Fatalf("the note claimed: %+v", v)
		}
		wantCode(t, w.Dan.C.Op(t, "TakeConversation", map[string]any{"id": conv}), "FORBIDDEN", "Dan takes")
		wantCode(t, w.Dan.Send(t, conv, "Hola"), "FORBIDDEN", "Dan replies")
		if !slices.Contains(w.Cleo.InboxIDs(t, "QUEUE", nil), conv) {
			t.Fatal("the conversation left the queue after a note")
		}
		// A queue member claims it by replying, as ever.
		if r := w.Cleo.Send(t, conv, "Te ayudo"); len(r.Errors) > 0 {
			t.Fatalf("Cleo's reply: %s", r.Raw)
		}
		if v := noteMustConv(t, w.Dan, conv); v.Owner == nil || v.Owner.ID != w.Cleo.ID {
			t.Fatalf("Dan, after Cleo's claim: %+v", v)
		}
	})
}

// TestNoteRefusals: bad bodies and mentions answer BAD_USER_INPUT naming
// the field (a mention naming the agent id), agents who may not see the
// conversation are refused, and nothing refused is stored.
func TestNoteRefusals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		conv := w.Inbound(t, w.WhatsApp, "34600666777", "Hola")
		w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": conv}, nil)
		w.Admin.C.MustOp(t, "DeactivateAgent", map[string]any{"id": w.Dan.ID}, nil)
		evaID, eva := w.Admin.C.CreateAgent(t, "Eva", "eva@test.parley", "205", "AGENT")
		stranger := &apitest.Agent{ID: evaID, Name: "Eva", Token: eva, C: s.Client().As(eva)}

		for _, tc := range []struct {
			name     string
			body     string
			mentions []string
			field    string
			says     string
		}{
			{"blank body", " \n\t ", nil, "body", "body"},
			{"long body", strings.Repeat("á", 10001), nil, "body", "10000"},
			{"deactivated agent", "mira esto", []string{w.Cleo.ID, w.Dan.ID}, "mentions", w.Dan.ID},
			{"not an agent", "mira esto", []string{conv}, "mentions", conv},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := noteAdd(t, w.Ana, conv, tc.body, tc.mentions...)
				if r.Code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, tc.says) ||
					r.Errors[0].Extensions["field"] != tc.field {
					t.Fatalf("want BAD_USER_INPUT on %s saying %q, got %s", tc.field, tc.says, r.Raw)
				}
			})
		}
		wantCode(t, noteAdd(t, w.Ben, conv, "hola"), "FORBIDDEN", "Ben (a member who lost it) adds a note")
		wantCode(t, noteAdd(t, stranger, conv, "hola"), "NOT_FOUND", "a stranger adds a note")
		if r := w.Ana.C.Op(t, "AddNote", map[string]any{"conversationID": "999999", "body": "hola"}); r.Code() != "NOT_FOUND" {
			t.Fatalf("a note in no conversation: %s", r.Raw)
		}
		if v := noteMustConv(t, w.Ana, conv); len(v.messages()) != 1 {
			t.Fatalf("refused notes were stored: %+v", v.messages())
		}
		// The longest note is fine; the mentioned Cleo was not granted
		// anything by the refused attempt.
		noteMustAdd(t, w.Ana, conv, strings.Repeat("á", 10000))
		if _, r := noteConv(t, w.Cleo, conv); r.Code() != "NOT_FOUND" {
			t.Fatalf("a refused mention granted Cleo access: %s", r.Raw)
		}
		// Internal chats take notes, not mentions.
		var chat struct{ StartInternalChat struct{ ID string } }
		w.Ana.C.MustOp(t, "StartInternalChat", map[string]any{"agentIDs": []string{w.Ben.ID}, "body": "hola Ben"}, &chat)
		noteMustAdd(t, w.Ben, chat.StartInternalChat.ID, "recordatorio")
		wantCode(t, noteAdd(t, w.Ben, chat.StartInternalChat.ID, "Cleo, mira", w.Cleo.ID), "BAD_USER_INPUT", "a mention in an internal chat")
	})
}

// TestNoteMentionAcrossInstances: a mention made through instance B
// reaches Cleo's inbox on instance A, and its end (dealt with on B) ends
// her conversation stream on A.
func TestNoteMentionAcrossInstances(t *testing.T) {
	db := storetest.Open(t, storetest.Postgres)
	prefix := fmt.Sprintf("parley-test-note-%d:", time.Now().UnixNano())
	opts := apitest.Options{Backend: storetest.Postgres, DB: db, Redis: true, RedisPrefix: prefix}
	a := apitest.Start(t, opts)
	bsrv := apitest.Start(t, opts)
	w := apitest.NewWorkspace(t, a, apitest.WorkspaceOption{})
	anaOnB := &apitest.Agent{ID: w.Ana.ID, Name: "Ana", Token: w.Ana.Token, C: bsrv.Client().As(w.Ana.Token)}
	conv := w.Inbound(t, w.WhatsApp, "34600888999", "Hola desde B")
	anaOnB.C.MustOp(t, "TakeConversation", map[string]any{"id": conv}, nil)

	cleo := dialAs(t, a, apitest.TransportWS, w.Cleo.Token)
	cleo.SubscribeOp(t, "inbox", "NoteInboxEvents", nil)
	waitSubscribed(t, a, 1)
	start := time.Now()
	n := noteMustAdd(t, anaOnB, conv, "Cleo, ¿lo miras?", w.Cleo.ID)
	ev, raw := noteNextInbox(t, cleo, "inbox")
	if ev.Kind != "MENTIONED" || ev.Message == nil || ev.Message.ID != n.ID {
		t.Fatalf("Cleo's MENTIONED on A: %s", raw)
	}
	t.Logf("mention: %v from instance B to Cleo on instance A", time.Since(start).Round(time.Millisecond))

	cleo.SubscribeOp(t, "conv", "NoteConversationEvents", map[string]any{"id": conv})
	waitSubscribed(t, a, 2)
	anaOnB.C.MustOp(t, "MarkDealtWith", map[string]any{"id": conv}, nil)
	if ev, raw := noteNextConv(t, cleo, "conv"); ev.Kind != "REMOVED" {
		t.Fatalf("Cleo's stream on A after dealt-with on B: %s", raw)
	}
	expectComplete(t, cleo, "conv")
}
