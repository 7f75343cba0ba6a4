package apitest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// startChannels starts a server whose channel workers run with tiny
// intervals and backoffs, and a team.
func startChannels(t *testing.T, b storetest.Backend) (*apitest.Server, *apitest.Workspace) {
	t.Helper()
	s := apitest.Start(t, apitest.Options{Backend: b, NoWorkers: true})
	c := s.App.Channels
	c.EventInterval, c.OutboxInterval = 5*time.Millisecond, 5*time.Millisecond
	c.EventBackoff = channels.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}
	c.OutboxBackoff = channels.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}
	c.ThrottlePause = 2 * time.Millisecond
	for ch := range c.Rates {
		c.Rates[ch] = channels.Rate{PerSecond: 1000, Burst: 1000}
	}
	s.App.Start()
	return s, apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})
}

// provider is a local provider API (Graph or Twilio) that records each send
// call and, like the real providers, downloads the files of a send from
// their links at once.
type provider struct {
	t   *testing.T
	srv *httptest.Server
	mu  sync.Mutex
	// sends are the send calls, in order.
	sends []call
	// fetched maps each file link to what downloading it gave.
	fetched map[string]fetch
	// refuse, when set, answers the next send with this status and body.
	refuse *[2]string
	seq    int
}

type call struct {
	Path   string
	Query  url.Values
	Header http.Header
	JSON   map[string]any
	Form   url.Values
}

type fetch struct {
	Status int
	Body   []byte
	Header http.Header
}

