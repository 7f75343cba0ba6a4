package channels_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/store/storetest"
)

const waSend = "/v21.0/" + waPhone + "/messages"

// sentTexts lists the text bodies the double received on WhatsApp.
func (d *double) sentTexts() []string {
	var out []string
	for _, r := range d.requests(waSend) {
		if txt, ok := r.JSON()["text"].(map[string]any); ok {
			out = append(out, fmt.Sprint(txt["body"]))
		}
	}
	return out
}

func fail(status int, body string, header ...string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// script answers the first sends with the given failures, then accepts.
func script(answers ...func(w http.ResponseWriter)) func(r request, w http.ResponseWriter) bool {
	var mu sync.Mutex
	n := 0
	return func(r request, w http.ResponseWriter) bool {
		if r.Method != http.MethodPost {
			return false
		}
		mu.Lock()
		i := n
		n++
		mu.Unlock()
		if i < len(answers) && answers[i] != nil {
			answers[i](w)
			return true
		}
		return false
	}
}

// TestOutboxRetryThenSuccess: a 5xx and a 429 are retried with backoff,
// the message is SENT with the provider's id, and the next message of the
// conversation waits for it, so the customer gets them in order.
func TestOutboxRetryThenSuccess(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		wa := e.account(schematype.ChannelWhatsApp, waPhone)
		conv := e.customer(wa, "34600111222")
		m1, m2 := e.outbound(conv, "first"), e.outbound(conv, "second")
		e.API.set(script(
			fail(503, `{"error":{"message":"Service temporarily unavailable","code":2}}`),
			fail(429, `{"error":{"message":"(#130429) Rate limit hit","code":130429}}`, "Retry-After", "0"),
		))
		e.drainOutbox()
		if got := e.API.sentTexts(); strings.Join(got, ",") != "first,first,first,second" {
			t.Fatalf("requests: %v", got)
		}
		m := e.reload(m1)
		if status(m) != "SENT" || m.Attempts != 3 || m.ProviderMessageID == nil || !strings.HasPrefix(*m.ProviderMessageID, "wamid.out") ||
			m.NextAttemptAt != nil || m.LeaseUntil != nil {
			t.Fatalf("after retries: %s attempts %d id %v", status(m), m.Attempts, m.ProviderMessageID)
		}
		if status(e.reload(m2)) != "SENT" {
			t.Fatal("second not sent")
		}
		// The exact request.
		r := e.API.requests(waSend)[0]
		if r.Header.Get("Authorization") != "Bearer wa-token" || r.JSON()["to"] != "34600111222" || r.JSON()["messaging_product"] != "whatsapp" {
			t.Fatalf("request: %v %v", r.Header, r.JSON())
		}
	})
}

// TestOutboxFailures: a permanent refusal fails at once with the
// provider's reason; retryable failures fail after the last attempt.
func TestOutboxFailures(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		wa := e.account(schematype.ChannelWhatsApp, waPhone)
		conv := e.customer(wa, "34600111222")
		m := e.outbound(conv, "too late")
		e.API.set(script(fail(400, `{"error":{"message":"(#131047) Re-engagement message","type":"OAuthException","code":131047,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},"fbtrace_id":"AbC"}}`)))
		e.drainOutbox()
		got := e.reload(m)
		if status(got) != "FAILED" || got.FailureReason == nil || *got.FailureReason !=
			"WhatsApp error 131047: (#131047) Re-engagement message (Message failed to send because more than 24 hours have passed since the customer last replied to this number.)" {
			t.Fatalf("permanent: %s %v", status(got), got.FailureReason)
		}
		if n := len(e.API.requests(waSend)); n != 1 {
			t.Fatalf("a permanent failure was retried: %d requests", n)
		}

		e.Svc.OutboxAttempts = 3
		down := e.outbound(conv, "provider down")
		e.API.set(func(r request, w http.ResponseWriter) bool {
			fail(500, `{"error":{"message":"An unexpected error has occurred. Please retry your request later.","type":"OAuthException","code":2}}`)(w)
			return true
		})
		e.drainOutbox()
		got = e.reload(down)
		if status(got) != "FAILED" || got.FailureReason == nil ||
			*got.FailureReason != "WhatsApp error 2: An unexpected error has occurred. Please retry your request later. (gave up after 3 attempts)" {
			t.Fatalf("gave up: %s %v", status(got), got.FailureReason)
		}
		if n := len(e.API.requests(waSend)); n != 4 {
			t.Fatalf("requests: %d, want 1 + 3", n)
		}

		// Network failure: retried, then failed without leaking URLs.
		fb := e.account(schematype.ChannelFacebook, fbPage)
		fconv := e.customer(fb, "6789")
		cfg := fb.Config
		cfg.APIBaseURL = "http://127.0.0.1:1" // nothing listens there
		e.DB.Client.ChannelAccount.UpdateOneID(fb.ID).SetConfig(cfg).ExecX(context.Background())
		lost := e.outbound(fconv, "into the void")
		e.drainOutbox()
		got = e.reload(lost)
		if status(got) != "FAILED" || !strings.HasPrefix(*got.FailureReason, "could not reach the provider") ||
			strings.Contains(*got.FailureReason, "fb-token") || !strings.HasSuffix(*got.FailureReason, "(gave up after 3 attempts)") {
			t.Fatalf("network: %s %q", status(got), *got.FailureReason)
		}
	})
}

