package channels_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/contactidentity"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/ent/webhookevent"
	"github.com/parleyhq/parley/internal/store/storetest"
)

func (e *env) messageBy(providerID string) *ent.Message {
	e.t.Helper()
	m, err := e.DB.Client.Message.Query().Where(message.ProviderMessageID(providerID)).WithAttachments().Only(context.Background())
	if err != nil {
		e.t.Fatalf("message %s: %v", providerID, err)
	}
	return m
}

func (e *env) identity(accountID int, external string) *ent.ContactIdentity {
	e.t.Helper()
	id, err := e.DB.Client.ContactIdentity.Query().Where(contactidentity.ChannelAccountID(accountID), contactidentity.ExternalID(external)).
		WithContact().Only(context.Background())
	if err != nil {
		e.t.Fatalf("identity %s: %v", external, err)
	}
	return id
}

// waMediaServer makes the double a WhatsApp media host: media id -> URL
// (bearer checked) -> bytes (bearer checked).
func (d *double) waMedia(files map[string][]byte, mime map[string]string) func(r request, w http.ResponseWriter) bool {
	return func(r request, w http.ResponseWriter) bool {
		for id, b := range files {
			switch r.Path {
			case "/v21.0/" + id:
				if r.Header.Get("Authorization") != "Bearer wa-token" {
					w.WriteHeader(401)
					return true
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"messaging_product":"whatsapp","url":"`+d.URL()+`/wa-cdn/`+id+`?ext=1","mime_type":"`+mime[id]+`","sha256":"`+sha(b)+`","file_size":`+itoa(len(b))+`,"id":"`+id+`"}`)
				return true
			case "/wa-cdn/" + id:
				if r.Header.Get("Authorization") != "Bearer wa-token" {
					w.WriteHeader(401)
					return true
				}
				_, _ = w.Write(b)
				return true
			}
		}
		return false
	}
}

// TestInboundTypesAndMedia sends each provider's messages through the real
// endpoints and checks what reaches the inbox: text, media stored as
// attachments (checked by content), audio kept, a forbidden kind noted,
// locations as text, sender identity and names.
func TestInboundTypesAndMedia(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		wa := e.account(schematype.ChannelWhatsApp, waPhone)
		fb := e.account(schematype.ChannelFacebook, fbPage)
		sms := e.account(schematype.ChannelSMS, twFrom)
		img, ogg, zip := pngBytes(), oggBytes(), []byte("PK\x03\x04\x14\x00\x00\x00\x08\x00not really a zip")
		waFiles := e.API.waMedia(map[string][]byte{"IMG1": img, "VOICE1": ogg, "ZIP1": zip},
			map[string]string{"IMG1": "image/png", "VOICE1": "audio/ogg; codecs=opus", "ZIP1": "application/zip"})
		e.API.set(func(r request, w http.ResponseWriter) bool {
			if waFiles(r, w) {
				return true
			}
			switch {
			case r.Path == "/fb-cdn/photo_9.jpg":
				w.Header().Set("Content-Type", "image/png")
				_, _ = w.Write(img)
				return true
			case r.Path == "/v21.0/6789012345678901":
				if r.Query.Get("access_token") != "fb-token" {
					w.WriteHeader(400)
					return true
				}
				_, _ = io.WriteString(w, `{"first_name":"Ana","last_name":"Souza","id":"6789012345678901"}`)
				return true
			case strings.HasPrefix(r.Path, "/twilio-media/"):
				if u, p, ok := basicAuth(r); !ok || u != "AC00000000000000000000000000000001" || p != "tw-token" {
					w.WriteHeader(401)
					return true
				}
				http.Redirect(w, &http.Request{Method: "GET"}, e.API.URL()+"/twilio-cdn/"+strings.TrimPrefix(r.Path, "/twilio-media/"), http.StatusFound)
				return true
			case strings.HasPrefix(r.Path, "/twilio-cdn/"):
				_, _ = w.Write(img)
				return true
			}
			return false
		})
		mustOK := func(resp *http.Response) {
			t.Helper()
			if resp.StatusCode != 200 {
				t.Fatalf("webhook answered %d", resp.StatusCode)
			}
		}
		mustOK(e.postMeta(wa, waText("wamid.T1", "34600111222", "Hola")))
		mustOK(e.postMeta(wa, waMedia("wamid.I1", "34600111222", "image", "IMG1", "image/png", sha(img), "La caja")))
		mustOK(e.postMeta(wa, waMedia("wamid.V1", "34600111222", "audio", "VOICE1", "audio/ogg; codecs=opus", sha(ogg), "")))
		mustOK(e.postMeta(wa, waMedia("wamid.Z1", "34600111222", "document", "ZIP1", "application/zip", sha(zip), "el zip")))
		mustOK(e.postMeta(wa, waMessage(waPhone, "34600111222", "Lucía", map[string]any{"id": "wamid.L1", "type": "location",
			"location": map[string]any{"latitude": 37.3890924, "longitude": -5.9844589, "name": "Catedral"}})))
		mustOK(e.postMeta(fb, fbText("m_T1", "6789012345678901", "Hi there")))
		mustOK(e.postMeta(fb, fbAttachment("m_I1", "6789012345678901", "image", e.API.URL()+"/fb-cdn/photo_9.jpg")))
		mustOK(e.postMeta(fb, fbEcho("m_E1", "6789012345678901", "an echo of ours")))
		mustOK(e.postTwilio(sms, twInbound("MM1", " 14155550199", "Two pics", // the + lost to form decoding
			[2]string{e.API.URL() + "/twilio-media/ME1", "image/png"}, [2]string{e.API.URL() + "/twilio-media/ME2", "image/png"})))
		e.drainEvents()

		if m := e.messageBy("wamid.T1"); m.Body != "Hola" || len(m.Edges.Attachments) != 0 {
			t.Fatalf("text: %+v", m)
		}
		m := e.messageBy("wamid.I1")
		if m.Body != "La caja" || len(m.Edges.Attachments) != 1 {
			t.Fatalf("image: %q %d", m.Body, len(m.Edges.Attachments))
		}
		if a := m.Edges.Attachments[0]; a.ContentType != "image/png" || a.Size != int64(len(img)) || a.Sha256 != sha(img) ||
			!strings.HasSuffix(a.Filename, ".png") {
			t.Fatalf("image attachment: %+v", a)
		}
		m = e.messageBy("wamid.V1")
		if len(m.Edges.Attachments) != 1 || m.Edges.Attachments[0].ContentType != "audio/ogg" || m.Edges.Attachments[0].Filename != "voice.ogg" {
			t.Fatalf("voice note kept as audio: %+v %+v", m, m.Edges.Attachments)
		}
		m = e.messageBy("wamid.Z1")
		if len(m.Edges.Attachments) != 0 || !strings.Contains(m.Body, "el zip") || !strings.Contains(m.Body, "[the document could not be kept") {
			t.Fatalf("forbidden kind: %q", m.Body)
		}
		if m := e.messageBy("wamid.L1"); m.Body != "Location: Catedral\nhttps://www.google.com/maps/search/?api=1&query=37.3890924,-5.9844589" {
			t.Fatalf("location: %q", m.Body)
		}
		if id := e.identity(wa.ID, "34600111222"); id.ProfileName != "Lucía" || id.Edges.Contact.Phone == nil ||
			*id.Edges.Contact.Phone != "+34600111222" || id.Edges.Contact.Known {
			t.Fatalf("WhatsApp sender: %+v %+v", id, id.Edges.Contact)
		}

		if m := e.messageBy("m_T1"); m.Body != "Hi there" {
			t.Fatalf("messenger text: %q", m.Body)
		}
		if m := e.messageBy("m_I1"); len(m.Edges.Attachments) != 1 || m.Edges.Attachments[0].ContentType != "image/png" {
			t.Fatalf("messenger image: %+v", m.Edges.Attachments)
		}
		if id := e.identity(fb.ID, "6789012345678901"); id.Edges.Contact.DisplayName != "Ana Souza" {
			t.Fatalf("profile name: %q", id.Edges.Contact.DisplayName)
		}
		if n, _ := e.DB.Client.Message.Query().Where(message.ProviderMessageID("m_E1")).Count(context.Background()); n != 0 {
			t.Fatal("an echo became a customer message")
		}

		m = e.messageBy("MM1")
		if m.Body != "Two pics" || len(m.Edges.Attachments) != 2 {
			t.Fatalf("MMS: %q %d", m.Body, len(m.Edges.Attachments))
		}
		if id := e.identity(sms.ID, "+14155550199"); id.Edges.Contact.Phone == nil || *id.Edges.Contact.Phone != "+14155550199" {
			t.Fatalf("SMS sender not E.164: %+v", id)
		}
		// The provider's timestamp orders the conversation.
		if got := e.messageBy("wamid.T1").CreatedAt; time.Since(got) < 30*time.Second {
			t.Fatalf("created_at is arrival time, not the provider's: %v", got)
		}
	})
}

func basicAuth(r request) (string, string, bool) {
	req := &http.Request{Header: r.Header}
	return req.BasicAuth()
}

// TestDuplicateDeliveries delivers the same webhooks many times, at once
// and later, to two instances: each message is stored once, with one set of
// attachments.
func TestDuplicateDeliveries(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		a := newEnv(t, b)
		bb := newEnvOn(t, a.DB, a.API)
		wa := a.account(schematype.ChannelWhatsApp, waPhone)
		fb := a.account(schematype.ChannelFacebook, fbPage)
		sms := a.account(schematype.ChannelSMS, twFrom)
		img := pngBytes()
		var fetches atomic.Int32
		files := a.API.waMedia(map[string][]byte{"IMGD": img}, map[string]string{"IMGD": "image/png"})
		a.API.set(func(r request, w http.ResponseWriter) bool {
			if r.Path == "/v21.0/IMGD" {
				fetches.Add(1)
			}
			return files(r, w)
		})
		a.run()
		bb.run()
		bodies := []func(e *env) *http.Response{
			func(e *env) *http.Response {
				return e.postMeta(wa, waMedia("wamid.D1", "34600111222", "image", "IMGD", "image/png", sha(img), "dup"))
			},
			func(e *env) *http.Response { return e.postMeta(fb, fbText("m_D1", "555", "dup fb")) },
			func(e *env) *http.Response { return e.postTwilio(sms, twInbound("SMD1", "+14155550199", "dup sms")) },
		}
		var wg sync.WaitGroup
		for i := 0; i < 6; i++ {
			for _, post := range bodies {
				e := a
				if i%2 == 1 {
					e = bb
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if resp := post(e); resp.StatusCode != 200 {
						t.Errorf("delivery answered %d", resp.StatusCode)
					}
				}()
			}
		}
		wg.Wait()
		eventually(t, 20*time.Second, func() bool { return a.pendingEvents() == 0 }, "events processed")
		check := func() {
			t.Helper()
			for _, id := range []string{"wamid.D1", "m_D1", "SMD1"} {
				if n := a.Convs.stored(id) + bb.Convs.stored(id); n != 1 {
					t.Fatalf("%s stored %d times", id, n)
				}
				if n, _ := a.DB.Client.Message.Query().Where(message.ProviderMessageID(id)).Count(context.Background()); n != 1 {
					t.Fatalf("%s: %d rows", id, n)
				}
			}
			if n, _ := a.DB.Client.Attachment.Query().Count(context.Background()); n != 1 {
				t.Fatalf("attachments: %d (duplicates' downloads must be discarded)", n)
			}
			if n, _ := a.DB.Client.Conversation.Query().Count(context.Background()); n != 3 {
				t.Fatalf("conversations: %d", n)
			}
		}
		check()
		// Days later (as far as the event knows), once more.
		for _, post := range bodies {
			post(a)
		}
		eventually(t, 20*time.Second, func() bool { return a.pendingEvents() == 0 }, "late redeliveries processed")
		check()
		if n, _ := a.DB.Client.WebhookEvent.Query().Where(webhookevent.AttemptsGT(1)).Count(context.Background()); n != 0 {
			t.Fatalf("%d events were claimed more than once", n)
		}
		t.Logf("media lookups for 7 deliveries of one image: %d", fetches.Load())
	})
}
