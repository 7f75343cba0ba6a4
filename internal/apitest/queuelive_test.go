package apitest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/conversations"
	"github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// The queue live-figure tests (issue 13, part "live") drive the contract's
// QueueEvents subscription over real websockets and scrape /metrics over
// HTTP, on both databases. The hub's refresh is turned off (an hour) in
// them, so an update arrives only because a nudge did.

// liveStats is the QueueEvents selection of the contract.
type liveStats struct {
	Queue                          struct{ ID, Name string }
	WaitingNow, LongestWaitSeconds int
	OldestWaitingSince             *time.Time
	AgentsAvailable, AgentsOnline  int
	Offered, Answered, Missed      int
	Abandoned                      int
	FirstReplySeconds              struct{ Average, P50, P90 *float64 }
	WithinServiceLevel             *float64
}

// liveStart starts a server whose queue streams update on nudges only.
func liveStart(t *testing.T, o apitest.Options) *apitest.Server {
	t.Helper()
	s := apitest.Start(t, o)
	s.App.QueueLive.Refresh = time.Hour
	return s
}

// liveSubscribe opens a websocket as token and subscribes to QueueEvents
// of queueID under id.
func liveSubscribe(t testing.TB, s *apitest.Server, token, id, queueID string) *apitest.WS {
	t.Helper()
	ws := dialAs(t, s, apitest.TransportWS, token)
	ws.SubscribeOp(t, id, "QueueEvents", map[string]any{"queueID": queueID})
	return ws
}

// liveNext reads the next QueueEvents update of operation id.
func liveNext(t testing.TB, ws *apitest.WS, id string, timeout time.Duration) liveStats {
	t.Helper()
	data := result(t, ws, id, timeout)
	var out struct{ QueueEvents *liveStats }
	if err := json.Unmarshal(data, &out); err != nil || out.QueueEvents == nil {
		t.Fatalf("operation %s: not a queueEvents result: %s (%v)", id, data, err)
	}
	return *out.QueueEvents
}

// liveUntil reads updates until one satisfies cond, and returns it.
func liveUntil(t testing.TB, ws *apitest.WS, id, what string, cond func(liveStats) bool) liveStats {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	var last liveStats
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("%s: no such update; the last was %+v", what, last)
		}
		m, err := ws.TryReadID(id, left)
		if err != nil {
			t.Fatalf("%s: %v; the last update was %+v", what, err, last)
		}
		if !m.IsResult() {
			t.Fatalf("%s: want an update, got %s %s", what, m.Type, m.Payload)
		}
		r := m.Result(t)
		var out struct{ QueueEvents *liveStats }
		if len(r.Errors) > 0 || json.Unmarshal(r.Data, &out) != nil || out.QueueEvents == nil {
			t.Fatalf("%s: %s", what, m.Payload)
		}
		if last = *out.QueueEvents; cond(last) {
			return last
		}
	}
}

// liveRefused requires operation id to end with one error of code.
func liveRefused(t testing.TB, ws *apitest.WS, id, code string) {
	t.Helper()
	m := ws.ReadID(t, id, eventTimeout)
	if got := m.Result(t).Code(); (m.Type != "next" && m.Type != "error") || got != code {
		t.Fatalf("operation %s: want %s, got %s %s", id, code, m.Type, m.Payload)
	}
	if m.Type == "next" {
		expectComplete(t, ws, id)
	}
}

