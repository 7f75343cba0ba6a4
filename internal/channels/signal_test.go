package channels_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestSignals: an agent's typing and reading reach the customer as the
// providers allow: Messenger sender actions (typing_on, typing_off,
// mark_seen), and WhatsApp read receipts for the customer's newest message
// (with the typing indicator for typing; nothing for "stopped typing").
// SMS has no such thing: nothing is sent.
func TestSignals(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		wa := e.account(schematype.ChannelWhatsApp, "1555000111")
		fb := e.account(schematype.ChannelFacebook, "PAGE9")
		sms := e.account(schematype.ChannelSMS, "+15550009999")
		waConv, fbConv, smsConv := e.customer(wa, "34600200001"), e.customer(fb, "PSID77"), e.customer(sms, "+34600200002")
		waLast := e.messages()
		var wamid string
		for _, m := range waLast {
			if m.ConversationID == waConv.ID && m.ProviderMessageID != nil {
				wamid = *m.ProviderMessageID
			}
		}
		if wamid == "" {
			t.Fatal("no provider id on the WhatsApp message")
		}

		wait := func(prefix string, n int) []map[string]any {
			t.Helper()
			var got []map[string]any
			eventually(t, 5*time.Second, func() bool {
				got = nil
				for _, r := range e.API.requests(prefix) {
					got = append(got, r.JSON())
				}
				return len(got) >= n
			}, "provider calls on "+prefix)
			return got
		}
		for _, kind := range []string{channels.SignalTyping, channels.SignalTypingOff, channels.SignalRead} {
			e.Svc.Signal(fbConv.ID, kind)
			e.Svc.Signal(waConv.ID, kind)
			e.Svc.Signal(smsConv.ID, kind)
		}
		fbCalls := wait("/v21.0/me/messages", 3)
		actions := map[string]bool{}
		for _, c := range fbCalls {
			if r, _ := c["recipient"].(map[string]any); r["id"] != "PSID77" {
				t.Fatalf("Messenger signal to the wrong recipient: %v", c)
			}
			actions[c["sender_action"].(string)] = true
		}
		for _, a := range []string{"typing_on", "typing_off", "mark_seen"} {
			if !actions[a] {
				t.Fatalf("Messenger: no %s among %v", a, fbCalls)
			}
		}
		waCalls := wait("/v21.0/1555000111/messages", 2)
		typing := 0
		for _, c := range waCalls {
			if c["status"] != "read" || c["message_id"] != wamid || c["messaging_product"] != "whatsapp" {
				t.Fatalf("WhatsApp signal: %v", c)
			}
			if ti, ok := c["typing_indicator"].(map[string]any); ok && ti["type"] == "text" {
				typing++
			}
		}
		if typing != 1 {
			b, _ := json.Marshal(waCalls)
			t.Fatalf("WhatsApp: want one read receipt with the typing indicator and one without, got %s", b)
		}
		time.Sleep(200 * time.Millisecond) // nothing more comes: no "stopped typing", no SMS
		if n := len(e.API.requests("/v21.0/1555000111/messages")); n != 2 {
			t.Fatalf("WhatsApp: %d calls, want 2", n)
		}
		if n := len(e.API.requests("/2010-04-01/")); n != 0 {
			t.Fatalf("SMS: %d Twilio calls for signals, want none", n)
		}
	})
}
