package queuelive_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/queuelive"
	"github.com/parleyhq/parley/internal/stats"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// liveHub is a hub over a fresh database with a queue and a system owner,
// streaming Live itself, and a context of that owner.
func liveHub(t *testing.T, b storetest.Backend) (*queuelive.Hub[queuelive.Live], *ent.Client, pubsub.Broker, *ent.Queue, context.Context) {
	t.Helper()
	db := storetest.Open(t, b)
	ctx := context.Background()
	c := db.Client
	owner := c.Agent.Create().SetName("Owner").SetEmail("o@test").SetExtension("1").
		SetRole(schematype.RoleSystemOwner).SetPasswordHash("x").SaveX(ctx)
	q := c.Queue.Create().SetName("Support").SetStrategy(schematype.StrategyRoundRobin).SaveX(ctx)
	broker := pubsub.NewInMemory()
	t.Cleanup(func() { broker.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	live := queuelive.New(c, stats.New(c, db.Dialect, func() time.Time { return time.Now().Add(-time.Minute) }))
	h := queuelive.NewHub(live, c, broker, log, func(l queuelive.Live, _ queuelive.Live, _ time.Time) queuelive.Live { return l })
	h.MinInterval, h.Refresh = time.Millisecond, time.Hour
	return h, c, broker, q, auth.WithPrincipal(ctx, auth.Principal{AgentID: owner.ID, Role: owner.Role})
}

func liveWaiting(t *testing.T, c *ent.Client, q *ent.Queue) {
	t.Helper()
	ctx := context.Background()
	conv := c.Conversation.Create().SetChannel(schematype.ChannelWhatsApp).SetQueueID(q.ID).SaveX(ctx)
	m := c.Message.Create().SetConversationID(conv.ID).SetDirection(schematype.DirectionInbound).SetBody("hello").SaveX(ctx)
	c.Conversation.UpdateOneID(conv.ID).SetLastMessageID(m.ID).ExecX(ctx)
}

// TestHubDropsSlowSubscriber: a subscriber that reads nothing is dropped
// (its stream closes) once its buffer is full; another that reads goes on
// and gets the final figures.
func TestHubDropsSlowSubscriber(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h, c, broker, q, ctx := liveHub(t, b)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		slow, err := h.Subscribe(ctx, q.ID)
		if err != nil {
			t.Fatal(err)
		}
		fast, err := h.Subscribe(ctx, q.ID)
		if err != nil {
			t.Fatal(err)
		}
		const changes = queuelive.SubscriberBuffer + 4
		var last queuelive.Live
		for i := 1; i <= changes; i++ {
			liveWaiting(t, c, q)
			if err := queuelive.Nudge(ctx, broker); err != nil {
				t.Fatal(err)
			}
			for last.WaitingNow < i {
				select {
				case l, ok := <-fast:
					if !ok {
						t.Fatalf("the reading subscriber was dropped at %d", i)
					}
					last = l
				case <-time.After(5 * time.Second):
					t.Fatalf("no update with %d waiting; last %+v", i, last)
				}
			}
		}
		got := 0
		deadline := time.After(5 * time.Second)
		for {
			select {
			case _, ok := <-slow:
				if !ok {
					if got > queuelive.SubscriberBuffer {
						t.Fatalf("the slow subscriber had %d updates buffered, more than %d", got, queuelive.SubscriberBuffer)
					}
					return
				}
				got++
			case <-deadline:
				t.Fatalf("the slow subscriber was not dropped (%d updates read)", got)
			}
		}
	})
}

// TestHubEndsWithContext: a subscription's stream closes when its context
// ends, and a deleted queue's streams close.
func TestHubEndsWithContext(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		h, c, broker, q, ctx := liveHub(t, b)
		sctx, cancel := context.WithCancel(ctx)
		ch, err := h.Subscribe(sctx, q.ID)
		if err != nil {
			t.Fatal(err)
		}
		<-ch
		cancel()
		liveClosed(t, ch)

		ch, err = h.Subscribe(ctx, q.ID)
		if err != nil {
			t.Fatal(err)
		}
		<-ch
		c.Queue.DeleteOneID(q.ID).ExecX(ctx)
		if err := queuelive.Nudge(ctx, broker); err != nil {
			t.Fatal(err)
		}
		liveClosed(t, ch)
	})
}

func liveClosed(t *testing.T, ch <-chan queuelive.Live) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("the stream did not close")
		}
	}
}
