package channels_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/ent/webhookevent"
	"github.com/parleyhq/parley/internal/attachments"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/channels/messenger"
	"github.com/parleyhq/parley/internal/channels/setup"
	"github.com/parleyhq/parley/internal/channels/twilio"
	"github.com/parleyhq/parley/internal/channels/whatsapp"
	"github.com/parleyhq/parley/internal/conversations"
	"github.com/parleyhq/parley/internal/eventlog"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/routing"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// publicURL is what providers see; it differs from the test server's own
// address, as behind a proxy, so signatures over it prove that the public
// URL (not the local one) is used.
const publicURL = "https://parley.example.com"

// env is one Parley instance's channels over a database of its own (or a
// shared one, for multi-instance tests), with its webhook endpoints served
// over real HTTP and a provider double.
type env struct {
	t     *testing.T
	DB    *store.DB
	Convs *countingConvs
	Svc   *channels.Service
	Hooks *httptest.Server
	API   *double
	Atts  *attachments.Service
}

func quiet() *slog.Logger {
	if os.Getenv("PARLEY_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

func newEnv(t *testing.T, b storetest.Backend) *env {
	t.Helper()
	return newEnvOn(t, storetest.Open(t, b), newDouble(t))
}

// newEnvOn starts an instance on db, calling the provider double api.
func newEnvOn(t *testing.T, db *store.DB, api *double) *env {
	t.Helper()
	log := quiet()
	broker := pubsub.NewInMemory()
	t.Cleanup(func() { broker.Close() })
	events := eventlog.New(db.Client, broker, log)
	router := routing.New(db.Client, events, log)
	convs := &countingConvs{Service: conversations.NewService(db.Client, events, router, log), received: map[string]int{}}
	files, err := attachments.NewLocalStore(filepath.Join(t.TempDir(), "attachments"))
	if err != nil {
		t.Fatal(err)
	}
	atts := attachments.NewService(db, files, attachments.NewSigner([]byte(strings.Repeat("k", 32))), convs.Service, log,
		attachments.Config{PublicURL: publicURL})
	client := channels.NewHTTPClient()
	svc := channels.New(channels.Deps{
		DB: db.Client, Conversations: convs, Log: log, PublicURL: publicURL,
		Media: &setup.MediaStore{Attachments: atts, MaxBytes: 5 << 20},
		Links: atts,
		Providers: []channels.Provider{
			whatsapp.New("v21.0", client), messenger.New("v21.0", client), twilio.New(client),
		},
	})
	fast(svc)
	mux := http.NewServeMux()
	for p, h := range svc.Routes() {
		mux.Handle(p, h)
	}
	hooks := httptest.NewServer(mux)
	t.Cleanup(hooks.Close)
	return &env{t: t, DB: db, Convs: convs, Svc: svc, Hooks: hooks, API: api, Atts: atts}
}

// fast makes every interval and backoff tiny.
func fast(s *channels.Service) {
	s.EventInterval, s.OutboxInterval = 5*time.Millisecond, 5*time.Millisecond
	s.EventBackoff = channels.Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond}
	s.OutboxBackoff = channels.Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond}
	s.ThrottlePause = 2 * time.Millisecond
	s.MediaTimeout = 10 * time.Second
	for ch := range s.Rates {
		s.Rates[ch] = channels.Rate{PerSecond: 10000, Burst: 10000}
	}
}

// run starts the instance's workers until the test ends.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Svc.Run(ctx)
	}()
	e.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// countingConvs counts Receive calls that stored a message, by provider
// message id, to prove each was stored once.
type countingConvs struct {
	*conversations.Service
	mu       sync.Mutex
	received map[string]int
}

func (c *countingConvs) Receive(ctx context.Context, in conversations.Inbound) (*conversations.Received, error) {
	r, err := c.Service.Receive(ctx, in)
	if err == nil && !r.Duplicate {
		c.mu.Lock()
		c.received[in.ProviderMessageID]++
		c.mu.Unlock()
	}
	return r, err
}

