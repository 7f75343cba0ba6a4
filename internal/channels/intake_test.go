package channels_test

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/channels/twilio"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestWebhookIntake drives the webhook endpoints over HTTP: the handshake,
// every refusal (nothing stored), and an accepted delivery (stored before
// the answer).
func TestWebhookIntake(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		wa := e.account(schematype.ChannelWhatsApp, waPhone)
		fb := e.account(schematype.ChannelFacebook, fbPage)
		sms := e.account(schematype.ChannelSMS, twFrom)
		text := waText("wamid.intake1", "34600111222", "hola")

		get := func(path string) (int, string, string) {
			resp, err := http.Get(e.Hooks.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
		}
		hs := func(token string) string {
			return "?" + url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {token}, "hub.challenge": {"1158201444"}}.Encode()
		}
		// Handshakes.
		if code, ct, body := get(hookPath(wa) + hs("wa-verify")); code != 200 || body != "1158201444" || !strings.HasPrefix(ct, "text/plain") {
			t.Fatalf("WhatsApp handshake: %d %q %q", code, ct, body)
		}
		if code, _, body := get(hookPath(fb) + hs("fb-verify")); code != 200 || body != "1158201444" {
			t.Fatalf("Messenger handshake: %d %q", code, body)
		}
		for name, path := range map[string]string{
			"wrong token":           hookPath(wa) + hs("nope"),
			"another account token": hookPath(wa) + hs("fb-verify"),
		} {
			if code, _, _ := get(path); code != http.StatusForbidden {
				t.Errorf("%s: %d, want 403", name, code)
			}
		}
		for name, path := range map[string]string{
			"unknown account":        "/webhooks/whatsapp/999999999" + hs("wa-verify"),
			"account of a channel":   "/webhooks/whatsapp/" + itoa(fb.ID) + hs("fb-verify"),
			"not a number":           "/webhooks/messenger/abc" + hs("fb-verify"),
			"messenger via whatsapp": "/webhooks/messenger/" + itoa(wa.ID) + hs("wa-verify"),
		} {
			if code, _, _ := get(path); code != http.StatusNotFound {
				t.Errorf("%s: %d, want 404", name, code)
			}
		}

		// Refusals: nothing is stored.
		signed := func(secret string, body []byte) http.Header {
			return http.Header{"X-Hub-Signature-256": {channels.HubSignature(secret, body)}}
		}
		big := append([]byte(`{"object":"whatsapp_business_account","pad":"`), bytes.Repeat([]byte("a"), 1<<20)...)
		big = append(big, `"}`...)
		form := twInbound("SMintake1", "+14155550199", "hi")
		twSig := func(u string, v url.Values) http.Header {
			return http.Header{"X-Twilio-Signature": {twilio.Signature("tw-token", u, v)}}
		}
		refusals := []struct {
			name, path, ct string
			body           []byte
			h              http.Header
			want           int
		}{
			{"no signature", hookPath(wa), "application/json", text, nil, 401},
			{"wrong secret", hookPath(wa), "application/json", text, signed("other", text), 403},
			{"signature of another body", hookPath(wa), "application/json", text, signed("wa-secret", []byte("{}")), 403},
			{"malformed, signed", hookPath(wa), "application/json", []byte(`{"object":`), signed("wa-secret", []byte(`{"object":`)), 400},
			{"wrong shape, signed", hookPath(wa), "application/json", []byte(`{"entry":{}}`), signed("wa-secret", []byte(`{"entry":{}}`)), 400},
			{"too large", hookPath(wa), "application/json", big, signed("wa-secret", big), 413},
			{"unknown account", "/webhooks/whatsapp/999999999", "application/json", text, signed("wa-secret", text), 404},
			{"WhatsApp body to a Messenger account", hookPath(fb), "application/json", text, signed("wa-secret", text), 403},
			{"Messenger path of a WhatsApp account", "/webhooks/messenger/" + itoa(wa.ID), "application/json", text, signed("wa-secret", text), 404},
			{"twilio no signature", hookPath(sms), "application/x-www-form-urlencoded", []byte(form.Encode()), nil, 401},
			{"twilio signed over the local URL", hookPath(sms), "application/x-www-form-urlencoded", []byte(form.Encode()),
				twSig(e.Hooks.URL+hookPath(sms), form), 403},
			{"twilio wrong token", hookPath(sms), "application/x-www-form-urlencoded", []byte(form.Encode()),
				http.Header{"X-Twilio-Signature": {twilio.Signature("other", publicURL+hookPath(sms), form)}}, 403},
			{"twilio malformed form", hookPath(sms), "application/x-www-form-urlencoded", []byte("a=%zz"), twSig(publicURL+hookPath(sms), nil), 400},
		}
		for _, c := range refusals {
			if resp := e.post(c.path, c.ct, c.body, c.h); resp.StatusCode != c.want {
				t.Errorf("%s: %d, want %d", c.name, resp.StatusCode, c.want)
			}
		}
		if n := e.events(); n != 0 {
			t.Fatalf("refused requests stored %d events", n)
		}

		// Unknown event types: acknowledged, not stored.
		other := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"account_update","value":{"event":"VERIFIED_ACCOUNT"}}]}]}`)
		if resp := e.postMeta(wa, other); resp.StatusCode != 200 {
			t.Fatalf("unknown WhatsApp field: %d", resp.StatusCode)
		}
		if resp := e.postMeta(fb, fbEcho("m_echo1", "6789", "our own")); resp.StatusCode != 200 {
			t.Fatalf("echo: %d", resp.StatusCode)
		}
		if resp := e.postTwilio(sms, twStatus("SMx", "queued", "")); resp.StatusCode != 200 {
			t.Fatalf("queued status: %d", resp.StatusCode)
		}
		if n := e.events(); n != 0 {
			t.Fatalf("ignored events were stored: %d", n)
		}

		// Accepted: stored before the answer, with Twilio's TwiML.
		if resp := e.postMeta(wa, text); resp.StatusCode != 200 {
			t.Fatalf("accepted: %d", resp.StatusCode)
		}
		resp := e.post(hookPath(sms), "application/x-www-form-urlencoded", []byte(form.Encode()), twSig(publicURL+hookPath(sms), form))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/xml" {
			t.Fatalf("twilio accepted: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if n := e.events(); n != 2 {
			t.Fatalf("accepted events stored: %d", n)
		}
		if len(e.messages()) != 0 {
			t.Fatal("the intake itself must not do the slow work")
		}
		e.drainEvents()
		bodies := map[string]bool{}
		for _, m := range e.messages() {
			bodies[m.Body] = true
		}
		if len(bodies) != 2 || !bodies["hola"] || !bodies["hi"] {
			t.Fatalf("messages: %v", bodies)
		}
	})
}

// TestTwilioAnswerBody checks the exact empty TwiML of an accepted webhook.
func TestTwilioAnswerBody(t *testing.T) {
	e := newEnv(t, storetest.SQLite)
	sms := e.account(schematype.ChannelSMS, twFrom)
	form := twInbound("SManswer", "+14155550199", "hi")
	req, _ := http.NewRequest(http.MethodPost, e.Hooks.URL+hookPath(sms), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", twilio.Signature("tw-token", publicURL+hookPath(sms), form))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if string(body) != `<?xml version="1.0" encoding="UTF-8"?><Response></Response>` {
		t.Fatalf("TwiML: %q", body)
	}
}
