package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/channels"
)

// Ingest benchmark sizes: issue 9's burst.
const (
	ingestSenders    = 1000
	ingestPerSender  = 10
	ingestCopies     = 2 // every webhook is delivered twice, as Meta retries
	ingestPosters    = 16
	ingestFloorConns = 8
)

// waBody is a WhatsApp Cloud API webhook with one text message.
func waBody(phoneNumberID, from, wamid, text string, at time.Time) []byte {
	b, _ := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
		"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
			"messaging_product": "whatsapp",
			"metadata":          map[string]any{"display_phone_number": "15550783881", "phone_number_id": phoneNumberID},
			"contacts":          []any{map[string]any{"wa_id": from, "profile": map[string]any{"name": "Customer " + from}}},
			"messages": []any{map[string]any{"from": from, "id": wamid, "timestamp": strconv.FormatInt(at.Unix(), 10),
				"type": "text", "text": map[string]any{"body": text}}},
		}}},
	}}})
	return b
}

// BenchmarkWebhookIngest measures webhook ingest end to end on PostgreSQL +
// Redis: 16 posters send 20,000 signed WhatsApp webhooks over real HTTP
// (10,000 unique messages from 1,000 senders, each delivered twice, a
// sender's messages in order), and the figure is unique messages per
// second from the first delivery to the last message stored (and its
// conversation routed) by the channels worker running as in production.
// The floor is single-row INSERTs (autocommit) from 8 connections of the
// server's own pool, in the same run. The benchmark fails when a message
// is lost or doubled, or stored out of its sender's order.
func BenchmarkWebhookIngest(b *testing.B) {
	defer results.timeIt(b)()
	s := newRig(b)
	w := apitest.NewWorkspace(b, s.Server, apitest.WorkspaceOption{})
	ctx := context.Background()
	db := s.App.DB.SQL
	acct := apitest.Atoi(b, w.WhatsApp)
	var phone, secret string
	a, err := s.App.DB.Client.ChannelAccount.Get(ctx, acct)
	if err != nil {
		b.Fatal(err)
	}
	phone = a.ExternalID
	secret = "s" // apitest.Workspace's WhatsApp app secret
	hook := s.URL + "/webhooks/whatsapp/" + strconv.Itoa(acct)

	// The deliveries, in the order the posters take them: round r carries
	// every sender's r-th message, and its second copy follows a round
	// later, so copies overlap other senders' first deliveries.
	type delivery struct {
		body, sig []byte
	}
	base := time.Now().Add(-time.Hour)
	rounds := make([][]delivery, ingestPerSender)
	for r := range ingestPerSender {
		for i := range ingestSenders {
			from := strconv.Itoa(34600000000 + i)
			body := waBody(phone, from, fmt.Sprintf("wamid.bench.%d.%d", i, r), fmt.Sprintf("message %d of %s", r, from),
				base.Add(time.Duration(r)*time.Second))
			rounds[r] = append(rounds[r], delivery{body: body, sig: []byte(channels.HubSignature(secret, body))})
		}
	}
	var order []delivery
	for r := range ingestPerSender + 1 {
		if r < ingestPerSender {
			order = append(order, rounds[r]...)
		}
		if r > 0 {
			order = append(order, rounds[r-1]...) // the redeliveries
		}
	}
	want := ingestSenders * ingestPerSender

	// Floor: single-row INSERTs on 8 connections, of a webhook-sized row.
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS bench_ingest_floor (id bigserial PRIMARY KEY, body bytea NOT NULL, at timestamptz NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	floorRows := len(order)
	var next atomic.Int64
	t0 := time.Now()
	var wg sync.WaitGroup
	for range ingestFloorConns {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(floorRows) {
					return
				}
				if _, err := db.ExecContext(ctx, `INSERT INTO bench_ingest_floor (body, at) VALUES ($1, now())`, order[i].body); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	floorRate := float64(floorRows) / time.Since(t0).Seconds()

	// The channels worker, as the binary runs it.
	wctx, stop := context.WithCancel(ctx)
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		s.App.Channels.Run(wctx)
	}()
	defer func() {
		stop()
		<-workerDone
	}()

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: ingestPosters, MaxConnsPerHost: ingestPosters}}
	defer client.CloseIdleConnections()
	stored := func() int {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE channel_account_id = $1 AND direction = 'INBOUND'`, acct).Scan(&n); err != nil {
			b.Fatal(err)
		}
		return n
	}

	var (
		elapsed, answered time.Duration
		statements        int64
		refused           atomic.Int64
	)
	for b.Loop() {
		if n := stored(); n != 0 {
			b.Fatalf("%d messages before the burst", n)
		}
		n0 := s.meter.n.Load()
		next.Store(0)
		start := time.Now()
		for range ingestPosters {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(len(order)) {
						return
					}
					req, _ := http.NewRequest(http.MethodPost, hook, bytes.NewReader(order[i].body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("X-Hub-Signature-256", string(order[i].sig))
					resp, err := client.Do(req)
					if err != nil || resp.StatusCode != http.StatusOK {
						refused.Add(1)
						if err == nil {
							resp.Body.Close()
						}
						continue
					}
					resp.Body.Close()
				}
			})
		}
		wg.Wait()
		answered = time.Since(start)
		var last time.Time
		ok := waitUntil(5*time.Minute, func() bool {
			if stored() < want {
				return false
			}
			if last.IsZero() {
				last = time.Now()
			}
			var pending int
			if err := db.QueryRowContext(ctx, `SELECT count(*) FROM webhook_events WHERE processed_at IS NULL`).Scan(&pending); err != nil {
				b.Fatal(err)
			}
			return pending == 0
		})
		if !ok {
			b.Fatalf("after 5 minutes: %d of %d messages stored, or events left", stored(), want)
		}
		elapsed = last.Sub(start)
		statements = s.meter.n.Load() - n0
	} // one burst takes seconds, so b.Loop runs it once (a second would find the messages and stop)

	// Nothing lost, nothing doubled, every sender's messages in order.
	if n := refused.Load(); n > 0 {
		b.Fatalf("%d webhooks were not answered 200", n)
	}
	var total, distinct, convs, unrouted int
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT provider_message_id) FROM messages WHERE channel_account_id = $1 AND direction = 'INBOUND'`, acct).Scan(&total, &distinct); err != nil {
		b.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE queue_id IS NULL) FROM conversations WHERE channel_account_id = $1`, acct).Scan(&convs, &unrouted); err != nil {
		b.Fatal(err)
	}
	if total != want || distinct != want || convs != ingestSenders || unrouted != 0 {
		b.Fatalf("%d messages stored (%d distinct, want %d each), %d conversations (want %d), %d without a queue", total, distinct, want, convs, ingestSenders, unrouted)
	}
	var outOfOrder int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM (
			SELECT id, created_at, lag(created_at) OVER (PARTITION BY conversation_id ORDER BY id) AS prev
			FROM messages WHERE channel_account_id = $1 AND direction = 'INBOUND') m
		WHERE prev IS NOT NULL AND created_at < prev`, acct).Scan(&outOfOrder); err != nil {
		b.Fatal(err)
	}
	if outOfOrder != 0 {
		b.Fatalf("%d messages were stored before an earlier message of their sender", outOfOrder)
	}
	var failedEvents int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM webhook_events WHERE last_error <> '' OR attempts <> 1`).Scan(&failedEvents); err != nil {
		b.Fatal(err)
	}

	got := float64(want) / elapsed.Seconds()
	b.ReportMetric(got, "unique-msgs/s")
	b.ReportMetric(floorRate, "floor-inserts/s")
	b.ReportMetric(0, "ns/op")
	results.add(row{order: 50, figure: fmt.Sprintf("(5) webhook ingest end to end: %d signed WhatsApp webhooks, %d unique from %d senders, %d posters",
		len(order), want, ingestSenders, ingestPosters),
		measured: got, floor: floorRate, unit: "msgs/s", floorWhat: fmt.Sprintf("single-row INSERTs, %d connections", ingestFloorConns), kind: rate})
	name := b.Name()
	results.note(name, fmt.Sprintf("%d webhooks answered in %s (%.0f/s); the last unique message stored %s after the first delivery; 0 lost, 0 doubled, every sender in order (%d events retried or with an error)",
		len(order), answered.Round(time.Millisecond), float64(len(order))/answered.Seconds(), elapsed.Round(time.Millisecond), failedEvents))
	results.note(name, fmt.Sprintf("%.1f SQL statements per webhook through ent, intake and worker together (BEGIN/COMMIT not counted)", float64(statements)/float64(len(order))))
}