// TestQueueEventsLive: a supervisor's stream starts with the queue's
// figures, and follows a new conversation (waiting up), a claim by reply
// and a Take (waiting down), and an agent going AWAY (available down,
// online unchanged).
func TestQueueEventsLive(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := liveStart(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		ws := liveSubscribe(t, s, w.Admin.Token, "q", w.QueueID)

		first := liveNext(t, ws, "q", eventTimeout)
		if first.Queue.ID != w.QueueID || first.Queue.Name != "Support" || first.WaitingNow != 0 ||
			first.LongestWaitSeconds != 0 || first.OldestWaitingSince != nil ||
			first.AgentsAvailable != 3 || first.AgentsOnline != 3 || first.Offered != 0 {
			t.Fatalf("first update: %+v", first)
		}

		before := time.Now().Add(-time.Second)
		c1 := w.Inbound(t, w.WhatsApp, "34600100001", "hola")
		got := liveUntil(t, ws, "q", "one waiting", func(l liveStats) bool { return l.WaitingNow == 1 })
		if got.OldestWaitingSince == nil || got.OldestWaitingSince.Before(before) || got.OldestWaitingSince.After(time.Now()) {
			t.Fatalf("oldestWaitingSince of a new conversation: %+v", got)
		}
		oldest := *got.OldestWaitingSince
		c2 := w.Inbound(t, w.LiveChat, "visitor-2", "hello")
		got = liveUntil(t, ws, "q", "two waiting", func(l liveStats) bool { return l.WaitingNow == 2 })
		if !got.OldestWaitingSince.Equal(oldest) {
			t.Fatalf("the oldest is still the first conversation: %+v, want since %v", got, oldest)
		}

		if r := w.Ben.Send(t, c1, "Ben here"); len(r.Errors) > 0 {
			t.Fatalf("Ben's reply: %s", r.Raw)
		}
		got = liveUntil(t, ws, "q", "a reply claims", func(l liveStats) bool { return l.WaitingNow == 1 })
		if got.OldestWaitingSince == nil || !got.OldestWaitingSince.After(oldest) {
			t.Fatalf("after the first was claimed the second is the oldest: %+v", got)
		}
		w.Ana.C.MustOp(t, "TakeConversation", map[string]any{"id": c2}, nil)
		got = liveUntil(t, ws, "q", "Take claims", func(l liveStats) bool { return l.WaitingNow == 0 })
		if got.OldestWaitingSince != nil || got.LongestWaitSeconds != 0 {
			t.Fatalf("nobody waits: %+v", got)
		}

		w.Cleo.C.MustOp(t, "SetStatus", map[string]any{"status": "AWAY"}, nil)
		got = liveUntil(t, ws, "q", "Cleo away", func(l liveStats) bool { return l.AgentsAvailable == 2 })
		if got.AgentsOnline != 3 {
			t.Fatalf("Cleo away is still online: %+v", got)
		}
		// Nothing changes: nothing is sent.
		ws.ExpectNone(t, "q", 600*time.Millisecond)
	})
}

// TestQueueEventsBurst: twenty conversations arriving at once make a
// handful of updates (at most four a second), the last with all twenty.
func TestQueueEventsBurst(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := liveStart(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		ws := liveSubscribe(t, s, w.Admin.Token, "q", w.QueueID)
		if first := liveNext(t, ws, "q", eventTimeout); first.WaitingNow != 0 {
			t.Fatalf("first update: %+v", first)
		}

		const n = 20
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				_, err := s.App.Convs.Receive(ctx, conversations.Inbound{
					ChannelAccountID: apitest.Atoi(t, w.WhatsApp), SenderID: fmt.Sprintf("3460020%04d", i),
					SenderName: "Burst", ProviderMessageID: fmt.Sprintf("burst-%s-%d", b, i), Body: "hola",
				})
				errs <- err
			}()
		}
		wg.Wait()
		burst := time.Since(start)
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("receive: %v", err)
			}
		}

		updates := 0
		last := liveUntil(t, ws, "q", "all twenty waiting", func(l liveStats) bool {
			updates++
			return l.WaitingNow == n
		})
		ws.ExpectNone(t, "q", time.Second) // the final figures came last
		elapsed := time.Since(start)
		// At most one computation per 250 ms while the burst and its
		// trailing update last, plus the one in flight when it began.
		limit := int(elapsed/(250*time.Millisecond)) + 2
		t.Logf("%d inbound messages in %v: %d updates in %v (limit %d), last %+v",
			n, burst.Round(time.Millisecond), updates, elapsed.Round(time.Millisecond), limit, last)
		if updates > limit {
			t.Fatalf("%d updates for a burst of %d in %v: more than 4 a second", updates, n, elapsed)
		}
	})
}

