package channels_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/ent/webhookevent"
	"github.com/parleyhq/parley/internal/store/storetest"
)

func (e *env) event() *ent.WebhookEvent {
	e.t.Helper()
	ev, err := e.DB.Client.WebhookEvent.Query().Order(ent.Desc(webhookevent.FieldID)).First(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// TestEventRetries: a media download that fails is retried with backoff
// and the message is stored once it works; a file that is gone for good, or
// still failing at the last attempt, becomes a note, so the message itself
// is never lost.
func TestEventRetries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		wa := e.account(schematype.ChannelWhatsApp, waPhone)
		img := pngBytes()
		files := e.API.waMedia(map[string][]byte{"FLAKY": img}, map[string]string{"FLAKY": "image/png"})
		var fails atomic.Int32
		fails.Store(2)
		e.API.set(func(r request, w http.ResponseWriter) bool {
			switch r.Path {
			case "/v21.0/FLAKY":
				if fails.Add(-1) >= 0 {
					w.WriteHeader(http.StatusServiceUnavailable)
					return true
				}
			case "/v21.0/GONE":
				w.WriteHeader(http.StatusNotFound)
				return true
			case "/v21.0/DOWN":
				w.WriteHeader(http.StatusBadGateway)
				return true
			case "/v21.0/BADSUM":
				_, _ = io.WriteString(w, `{"url":"`+e.API.URL()+`/wa-cdn/FLAKY","mime_type":"image/png","sha256":"`+strings.Repeat("0", 64)+`"}`)
				return true
			}
			return files(r, w)
		})

		// Two failures, then success.
		e.postMeta(wa, waMedia("wamid.R1", "34600111222", "image", "FLAKY", "image/png", sha(img), "retry me"))
		e.drainEvents()
		ev := e.event()
		if ev.Attempts != 3 || ev.ProcessedAt == nil || ev.LastError != "" || ev.NextAttemptAt != nil {
			t.Fatalf("event after two failures: attempts %d processed %v error %q", ev.Attempts, ev.ProcessedAt, ev.LastError)
		}
		if m := e.messageBy("wamid.R1"); m.Body != "retry me" || len(m.Edges.Attachments) != 1 {
			t.Fatalf("message: %q %d", m.Body, len(m.Edges.Attachments))
		}

		// Gone for good: no retry, a note.
		e.postMeta(wa, waMedia("wamid.R2", "34600111222", "image", "GONE", "image/png", "", ""))
		e.drainEvents()
		if ev := e.event(); ev.Attempts != 1 {
			t.Fatalf("a permanent failure was retried: %d", ev.Attempts)
		}
		if m := e.messageBy("wamid.R2"); !strings.HasPrefix(m.Body, "[the image could not be kept: WhatsApp error") || len(m.Edges.Attachments) != 0 {
			t.Fatalf("gone: %q", m.Body)
		}

		// Down until the last attempt: stored with a note.
		e.Svc.EventAttempts = 3
		e.postMeta(wa, waMedia("wamid.R3", "34600111222", "video", "DOWN", "video/mp4", "", "el vídeo"))
		e.drainEvents()
		if ev := e.event(); ev.Attempts != 3 || ev.ProcessedAt == nil {
			t.Fatalf("last attempt: %d %v", ev.Attempts, ev.ProcessedAt)
		}
		if m := e.messageBy("wamid.R3"); m.Body != "el vídeo\n[the video could not be kept: WhatsApp error: HTTP 502]" {
			t.Fatalf("down: %q", m.Body)
		}

		// A digest that does not match is a corrupt download: retried.
		e.Svc.EventAttempts = 2
		e.postMeta(wa, waMedia("wamid.R4", "34600111222", "image", "BADSUM", "image/png", "", ""))
		e.drainEvents()
		if ev := e.event(); ev.Attempts != 2 {
			t.Fatalf("digest mismatch attempts: %d", ev.Attempts)
		}
		if m := e.messageBy("wamid.R4"); len(m.Edges.Attachments) != 0 || !strings.Contains(m.Body, "SHA-256") {
			t.Fatalf("digest mismatch: %q", m.Body)
		}
	})
}

// TestEventsOnceAcrossInstances: two instances' workers share one
// database; every event is claimed once and every message stored once.
func TestEventsOnceAcrossInstances(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		a := newEnv(t, b)
		bb := newEnvOn(t, a.DB, a.API)
		wa := a.account(schematype.ChannelWhatsApp, waPhone)
		const n = 30
		for i := 0; i < n; i++ {
			e := a
			if i%2 == 1 {
				e = bb
			}
			if resp := e.postMeta(wa, waText(fmt.Sprintf("wamid.M%d", i), fmt.Sprint(34600000000+i%5), fmt.Sprint("message ", i))); resp.StatusCode != 200 {
				t.Fatalf("post: %d", resp.StatusCode)
			}
		}
		var wg sync.WaitGroup
		for _, e := range []*env{a, bb, a, bb} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				deadline := time.Now().Add(20 * time.Second)
				for e.pendingEvents() > 0 && time.Now().Before(deadline) {
					if _, err := e.Svc.ProcessEvents(context.Background()); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if p := a.pendingEvents(); p != 0 {
			t.Fatalf("%d events left", p)
		}
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("wamid.M%d", i)
			if c := a.Convs.stored(id) + bb.Convs.stored(id); c != 1 {
				t.Fatalf("%s stored %d times", id, c)
			}
		}
		if c, _ := a.DB.Client.WebhookEvent.Query().Where(webhookevent.AttemptsNEQ(1)).Count(context.Background()); c != 0 {
			t.Fatalf("%d events were claimed twice", c)
		}
		if c, _ := a.DB.Client.Message.Query().Where(message.DirectionEQ(schematype.DirectionInbound)).Count(context.Background()); c != n {
			t.Fatalf("messages: %d", c)
		}
	})
}

// TestSweep removes old finished events and stale early statuses only.
func TestSweep(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	wa := e.account(schematype.ChannelWhatsApp, waPhone)
	ctx := context.Background()
	old := time.Now().Add(-8 * 24 * time.Hour)
	mk := func(received time.Time, done bool) {
		c := e.DB.Client.WebhookEvent.Create().SetChannelAccountID(wa.ID).SetProvider("whatsapp").SetBody([]byte("{}")).SetReceivedAt(received)
		if done {
			c.SetProcessedAt(received)
		} else {
			c.SetNextAttemptAt(time.Now().Add(time.Hour))
		}
		c.ExecX(ctx)
	}
	mk(old, true)
	mk(old, false) // still to retry: kept
	mk(time.Now(), true)
	e.DB.Client.PendingStatus.Create().SetChannelAccountID(wa.ID).SetProviderMessageID("x").SetStatus(schematype.DeliveryRead).
		SetAt(old).SetCreatedAt(old).ExecX(ctx)
	e.DB.Client.PendingStatus.Create().SetChannelAccountID(wa.ID).SetProviderMessageID("y").SetStatus(schematype.DeliveryRead).
		SetAt(time.Now()).ExecX(ctx)
	if err := e.Svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.events(); n != 2 {
		t.Fatalf("events left: %d", n)
	}
	if n := e.DB.Client.PendingStatus.Query().CountX(ctx); n != 1 {
		t.Fatalf("pending statuses left: %d", n)
	}
}
