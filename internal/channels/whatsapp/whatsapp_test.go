package whatsapp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/channels/whatsapp"
)

func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	t0    = time.Unix(1735689600, 0)
	tStat = time.Unix(1735689700, 0)
	route = "106540352242922"
)

func one(m channels.Message) *channels.Batch { return &channels.Batch{Messages: []channels.Message{m}} }

func msg(text string, media ...channels.MediaRef) channels.Message {
	return channels.Message{Route: route, ProviderMessageID: "wamid.TEST1", SenderID: "34600111222",
		SenderName: "Lucía Pérez", At: t0, Text: text, Media: media}
}

func status(st schematype.DeliveryStatus, reason string) *channels.Batch {
	return &channels.Batch{Statuses: []channels.Status{{Route: route, ProviderMessageID: "wamid.OUT1", Status: st, Reason: reason, At: tStat}}}
}

// TestParseGolden parses a hand-written payload of every message and status
// type and checks exactly what becomes of it.
func TestParseGolden(t *testing.T) {
	cases := map[string]*channels.Batch{
		"text.json":               one(msg("Hola, ¿tienen envío a Sevilla?")),
		"text_reply_context.json": one(msg("Sí, ese")),
		"image.json": one(msg("La caja llegó rota", channels.MediaRef{Kind: "image", ID: "1479537139650973",
			ContentType: "image/jpeg", SHA256: "dGhpcyBpcyBub3QgYSByZWFsIGhhc2ggYnV0IG9rIQ=="})),
		"video.json": one(msg("Mire", channels.MediaRef{Kind: "video", ID: "2093840234987234", ContentType: "video/mp4", SHA256: "abc"})),
		"audio_voice.json": one(msg("", channels.MediaRef{Kind: "voice", ID: "9823749823749",
			ContentType: "audio/ogg; codecs=opus", SHA256: "def"})),
		"document.json": one(msg("Factura de marzo", channels.MediaRef{Kind: "document", ID: "5529384729384",
			ContentType: "application/pdf", Filename: "factura-0323.pdf", SHA256: "ghi"})),
		"sticker.json": one(msg("", channels.MediaRef{Kind: "sticker", ID: "7612873612873", ContentType: "image/webp", SHA256: "jkl"})),
		"location.json": one(msg("Location: Catedral de Sevilla, Av. de la Constitución, s/n, 41004 Sevilla\n" +
			"https://www.google.com/maps/search/?api=1&query=37.3890924,-5.9844589")),
		"contacts.json":           one(msg("Contact: Marta Gil, +34 611 222 333, marta@example.com, Gil y Asociados")),
		"interactive_button.json": one(msg("Sí, confirmar")),
		"interactive_list.json":   one(msg("Martes 10:00\nTienda del centro")),
		"button.json":             one(msg("Dejar de recibir")),
		"reaction.json":           one(msg("Reacted 👍 to a message")),
		"reaction_removed.json":   {},
		"unsupported.json": one(msg("[unsupported message: Message type unknown: " +
			"Message type is currently not supported. (131051)]")),
		"status_sent.json":      status(schematype.DeliverySent, ""),
		"status_delivered.json": status(schematype.DeliveryDelivered, ""),
		"status_read.json":      status(schematype.DeliveryRead, ""),
		"status_failed.json": status(schematype.DeliveryFailed,
			"WhatsApp: Message undeliverable: Message could not be delivered to the recipient. (131026)"),
		"batch.json": {
			Messages: []channels.Message{
				{Route: route, ProviderMessageID: "wamid.A", SenderID: "34600111222", SenderName: "Lucía Pérez", At: t0, Text: "uno"},
				{Route: route, ProviderMessageID: "wamid.B", SenderID: "447700900123", SenderName: "Jon", At: t0.Add(time.Second), Text: "two"},
			},
			Statuses: []channels.Status{{Route: "999000999", ProviderMessageID: "wamid.OUT2", Status: schematype.DeliveryDelivered, At: tStat}},
		},
		"field_account_update.json": {},
		"object_page.json":          {},
	}
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) != len(cases) {
		t.Fatalf("%d golden files, %d cases: every file needs its expectation", len(files), len(cases))
	}
	p := whatsapp.New("", nil)
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := p.Parse(golden(t, name))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				g, _ := json.MarshalIndent(got, "", "  ")
				w, _ := json.MarshalIndent(want, "", "  ")
				t.Fatalf("got\n%s\nwant\n%s", g, w)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	p := whatsapp.New("", nil)
	for _, body := range []string{``, `{`, `[]`, `"x"`, `{"object":"whatsapp_business_account","entry":{}}`,
		`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"id":1}]}}]}]}`} {
		if _, err := p.Parse([]byte(body)); err == nil {
			t.Errorf("%q parsed", body)
		}
	}
}