// TestQueueEventsMultiInstance: a wallboard on instance A follows changes
// made on instance B (a new conversation, an agent going AWAY), through
// Redis, and the gauges of A show them too.
func TestQueueEventsMultiInstance(t *testing.T) {
	db := storetest.Open(t, storetest.Postgres)
	prefix := fmt.Sprintf("parley-test-live-%d:", time.Now().UnixNano())
	opts := apitest.Options{Backend: storetest.Postgres, DB: db, Redis: true, RedisPrefix: prefix}
	a := liveStart(t, opts)
	bsrv := liveStart(t, opts)
	w := apitest.NewWorkspace(t, a, apitest.WorkspaceOption{})
	onB := *w
	onB.S = bsrv
	anaOnB := bsrv.Client().As(w.Ana.Token)

	ws := liveSubscribe(t, a, w.Admin.Token, "q", w.QueueID)
	if first := liveNext(t, ws, "q", eventTimeout); first.WaitingNow != 0 || first.AgentsAvailable != 3 {
		t.Fatalf("first update: %+v", first)
	}
	start := time.Now()
	onB.Inbound(t, w.WhatsApp, "34600300001", "hola desde B")
	liveUntil(t, ws, "q", "a conversation received on B", func(l liveStats) bool { return l.WaitingNow == 1 })
	t.Logf("new conversation: %v from instance B to the wallboard on A", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	anaOnB.MustOp(t, "SetStatus", map[string]any{"status": "AWAY"}, nil)
	liveUntil(t, ws, "q", "Ana away on B", func(l liveStats) bool { return l.AgentsAvailable == 2 && l.WaitingNow == 1 })
	t.Logf("status change: %v from instance B to the wallboard on A", time.Since(start).Round(time.Millisecond))
}

// TestQueueEventsAccess: admins and group owners of the queue may watch it;
// an agent and a group owner of another queue get FORBIDDEN, an unknown
// queue NOT_FOUND. A group owner removed from the queue, or demoted, has
// the stream completed.
func TestQueueEventsAccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := liveStart(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		_, adminTok := w.Admin.C.CreateAgent(t, "Ada Admin", "ada@test.parley", "301", "ADMIN")
		gailID, gailTok := w.Admin.C.CreateAgent(t, "Gail", "gail@test.parley", "302", "GROUP_OWNER")
		_, gusTok := w.Admin.C.CreateAgent(t, "Gus", "gus@test.parley", "303", "GROUP_OWNER")
		members := func(extra ...string) []map[string]any {
			out := []map[string]any{{"agentID": w.Ana.ID, "priority": 1}, {"agentID": w.Ben.ID, "priority": 2}, {"agentID": w.Cleo.ID, "priority": 3}}
			for i, id := range extra {
				out = append(out, map[string]any{"agentID": id, "priority": 4 + i})
			}
			return out
		}
		w.Admin.C.MustOp(t, "UpdateQueue", map[string]any{"id": w.QueueID, "input": map[string]any{"members": members(gailID)}}, nil)

		for _, tc := range []struct{ who, token, queue, code string }{
			{"an agent of the queue", w.Ana.Token, w.QueueID, "FORBIDDEN"},
			{"a group owner of no queue", gusTok, w.QueueID, "FORBIDDEN"},
			{"an admin, unknown queue", adminTok, "999999", "NOT_FOUND"},
		} {
			ws := liveSubscribe(t, s, tc.token, "q", tc.queue)
			liveRefused(t, ws, "q", tc.code)
		}

		admin := liveSubscribe(t, s, adminTok, "q", w.QueueID)
		gail := liveSubscribe(t, s, gailTok, "q", w.QueueID)
		for _, ws := range []*apitest.WS{admin, gail} {
			// Gail, online since she logged in, is a member now.
			if first := liveNext(t, ws, "q", eventTimeout); first.AgentsOnline != 4 {
				t.Fatalf("first update: %+v", first)
			}
		}

		// Gail leaves the queue: her stream completes; the admin's goes on.
		w.Admin.C.MustOp(t, "UpdateQueue", map[string]any{"id": w.QueueID, "input": map[string]any{"members": members()}}, nil)
		expectComplete(t, gail, "q")
		w.Inbound(t, w.WhatsApp, "34600400001", "hola")
		liveUntil(t, admin, "q", "the admin's stream goes on", func(l liveStats) bool { return l.WaitingNow == 1 })

		// Back in the queue, then demoted to AGENT: completed again.
		w.Admin.C.MustOp(t, "UpdateQueue", map[string]any{"id": w.QueueID, "input": map[string]any{"members": members(gailID)}}, nil)
		gail2 := liveSubscribe(t, s, gailTok, "q2", w.QueueID)
		liveNext(t, gail2, "q2", eventTimeout)
		w.Admin.C.MustOp(t, "UpdateAgent", map[string]any{"id": gailID, "input": map[string]any{"role": "AGENT"}}, nil)
		// The stream completes (or the role change closes her socket,
		// which ends it too).
		m, err := gail2.TryReadID("q2", eventTimeout)
		if errors.Is(err, context.DeadlineExceeded) || (err == nil && m.Type != "complete") {
			t.Fatalf("demoted group owner: want complete, got %s %s (%v)", m.Type, m.Payload, err)
		}
	})
}