// TestOutboxRestartRecovery: a message whose worker died (lease expired)
// is sent by a new instance, once; one leased by a live worker is left
// alone until its lease runs out.
func TestOutboxRestartRecovery(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		wa := e.account(schematype.ChannelWhatsApp, waPhone)
		ctx := context.Background()
		dead := e.outbound(e.customer(wa, "111"), "orphaned by a crash")
		e.DB.Client.Message.UpdateOneID(dead.ID).SetLeaseUntil(time.Now().Add(-time.Second)).SetAttempts(1).ExecX(ctx)
		busy := e.outbound(e.customer(wa, "222"), "a live worker has it")
		e.DB.Client.Message.UpdateOneID(busy.ID).SetLeaseUntil(time.Now().Add(time.Hour)).SetAttempts(1).ExecX(ctx)

		restarted := newEnvOn(t, e.DB, e.API)
		for i := 0; i < 3; i++ {
			if _, err := restarted.Svc.DeliverDue(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if got := e.API.sentTexts(); strings.Join(got, "|") != "orphaned by a crash" {
			t.Fatalf("sent: %v", got)
		}
		if m := e.reload(dead); status(m) != "SENT" || m.Attempts != 2 {
			t.Fatalf("recovered: %s %d", status(m), m.Attempts)
		}
		if status(e.reload(busy)) != "PENDING" {
			t.Fatal("a leased message was taken")
		}
		// The live worker died too.
		e.DB.Client.Message.UpdateOneID(busy.ID).SetLeaseUntil(time.Now().Add(-time.Millisecond)).ExecX(ctx)
		restarted.drainOutbox()
		if got := e.API.sentTexts(); len(got) != 2 || got[1] != "a live worker has it" {
			t.Fatalf("sent: %v", got)
		}
	})
}

// TestOutboxExactlyOnceAcrossInstances: two instances' outbox workers run
// over one database; each message is sent once and each customer gets
// their messages in order.
func TestOutboxExactlyOnceAcrossInstances(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		a := newEnv(t, b)
		bb := newEnvOn(t, a.DB, a.API)
		wa := a.account(schematype.ChannelWhatsApp, waPhone)
		const convs, per = 6, 4
		for c := 0; c < convs; c++ {
			conv := a.customer(wa, fmt.Sprint(34600000100+c))
			for i := 0; i < per; i++ {
				a.outbound(conv, fmt.Sprintf("c%d m%d", c, i))
			}
		}
		// Slow answers widen the window for a double send.
		a.API.set(func(r request, w http.ResponseWriter) bool {
			time.Sleep(2 * time.Millisecond)
			return false
		})
		a.run()
		bb.run()
		eventually(t, 30*time.Second, func() bool {
			n, _ := a.DB.Client.Message.Query().Where(message.DeliveryStatusEQ(schematype.DeliveryPending)).Count(context.Background())
			return n == 0
		}, "all sent")
		seen := map[string]int{}
		order := map[string][]string{}
		for _, r := range a.API.requests(waSend) {
			body := fmt.Sprint(r.JSON()["text"].(map[string]any)["body"])
			seen[body]++
			to := fmt.Sprint(r.JSON()["to"])
			order[to] = append(order[to], body)
		}
		if len(seen) != convs*per {
			t.Fatalf("%d distinct messages sent, want %d", len(seen), convs*per)
		}
		for body, n := range seen {
			if n != 1 {
				t.Fatalf("%q sent %d times", body, n)
			}
		}
		for to, bodies := range order {
			for i, body := range bodies {
				if !strings.HasSuffix(body, fmt.Sprintf("m%d", i)) {
					t.Fatalf("%s got %v: out of order", to, bodies)
				}
			}
		}
	})
}

