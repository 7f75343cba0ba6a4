package apitest_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/channels/twilio"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// TestChannelsWhatsAppConversation: a WhatsApp customer and an agent hold a
// conversation through the real webhook endpoint and the real GraphQL API:
// handshake, inbound text, reply delivered to the Cloud API with the exact
// request, statuses up to read, a reply with a file the provider downloads
// through its signed link, and a refusal shown to the agent with its
// reason.
func TestChannelsWhatsAppConversation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s, w := startChannels(t, b)
		api := newProvider(t)
		acct, hook := createAccount(t, w, "WHATSAPP", "whatsapp", map[string]any{
			"phoneNumberID": "106540352242922", "accessToken": "EAAG-live-token", "appSecret": "meta-app-secret",
			"verifyToken": "my-verify-token", "apiBaseURL": api.URL(),
		})
		if hook != s.URL+"/webhooks/whatsapp/"+acct {
			t.Fatalf("webhookURL %q", hook)
		}
		if code, body := handshake(t, hook, "my-verify-token"); code != 200 || body != "8675309" {
			t.Fatalf("handshake: %d %q", code, body)
		}
		if code, _ := handshake(t, hook, "guess"); code != 403 {
			t.Fatalf("handshake with a wrong token: %d", code)
		}

		inbound := func(id, text string, at time.Time) []byte {
			return mustMarshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
				"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
					"messaging_product": "whatsapp",
					"metadata":          map[string]any{"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
					"contacts":          []any{map[string]any{"wa_id": "34600111222", "profile": map[string]any{"name": "Lucía Pérez"}}},
					"messages": []any{map[string]any{"from": "34600111222", "id": id, "timestamp": strconv.FormatInt(at.Unix(), 10),
						"type": "text", "text": map[string]any{"body": text}}},
				}}},
			}}})
		}
		statusOf := func(wamid, st string) []byte {
			return mustMarshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{
				"id": "102290129340398", "changes": []any{map[string]any{"field": "messages", "value": map[string]any{
					"messaging_product": "whatsapp",
					"metadata":          map[string]any{"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
					"statuses": []any{map[string]any{"id": wamid, "status": st, "timestamp": strconv.FormatInt(time.Now().Unix(), 10),
						"recipient_id": "34600111222"}},
				}}},
			}}})
		}

		deliverMeta(t, hook, "meta-app-secret", inbound("wamid.IN1", "Hola, ¿envían a Sevilla?", time.Now().Add(-time.Minute)))
		conv := waitConversation(t, w.Ana, "WHATSAPP")
		name, phone, msgs := chanConv(t, w.Ana, conv)
		if name != "Lucía Pérez" || phone == nil || *phone != "+34600111222" || len(msgs) != 1 || msgs[0].Body != "Hola, ¿envían a Sevilla?" {
			t.Fatalf("inbound: %q %v %+v", name, phone, msgs)
		}

		r1 := reply(t, w.Ana, conv, "¡Hola Lucía! Sí, enviamos a toda España.")
		sends := api.waitSends(1)
		want := map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34600111222",
			"type": "text", "text": map[string]any{"body": "¡Hola Lucía! Sí, enviamos a toda España.", "preview_url": false}}
		if sends[0].Path != "/v21.0/106540352242922/messages" || sends[0].Header.Get("Authorization") != "Bearer EAAG-live-token" ||
			fmt.Sprint(sends[0].JSON) != fmt.Sprint(want) {
			t.Fatalf("send call: %s %v %v", sends[0].Path, sends[0].Header.Get("Authorization"), sends[0].JSON)
		}
		waitStatus(t, w.Ana, conv, r1, "SENT")
		deliverMeta(t, hook, "meta-app-secret", statusOf("wamid.reply1", "delivered"))
		waitStatus(t, w.Ana, conv, r1, "DELIVERED")
		deliverMeta(t, hook, "meta-app-secret", statusOf("wamid.reply1", "read"))
		deliverMeta(t, hook, "meta-app-secret", statusOf("wamid.reply1", "delivered")) // late
		waitStatus(t, w.Ana, conv, r1, "READ")
		time.Sleep(30 * time.Millisecond)
		waitStatus(t, w.Ana, conv, r1, "READ")

		// The customer again, then a reply with a photo.
		deliverMeta(t, hook, "meta-app-secret", inbound("wamid.IN2", "¿Me manda una foto?", time.Now()))
		waitMessages(t, w.Ana, conv, 3)
		img := pngImage()
		att := upload(t, w.Ana, "foto.png", img)
		r2 := reply(t, w.Ana, conv, "Aquí la tiene", att)
		sends = api.waitSends(2)
		photo, _ := sends[1].JSON["image"].(map[string]any)
		link := fmt.Sprint(photo["link"])
		if sends[1].JSON["type"] != "image" || photo["caption"] != "Aquí la tiene" || !strings.HasPrefix(link, s.URL+"/attachments/"+att+"/") {
			t.Fatalf("photo send: %v", sends[1].JSON)
		}
		if f := api.fetchOf(link); f.Status != 200 || !bytes.Equal(f.Body, img) {
			t.Fatalf("the provider could not download the photo: %d", f.Status)
		}
		waitStatus(t, w.Ana, conv, r2, "SENT")

		// A refusal: FAILED, with WhatsApp's reason for the agent.
		api.refuseNext(400, `{"error":{"message":"(#131026) Message Undeliverable.","type":"OAuthException","code":131026,"fbtrace_id":"AX1"}}`)
		r3 := reply(t, w.Ana, conv, "¿Sigue ahí?")
		m := waitStatus(t, w.Ana, conv, r3, "FAILED")
		if m.FailureReason == nil || *m.FailureReason != "WhatsApp error 131026: (#131026) Message Undeliverable." {
			t.Fatalf("failure reason: %v", m.FailureReason)
		}
		if n := len(api.waitSends(3)); n != 3 {
			t.Fatalf("sends: %d", n)
		}
	})
}

