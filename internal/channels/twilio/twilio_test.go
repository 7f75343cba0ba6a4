package twilio_test

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

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/channels/twilio"
)

func golden(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSignatureVector checks the published test vector (Twilio's
// documentation and SDK tests).
func TestSignatureVector(t *testing.T) {
	params := url.Values{
		"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"},
	}
	got := twilio.Signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params)
	if got != "0/KCTR6DLpKmkAf8muzZqo1nDgQ=" {
		t.Fatalf("signature %q", got)
	}
	// The same vector through Verify, from a form body in any order.
	p := twilio.New(nil)
	acct := &channels.Account{Config: schematype.ChannelConfig{AuthToken: "12345"}}
	body := []byte("To=%2B18005551212&Digits=1234&From=%2B12349013030&Caller=%2B12349013030&CallSid=CA1234567890ABCDE")
	req := func(sig, u string, b []byte) channels.SignedRequest {
		h := http.Header{}
		if sig != "" {
			h.Set("X-Twilio-Signature", sig)
		}
		return channels.SignedRequest{Header: h, Body: b, URL: u}
	}
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	cases := []struct {
		name string
		r    channels.SignedRequest
		acct *channels.Account
		want error
	}{
		{"vector", req(got, u, body), acct, nil},
		{"explicit default port", req(got, "https://mycompany.com:443/myapp.php?foo=1&bar=2", body), acct, nil},
		{"missing", req("", u, body), acct, channels.ErrNoSignature},
		{"other token", req(got, u, body), &channels.Account{Config: schematype.ChannelConfig{AuthToken: "54321"}}, channels.ErrBadSignature},
		{"other URL", req(got, "https://mycompany.com/myapp.php?foo=1&bar=3", body), acct, channels.ErrBadSignature},
		{"http instead of https", req(got, "http://mycompany.com/myapp.php?foo=1&bar=2", body), acct, channels.ErrBadSignature},
		{"param changed", req(got, u, []byte(strings.Replace(string(body), "Digits=1234", "Digits=1235", 1))), acct, channels.ErrBadSignature},
		{"param added", req(got, u, append(append([]byte(nil), body...), "&Extra=1"...)), acct, channels.ErrBadSignature},
		{"not base64", req("!!!", u, body), acct, channels.ErrBadSignature},
		{"bad form", req(got, u, []byte("%zz")), acct, channels.ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := p.Verify(c.r, c.acct); err != c.want {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
}

// TestParseGolden parses a hand-written webhook of every kind.
func TestParseGolden(t *testing.T) {
	base := "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages/MM00000000000000000000000000000002/Media/"
	in := func(sid, text string, media ...channels.MediaRef) *channels.Batch {
		return &channels.Batch{Messages: []channels.Message{{ProviderMessageID: sid, SenderID: "+14155550199", Text: text, Media: media}}}
	}
	st := func(s schematype.DeliveryStatus, reason string) *channels.Batch {
		return &channels.Batch{Statuses: []channels.Status{{ProviderMessageID: "SM00000000000000000000000000000010", Status: s, Reason: reason}}}
	}
	cases := map[string]*channels.Batch{
		"inbound_sms.form": in("SM00000000000000000000000000000001", "Hi, is my order shipped? 📦"),
		"inbound_mms.form": in("MM00000000000000000000000000000002", "Two photos",
			channels.MediaRef{Kind: "file", URL: base + "ME00000000000000000000000000000003", ContentType: "image/jpeg"},
			channels.MediaRef{Kind: "file", URL: base + "ME00000000000000000000000000000004", ContentType: "image/png"}),
		"inbound_mms_no_body.form": in("MM00000000000000000000000000000005", "",
			channels.MediaRef{Kind: "file", URL: base + "ME00000000000000000000000000000006", ContentType: "video/3gpp"}),
		"status_queued.form":      {},
		"status_sending.form":     {},
		"status_sent.form":        st(schematype.DeliverySent, ""),
		"status_delivered.form":   st(schematype.DeliveryDelivered, ""),
		"status_read.form":        st(schematype.DeliveryRead, ""),
		"status_undelivered.form": st(schematype.DeliveryFailed, "Twilio error 30003: unreachable destination handset"),
		"status_failed.form":      st(schematype.DeliveryFailed, "Twilio error 30007: Carrier violation"),
		"voice_call.form":         {},
	}
	files, _ := filepath.Glob("testdata/*.form")
	if len(files) != len(cases) {
		t.Fatalf("%d golden files, %d cases", len(files), len(cases))
	}
	p := twilio.New(nil)
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := p.Parse(golden(t, name))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				g, _ := json.MarshalIndent(got, "", "  ")
				t.Fatalf("got\n%s", g)
			}
		})
	}
	if _, err := p.Parse([]byte("Body=%zz")); err == nil {
		t.Fatal("a broken form parsed")
	}
}