// TestOutboxMultipartResume: a reply WhatsApp takes in three calls (text,
// image, document) fails at the second; the retry resumes there instead of
// sending the text again. The files go as signed links under the public
// URL.
func TestOutboxMultipartResume(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		wa := e.account(schematype.ChannelWhatsApp, waPhone)
		ctx := context.Background()
		img := e.DB.Client.Attachment.Create().SetFilename("photo.png").SetContentType("image/png").SetSize(3).SetSha256(sha([]byte("abc"))).SaveX(ctx)
		doc := e.DB.Client.Attachment.Create().SetFilename("terms.pdf").SetContentType("application/pdf").SetSize(3).SetSha256(sha([]byte("def"))).SaveX(ctx)
		m := e.outbound(e.customer(wa, "34600111222"), "here are the files", img.ID, doc.ID)
		e.API.set(script(nil, fail(500, `{"error":{"message":"oops","code":1}}`)))
		e.drainOutbox()
		reqs := e.API.requests(waSend)
		var kinds []string
		for _, r := range reqs {
			kinds = append(kinds, fmt.Sprint(r.JSON()["type"]))
		}
		if strings.Join(kinds, ",") != "text,image,image,document" {
			t.Fatalf("calls: %v", kinds)
		}
		got := e.reload(m)
		if status(got) != "SENT" || got.ProviderMessageID == nil || strings.HasPrefix(*got.ProviderMessageID, "parley-part:") {
			t.Fatalf("after resume: %s %v", status(got), got.ProviderMessageID)
		}
		link := fmt.Sprint(reqs[3].JSON()["document"].(map[string]any)["link"])
		u, err := url.Parse(link)
		if err != nil || !strings.HasPrefix(link, publicURL+"/attachments/"+itoa(doc.ID)+"/") {
			t.Fatalf("link %q", link)
		}
		if !e.Atts.Signer().Verify(doc.ID, u.Query().Get("exp"), u.Query().Get("sig")) {
			t.Fatalf("the link's signature does not verify: %s", link)
		}
		if fn := reqs[3].JSON()["document"].(map[string]any)["filename"]; fn != "terms.pdf" {
			t.Fatalf("filename %v", fn)
		}
	})
}

// TestOutboxRateLimit: a burst over an account's rate is spread out; a
// throttled account's messages are pushed back, not lost.
func TestOutboxRateLimit(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		e := newEnv(t, b)
		wa := e.account(schematype.ChannelWhatsApp, waPhone)
		// 3/s: a token takes 333 ms to come back, far longer than a pass
		// takes even on a loaded machine (at 20/s one came back mid-pass).
		e.Svc.Rates[schematype.ChannelWhatsApp] = channels.Rate{PerSecond: 3, Burst: 2}
		for i := 0; i < 6; i++ {
			e.outbound(e.customer(wa, fmt.Sprint(100+i)), fmt.Sprint("burst ", i))
		}
		start := time.Now()
		if _, err := e.Svc.DeliverDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n := len(e.API.requests(waSend)); n != 2 {
			t.Fatalf("first pass sent %d, want the burst of 2", n)
		}
		later, _ := e.DB.Client.Message.Query().Where(message.DeliveryStatusEQ(schematype.DeliveryPending),
			message.NextAttemptAtGT(start)).Count(context.Background())
		if later != 4 {
			t.Fatalf("%d messages pushed back, want 4", later)
		}
		e.drainOutbox()
		if d := time.Since(start); d < time.Second {
			t.Fatalf("4 more at 3/s took only %v", d)
		}
		if n := len(e.API.requests(waSend)); n != 6 {
			t.Fatalf("sent %d", n)
		}
	})
}
