package messenger_test

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
	"github.com/parleyhq/parley/internal/channels/messenger"
)

const (
	page = "112233445566778"
	psid = "6789012345678901"
)

var t0 = time.UnixMilli(1735689600123)

func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func msg(mid, text string, media ...channels.MediaRef) *channels.Batch {
	return &channels.Batch{Messages: []channels.Message{{Route: page, ProviderMessageID: mid, SenderID: psid, At: t0, Text: text, Media: media}}}
}

// TestParseGolden parses a hand-written payload of every event type and
// checks exactly what becomes of it; echoes and reactions become nothing.
func TestParseGolden(t *testing.T) {
	cases := map[string]*channels.Batch{
		"text.json":        msg("m_TEXT1", "Hi! Is the store open on Sunday?"),
		"quick_reply.json": msg("m_QR1", "Yes please"),
		"reply_to.json":    msg("m_RT1", "this one"),
		"image.json": msg("m_IMG1", "", channels.MediaRef{Kind: "image",
			URL: "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo_123.jpg?_nc_cat=1"}),
		"sticker.json": msg("m_STK1", "", channels.MediaRef{Kind: "image", URL: "https://scontent.xx.fbcdn.net/v/t39.1997-6/sticker.png"}),
		"video.json":   msg("m_VID1", "look", channels.MediaRef{Kind: "video", URL: "https://video.xx.fbcdn.net/v/t42.3356-2/clip.mp4"}),
		"audio.json":   msg("m_AUD1", "", channels.MediaRef{Kind: "audio", URL: "https://cdn.fbsbx.com/v/t59.3654-21/audioclip-1.mp4"}),
		"file.json":    msg("m_FILE1", "", channels.MediaRef{Kind: "file", URL: "https://cdn.fbsbx.com/v/t59.2708-21/invoice.pdf"}),
		"location.json": msg("m_LOC1", "Location: Pinned Location\n"+
			"https://www.google.com/maps/search/?api=1&query=40.4168,-3.7038"),
		"fallback.json": msg("m_FB1", "check this\nOur spring catalogue\nhttps://example.com/catalogue"),
		"echo.json":     {},
		"delivery.json": {
			Statuses:   []channels.Status{{Route: page, ProviderMessageID: "m_OUT1", Status: schematype.DeliveryDelivered, At: t0}},
			Watermarks: []channels.Watermark{{Route: page, Recipient: psid, Status: schematype.DeliveryDelivered, Until: t0.Add(time.Second)}},
		},
		"delivery_watermark_only.json": {
			Watermarks: []channels.Watermark{{Route: page, Recipient: psid, Status: schematype.DeliveryDelivered, Until: t0.Add(time.Second)}},
		},
		"read.json": {
			Watermarks: []channels.Watermark{{Route: page, Recipient: psid, Status: schematype.DeliveryRead, Until: t0.Add(2 * time.Second)}},
		},
		"postback.json":         msg("m_PB1", "Talk to an agent"),
		"postback_legacy.json":  msg("postback:"+psid+":1735689600123", "Get Started"),
		"reaction.json":         {},
		"object_instagram.json": {},
		"batch.json": {Messages: []channels.Message{
			{Route: page, ProviderMessageID: "m_B1", SenderID: psid, At: t0, Text: "first"},
			{Route: "999888777", ProviderMessageID: "m_B2", SenderID: "1111", At: t0.Add(time.Millisecond), Text: "second page"},
		}},
	}
	files, _ := filepath.Glob("testdata/*.json")
	if len(files) != len(cases) {
		t.Fatalf("%d golden files, %d cases: every file needs its expectation", len(files), len(cases))
	}
	p := messenger.New("", nil)
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
	p := messenger.New("", nil)
	for _, body := range []string{``, `{`, `[1]`, `{"object":"page","entry":[{"messaging":{}}]}`,
		`{"object":"page","entry":[{"messaging":[{"timestamp":"soon"}]}]}`} {
		if _, err := p.Parse([]byte(body)); err == nil {
			t.Errorf("%q parsed", body)
		}
	}
}

func account(base string) *channels.Account {
	return &channels.Account{ID: 9, Channel: schematype.ChannelFacebook, ExternalID: page,
		Config: schematype.ChannelConfig{PageID: page, PageAccessToken: "EAAP-page-token", AppSecret: "m-secret",
			VerifyToken: "vt", APIBaseURL: base}}
}

func TestSignatureAndHandshake(t *testing.T) {
	p := messenger.New("", nil)
	body := golden(t, "text.json")
	hdr := http.Header{"X-Hub-Signature-256": {channels.HubSignature("m-secret", body)}}
	if err := p.Verify(channels.SignedRequest{Header: hdr, Body: body}, account("")); err != nil {
		t.Fatal(err)
	}
	if err := p.Verify(channels.SignedRequest{Header: hdr, Body: append(body, '\n')}, account("")); err != channels.ErrBadSignature {
		t.Fatalf("tampered body: %v", err)
	}
	if err := p.Verify(channels.SignedRequest{Header: http.Header{}, Body: body}, account("")); err != channels.ErrNoSignature {
		t.Fatalf("missing: %v", err)
	}
	q := url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {"vt"}, "hub.challenge": {"CHALLENGE_ACCEPTED"}}
	if c, ok := p.Handshake(q, account("")); !ok || c != "CHALLENGE_ACCEPTED" {
		t.Fatal("handshake refused")
	}
	q.Set("hub.verify_token", "vt2")
	if _, ok := p.Handshake(q, account("")); ok {
		t.Fatal("wrong token accepted")
	}
}

