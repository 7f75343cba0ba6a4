package channels_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/ent/webhookevent"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestConcurrentIngestOrder: many senders' messages, each delivered twice,
// posted concurrently over real HTTP to one instance and to two instances
// sharing the database, with the workers running as in production: every
// message is stored exactly once, and every sender's messages are stored in
// the order they were sent (their provider timestamps are all the same, so
// the order of the rows is the order they were processed in).
func TestConcurrentIngestOrder(t *testing.T) {
	for _, instances := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d instances", instances), func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, b storetest.Backend) {
				first := newEnv(t, b)
				envs := []*env{first}
				for len(envs) < instances {
					envs = append(envs, newEnvOn(t, first.DB, first.API))
				}
				for _, e := range envs {
					e.Svc.EventConcurrency = 8
					e.run()
				}
				wa := first.account(schematype.ChannelWhatsApp, waPhone)
				const senders, perSender = 12, 8
				at := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
				body := func(s, i int) []byte {
					return waMessage(waPhone, fmt.Sprint(34600100000+s), "Sender", map[string]any{
						"id": fmt.Sprintf("wamid.order.%d.%d", s, i), "type": "text", "timestamp": at,
						"text": map[string]any{"body": fmt.Sprintf("s%d #%d", s, i)},
					})
				}
				// One poster per sender sends its messages in order, each
				// twice (the copy right after, or two messages later), to
				// the instances in turn.
				var wg sync.WaitGroup
				var refused atomic.Int32
				for s := range senders {
					wg.Go(func() {
						var order []int
						for i := range perSender {
							order = append(order, i)
							if i >= 2 && s%2 == 0 {
								order = append(order, i-2)
							} else if s%2 == 1 {
								order = append(order, i)
							}
						}
						if s%2 == 0 {
							order = append(order, perSender-2, perSender-1)
						}
						for n, i := range order {
							e := envs[(s+n)%len(envs)]
							if resp := e.postMeta(wa, body(s, i)); resp.StatusCode != http.StatusOK {
								refused.Add(1)
							}
						}
					})
				}
				wg.Wait()
				if n := refused.Load(); n > 0 {
					t.Fatalf("%d deliveries refused", n)
				}
				ctx := context.Background()
				eventually(t, 30*time.Second, func() bool {
					n, err := first.DB.Client.WebhookEvent.Query().Where(webhookevent.ProcessedAtIsNil()).Count(ctx)
					return err == nil && n == 0
				}, "webhook events left unprocessed")

				msgs, err := first.DB.Client.Message.Query().Where(message.DirectionEQ(schematype.DirectionInbound)).
					Order(ent.Asc(message.FieldID)).All(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(msgs) != senders*perSender {
					t.Fatalf("%d messages stored, want %d", len(msgs), senders*perSender)
				}
				next := map[string]int{}
				for _, m := range msgs {
					var s, i int
					if _, err := fmt.Sscanf(m.Body, "s%d #%d", &s, &i); err != nil {
						t.Fatalf("body %q: %v", m.Body, err)
					}
					key := strconv.Itoa(s)
					if i != next[key] {
						t.Fatalf("sender %d: message #%d stored where #%d was due (doubled or out of order)", s, i, next[key])
					}
					next[key]++
				}
				for s := range senders {
					for i := range perSender {
						id := fmt.Sprintf("wamid.order.%d.%d", s, i)
						c := 0
						for _, e := range envs {
							c += e.Convs.stored(id)
						}
						if c != 1 {
							t.Fatalf("%s stored %d times", id, c)
						}
					}
				}
				if c, _ := first.DB.Client.WebhookEvent.Query().Where(webhookevent.LastErrorNEQ("")).Count(ctx); c != 0 {
					t.Fatalf("%d events failed", c)
				}
			})
		})
	}
}