// TestChannelsMessengerConversation: the same over Messenger: PSID sender,
// Send API with the page token, an echo ignored, delivery and read
// watermarks.
func TestChannelsMessengerConversation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		_, w := startChannels(t, b)
		api := newProvider(t)
		_, hook := createAccount(t, w, "FACEBOOK", "messenger", map[string]any{
			"pageID": "112233445566778", "pageAccessToken": "EAAP-page", "appSecret": "fb-app-secret",
			"verifyToken": "fb-verify", "apiBaseURL": api.URL(),
		})
		if code, body := handshake(t, hook, "fb-verify"); code != 200 || body != "8675309" {
			t.Fatalf("handshake: %d %q", code, body)
		}
		page := func(events ...map[string]any) []byte {
			ev := []any{}
			for _, e := range events {
				ev = append(ev, e)
			}
			return mustMarshal(map[string]any{"object": "page", "entry": []any{map[string]any{
				"id": "112233445566778", "time": time.Now().UnixMilli(), "messaging": ev}}})
		}
		from := func(kv map[string]any) map[string]any {
			kv["sender"] = map[string]any{"id": "6789012345678901"}
			kv["recipient"] = map[string]any{"id": "112233445566778"}
			kv["timestamp"] = time.Now().UnixMilli()
			return kv
		}
		deliverMeta(t, hook, "fb-app-secret", page(from(map[string]any{"message": map[string]any{"mid": "m_in1", "text": "Is the store open on Sunday?"}})))
		conv := waitConversation(t, w.Ana, "FACEBOOK")
		if name, _, _ := chanConv(t, w.Ana, conv); name != "Ana Souza" {
			t.Fatalf("a new sender is named by the profile API: %q", name)
		}
		r1 := reply(t, w.Ana, conv, "Yes, 10 to 2.")
		sends := api.waitSends(1)
		if sends[0].Path != "/v21.0/me/messages" || sends[0].Query.Get("access_token") != "EAAP-page" ||
			fmt.Sprint(sends[0].JSON) != fmt.Sprint(map[string]any{"recipient": map[string]any{"id": "6789012345678901"},
				"messaging_type": "RESPONSE", "message": map[string]any{"text": "Yes, 10 to 2."}}) {
			t.Fatalf("send call: %s %v %v", sends[0].Path, sends[0].Query, sends[0].JSON)
		}
		waitStatus(t, w.Ana, conv, r1, "SENT")
		// Messenger echoes our reply: not a customer message.
		deliverMeta(t, hook, "fb-app-secret", page(map[string]any{"sender": map[string]any{"id": "112233445566778"},
			"recipient": map[string]any{"id": "6789012345678901"}, "timestamp": time.Now().UnixMilli(),
			"message": map[string]any{"mid": "m_reply1", "text": "Yes, 10 to 2.", "is_echo": true}}))
		deliverMeta(t, hook, "fb-app-secret", page(from(map[string]any{"delivery": map[string]any{"watermark": time.Now().UnixMilli()}})))
		waitStatus(t, w.Ana, conv, r1, "DELIVERED")
		deliverMeta(t, hook, "fb-app-secret", page(from(map[string]any{"read": map[string]any{"watermark": time.Now().UnixMilli()}})))
		waitStatus(t, w.Ana, conv, r1, "READ")
		deliverMeta(t, hook, "fb-app-secret", page(from(map[string]any{"message": map[string]any{"mid": "m_in2", "text": "Thanks!"}})))
		msgs := waitMessages(t, w.Ana, conv, 3)
		if msgs[2].Body != "Thanks!" || msgs[1].Direction != "OUTBOUND" {
			t.Fatalf("messages: %+v", msgs)
		}
		for _, m := range msgs {
			if m.Direction == "INBOUND" && m.Body == "Yes, 10 to 2." {
				t.Fatal("the echo became a customer message")
			}
		}
	})
}

