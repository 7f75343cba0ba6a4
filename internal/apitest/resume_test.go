package apitest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// The resume tests drive the resumable subscriptions of the contract
// (InboxEventsAfter, ConversationEventsAfter, VisitorEventsAfter) over real
// sockets: a client that goes away and comes back with its last cursor gets
// exactly what it missed, in order, then live events; across instances; a
// RESYNC for a cursor the log cannot serve; nothing lost to a crash between
// commit and publish, nor to a Redis restart.

// cursorEvent is what the resume tests compare of an event.
type cursorEvent struct {
	Kind           string
	Cursor         string
	ConversationID string
	Message        *struct{ ID, Body string }
}

func (e cursorEvent) String() string {
	m := ""
	if e.Message != nil {
		m = " " + e.Message.Body
	}
	return fmt.Sprintf("%s %s%s @%s", e.Kind, e.ConversationID, m, e.Cursor)
}

// nextCursorEvent reads the next event of operation id, of the given field
// (inboxEvents, conversationEvents, visitorEvents).
func nextCursorEvent(t testing.TB, ws *apitest.WS, id, field string) cursorEvent {
	t.Helper()
	data := result(t, ws, id, eventTimeout)
	var out map[string]*cursorEvent
	if err := json.Unmarshal(data, &out); err != nil || out[field] == nil {
		t.Fatalf("operation %s: not a %s result: %s (%v)", id, field, data, err)
	}
	if out[field].Cursor == "" {
		t.Fatalf("operation %s: event without a cursor: %s", id, data)
	}
	return *out[field]
}

func subscribeInboxAfter(t testing.TB, s *apitest.Server, token, id string, after any) *apitest.WS {
	t.Helper()
	ws := dialAs(t, s, apitest.TransportWS, token)
	ws.SubscribeOp(t, id, "InboxEventsAfter", map[string]any{"after": after})
	return ws
}

// TestResumeInbox: Ana's phone loses its socket after two new
// conversations; meanwhile a message arrives, she takes the first
// conversation on another device, Ben takes the second (REMOVED for her)
// and one more message arrives. Resuming with her last cursor she gets
// exactly those events, in order, with the cursors a socket that stayed
// connected saw, then live events; nothing twice.
func TestResumeInbox(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		for _, redis := range []bool{false, true} {
			t.Run(fmt.Sprintf("redis=%v", redis), func(t *testing.T) {
				s := apitest.Start(t, apitest.Options{Backend: b, Redis: redis})
				w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
				witness := subscribeInboxAfter(t, s, w.Ana.Token, "w", nil)
				phone := subscribeInboxAfter(t, s, w.Ana.Token, "p", nil)
				waitSubscribed(t, s, 2)

				conv1 := w.Inbound(t, w.WhatsApp, "34600100001", "first")
				conv2 := w.Inbound(t, w.WhatsApp, "34600100002", "second")
				var seen []cursorEvent
				for len(seen) < 2 {
					seen = append(seen, nextCursorEvent(t, phone, "p", "inboxEvents"))
				}
				for i := range 2 {
					if got := nextCursorEvent(t, witness, "w", "inboxEvents"); got.Cursor != seen[i].Cursor {
						t.Fatalf("two sockets of one agent disagree on cursors: %v and %v", got, seen[i])
					}
				}
				last := seen[1].Cursor
				_ = phone.Conn.CloseNow()
				waitSubscribed(t, s, 1)

				// What happens while the phone is away.
				w.Inbound(t, w.WhatsApp, "34600100001", "while away 1")
				w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": conv1}, nil)
				w.Ben.C.MustOp(t, "TakeConversation", map[string]any{"id": conv2}, nil)
				w.Inbound(t, w.WhatsApp, "34600100001", "while away 2")
				var missed []cursorEvent
				for {
					ev := nextCursorEvent(t, witness, "w", "inboxEvents")
					missed = append(missed, ev)
					if ev.Message != nil && ev.Message.Body == "while away 2" {
						break
					}
				}
				kinds := map[string]bool{}
				for _, ev := range missed {
					kinds[ev.Kind+" "+ev.ConversationID] = true
				}
				for _, want := range []string{"MESSAGE_ADDED " + conv1, "CONVERSATION_UPDATED " + conv1, "REMOVED " + conv2} {
					if !kinds[want] {
						t.Fatalf("the witness did not see %s: %v", want, missed)
					}
				}

				back := subscribeInboxAfter(t, s, w.Ana.Token, "b", last)
				for i, want := range missed {
					got := nextCursorEvent(t, back, "b", "inboxEvents")
					if got.String() != want.String() {
						t.Fatalf("replayed event %d: got %v, want %v (missed: %v)", i, got, want, missed)
					}
				}
				// Then live, and nothing replayed twice.
				w.Inbound(t, w.WhatsApp, "34600100001", "after the return")
				got := nextCursorEvent(t, back, "b", "inboxEvents")
				if got.Kind != "MESSAGE_ADDED" || got.Message == nil || got.Message.Body != "after the return" {
					t.Fatalf("first live event after the replay: %v", got)
				}
				if want := nextCursorEvent(t, witness, "w", "inboxEvents"); want.Cursor != got.Cursor {
					t.Fatalf("live cursor %s, the witness saw %s", got.Cursor, want.Cursor)
				}
				back.ExpectNone(t, "b", 300*time.Millisecond)
			})
		}
	})
}

