package bench

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/conversations"
	"github.com/parleyhq/parley/internal/pubsub"
)

// latencySamples is how many events each of the three paths is timed for,
// per experiment; the paths take turns, so they see the same conditions.
const latencySamples = 1000

// arrival is a message a subscriber read, and when its last byte arrived.
type arrival struct {
	at  time.Time
	msg []byte
}

// BenchmarkInboxEventLatency measures, one event at a time:
//
//   - e2e: from calling Receive (the inbound entry point every channel
//     adapter uses) with a customer message for a conversation the agent
//     owns, to the agent's InboxEvents subscription reading the
//     MESSAGE_ADDED event over a real websocket (the server, its Redis
//     broker and the client all run here; the client is wsClient);
//   - floor: a raw Redis PUBLISH of an envelope-sized payload, to a raw
//     go-redis subscriber reading it, on the same Redis;
//   - in between: the server's pub/sub broker alone (Publish on the Redis
//     broker to a Subscription of the same process).
func BenchmarkInboxEventLatency(b *testing.B) {
	defer results.timeIt(b)()
	s := newRig(b)
	meter := s.meter
	w := apitest.NewWorkspace(b, s.Server, apitest.WorkspaceOption{})
	ctx := context.Background()
	acct := apitest.Atoi(b, w.WhatsApp)
	const sender = "+15550001000"
	convID := w.Inbound(b, w.WhatsApp, sender, "hello")
	w.Ana.C.MustOp(b, "TakeConversation", map[string]any{"id": convID}, nil)

	// The agent's websocket subscription.
	events := make(chan arrival, 16)
	sub, err := subscribe(ctx, serverAddr(s.URL), w.Ana.Token, apitest.Contract(b), "InboxEvents", func(at time.Time, msg []byte) {
		select {
		case events <- arrival{at: at, msg: bytes.Clone(msg)}:
		default: // nobody waits for it: never block the reader
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sub.close()
	if !waitUntil(10*time.Second, func() bool { return activeSubscriptions(b, s.Server) >= 1 }) {
		b.Fatal("the InboxEvents subscription did not start")
	}

	// Raw Redis: a publisher and a subscriber connection of their own.
	rc := redisClient(b)
	channel := "parley-bench:" + randomHex(6)
	ps := rc.Subscribe(ctx, channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the subscription confirmation
		b.Fatal(err)
	}
	rawArrivals := make(chan time.Time, 16)
	go func() {
		for {
			if _, err := ps.ReceiveMessage(ctx); err != nil {
				close(rawArrivals)
				return
			}
			rawArrivals <- time.Now()
		}
	}()
	envelope := []byte(fmt.Sprintf(`{"v":1,"k":"message.added","c":%s,"m":38654705664,"t":"%s"}`,
		convID, time.Now().UTC().Format(time.RFC3339Nano)))

	// The server's broker alone.
	topic := "bench:" + randomHex(6)
	bsub, err := s.App.Broker.Subscribe(ctx, topic)
	if err != nil {
		b.Fatal(err)
	}
	defer bsub.Close()

	seq := 0
	// awaitEvent waits for the MESSAGE_ADDED event of message id and
	// returns when it was read.
	awaitEvent := func(id int) (time.Time, error) {
		want := []byte(`"id":"` + strconv.Itoa(id) + `"`)
		timeout := time.After(10 * time.Second)
		for {
			select {
			case a := <-events:
				if bytes.Contains(a.msg, want) && bytes.Contains(a.msg, []byte(`"MESSAGE_ADDED"`)) {
					return a.at, nil
				}
			case <-timeout:
				return time.Time{}, fmt.Errorf("no MESSAGE_ADDED for message %d within 10s", id)
			}
		}
	}

	var e2e, recv, after, raw, broker []time.Duration
	var statements int64
	sample := func(record bool) {
		// Raw Redis.
		t0 := time.Now()
		if err := rc.Publish(ctx, channel, envelope).Err(); err != nil {
			b.Fatal(err)
		}
		at, ok := <-rawArrivals
		if !ok {
			b.Fatal("the raw Redis subscription ended")
		}
		if record {
			raw = append(raw, at.Sub(t0))
		}
		// The broker.
		t0 = time.Now()
		if err := s.App.Broker.Publish(ctx, topic, pubsub.Event{Kind: pubsub.KindMessageAdded, ConversationID: 1, MessageID: 1}); err != nil {
			b.Fatal(err)
		}
		if _, ok := <-bsub.C(); !ok {
			b.Fatalf("the broker subscription ended: %v", bsub.Err())
		}
		if record {
			broker = append(broker, time.Since(t0))
		}
		// End to end.
		seq++
		n0 := meter.n.Load()
		t0 = time.Now()
		r, err := s.App.Convs.Receive(ctx, conversations.Inbound{
			ChannelAccountID: acct, SenderID: sender, SenderName: "Customer",
			ProviderMessageID: "lat-" + strconv.Itoa(seq), Body: "latency probe " + strconv.Itoa(seq),
		})
		t1 := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		got, err := awaitEvent(r.Message.ID)
		if err != nil {
			b.Fatal(err)
		}
		if record {
			e2e = append(e2e, got.Sub(t0))
			recv = append(recv, t1.Sub(t0))
			after = append(after, got.Sub(t1))
			statements += meter.n.Load() - n0
		}
	}
	for range 50 { // warm-up: connections, caches, the query cache
		sample(false)
	}
	for b.Loop() {
		for range latencySamples {
			sample(true)
		}
	}

	// What one event sends to the database and to Redis, for the notes.
	seq++
	var split int
	var stmts []statement
	pub := countPublishes(b, s, func() {
		stmts = meter.record(func() {
			r, err := s.App.Convs.Receive(ctx, conversations.Inbound{
				ChannelAccountID: acct, SenderID: sender, SenderName: "Customer",
				ProviderMessageID: "lat-" + strconv.Itoa(seq), Body: "latency probe " + strconv.Itoa(seq),
			})
			if err != nil {
				b.Fatal(err)
			}
			split = meter.mark()
			if _, err := awaitEvent(r.Message.ID); err != nil {
				b.Fatal(err)
			}
		})
	})

	de, dr, db, drecv, dafter := summarize(e2e), summarize(raw), summarize(broker), summarize(recv), summarize(after)
	b.ReportMetric(ms(de.p50), "e2e-p50-ms")
	b.ReportMetric(ms(de.p99), "e2e-p99-ms")
	b.ReportMetric(ms(dr.p50), "redis-p50-ms")
	b.ReportMetric(ms(dr.p99), "redis-p99-ms")
	b.ReportMetric(0, "ns/op")
	floor := "raw Redis PUBLISH→subscriber"
	results.add(row{order: 20, figure: "(2) e2e latency p50: Receive → InboxEvents over websocket", measured: ms(de.p50), floor: ms(dr.p50), unit: "ms", floorWhat: floor + " p50"})
	results.add(row{order: 21, figure: "(2) e2e latency p99: Receive → InboxEvents over websocket", measured: ms(de.p99), floor: ms(dr.p99), unit: "ms", floorWhat: floor + " p99"})
	results.add(row{order: 22, figure: "    part: Receive call (transaction + publishes) p50", measured: ms(drecv.p50), floor: ms(dr.p50), unit: "ms", floorWhat: floor + " p50"})
	results.add(row{order: 23, figure: "    part: Receive returned → websocket frame read p50", measured: ms(dafter.p50), floor: ms(dr.p50), unit: "ms", floorWhat: floor + " p50"})
	results.add(row{order: 24, figure: "    server's Redis broker alone, Publish → Subscription p50", measured: ms(db.p50), floor: ms(dr.p50), unit: "ms", floorWhat: floor + " p50"})
	results.add(row{order: 25, figure: "    server's Redis broker alone, Publish → Subscription p99", measured: ms(db.p99), floor: ms(dr.p99), unit: "ms", floorWhat: floor + " p99"})
	name := b.Name()
	results.note(name, "e2e "+de.String()+"; Receive call "+drecv.String()+"; after return "+dafter.String())
	results.note(name, "raw Redis "+dr.String()+"; broker "+db.String())
	results.note(name, fmt.Sprintf("one event: until Receive returned %d statements (%s) and %d Redis PUBLISH; then, delivering it to the websocket, %d statements (%s)",
		split, statementMix(stmts[:split]), pub, len(stmts)-split, statementMix(stmts[split:])))
	results.note(name, fmt.Sprintf("%.1f SQL statements per e2e event (Receive's transaction and the event's delivery); one sample at a time, the three paths in turn", float64(statements)/float64(len(e2e))))
}