func (c *countingConvs) stored(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received[id]
}

// account creates a channel account of channel pointing at the double.
func (e *env) account(ch schematype.Channel, external string) *ent.ChannelAccount {
	e.t.Helper()
	cfg := schematype.ChannelConfig{APIBaseURL: e.API.URL()}
	switch ch {
	case schematype.ChannelWhatsApp:
		cfg.PhoneNumberID, cfg.AccessToken, cfg.AppSecret, cfg.VerifyToken = external, "wa-token", "wa-secret", "wa-verify"
	case schematype.ChannelFacebook:
		cfg.PageID, cfg.PageAccessToken, cfg.AppSecret, cfg.VerifyToken = external, "fb-token", "fb-secret", "fb-verify"
	case schematype.ChannelSMS:
		cfg.AccountSID, cfg.AuthToken, cfg.FromNumber = "AC00000000000000000000000000000001", "tw-token", external
	}
	a, err := e.DB.Client.ChannelAccount.Create().SetChannel(ch).SetName(string(ch) + " " + external).
		SetExternalID(external).SetConfig(cfg).Save(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func hookPath(a *ent.ChannelAccount) string {
	kind := map[schematype.Channel]string{schematype.ChannelWhatsApp: "whatsapp", schematype.ChannelFacebook: "messenger", schematype.ChannelSMS: "twilio"}[a.Channel]
	return "/webhooks/" + kind + "/" + itoa(a.ID)
}

// postMeta delivers a signed WhatsApp or Messenger webhook.
func (e *env) postMeta(a *ent.ChannelAccount, body []byte) *http.Response {
	e.t.Helper()
	return e.post(hookPath(a), "application/json", body, http.Header{
		"X-Hub-Signature-256": {channels.HubSignature(a.Config.AppSecret, body)},
	})
}

// postTwilio delivers a signed Twilio webhook: signed over the public URL.
func (e *env) postTwilio(a *ent.ChannelAccount, form url.Values) *http.Response {
	e.t.Helper()
	path := hookPath(a)
	return e.post(path, "application/x-www-form-urlencoded", []byte(form.Encode()), http.Header{
		"X-Twilio-Signature": {twilio.Signature(a.Config.AuthToken, publicURL+path, form)},
	})
}

func (e *env) post(path, ct string, body []byte, h http.Header) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.Hooks.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (e *env) events() int {
	n, err := e.DB.Client.WebhookEvent.Query().Count(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) pendingEvents() int {
	n, err := e.DB.Client.WebhookEvent.Query().Where(webhookevent.ProcessedAtIsNil()).Count(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) messages() []*ent.Message {
	ms, err := e.DB.Client.Message.Query().Order(ent.Asc(message.FieldID)).All(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return ms
}

// drainEvents processes events until none is due and none is left
// unprocessed (or the timeout).
func (e *env) drainEvents() {
	e.t.Helper()
	eventually(e.t, 20*time.Second, func() bool {
		if _, err := e.Svc.ProcessEvents(context.Background()); err != nil {
			e.t.Fatal(err)
		}
		return e.pendingEvents() == 0
	}, "webhook events left unprocessed")
}

// drainOutbox delivers until no message is PENDING.
func (e *env) drainOutbox() {
	e.t.Helper()
	eventually(e.t, 20*time.Second, func() bool {
		if _, err := e.Svc.DeliverDue(context.Background()); err != nil {
			e.t.Fatal(err)
		}
		n, err := e.DB.Client.Message.Query().Where(message.DeliveryStatusEQ(schematype.DeliveryPending)).Count(context.Background())
		if err != nil {
			e.t.Fatal(err)
		}
		return n == 0
	}, "messages left PENDING")
}

func eventually(t *testing.T, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(3 * time.Millisecond)
	}
}

// outbound stores an agent's reply the way conversations.Send does for a
// provider conversation: PENDING, due now, in the outbox.
func (e *env) outbound(conv *ent.Conversation, body string, attachmentIDs ...int) *ent.Message {
	e.t.Helper()
	now := time.Now()
	m, err := e.DB.Client.Message.Create().SetConversationID(conv.ID).SetDirection(schematype.DirectionOutbound).
		SetBody(body).SetCreatedAt(now).SetDeliveryStatus(schematype.DeliveryPending).
		SetChannelAccountID(*conv.ChannelAccountID).SetNextAttemptAt(now).AddAttachmentIDs(attachmentIDs...).
		Save(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// customer opens a conversation with an inbound message from sender.
func (e *env) customer(a *ent.ChannelAccount, sender string) *ent.Conversation {
	e.t.Helper()
	r, err := e.Convs.Service.Receive(context.Background(), conversations.Inbound{
		ChannelAccountID: a.ID, SenderID: sender, ProviderMessageID: "in-" + sender + "-" + itoa(int(time.Now().UnixNano()%1e9)),
		Body: "hello",
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return r.Conversation
}

func (e *env) reload(m *ent.Message) *ent.Message {
	e.t.Helper()
	m, err := e.DB.Client.Message.Get(context.Background(), m.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func status(m *ent.Message) string {
	if m.DeliveryStatus == nil {
		return ""
	}
	return string(*m.DeliveryStatus)
}

func itoa(n int) string { return strconv.Itoa(n) }

// double is a local provider API: Graph (WhatsApp, Messenger), Twilio and
// their media hosts. Each test scripts it with handle; every request is
// recorded.
type double struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []request
	handle func(r request, w http.ResponseWriter) bool
}

type request struct {
	Method, Path string
	Query        url.Values
	Header       http.Header
	Body         []byte
}

// JSON decodes a JSON body.
func (r request) JSON() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(r.Body, &m)
	return m
}

// Form decodes a form body.
func (r request) Form() url.Values {
	v, _ := url.ParseQuery(string(r.Body))
	return v
}

func newDouble(t *testing.T) *double {
	d := &double{}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		req := request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: b}
		d.mu.Lock()
		d.reqs = append(d.reqs, req)
		h := d.handle
		d.mu.Unlock()
		if h != nil && h(req, w) {
			return
		}
		d.defaultAnswer(req, w)
	}))
	t.Cleanup(d.srv.Close)
	return d
}

func (d *double) URL() string { return d.srv.URL }

// set replaces the script.
func (d *double) set(h func(r request, w http.ResponseWriter) bool) {
	d.mu.Lock()
	d.handle = h
	d.mu.Unlock()
}

// requests returns the recorded requests whose path has the prefix.
func (d *double) requests(prefix string) []request {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []request
	for _, r := range d.reqs {
		if strings.HasPrefix(r.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

var sendSeq struct {
	sync.Mutex
	n int
}

func nextID(prefix string) string {
	sendSeq.Lock()
	defer sendSeq.Unlock()
	sendSeq.n++
	return prefix + itoa(sendSeq.n)
}

// defaultAnswer accepts every send with a fresh provider id.
func (d *double) defaultAnswer(r request, w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	switch {
	case strings.HasSuffix(r.Path, "/messages") && strings.HasPrefix(r.Path, "/v21.0/me/"):
		_, _ = io.WriteString(w, `{"recipient_id":"x","message_id":"`+nextID("m_out")+`"}`)
	case strings.HasSuffix(r.Path, "/messages"):
		_, _ = io.WriteString(w, `{"messaging_product":"whatsapp","messages":[{"id":"`+nextID("wamid.out")+`"}]}`)
	case strings.HasSuffix(r.Path, "/Messages.json"):
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"sid":"`+nextID("SMout")+`","status":"queued"}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"error":{"message":"no such thing","code":100}}`)
	}
}

func pngBytes() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// oggBytes is the start of an Ogg Opus voice note.
func oggBytes() []byte {
	return append([]byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02\x03\x04\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead\x01\x01"), bytes.Repeat([]byte{0x55}, 200)...)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