// TestResumeConversationAndVisitor: the conversation and visitor streams
// resume the same way.
func TestResumeConversationAndVisitor(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	conv := w.Inbound(t, w.WhatsApp, "34600100003", "hola")
	w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": conv}, nil)

	ws := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
	ws.SubscribeOp(t, "c", "ConversationEventsAfter", map[string]any{"id": conv})
	waitSubscribed(t, s, 1)
	w.Inbound(t, w.WhatsApp, "34600100003", "uno")
	last := nextCursorEvent(t, ws, "c", "conversationEvents").Cursor
	_ = ws.Conn.CloseNow()
	waitSubscribed(t, s, 0)
	for _, body := range []string{"dos", "tres"} {
		w.Inbound(t, w.WhatsApp, "34600100003", body)
	}
	back := dialAs(t, s, apitest.TransportWS, w.Ana.Token)
	back.SubscribeOp(t, "c", "ConversationEventsAfter", map[string]any{"id": conv, "after": last})
	for _, want := range []string{"dos", "tres"} {
		if got := nextCursorEvent(t, back, "c", "conversationEvents"); got.Message == nil || got.Message.Body != want {
			t.Fatalf("conversation replay: got %v, want %s", got, want)
		}
	}
	_ = back.Conn.CloseNow()
	waitSubscribed(t, s, 0)

	// A visitor: the agent's replies while the widget was offline.
	vtoken, lc0 := startVisitorChat(t, s, w)
	visitor := s.Client().As(vtoken)
	visitor.MustOp(t, "VisitorSendMessage", map[string]any{"body": "hi"}, nil)
	lc := lc0
	w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": lc}, nil)
	vws := dialAs(t, s, apitest.TransportWS, vtoken)
	vws.SubscribeOp(t, "v", "VisitorEventsAfter", nil)
	waitSubscribed(t, s, 1)
	w.Ana.Send(t, lc, "reply one")
	vlast := nextCursorEvent(t, vws, "v", "visitorEvents").Cursor
	_ = vws.Conn.CloseNow()
	waitSubscribed(t, s, 0)
	w.Ana.Send(t, lc, "reply two")
	vback := dialAs(t, s, apitest.TransportWS, vtoken)
	vback.SubscribeOp(t, "v", "VisitorEventsAfter", map[string]any{"after": vlast})
	if got := nextCursorEvent(t, vback, "v", "visitorEvents"); got.Message == nil || got.Message.Body != "reply two" {
		t.Fatalf("visitor replay: got %v", got)
	}
}