// TestQueueEventsLeak: many wallboards, several viewers and two queues,
// subscribe and leave every way a client can; the server is back where it
// started (goroutines, subscriptions), and a later subscriber still gets
// updates.
func TestQueueEventsLeak(t *testing.T) {
	s := liveStart(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
	var q2 struct{ CreateQueue struct{ ID string } }
	w.Admin.C.MustOp(t, "CreateQueue", map[string]any{"input": map[string]any{"name": "Sales", "strategy": "RING_ALL"}}, &q2)
	queues := []string{w.QueueID, q2.CreateQueue.ID}
	tokens := []string{w.Admin.Token}
	for i := range 3 {
		_, tok := w.Admin.C.CreateAgent(t, fmt.Sprintf("Admin %d", i), fmt.Sprintf("leak-admin-%d@test.parley", i), fmt.Sprint(310+i), "ADMIN")
		tokens = append(tokens, tok)
	}

	settle := func() int {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		time.Sleep(100 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	baseline := settle()
	const conns = 40
	wss := make([]*apitest.WS, conns)
	for i := range wss {
		wss[i] = liveSubscribe(t, s, tokens[i%len(tokens)], "q", queues[i%len(queues)])
	}
	waitSubscribed(t, s, conns)
	for _, ws := range wss {
		liveNext(t, ws, "q", eventTimeout)
	}
	// The Support wallboards (even ones) see a new conversation.
	w.Inbound(t, w.WhatsApp, "34600500001", "hola")
	for i := 0; i < conns; i += 2 {
		liveUntil(t, wss[i], "q", fmt.Sprintf("wallboard %d", i), func(l liveStats) bool { return l.WaitingNow == 1 })
	}
	t.Logf("goroutines: %d before, %d with %d wallboards", baseline, runtime.NumGoroutine(), conns)

	var wg sync.WaitGroup
	for i, ws := range wss {
		if i%3 == 0 {
			ws.Unsubscribe(t, "q")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				_ = ws.Conn.Close(1000, "bye")
			} else {
				_ = ws.Conn.CloseNow()
			}
		}()
	}
	wg.Wait()
	waitSubscribed(t, s, 0)
	for i := 0; i < conns; i += 3 {
		_ = wss[i].Conn.CloseNow()
	}
	waitMetric(t, s, "parley_websocket_connections", 0)
	// No broker subscription is left for nudges either: only the
	// instance's own listener of token revocations.
	waitMetric(t, s, "parley_broker_subscriptions", 1)

	const margin = 5
	var now int
	deadline := time.Now().Add(5 * time.Second)
	for now = settle(); now > baseline+margin && time.Now().Before(deadline); now = settle() {
	}
	if now > baseline+margin {
		var buf bytes.Buffer
		_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
		t.Fatalf("goroutines: %d before, still %d after every wallboard left\n%s", baseline, now, buf.String())
	}
	t.Logf("goroutines back to %d (baseline %d)", now, baseline)

	// A new wallboard starts from scratch and still hears nudges.
	ws := liveSubscribe(t, s, w.Admin.Token, "q", w.QueueID)
	if l := liveNext(t, ws, "q", eventTimeout); l.WaitingNow != 1 {
		t.Fatalf("new wallboard: %+v", l)
	}
	w.Inbound(t, w.WhatsApp, "34600500002", "hola")
	liveUntil(t, ws, "q", "new wallboard hears", func(l liveStats) bool { return l.WaitingNow == 2 })
}

// liveGauges scrapes /metrics and returns the series of name by their
// queue label.
func liveGauges(t testing.TB, s *apitest.Server, name string) map[string]float64 {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), name+"{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(line, "} ")
		if !ok {
			t.Fatalf("metric line %q", sc.Text())
		}
		var queue, id string
		for _, l := range strings.Split(labels, ",") {
			k, v, _ := strings.Cut(l, "=")
			v = strings.Trim(v, `"`)
			switch k {
			case "queue":
				queue = v
			case "queue_id":
				id = v
			}
		}
		f, err := strconv.ParseFloat(value, 64)
		if err != nil || id == "" {
			t.Fatalf("metric line %q", sc.Text())
		}
		out[queue] = f
	}
	return out
}