func account(base string) *channels.Account {
	return &channels.Account{ID: 7, Channel: schematype.ChannelWhatsApp, ExternalID: "106540352242922",
		Config: schematype.ChannelConfig{PhoneNumberID: "106540352242922", AccessToken: "EAAG-token",
			AppSecret: "app-secret", VerifyToken: "verify-me", APIBaseURL: base}}
}

func TestSignature(t *testing.T) {
	p := whatsapp.New("", nil)
	body := golden(t, "text.json")
	acct := account("")
	sig := channels.HubSignature("app-secret", body)
	h := func(v string) http.Header {
		hd := http.Header{}
		if v != "" {
			hd.Set("X-Hub-Signature-256", v)
		}
		return hd
	}
	cases := []struct {
		name string
		hdr  http.Header
		body []byte
		want error
	}{
		{"valid", h(sig), body, nil},
		{"uppercase hex", h("sha256=" + strings.ToUpper(strings.TrimPrefix(sig, "sha256="))), body, nil},
		{"missing", h(""), body, channels.ErrNoSignature},
		{"other secret", h(channels.HubSignature("other", body)), body, channels.ErrBadSignature},
		{"body changed", h(sig), append([]byte(" "), body...), channels.ErrBadSignature},
		{"sha1 scheme", h("sha1=" + strings.TrimPrefix(sig, "sha256=")), body, channels.ErrBadSignature},
		{"not hex", h("sha256=zz"), body, channels.ErrBadSignature},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := p.Verify(channels.SignedRequest{Header: c.hdr, Body: c.body}, acct); err != c.want {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	// An account without an app secret accepts nothing.
	noSecret := account("")
	noSecret.Config.AppSecret = ""
	if err := p.Verify(channels.SignedRequest{Header: h(channels.HubSignature("", body)), Body: body}, noSecret); err == nil {
		t.Fatal("an empty app secret verified a signature")
	}
}

func TestHandshake(t *testing.T) {
	p := whatsapp.New("", nil)
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"verify-me"}, "hub.challenge": {"1158201444"}}
	if c, ok := p.Handshake(q, account("")); !ok || c != "1158201444" {
		t.Fatalf("handshake: %q %v", c, ok)
	}
	q.Set("hub.verify_token", "wrong")
	if _, ok := p.Handshake(q, account("")); ok {
		t.Fatal("wrong token accepted")
	}
	q.Set("hub.verify_token", "verify-me")
	q.Set("hub.mode", "unsubscribe")
	if _, ok := p.Handshake(q, account("")); ok {
		t.Fatal("wrong mode accepted")
	}
}

// double is a local WhatsApp Cloud API that records requests.
type double struct {
	t       *testing.T
	srv     *httptest.Server
	answers []func(w http.ResponseWriter)
	got     []recorded
}

type recorded struct {
	Method, Path, Query, Auth, ContentType string
	Body                                   map[string]any
}