func newProvider(t *testing.T) *provider {
	p := &provider{t: t, fetched: map[string]fetch{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *provider) URL() string { return p.srv.URL }

func (p *provider) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		// Messenger's profile API.
		if r.URL.Query().Get("fields") == "first_name,last_name" && r.URL.Query().Get("access_token") != "" {
			_, _ = io.WriteString(w, `{"first_name":"Ana","last_name":"Souza"}`)
			return
		}
		http.NotFound(w, r)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	c := call{Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(raw, &c.JSON)
	} else {
		c.Form, _ = url.ParseQuery(string(raw))
	}
	// Like the providers, fetch the files now.
	for _, link := range links(c) {
		resp, err := http.Get(link)
		f := fetch{}
		if err == nil {
			f.Body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			f.Status, f.Header = resp.StatusCode, resp.Header
		}
		p.mu.Lock()
		p.fetched[link] = f
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.sends = append(p.sends, c)
	p.seq++
	n, refuse := p.seq, p.refuse
	p.refuse = nil
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if refuse != nil {
		var code int
		fmt.Sscan(refuse[0], &code)
		w.WriteHeader(code)
		_, _ = io.WriteString(w, refuse[1])
		return
	}
	switch {
	case strings.HasSuffix(c.Path, "/Messages.json"):
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"sid":"SM%032d","status":"queued"}`, n)
	case strings.HasSuffix(c.Path, "/me/messages"):
		fmt.Fprintf(w, `{"recipient_id":"%v","message_id":"m_reply%d"}`, c.JSON["recipient"], n)
	default:
		fmt.Fprintf(w, `{"messaging_product":"whatsapp","contacts":[{"input":"%v","wa_id":"%v"}],"messages":[{"id":"wamid.reply%d"}]}`,
			c.JSON["to"], c.JSON["to"], n)
	}
}

// links are the file URLs of a send call.
func links(c call) []string {
	var out []string
	out = append(out, c.Form["MediaUrl"]...)
	for _, k := range []string{"image", "document", "video", "audio"} {
		if o, ok := c.JSON[k].(map[string]any); ok {
			out = append(out, fmt.Sprint(o["link"]))
		}
	}
	if m, ok := c.JSON["message"].(map[string]any); ok {
		if a, ok := m["attachment"].(map[string]any); ok {
			out = append(out, fmt.Sprint(a["payload"].(map[string]any)["url"]))
		}
	}
	return out
}

func (p *provider) refuseNext(status int, body string) {
	p.mu.Lock()
	p.refuse = &[2]string{fmt.Sprint(status), body}
	p.mu.Unlock()
}

// waitSends waits for n send calls and returns them.
func (p *provider) waitSends(n int) []call {
	p.t.Helper()
	apitest.Eventually(p.t, 20*time.Second, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.sends) >= n
	}, "%d send calls", n)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.sends) != n {
		p.t.Fatalf("%d send calls, want %d", len(p.sends), n)
	}
	return append([]call(nil), p.sends...)
}

func (p *provider) fetchOf(link string) fetch {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetched[link]
}

// createAccount connects a provider account through the contract and
// returns its id and webhook URL.
func createAccount(t *testing.T, w *apitest.Workspace, channel, block string, cfg map[string]any) (string, string) {
	t.Helper()
	var out struct {
		CreateChannelAccount struct{ ID, WebhookURL string }
	}
	w.Admin.C.MustOp(t, "CreateChannelAccount", map[string]any{"input": map[string]any{
		"channel": channel, "name": channel + " test", "queueID": w.QueueID, block: cfg,
	}}, &out)
	return out.CreateChannelAccount.ID, out.CreateChannelAccount.WebhookURL
}

// deliver posts a webhook to url with headers and wants 200.
func deliver(t *testing.T, rawURL, contentType string, body []byte, h http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook %s answered %d", rawURL, resp.StatusCode)
	}
	return resp
}

func deliverMeta(t *testing.T, hook, secret string, body []byte) {
	t.Helper()
	deliver(t, hook, "application/json", body, http.Header{"X-Hub-Signature-256": {channels.HubSignature(secret, body)}})
}

// handshake performs Meta's verification GET.
func handshake(t *testing.T, hook, token string) (int, string) {
	t.Helper()
	resp, err := http.Get(hook + "?" + url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {token}, "hub.challenge": {"8675309"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type chanMsg struct {
	ID, Direction, Body string
	DeliveryStatus      *string
	FailureReason       *string
	Attachments         []struct {
		ID, Filename, ContentType string
		Size                      int
	}
}

const chanConvQuery = `query($id: ID!) { conversation(id: $id) { id channel contact { displayName phone }
  messages(last: 50) { edges { node { id direction body deliveryStatus failureReason
    attachments { id filename contentType size } } } } } }`

// chanConv reads a conversation's messages, failure reasons included.
func chanConv(t *testing.T, a *apitest.Agent, id string) (contactName string, phone *string, msgs []chanMsg) {
	t.Helper()
	r := a.C.Query(t, chanConvQuery, map[string]any{"id": id})
	if len(r.Errors) > 0 {
		t.Fatalf("conversation: %s", r.Raw)
	}
	var out struct {
		Conversation struct {
			Contact struct {
				DisplayName string
				Phone       *string
			}
			Messages struct {
				Edges []struct{ Node chanMsg }
			}
		}
	}
	r.Decode(t, &out)
	for _, e := range out.Conversation.Messages.Edges {
		msgs = append(msgs, e.Node)
	}
	return out.Conversation.Contact.DisplayName, out.Conversation.Contact.Phone, msgs
}

// waitStatus waits until message id shows deliveryStatus st in the
// contract's Conversation query, and returns the message as the
// failure-reason query sees it.
func waitStatus(t *testing.T, a *apitest.Agent, convID, msgID, st string) chanMsg {
	t.Helper()
	apitest.Eventually(t, 20*time.Second, func() bool {
		c := mustConv(t, a, convID)
		for _, e := range c.Messages.Edges {
			if e.Node.ID == msgID && e.Node.DeliveryStatus != nil && *e.Node.DeliveryStatus == st {
				return true
			}
		}
		return false
	}, "message %s %s", msgID, st)
	_, _, msgs := chanConv(t, a, convID)
	for _, m := range msgs {
		if m.ID == msgID {
			return m
		}
	}
	t.Fatalf("message %s missing", msgID)
	return chanMsg{}
}

// waitConversation waits for the agent's first conversation on channel.
func waitConversation(t *testing.T, a *apitest.Agent, channel string) string {
	t.Helper()
	var id string
	apitest.Eventually(t, 20*time.Second, func() bool {
		ids := a.InboxIDs(t, "RECENT", map[string]any{"channel": channel})
		if len(ids) > 0 {
			id = ids[0]
		}
		return id != ""
	}, "a %s conversation in %s's inbox", channel, a.Name)
	return id
}

// waitMessages waits until the conversation has n messages.
func waitMessages(t *testing.T, a *apitest.Agent, convID string, n int) []chanMsg {
	t.Helper()
	var msgs []chanMsg
	apitest.Eventually(t, 20*time.Second, func() bool {
		_, _, msgs = chanConv(t, a, convID)
		return len(msgs) >= n
	}, "%d messages", n)
	return msgs
}

// reply sends an agent's reply through the contract and returns its id,
// checking that it starts PENDING (in the outbox).
func reply(t *testing.T, a *apitest.Agent, convID, body string, attachmentIDs ...string) string {
	t.Helper()
	in := map[string]any{"conversationID": convID, "body": body}
	if len(attachmentIDs) > 0 {
		in["attachmentIDs"] = attachmentIDs
	}
	var out struct {
		SendMessage struct {
			Message struct{ ID, DeliveryStatus string }
		}
	}
	a.C.MustOp(t, "SendMessage", map[string]any{"input": in}, &out)
	if out.SendMessage.Message.DeliveryStatus != "PENDING" {
		t.Fatalf("a reply starts PENDING: %+v", out)
	}
	return out.SendMessage.Message.ID
}

// upload sends a file through the contract's UploadAttachment.
func upload(t *testing.T, a *apitest.Agent, name string, data []byte) string {
	t.Helper()
	r := a.C.Upload(t, name, "", data)
	if len(r.Errors) > 0 {
		t.Fatalf("upload: %s", r.Raw)
	}
	var out struct{ UploadAttachment struct{ ID string } }
	r.Decode(t, &out)
	return out.UploadAttachment.ID
}

func pngImage() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 3, 3))
	img.Set(0, 0, color.RGBA{B: 255, A: 255})
	var b bytes.Buffer
	_ = png.Encode(&b, img)
	return b.Bytes()
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
