package channels_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/pendingstatus"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// answerIDs makes the double accept sends with the given ids, in order.
func answerIDs(ids ...string) func(r request, w http.ResponseWriter) bool {
	n := 0
	return func(r request, w http.ResponseWriter) bool {
		if r.Method != http.MethodPost || n >= len(ids) {
			return false
		}
		id := ids[n]
		n++
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.Path, "/Messages.json"):
			w.WriteHeader(201)
			_, _ = io.WriteString(w, `{"sid":"`+id+`","status":"queued"}`)
		case strings.HasPrefix(r.Path, "/v21.0/me/"):
			_, _ = io.WriteString(w, `{"recipient_id":"x","message_id":"`+id+`"}`)
		default:
			_, _ = io.WriteString(w, `{"messaging_product":"whatsapp","messages":[{"id":"`+id+`"}]}`)
		}
		return true
	}
}

// TestStatusesForwardOnly delivers provider statuses early, late, twice and
// out of order: a message never moves backwards, a status that beats our
// send call's answer is applied when the message gets its id, and a failure
// carries the provider's reason.
func TestStatusesForwardOnly(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		wa := e.account(schematype.ChannelWhatsApp, waPhone)
		sms := e.account(schematype.ChannelSMS, twFrom)
		fb := e.account(schematype.ChannelFacebook, fbPage)
		now := time.Now()
		deliver := func(body []byte) {
			t.Helper()
			if resp := e.postMeta(wa, body); resp.StatusCode != 200 {
				t.Fatalf("status webhook: %d", resp.StatusCode)
			}
			e.drainEvents()
		}
		want := func(m *ent.Message, st string) {
			t.Helper()
			if got := status(e.reload(m)); got != st {
				t.Fatalf("message %d: %s, want %s", m.ID, got, st)
			}
		}

		// WhatsApp: "delivered" arrives before our send call has returned.
		conv := e.customer(wa, "34600111222")
		m1 := e.outbound(conv, "first")
		deliver(waStatus("wamid.EARLY", "delivered", now))
		want(m1, "PENDING")
		if n, _ := e.DB.Client.PendingStatus.Query().Where(pendingstatus.ProviderMessageID("wamid.EARLY")).Count(context.Background()); n != 1 {
			t.Fatalf("early status not kept: %d", n)
		}
		e.API.set(answerIDs("wamid.EARLY", "wamid.FAILS"))
		e.drainOutbox()
		want(m1, "DELIVERED")
		deliver(waStatus("wamid.EARLY", "sent", now)) // late
		want(m1, "DELIVERED")
		deliver(waStatus("wamid.EARLY", "read", now))
		deliver(waStatus("wamid.EARLY", "read", now)) // again
		want(m1, "READ")
		deliver(waStatus("wamid.EARLY", "failed", now, map[string]any{"code": 131026, "title": "Message undeliverable"}))
		want(m1, "READ")
		deliver(waStatus("wamid.EARLY", "delivered", now))
		want(m1, "READ")

		m2 := e.outbound(conv, "second")
		e.drainOutbox()
		want(m2, "SENT")
		deliver(waStatus("wamid.FAILS", "failed", now, map[string]any{"code": 131026, "title": "Message undeliverable",
			"message": "Message undeliverable", "error_data": map[string]any{"details": "The recipient's phone number is not a WhatsApp number."}}))
		if m := e.reload(m2); status(m) != "FAILED" || m.FailureReason == nil ||
			*m.FailureReason != "WhatsApp: Message undeliverable: The recipient's phone number is not a WhatsApp number. (131026)" {
			t.Fatalf("failed: %s %v", status(m), m.FailureReason)
		}

		// Twilio: callbacks out of order.
		sconv := e.customer(sms, "+14155550199")
		s1, s2 := e.outbound(sconv, "sms one"), e.outbound(sconv, "sms two")
		e.API.set(answerIDs("SMTW1", "SMTW2"))
		e.drainOutbox()
		tw := func(sid, st, code string) {
			t.Helper()
			if resp := e.postTwilio(sms, twStatus(sid, st, code)); resp.StatusCode != 200 {
				t.Fatalf("twilio status: %d", resp.StatusCode)
			}
			e.drainEvents()
		}
		tw("SMTW1", "delivered", "")
		tw("SMTW1", "sent", "")
		tw("SMTW1", "queued", "")
		want(s1, "DELIVERED")
		tw("SMTW2", "undelivered", "30003")
		if m := e.reload(s2); status(m) != "FAILED" || *m.FailureReason != "Twilio error 30003: unreachable destination handset" {
			t.Fatalf("undelivered: %s %v", status(m), m.FailureReason)
		}

		// Messenger: watermarks cover everything sent before them.
		fconv := e.customer(fb, "6789")
		f1, f2 := e.outbound(fconv, "fb one"), e.outbound(fconv, "fb two")
		e.API.set(answerIDs("m_F1", "m_F2", "m_F3"))
		e.drainOutbox()
		wm := time.Now()
		time.Sleep(5 * time.Millisecond)
		f3 := e.outbound(fconv, "fb three, after the watermark")
		e.drainOutbox()
		meta := func(body []byte) {
			t.Helper()
			if resp := e.postMeta(fb, body); resp.StatusCode != 200 {
				t.Fatalf("messenger webhook: %d", resp.StatusCode)
			}
			e.drainEvents()
		}
		meta(fbDelivery("6789", wm))
		want(f1, "DELIVERED")
		want(f2, "DELIVERED")
		want(f3, "SENT")
		meta(fbRead("6789", wm))
		want(f1, "READ")
		want(f2, "READ")
		want(f3, "SENT")
		meta(fbDelivery("6789", time.Now(), "m_F3"))
		want(f3, "DELIVERED")
		meta(fbDelivery("6789", wm)) // an old watermark again
		want(f1, "READ")
	})
}