// TestLanes: a delivery that carries several customers' messages is stored
// as one event per customer, each processed for its own customer only;
// statuses go with the first customer's event, or alone.
func TestLanes(t *testing.T) {
	b := &channels.Batch{
		Messages: []channels.Message{
			{ProviderMessageID: "m1", SenderID: "b"},
			{ProviderMessageID: "m2", SenderID: "a"},
			{ProviderMessageID: "m3", SenderID: "b", Route: "home"},
			{ProviderMessageID: "m4", SenderID: "a", Route: "other"},
		},
		Statuses:   []channels.Status{{ProviderMessageID: "s1"}},
		Watermarks: []channels.Watermark{{Recipient: "c"}},
	}
	lanes := b.Lanes("home")
	if got := strings.Join(lanes, ","); got != "other|a,|a,|b,|c" {
		t.Fatalf("lanes %q", got)
	}
	ids := func(x *channels.Batch) string {
		var out []string
		for _, m := range x.Messages {
			out = append(out, m.ProviderMessageID)
		}
		return fmt.Sprintf("%s/%d/%d", strings.Join(out, ","), len(x.Statuses), len(x.Watermarks))
	}
	want := map[string]string{"other|a": "m4/1/0", "|a": "m2/0/0", "|b": "m1,m3/0/0", "|c": "/0/1"}
	for _, k := range lanes {
		if got := ids(b.Lane(k, "home")); got != want[k] {
			t.Errorf("lane %q: %s, want %s", k, got, want[k])
		}
	}
	if l := (&channels.Batch{Statuses: []channels.Status{{}}}).Lanes("home"); len(l) != 0 {
		t.Fatalf("statuses alone have lanes: %v", l)
	}

	// Over HTTP: one delivery, two customers, two events, both stored once.
	storetest.Each(t, func(t *testing.T, bk storetest.Backend) {
		e := newEnv(t, bk)
		wa := e.account(schematype.ChannelWhatsApp, waPhone)
		at := strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
		body := waEnvelope(waPhone, map[string]any{
			"contacts": []any{map[string]any{"wa_id": "34600000001", "profile": map[string]any{"name": "One"}},
				map[string]any{"wa_id": "34600000002", "profile": map[string]any{"name": "Two"}}},
			"messages": []any{
				map[string]any{"from": "34600000001", "id": "wamid.L1", "timestamp": at, "type": "text", "text": map[string]any{"body": "one"}},
				map[string]any{"from": "34600000002", "id": "wamid.L2", "timestamp": at, "type": "text", "text": map[string]any{"body": "two"}},
			},
		})
		if resp := e.postMeta(wa, body); resp.StatusCode != http.StatusOK {
			t.Fatalf("post: %d", resp.StatusCode)
		}
		evs := e.DB.Client.WebhookEvent.Query().Order(ent.Asc(webhookevent.FieldID)).AllX(context.Background())
		if len(evs) != 2 || evs[0].OrderKey == nil || evs[1].OrderKey == nil || *evs[0].OrderKey == *evs[1].OrderKey {
			t.Fatalf("events: %d", len(evs))
		}
		e.drainEvents()
		for _, id := range []string{"wamid.L1", "wamid.L2"} {
			if c := e.Convs.stored(id); c != 1 {
				t.Fatalf("%s stored %d times", id, c)
			}
		}
	})
}

// TestLaneHeadOfLine: while a customer's event waits for a retry, that
// customer's later events wait behind it, and other customers' do not.
func TestLaneHeadOfLine(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	wa := e.account(schematype.ChannelWhatsApp, waPhone)
	// The first message's media fails once: its event is retried later.
	var fails atomic.Int32
	fails.Store(1)
	img := pngBytes()
	files := e.API.waMedia(map[string][]byte{"IMG": img}, map[string]string{"IMG": "image/png"})
	e.API.set(func(r request, w http.ResponseWriter) bool {
		if r.Path == "/v21.0/IMG" && fails.Add(-1) >= 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return files(r, w)
	})
	e.Svc.EventBackoff = channels.Backoff{Base: time.Hour, Max: time.Hour}
	e.postMeta(wa, waMedia("wamid.H1", "34600111222", "image", "IMG", "image/png", sha(img), "first"))
	e.postMeta(wa, waText("wamid.H2", "34600111222", "second"))
	e.postMeta(wa, waText("wamid.H3", "34600999888", "other customer"))
	for range 3 {
		if _, err := e.Svc.ProcessEvents(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if c := e.Convs.stored("wamid.H3"); c != 1 {
		t.Fatalf("the other customer's message waited: stored %d", c)
	}
	if c := e.Convs.stored("wamid.H2"); c != 0 {
		t.Fatal("a later message overtook its customer's message waiting for a retry")
	}
	// Due again: both, in order.
	e.DB.Client.WebhookEvent.Update().Where(webhookevent.NextAttemptAtNotNil()).SetNextAttemptAt(time.Now()).ExecX(context.Background())
	e.drainEvents()
	h1, h2 := e.messageBy("wamid.H1"), e.messageBy("wamid.H2")
	if h1.ID > h2.ID || len(h1.Edges.Attachments) != 1 {
		t.Fatalf("after the retry: H1 %d (%d files), H2 %d", h1.ID, len(h1.Edges.Attachments), h2.ID)
	}
}