// TestQueueGauges: /metrics shows, per queue, how many wait, how long the
// oldest has, and how many members are available; a new queue appears and
// a deleted one goes.
func TestQueueGauges(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := apitest.Start(t, apitest.Options{Backend: b})
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		if g := liveGauges(t, s, "parley_queue_waiting"); len(g) != 1 || g["Support"] != 0 {
			t.Fatalf("parley_queue_waiting before any conversation: %v", g)
		}
		if g := liveGauges(t, s, "parley_queue_agents_available"); g["Support"] != 3 {
			t.Fatalf("parley_queue_agents_available: %v", g)
		}
		var q2 struct{ CreateQueue struct{ ID string } }
		w.Admin.C.MustOp(t, "CreateQueue", map[string]any{"input": map[string]any{"name": "Sales", "strategy": "RING_ALL"}}, &q2)
		w.Inbound(t, w.WhatsApp, "34600600001", "hola")
		w.Ana.C.MustOp(t, "SetStatus", map[string]any{"status": "AWAY"}, nil)

		// Scrapes reuse a computation for 2 s: the change shows within that.
		apitest.Eventually(t, 10*time.Second, func() bool {
			g := liveGauges(t, s, "parley_queue_waiting")
			return g["Support"] == 1 && len(g) == 2 && g["Sales"] == 0
		}, "parley_queue_waiting: Support 1, Sales 0")
		if g := liveGauges(t, s, "parley_queue_agents_available"); g["Support"] != 2 || g["Sales"] != 0 {
			t.Fatalf("parley_queue_agents_available: %v", g)
		}
		apitest.Eventually(t, 10*time.Second, func() bool {
			return liveGauges(t, s, "parley_queue_oldest_waiting_seconds")["Support"] >= 1
		}, "the oldest waiting conversation has waited a second")

		w.Admin.C.MustOp(t, "DeleteQueue", map[string]any{"id": q2.CreateQueue.ID}, nil)
		apitest.Eventually(t, 10*time.Second, func() bool {
			_, ok := liveGauges(t, s, "parley_queue_waiting")["Sales"]
			return !ok
		}, "a deleted queue's series go")
	})
}

// TestQueueEventsPeriod: with a period function wired (issue 13's
// queueStats), updates carry the current UTC day's figures, computed at
// most every PeriodEvery per queue however often the live figures change,
// and again once that has passed after a change.
func TestQueueEventsPeriod(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := liveStart(t, apitest.Options{Backend: b})
		type call struct{ from, to time.Time }
		var (
			mu    sync.Mutex
			calls []call
		)
		s.App.QueueLive.PeriodEvery = time.Second
		s.App.QueueLive.Period = func(_ context.Context, _ int, from, to time.Time) (*stats.QueueStats, error) {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, call{from, to})
			return &stats.QueueStats{Offered: len(calls), Answered: 1}, nil
		}
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		ws := liveSubscribe(t, s, w.Admin.Token, "q", w.QueueID)
		first := liveNext(t, ws, "q", eventTimeout)
		if first.Offered != 1 || first.Answered != 1 {
			t.Fatalf("first update: %+v", first)
		}
		mu.Lock()
		c := calls[0]
		mu.Unlock()
		if midnight := time.Now().UTC().Truncate(24 * time.Hour); !c.from.Equal(midnight) || time.Since(c.to) > eventTimeout {
			t.Fatalf("period [%v, %v), want from %v to now", c.from, c.to, midnight)
		}

		w.Inbound(t, w.WhatsApp, "34600700001", "hola")
		got := liveUntil(t, ws, "q", "one waiting", func(l liveStats) bool { return l.WaitingNow == 1 })
		start := time.Now()
		got = liveUntil(t, ws, "q", "the period again", func(l liveStats) bool { return l.Offered == 2 })
		if got.WaitingNow != 1 {
			t.Fatalf("the live figures stay: %+v", got)
		}
		mu.Lock()
		n := len(calls)
		mu.Unlock()
		if n != 2 {
			t.Fatalf("the period was computed %d times, want 2", n)
		}
		t.Logf("period recomputed %v after the live update", time.Since(start).Round(time.Millisecond))
		ws.ExpectNone(t, "q", 1500*time.Millisecond) // nothing changed since
	})
}

// TestQueueEventsTodayFigures: as wired in the app, an update's period
// figures are queueStats' for the current UTC day: a conversation that
// arrived and was answered today shows as offered and answered, with its
// first reply time.
func TestQueueEventsTodayFigures(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s := liveStart(t, apitest.Options{Backend: b})
		s.App.QueueLive.PeriodEvery = 50 * time.Millisecond
		w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
		ws := liveSubscribe(t, s, w.Admin.Token, "q", w.QueueID)
		if first := liveNext(t, ws, "q", eventTimeout); first.Offered != 0 || first.Answered != 0 {
			t.Fatalf("first update before any conversation: %+v", first)
		}
		id := w.Inbound(t, w.WhatsApp, "+15550001001", "hello")
		if r := w.Ana.Send(t, id, "hi there"); len(r.Errors) > 0 {
			t.Fatalf("reply: %s", r.Raw)
		}
		got := liveUntil(t, ws, "q", "the day's figures", func(l liveStats) bool {
			return l.Offered == 1 && l.Answered == 1 && l.WaitingNow == 0
		})
		if got.FirstReplySeconds.Average == nil || *got.FirstReplySeconds.Average < 0 {
			t.Fatalf("first reply time of today's conversation: %+v", got.FirstReplySeconds)
		}
	})
}
