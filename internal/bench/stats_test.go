package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// Statistics dataset: 100,000 conversations over the last 30 days in ten
// queues, handled by ten agents.
const (
	statsConversations = 100_000
	statsQueues        = 10
	statsAgents        = 10
	statsBatch         = 500 // rows per bulk INSERT (SQLite's variable limit)
)

// seedStats bulk-inserts the statistics dataset through ent's CreateBulk:
// conversation i arrives at now - 30 days + i * 30 days / N (plus a
// jitter of up to a minute), in queue i mod 10; nine in ten are claimed by
// one of the agents, who replies within 0..10 minutes and deals with it
// within an hour; one in ten had a missed round, one in twenty was
// abandoned; the newest thousand are still open.
func seedStats(b *testing.B, client *ent.Client, queues, agents []int) time.Duration {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	base := time.Now().Add(-30 * 24 * time.Hour)
	step := 30 * 24 * time.Hour / statsConversations
	for first := 0; first < statsConversations; first += statsBatch {
		bulk := make([]*ent.ConversationCreate, 0, statsBatch)
		for i := first; i < first+statsBatch && i < statsConversations; i++ {
			queued := base.Add(time.Duration(i)*step + time.Duration(i*7919%60)*time.Second)
			c := client.Conversation.Create().SetChannel(schematype.ChannelWhatsApp).
				SetQueueID(queues[i%len(queues)]).SetQueuedAt(queued).SetCreatedAt(queued).SetLastMessageAt(queued)
			open := i >= statsConversations-1000
			if i%10 != 9 {
				agent := agents[(i/statsQueues)%len(agents)]
				claimed := queued.Add(time.Duration(i*31%300) * time.Second)
				reply := float64(i * 104729 % 600)
				c.SetOwnerID(agent).SetTakenAt(claimed).SetClaimedAt(claimed).SetClaimedByID(agent)
				if i%20 != 3 {
					c.SetFirstReplyAt(queued.Add(time.Duration(reply) * time.Second)).SetFirstReplyAgentID(agent).SetFirstReplySeconds(reply)
				}
				if !open {
					handle := float64(60 + i*6151%3540)
					c.SetHandleSeconds(handle).SetHandledByID(agent).SetClosedAt(claimed.Add(time.Duration(handle) * time.Second))
				}
			}
			if i%10 == 4 {
				c.SetMissedAt(queued.Add(30 * time.Second))
			}
			if i%20 == 3 && !open {
				c.SetAbandoned(true)
			}
			if open {
				c.SetStatus(schematype.ConversationOpen)
			} else {
				c.SetStatus(schematype.ConversationDealtWith).SetArchived(true)
			}
			bulk = append(bulk, c)
		}
		if err := client.Conversation.CreateBulk(bulk...).Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkQueueStats measures the queueStats query (every figure, live
// ones included, per agent too) for one of ten queues over a 30-day window
// on 100,000 conversations, over HTTP as clients send it, on SQLite and on
// PostgreSQL; the floor is one COUNT(*) of the same queue and window on the
// server's own connection pool.
func BenchmarkQueueStats(b *testing.B) {
	for _, backend := range []storetest.Backend{storetest.SQLite, storetest.Postgres} {
		b.Run(string(backend), func(b *testing.B) { benchQueueStats(b, backend) })
	}
}

func benchQueueStats(b *testing.B, backend storetest.Backend) {
	defer results.timeIt(b)()
	name := b.Name()
	s := apitest.Start(b, apitest.Options{Backend: backend, NoWorkers: true})
	w := apitest.NewWorkspace(b, s, apitest.WorkspaceOption{})
	queues := []int{apitest.Atoi(b, w.QueueID)}
	for i := 1; i < statsQueues; i++ {
		var out struct{ CreateQueue struct{ ID string } }
		w.Admin.C.MustOp(b, "CreateQueue", map[string]any{"input": map[string]any{"name": fmt.Sprintf("Queue %d", i), "strategy": "RING_ALL"}}, &out)
		queues = append(queues, apitest.Atoi(b, out.CreateQueue.ID))
	}
	agents := []int{apitest.Atoi(b, w.Ana.ID), apitest.Atoi(b, w.Ben.ID), apitest.Atoi(b, w.Cleo.ID), apitest.Atoi(b, w.Dan.ID)}
	for _, a := range addAgents(b, s, "stats", 5001, statsAgents-len(agents)) {
		agents = append(agents, a.ID)
	}
	took := seedStats(b, s.App.DB.Client, queues, agents)
	db := s.App.DB.SQL
	if backend == storetest.Postgres {
		if _, err := db.Exec(`VACUUM ANALYZE conversations`); err != nil {
			b.Fatal(err)
		}
	} else if _, err := db.Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
	results.note(name, fmt.Sprintf("seeded %d conversations in %d queues with ent bulk inserts in %s, then ANALYZE", statsConversations, statsQueues, took.Round(100*time.Millisecond)))

	to := time.Now()
	from := to.Add(-30 * 24 * time.Hour)
	vars := map[string]any{"queueID": w.QueueID, "from": from.Format(time.RFC3339), "to": to.Format(time.RFC3339)}
	var check struct {
		QueueStats struct{ Offered, Answered int }
	}
	w.Admin.C.MustOp(b, "QueueStats", vars, &check)
	if check.QueueStats.Offered < statsConversations/statsQueues*9/10 {
		b.Fatalf("queueStats counted %d conversations offered, want about %d", check.QueueStats.Offered, statsConversations/statsQueues)
	}
	api := newGQLClient(s, apitest.Contract(b), 1)
	defer api.close()
	ctx := context.Background()
	floorArg := func() (string, []any) {
		if backend == storetest.Postgres {
			return `SELECT COUNT(*) FROM conversations WHERE queue_id = $1 AND queued_at >= $2 AND queued_at < $3`, []any{queues[0], from, to}
		}
		return `SELECT COUNT(*) FROM conversations WHERE queue_id = ? AND queued_at >= ? AND queued_at < ?`, []any{queues[0], from, to}
	}

	var service, floor time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		r, err := api.op(ctx, w.Admin.Token, "QueueStats", vars)
		if err != nil || r.Code() != "" {
			b.Fatalf("queueStats: %v %v", err, r)
		}
		service += time.Since(t0)
		q, args := floorArg()
		t0 = time.Now()
		var n int
		if err := db.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			b.Fatal(err)
		}
		floor += time.Since(t0)
	}
	b.StopTimer()
	per := ms(service) / float64(b.N)
	b.ReportMetric(per, "ms/op")
	b.ReportMetric(0, "ns/op")
	order := 60
	if backend == storetest.Postgres {
		order = 61
	}
	results.add(row{order: order, figure: fmt.Sprintf("queueStats, 30 days of 100,000 conversations (%s)", backend),
		measured: per, floor: ms(floor) / float64(b.N), unit: "ms", floorWhat: "one COUNT(*) of the queue's window"})
}