func newDouble(t *testing.T, answers ...func(w http.ResponseWriter)) *double {
	d := &double{t: t, answers: answers}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec := recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Auth: r.Header.Get("Authorization"),
			ContentType: r.Header.Get("Content-Type")}
		_ = json.Unmarshal(b, &rec.Body)
		n := len(d.got)
		d.got = append(d.got, rec)
		if n < len(d.answers) {
			d.answers[n](w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"messaging_product":"whatsapp","contacts":[{"input":"34600111222","wa_id":"34600111222"}],"messages":[{"id":"wamid.SENT`+string(rune('A'+n))+`"}]}`)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

func jsonAnswer(status int, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// TestSendExactRequests checks the requests the Cloud API expects: path
// with version and phone number id, bearer token, JSON body.
func TestSendExactRequests(t *testing.T) {
	d := newDouble(t)
	p := whatsapp.New("v21.0", d.srv.Client())
	acct := account(d.srv.URL)
	ctx := context.Background()
	id, err := p.Send(ctx, acct, "34600111222", channels.Part{Text: "Hola, mire https://example.com"})
	if err != nil || id != "wamid.SENTA" {
		t.Fatalf("send: %q %v", id, err)
	}
	_, err = p.Send(ctx, acct, "34600111222", channels.Part{Text: "la factura", Media: []channels.OutMedia{{
		URL: "https://chat.example.com/attachments/5/f.pdf?exp=1&sig=ab", ContentType: "application/pdf", Filename: "f.pdf"}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Send(ctx, acct, "34600111222", channels.Part{Media: []channels.OutMedia{{
		URL: "https://chat.example.com/attachments/6/a.ogg?exp=1&sig=cd", ContentType: "audio/ogg"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []recorded{
		{Method: "POST", Path: "/v21.0/106540352242922/messages", Auth: "Bearer EAAG-token", ContentType: "application/json",
			Body: map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34600111222",
				"type": "text", "text": map[string]any{"body": "Hola, mire https://example.com", "preview_url": true}}},
		{Method: "POST", Path: "/v21.0/106540352242922/messages", Auth: "Bearer EAAG-token", ContentType: "application/json",
			Body: map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34600111222",
				"type": "document", "document": map[string]any{"link": "https://chat.example.com/attachments/5/f.pdf?exp=1&sig=ab",
					"caption": "la factura", "filename": "f.pdf"}}},
		{Method: "POST", Path: "/v21.0/106540352242922/messages", Auth: "Bearer EAAG-token", ContentType: "application/json",
			Body: map[string]any{"messaging_product": "whatsapp", "recipient_type": "individual", "to": "34600111222",
				"type": "audio", "audio": map[string]any{"link": "https://chat.example.com/attachments/6/a.ogg?exp=1&sig=cd"}}},
	}
	if !reflect.DeepEqual(d.got, want) {
		g, _ := json.MarshalIndent(d.got, "", "  ")
		t.Fatalf("requests:\n%s", g)
	}
}

func TestSendErrors(t *testing.T) {
	cases := []struct {
		name      string
		answer    func(w http.ResponseWriter)
		retryable bool
		after     time.Duration
		reason    string
	}{
		{"24h window", jsonAnswer(400, `{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}`),
			false, 0, "WhatsApp error 131047: (#131047) Re-engagement message (Message failed to send because more than 24 hours have passed since the customer last replied to this number.)"},
		{"undeliverable", jsonAnswer(400, `{"error":{"message":"Message Undeliverable.","code":131026}}`), false, 0, "WhatsApp error 131026: Message Undeliverable."},
		{"token expired", jsonAnswer(401, `{"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190}}`), false, 0,
			"WhatsApp error 190: Error validating access token: Session has expired"},
		{"throughput", jsonAnswer(400, `{"error":{"message":"(#130429) Rate limit hit","code":130429}}`), true, 0, ""},
		{"pair rate", jsonAnswer(400, `{"error":{"message":"(#131056) Pair rate limit hit","code":131056}}`), true, 0, ""},
		{"429 retry-after", func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "7")
			jsonAnswer(429, `{"error":{"message":"slow down","code":4}}`)(w)
		}, true, 7 * time.Second, ""},
		{"5xx no json", func(w http.ResponseWriter) { w.WriteHeader(502); _, _ = io.WriteString(w, "<html>bad gateway</html>") }, true, 0, "WhatsApp error: HTTP 502"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := newDouble(t, c.answer)
			p := whatsapp.New("", d.srv.Client())
			_, err := p.Send(context.Background(), account(d.srv.URL), "1", channels.Part{Text: "x"})
			se, ok := err.(*channels.SendError)
			if !ok {
				t.Fatalf("want a SendError, got %v", err)
			}
			if se.Retryable != c.retryable || se.RetryAfter != c.after || (c.reason != "" && se.Reason != c.reason) {
				t.Fatalf("got %+v", se)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	p := whatsapp.New("", nil)
	img := channels.OutMedia{URL: "u1", ContentType: "image/png"}
	aud := channels.OutMedia{URL: "u2", ContentType: "audio/ogg"}
	if got := p.Split(channels.Outgoing{Body: "hi", Media: []channels.OutMedia{img}}); len(got) != 1 || got[0].Text != "hi" {
		t.Fatalf("one image takes the text as caption: %+v", got)
	}
	if got := p.Split(channels.Outgoing{Body: "hi", Media: []channels.OutMedia{aud}}); len(got) != 2 || got[0].Text != "hi" || len(got[1].Media) != 1 {
		t.Fatalf("audio has no caption: %+v", got)
	}
	if got := p.Split(channels.Outgoing{Body: "hi", Media: []channels.OutMedia{img, aud}}); len(got) != 3 {
		t.Fatalf("text then each file: %+v", got)
	}
	long := strings.Repeat("palabra ", 1000)
	if got := p.Split(channels.Outgoing{Body: long}); len(got) != 2 {
		t.Fatalf("8000 characters take two messages: %d", len(got))
	}
}

// TestFetchMedia resolves a media id to its URL and downloads it with the
// bearer token, both under the configured base URL.
func TestFetchMedia(t *testing.T) {
	var paths, auths []string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths, auths = append(paths, r.URL.Path), append(auths, r.Header.Get("Authorization"))
		switch r.URL.Path {
		case "/v21.0/1479537139650973":
			_, _ = io.WriteString(w, `{"messaging_product":"whatsapp","url":"`+srv.URL+`/whatsapp_business/attachments/?mid=1479537139650973&ext=1","mime_type":"image/jpeg","sha256":"abc123","file_size":"5","id":"1479537139650973"}`)
		case "/whatsapp_business/attachments/":
			_, _ = io.WriteString(w, "bytes")
		case "/v21.0/gone":
			jsonAnswer(404, `{"error":{"message":"Unsupported get request","code":100}}`)(w)
		default:
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	p := whatsapp.New("", srv.Client())
	dl, err := p.Fetch(context.Background(), account(srv.URL), channels.MediaRef{ID: "1479537139650973", Kind: "image"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(dl.Body)
	dl.Body.Close()
	if string(b) != "bytes" || dl.ContentType != "image/jpeg" || dl.SHA256 != "abc123" {
		t.Fatalf("download: %q %+v", b, dl)
	}
	if !reflect.DeepEqual(paths, []string{"/v21.0/1479537139650973", "/whatsapp_business/attachments/"}) ||
		auths[0] != "Bearer EAAG-token" || auths[1] != "Bearer EAAG-token" {
		t.Fatalf("requests: %v %v", paths, auths)
	}
	_, err = p.Fetch(context.Background(), account(srv.URL), channels.MediaRef{ID: "gone"})
	var me *channels.MediaError
	if !asMedia(err, &me) || !me.Permanent {
		t.Fatalf("a 404 media id is permanent: %v", err)
	}
	_, err = p.Fetch(context.Background(), account(srv.URL), channels.MediaRef{ID: "boom"})
	if !asMedia(err, &me) || me.Permanent {
		t.Fatalf("a 500 is worth a retry: %v", err)
	}
}

func asMedia(err error, me **channels.MediaError) bool {
	m, ok := err.(*channels.MediaError)
	*me = m
	return ok
}

// FuzzParse feeds the parser arbitrary bodies, seeded with the golden
// payloads: it must never panic.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	p := whatsapp.New("", nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := p.Parse(body)
		if err == nil && b == nil {
			t.Fatal("nil batch without an error")
		}
	})
}