type recorded struct {
	Method, Path string
	Query        url.Values
	Body         map[string]any
}

// TestSendExactRequests checks the Send API requests: /me/messages with the
// page token as access_token, recipient, messaging_type RESPONSE, and a
// text or one attachment by URL.
func TestSendExactRequests(t *testing.T) {
	var got []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec := recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()}
		_ = json.Unmarshal(b, &rec.Body)
		got = append(got, rec)
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		_, _ = io.WriteString(w, `{"recipient_id":"`+psid+`","message_id":"m_SENT`+string(rune('0'+len(got)))+`"}`)
	}))
	defer srv.Close()
	p := messenger.New("v21.0", srv.Client())
	acct := account(srv.URL)
	parts := p.Split(channels.Outgoing{Body: "Here it is", Media: []channels.OutMedia{{URL: "https://c.example/attachments/3/p.png?exp=1&sig=x", ContentType: "image/png"}}})
	if len(parts) != 2 {
		t.Fatalf("text and attachment go separately: %+v", parts)
	}
	for i, part := range parts {
		id, err := p.Send(context.Background(), acct, psid, part)
		if err != nil || id != "m_SENT"+string(rune('1'+i)) {
			t.Fatalf("send: %q %v", id, err)
		}
	}
	q := url.Values{"access_token": {"EAAP-page-token"}}
	want := []recorded{
		{Method: "POST", Path: "/v21.0/me/messages", Query: q, Body: map[string]any{
			"recipient": map[string]any{"id": psid}, "messaging_type": "RESPONSE", "message": map[string]any{"text": "Here it is"}}},
		{Method: "POST", Path: "/v21.0/me/messages", Query: q, Body: map[string]any{
			"recipient": map[string]any{"id": psid}, "messaging_type": "RESPONSE", "message": map[string]any{"attachment": map[string]any{
				"type": "image", "payload": map[string]any{"url": "https://c.example/attachments/3/p.png?exp=1&sig=x", "is_reusable": false}}}}},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		t.Fatalf("requests:\n%s", g)
	}
}

func TestSendErrorsNeverLeakToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		_, _ = io.WriteString(w, `{"error":{"message":"(#10) This message is sent outside of allowed window.","type":"OAuthException","code":10,"error_subcode":2018278,"fbtrace_id":"A1"}}`)
	}))
	p := messenger.New("", srv.Client())
	_, err := p.Send(context.Background(), account(srv.URL), psid, channels.Part{Text: "late"})
	se, ok := err.(*channels.SendError)
	if !ok || se.Retryable || se.Reason != "Messenger error 10: (#10) This message is sent outside of allowed window." {
		t.Fatalf("got %v", err)
	}
	srv.Close() // now a network error: its text must not carry the URL and its token
	_, err = p.Send(context.Background(), account(srv.URL), psid, channels.Part{Text: "x"})
	if err == nil || strings.Contains(channels.NetworkReason(err), "EAAP-page-token") {
		t.Fatalf("network error reason: %q", channels.NetworkReason(err))
	}
}

func TestProfileName(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v21.0/"+psid || r.URL.Query().Get("fields") != "first_name,last_name" ||
			r.URL.Query().Get("access_token") != "EAAP-page-token" {
			t.Errorf("profile request %s", r.URL)
		}
		_, _ = io.WriteString(w, `{"first_name":"Ana","last_name":"Souza","id":"`+psid+`"}`)
	}))
	defer srv.Close()
	name, err := messenger.New("", srv.Client()).ProfileName(context.Background(), account(srv.URL), psid)
	if err != nil || name != "Ana Souza" {
		t.Fatalf("%q %v", name, err)
	}
}

func TestFetchWithoutCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.URL.Query().Get("access_token") != "" {
			t.Errorf("credentials sent to the CDN")
		}
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = io.WriteString(w, "jpeg")
	}))
	defer srv.Close()
	dl, err := messenger.New("", srv.Client()).Fetch(context.Background(), account(""), channels.MediaRef{URL: srv.URL + "/v/photo_1.jpg?x=1"})
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Body.Close()
	if dl.ContentType != "image/jpeg" || dl.Filename != "photo_1.jpg" {
		t.Fatalf("%+v", dl)
	}
}

// FuzzParse must never panic; seeded with the golden payloads.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	p := messenger.New("", nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		if b, err := p.Parse(body); err == nil && b == nil {
			t.Fatal("nil batch without an error")
		}
	})
}