// TestChannelsSMSConversation: the same over Twilio: a form webhook signed
// over the public URL, the sender in E.164, the Messages API with basic
// auth and our webhook as StatusCallback, MMS files by signed link, and
// status callbacks.
func TestChannelsSMSConversation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		s, w := startChannels(t, b)
		api := newProvider(t)
		acct, hook := createAccount(t, w, "SMS", "sms", map[string]any{
			"accountSID": "AC11111111111111111111111111111111", "authToken": "twilio-auth-token",
			"fromNumber": "+14155550100", "apiBaseURL": api.URL(),
		})
		if hook != s.URL+"/webhooks/twilio/"+acct {
			t.Fatalf("webhookURL %q", hook)
		}
		post := func(form url.Values) {
			t.Helper()
			resp := deliver(t, hook, "application/x-www-form-urlencoded", []byte(form.Encode()),
				http.Header{"X-Twilio-Signature": {twilio.Signature("twilio-auth-token", hook, form)}})
			if resp.Header.Get("Content-Type") != "text/xml" {
				t.Fatalf("Twilio wants TwiML: %q", resp.Header.Get("Content-Type"))
			}
		}
		post(url.Values{"MessageSid": {"SM00000000000000000000000000000abc"}, "AccountSid": {"AC11111111111111111111111111111111"},
			"From": {"+14155550199"}, "To": {"+14155550100"}, "Body": {"Is my order shipped?"}, "NumMedia": {"0"},
			"NumSegments": {"1"}, "SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"}})
		conv := waitConversation(t, w.Ana, "SMS")
		if _, phone, _ := chanConv(t, w.Ana, conv); phone == nil || *phone != "+14155550199" {
			t.Fatalf("sender phone: %v", phone)
		}
		img := pngImage()
		att := upload(t, w.Ana, "label.png", img)
		r1 := reply(t, w.Ana, conv, "Yes! Here is the label.", att)
		sends := api.waitSends(1)
		c := sends[0]
		user, pass, _ := (&http.Request{Header: c.Header}).BasicAuth()
		if c.Path != "/2010-04-01/Accounts/AC11111111111111111111111111111111/Messages.json" ||
			user != "AC11111111111111111111111111111111" || pass != "twilio-auth-token" ||
			c.Form.Get("To") != "+14155550199" || c.Form.Get("From") != "+14155550100" ||
			c.Form.Get("Body") != "Yes! Here is the label." || c.Form.Get("StatusCallback") != hook || len(c.Form["MediaUrl"]) != 1 {
			t.Fatalf("send call: %s %s %v", c.Path, user, c.Form)
		}
		if f := api.fetchOf(c.Form["MediaUrl"][0]); f.Status != 200 || !bytes.Equal(f.Body, img) ||
			f.Header.Get("Content-Disposition") == "" {
			t.Fatalf("Twilio could not fetch the file: %d", f.Status)
		}
		waitStatus(t, w.Ana, conv, r1, "SENT")
		sid := fmt.Sprintf("SM%032d", 1)
		status := func(st, code string) {
			form := url.Values{"MessageSid": {sid}, "MessageStatus": {st}, "SmsStatus": {st},
				"AccountSid": {"AC11111111111111111111111111111111"}, "From": {"+14155550100"}, "To": {"+14155550199"}}
			if code != "" {
				form.Set("ErrorCode", code)
			}
			post(form)
		}
		status("delivered", "")
		waitStatus(t, w.Ana, conv, r1, "DELIVERED")
		status("sent", "") // late
		time.Sleep(30 * time.Millisecond)
		waitStatus(t, w.Ana, conv, r1, "DELIVERED")

		r2 := reply(t, w.Ana, conv, "Anything else?")
		api.waitSends(2)
		waitStatus(t, w.Ana, conv, r2, "SENT")
		sid = fmt.Sprintf("SM%032d", 2)
		status("undelivered", "30003")
		m := waitStatus(t, w.Ana, conv, r2, "FAILED")
		if m.FailureReason == nil || *m.FailureReason != "Twilio error 30003: unreachable destination handset" {
			t.Fatalf("reason: %v", m.FailureReason)
		}
	})
}