func TestNormalizeNumber(t *testing.T) {
	for in, want := range map[string]string{
		"+14155550199":      "+14155550199",
		" 14155550199":      "+14155550199", // a + decoded as a space
		"+1 (415) 555-0199": "+14155550199",
		"0034600111222":     "+34600111222",
		"34600111222":       "+34600111222",
		"72345":             "72345",  // short code
		"PARLEY":            "PARLEY", // alphanumeric sender
		"whatsapp:+1415":    "whatsapp:+1415",
		"":                  "",
	} {
		if got := twilio.NormalizeNumber(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func account(base string) *channels.Account {
	return &channels.Account{ID: 3, Channel: schematype.ChannelSMS, ExternalID: "+14155550100",
		WebhookURL: "https://chat.example.com/webhooks/twilio/3",
		Config: schematype.ChannelConfig{AccountSID: "AC00000000000000000000000000000001", AuthToken: "tw-token",
			FromNumber: "+14155550100", APIBaseURL: base}}
}

// TestSendExactRequest checks the Messages API request: path with the
// account SID, basic auth, form To/From/Body/MediaUrl/StatusCallback.
func TestSendExactRequest(t *testing.T) {
	var path, user, pass, ct string
	var form url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, ct = r.URL.Path, r.Header.Get("Content-Type")
		user, pass, _ = r.BasicAuth()
		_ = r.ParseForm()
		form = r.PostForm
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		_, _ = io.WriteString(w, `{"sid":"SM00000000000000000000000000000099","status":"queued"}`)
	}))
	defer srv.Close()
	p := twilio.New(srv.Client())
	parts := p.Split(channels.Outgoing{Body: "Your photos", Media: []channels.OutMedia{
		{URL: "https://chat.example.com/attachments/1/a.jpg?exp=1&sig=a"}, {URL: "https://chat.example.com/attachments/2/b.png?exp=1&sig=b"}}})
	if len(parts) != 1 {
		t.Fatalf("one call carries the body and both files: %+v", parts)
	}
	id, err := p.Send(context.Background(), account(srv.URL), "+14155550199", parts[0])
	if err != nil || id != "SM00000000000000000000000000000099" {
		t.Fatalf("%q %v", id, err)
	}
	want := url.Values{
		"To": {"+14155550199"}, "From": {"+14155550100"}, "Body": {"Your photos"},
		"MediaUrl":       {"https://chat.example.com/attachments/1/a.jpg?exp=1&sig=a", "https://chat.example.com/attachments/2/b.png?exp=1&sig=b"},
		"StatusCallback": {"https://chat.example.com/webhooks/twilio/3"},
	}
	if path != "/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages.json" || user != "AC00000000000000000000000000000001" ||
		pass != "tw-token" || ct != "application/x-www-form-urlencoded" || !reflect.DeepEqual(form, want) {
		t.Fatalf("request %s %s:%s %s %v", path, user, pass, ct, form)
	}
}

func TestSendErrors(t *testing.T) {
	cases := []struct {
		status    int
		body      string
		retryable bool
		reason    string
	}{
		{400, `{"code":21211,"message":"The 'To' number +1555 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}`,
			false, "Twilio error 21211: The 'To' number +1555 is not a valid phone number."},
		{429, `{"code":20429,"message":"Too Many Requests","status":429}`, true, "Twilio error 20429: Too Many Requests"},
		{401, `{"code":20003,"message":"Authenticate","status":401}`, false, "Twilio error 20003: Authenticate"},
		{503, ``, true, "Twilio error: HTTP 503"},
	}
	for _, c := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(c.status)
			_, _ = io.WriteString(w, c.body)
		}))
		_, err := twilio.New(srv.Client()).Send(context.Background(), account(srv.URL), "+1", channels.Part{Text: "x"})
		srv.Close()
		se, ok := err.(*channels.SendError)
		if !ok || se.Retryable != c.retryable || se.Reason != c.reason {
			t.Errorf("%d: %v", c.status, err)
		}
	}
}

// TestFetchMedia follows Twilio's redirect to the file, sending the
// account's credentials to Twilio's host only.
func TestFetchMedia(t *testing.T) {
	var cdnAuth string
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cdnAuth = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "image/jpeg")
		_, _ = io.WriteString(w, "JPEG")
	}))
	defer cdn.Close()
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "AC00000000000000000000000000000001" || p != "tw-token" {
			w.WriteHeader(401)
			return
		}
		http.Redirect(w, r, cdn.URL+"/bucket/file?X-Amz-Signature=x", http.StatusTemporaryRedirect)
	}))
	defer api.Close()
	p := twilio.New(channels.NewHTTPClient())
	dl, err := p.Fetch(context.Background(), account(api.URL), channels.MediaRef{URL: api.URL + "/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1", ContentType: "image/jpeg"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(dl.Body)
	dl.Body.Close()
	if string(b) != "JPEG" || cdnAuth != "" {
		t.Fatalf("body %q, credentials at the CDN %q", b, cdnAuth)
	}
	// A media URL on a foreign host gets no credentials.
	_, err = p.Fetch(context.Background(), account(api.URL), channels.MediaRef{URL: cdn.URL + "/x"})
	if err != nil || cdnAuth != "" {
		t.Fatalf("foreign host: %v %q", err, cdnAuth)
	}
}

func TestAck(t *testing.T) {
	w := httptest.NewRecorder()
	twilio.New(nil).Ack(w)
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/xml" ||
		w.Body.String() != `<?xml version="1.0" encoding="UTF-8"?><Response></Response>` {
		t.Fatalf("%d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}
}

// FuzzParse must never panic; seeded with the golden webhooks.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.form")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	p := twilio.New(nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		if b, err := p.Parse(body); err == nil && b == nil {
			t.Fatal("nil batch without an error")
		}
		_ = twilio.NormalizeNumber(string(body))
	})
}