// TestResumeAcrossInstances: a client that saw events on instance A
// resumes on instance B (behind a load balancer) and gets what it missed,
// caused on either instance.
func TestResumeAcrossInstances(t *testing.T) {
	db := storetest.Open(t, storetest.Postgres)
	prefix := fmt.Sprintf("parley-test-resume-%d:", time.Now().UnixNano())
	opts := apitest.Options{Backend: storetest.Postgres, DB: db, Redis: true, RedisPrefix: prefix}
	a := apitest.Start(t, opts)
	bsrv := apitest.Start(t, opts)
	w := apitest.NewWorkspace(t, a, apitest.WorkspaceOption{})
	onB := *w
	onB.S = bsrv

	ws := subscribeInboxAfter(t, a, w.Ana.Token, "i", nil)
	waitSubscribed(t, a, 1)
	conv := w.Inbound(t, w.WhatsApp, "34600100004", "on A")
	last := nextCursorEvent(t, ws, "i", "inboxEvents").Cursor
	_ = ws.Conn.CloseNow()
	waitSubscribed(t, a, 0)
	onB.Inbound(t, w.WhatsApp, "34600100004", "on B while away")
	w.Inbound(t, w.WhatsApp, "34600100004", "on A while away")

	back := subscribeInboxAfter(t, bsrv, w.Ana.Token, "i", last)
	for _, want := range []string{"on B while away", "on A while away"} {
		got := nextCursorEvent(t, back, "i", "inboxEvents")
		if got.ConversationID != conv || got.Message == nil || got.Message.Body != want {
			t.Fatalf("resumed on B: got %v, want %s", got, want)
		}
	}
	w.Inbound(t, w.WhatsApp, "34600100004", "live, caused on A")
	if got := nextCursorEvent(t, back, "i", "inboxEvents"); got.Message == nil || got.Message.Body != "live, caused on A" {
		t.Fatalf("live on B after the replay: %v", got)
	}
}

// TestResumeResync: a cursor the log cannot serve (malformed, from the
// future, or older than what is kept) gets one RESYNC first, with a cursor
// to continue from; continuing from it then misses nothing.
func TestResumeResync(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	ws := subscribeInboxAfter(t, s, w.Ana.Token, "i", nil)
	waitSubscribed(t, s, 1)
	w.Inbound(t, w.WhatsApp, "34600100005", "old")
	old := nextCursorEvent(t, ws, "i", "inboxEvents").Cursor
	_ = ws.Conn.CloseNow()
	waitSubscribed(t, s, 0)
	// Everything so far is pruned, as it would be after the retention.
	if _, err := s.App.Events.PruneBefore(context.Background(), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, cursor string }{
		{"pruned", old}, {"malformed", "not-a-cursor"}, {"from the future", "1.zzzzzz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := subscribeInboxAfter(t, s, w.Ana.Token, "i", tc.cursor)
			first := nextCursorEvent(t, c, "i", "inboxEvents")
			if first.Kind != "RESYNC" || first.Message != nil {
				t.Fatalf("want RESYNC first, got %v", first)
			}
			_ = c.Conn.CloseNow()
			waitSubscribed(t, s, 0)
			w.Inbound(t, w.WhatsApp, "34600100005", "after resync "+tc.name)
			again := subscribeInboxAfter(t, s, w.Ana.Token, "i", first.Cursor)
			got := nextCursorEvent(t, again, "i", "inboxEvents")
			if got.Kind != "MESSAGE_ADDED" || got.Message == nil || got.Message.Body != "after resync "+tc.name {
				t.Fatalf("continuing from the RESYNC cursor: %v", got)
			}
			_ = again.Conn.CloseNow()
			waitSubscribed(t, s, 0)
		})
	}
}

// TestEventsSurviveCrashBeforePublish: the events of a committed change
// whose publish never happened (the process died in between, simulated)
// still reach a live subscriber (the log is polled) and a resuming one.
func TestEventsSurviveCrashBeforePublish(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b, Redis: true, Env: map[string]string{"PARLEY_EVENT_POLL_INTERVAL": "100ms"}})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		conv := w.Inbound(t, w.WhatsApp, "34600100006", "hola")
		live := subscribeInboxAfter(t, s, w.Ana.Token, "i", nil)
		waitSubscribed(t, s, 1)
		w.Inbound(t, w.WhatsApp, "34600100006", "published")
		last := nextCursorEvent(t, live, "i", "inboxEvents")

		s.App.Events.DropNextPublish()
		w.Inbound(t, w.WhatsApp, "34600100006", "never published")
		got := nextCursorEvent(t, live, "i", "inboxEvents")
		if got.ConversationID != conv || got.Message == nil || got.Message.Body != "never published" {
			t.Fatalf("live subscriber after a lost publish: %v", got)
		}
		back := subscribeInboxAfter(t, s, w.Ana.Token, "r", last.Cursor)
		if again := nextCursorEvent(t, back, "r", "inboxEvents"); again.String() != got.String() {
			t.Fatalf("resumed: %v, want %v", again, got)
		}
	})
}

// TestResumeRedisRestart: Redis restarts while messages keep arriving.
// Publishing recovers by itself, the live subscriber misses nothing (what
// was published while Redis was down is read from the log), and a
// subscriber that resumes afterwards loses nothing either.
func TestResumeRedisRestart(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if storetest.RequireServices() {
			t.Fatal("redis-server is needed to restart a Redis of the test's own")
		}
		t.Skip("no redis-server to restart")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	startRedis := func() *exec.Cmd {
		cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		apitest.Eventually(t, 10*time.Second, func() bool {
			c, err := net.Dial("tcp", "127.0.0.1:"+port)
			if err == nil {
				c.Close()
			}
			return err == nil
		}, "redis-server on port %s", port)
		return cmd
	}
	redis := startRedis()
	t.Cleanup(func() { _ = redis.Process.Kill(); _ = redis.Wait() })

	s := apitest.Start(t, apitest.Options{Backend: storetest.Postgres, Redis: true, Env: map[string]string{
		"REDIS_URL": "redis://127.0.0.1:" + port + "/0", "PARLEY_EVENT_POLL_INTERVAL": "200ms",
	}})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	conv := w.Inbound(t, w.WhatsApp, "34600100007", "hola")
	w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": conv}, nil)
	live := subscribeInboxAfter(t, s, w.Ana.Token, "i", nil)
	waitSubscribed(t, s, 1)
	w.Inbound(t, w.WhatsApp, "34600100007", "m0")
	first := nextCursorEvent(t, live, "i", "inboxEvents")

	const total = 30
	for i := 1; i <= total; i++ {
		if i == 10 {
			_ = redis.Process.Kill()
			_ = redis.Wait()
		}
		if i == 20 {
			redis = startRedis()
		}
		w.Inbound(t, w.WhatsApp, "34600100007", "m"+strconv.Itoa(i))
	}
	for i := 1; i <= total; i++ {
		got := nextCursorEvent(t, live, "i", "inboxEvents")
		if got.Message == nil || got.Message.Body != "m"+strconv.Itoa(i) {
			t.Fatalf("live after the Redis restart, message %d: got %v", i, got)
		}
	}
	back := subscribeInboxAfter(t, s, w.Ana.Token, "r", first.Cursor)
	for i := 1; i <= total; i++ {
		got := nextCursorEvent(t, back, "r", "inboxEvents")
		if got.Message == nil || got.Message.Body != "m"+strconv.Itoa(i) {
			t.Fatalf("resumed after the Redis restart, message %d: got %v", i, got)
		}
	}
	if !strings.HasPrefix(first.Cursor, "1.") {
		t.Fatalf("cursor %q", first.Cursor)
	}
}
