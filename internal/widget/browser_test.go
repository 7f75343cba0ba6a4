package widget_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/browsertest"
)

// The browser test's Node.js folder; .ci/run runs npm ci there.
const e2eDir = "e2e"

// TestWidgetInBrowser chats through the widget on the demo page in headless
// Chromium (e2e/chat.mjs plays the visitor) while this test plays the agent
// through the API, and the network: the page reaches the server through a
// proxy that the test can cut. The visitor writes and sends a picture, the
// agent answers, a reload and a second tab show the same history, the
// network drops while the agent writes and the widget catches up without
// duplicates, the agent ends the chat and the widget says so, and once the
// visitor is blocked a new chat is refused politely.
func TestWidgetInBrowser(t *testing.T) {
	node, chromium := browsertest.Require(t, e2eDir, "internal/widget")
	proxy := startCutProxy(t)
	s := apitest.Start(t, apitest.Options{Env: map[string]string{"PARLEY_PUBLIC_URL": proxy.URL}})
	proxy.setTarget(strings.TrimPrefix(s.URL, "http://"))
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})

	text := map[string]string{
		"TEXT_VISITOR1":   "Hello from the widget",
		"TEXT_REPLY1":     "Hi Lucía, how can I help?",
		"TEXT_REPLY2":     "Sorry, one moment please",
		"TEXT_VISITOR2":   "Thanks, I am back online",
		"TEXT_FILE":       "lamp.png",
		"TEXT_SHOP":       "Hello from the shop",
		"TEXT_SHOP_REPLY": "Welcome to the shop",
	}
	shots := os.Getenv("PARLEY_WIDGET_SHOTS") // keep the screenshots there
	if shots == "" {
		shots = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	demoURL := proxy.URL + "/demo?account=" + w.LiveChat
	shopURL := startShop(t, w, proxy.URL)
	cmd := exec.CommandContext(ctx, node, filepath.Join(e2eDir, "chat.mjs"), demoURL, shopURL)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "SHOTS="+shots)
	for k, v := range text {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	steps := make(chan string, 16)
	go func() {
		defer close(steps)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if name, ok := strings.CutPrefix(line, "STEP "); ok {
				t.Logf("%5.1fs browser: %s", time.Since(start).Seconds(), name)
				steps <- name
			} else {
				t.Logf("browser: %s", line)
			}
		}
	}()
	// finish waits for the script's output to end, then for the script.
	finish := func() error {
		for range steps {
		}
		return cmd.Wait()
	}
	exited := false
	defer func() {
		if !exited {
			cancel()
			_ = finish()
		}
		if t.Failed() {
			t.Logf("chat.mjs stderr:\n%s\nscreenshots in %s", stderr.String(), shots)
		}
	}()
	await := func(want string) {
		t.Helper()
		select {
		case got, ok := <-steps:
			if !ok {
				t.Fatalf("the browser stopped before %q", want)
			}
			if got != want {
				t.Fatalf("browser step %q, want %q", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("timed out waiting for the browser to reach %q", want)
		}
	}
	tell := func(name string) {
		t.Helper()
		if _, err := io.WriteString(stdin, "GO "+name+"\n"); err != nil {
			t.Fatalf("tell the browser %s: %v", name, err)
		}
	}

	// A visitor on the shop's website writes; Ana answers and ends the chat.
	await("shop-sent")
	shopConv := newChat(t, w.Ana, nil)
	if msgs := conversation(t, w.Ana, shopConv).Messages; len(msgs) != 1 || msgs[0].Body != text["TEXT_SHOP"] {
		t.Fatalf("the shop's chat: %+v", msgs)
	}
	if r := w.Ana.Send(t, shopConv, text["TEXT_SHOP_REPLY"]); len(r.Errors) > 0 {
		t.Fatal(string(r.Raw))
	}

	// On the demo page, the visitor's message reaches the agents; Ana answers.
	await("sent")
	w.Ana.C.MustOp(t, "EndChatSession", map[string]any{"id": shopConv}, nil)
	convID := newChat(t, w.Ana, map[string]bool{shopConv: true})
	c := conversation(t, w.Ana, convID)
	if msgs := c.Messages; len(msgs) != 1 || msgs[0].Body != text["TEXT_VISITOR1"] || msgs[0].Direction != "INBOUND" {
		t.Fatalf("the agent sees %+v", msgs)
	}
	// What the pre-chat form and the browser told.
	if c.Contact.DisplayName != "Lucía" || c.Contact.Email != "lucia@example.com" ||
		c.Visitor.PageURL != demoURL || !strings.Contains(c.Visitor.UserAgent, "Chrome") {
		t.Fatalf("the agent sees contact %+v, visitor %+v", c.Contact, c.Visitor)
	}
	if r := w.Ana.Send(t, convID, text["TEXT_REPLY1"]); len(r.Errors) > 0 {
		t.Fatal(string(r.Raw))
	}

	// The picture the visitor attached is in the conversation.
	await("attached")
	msgs := conversation(t, w.Ana, convID).Messages
	last := msgs[len(msgs)-1]
	if len(msgs) != 3 || last.Direction != "INBOUND" || len(last.Attachments) != 1 ||
		last.Attachments[0].Filename != text["TEXT_FILE"] || last.Attachments[0].ContentType != "image/png" {
		t.Fatalf("after the upload the agent sees %+v", msgs)
	}

	// The network drops; Ana writes meanwhile; the network comes back.
	await("reloaded")
	proxy.cut()
	await("offline")
	if r := w.Ana.Send(t, convID, text["TEXT_REPLY2"]); len(r.Errors) > 0 {
		t.Fatal(string(r.Raw))
	}
	time.Sleep(time.Second)
	proxy.restore()

	// The visitor's next message arrives once; Ana ends the chat.
	await("reconnected")
	apitest.Eventually(t, 5*time.Second, func() bool {
		msgs = conversation(t, w.Ana, convID).Messages
		return len(msgs) > 0 && msgs[len(msgs)-1].Body == text["TEXT_VISITOR2"]
	}, "the visitor's message after reconnecting never arrived")
	counts := map[string]int{}
	for _, m := range msgs {
		counts[m.Body]++
	}
	for k, body := range text {
		if strings.HasPrefix(k, "TEXT_VISITOR") || strings.HasPrefix(k, "TEXT_REPLY") {
			if counts[body] != 1 {
				t.Fatalf("%q is stored %d times: %+v", body, counts[body], msgs)
			}
		}
	}
	w.Ana.C.MustOp(t, "EndChatSession", map[string]any{"id": convID}, nil)

	// Blocked, the visitor cannot start again.
	await("ended")
	w.Ana.C.MustOp(t, "BlockAnonymousUser", map[string]any{"id": convID}, nil)
	tell("blocked")
	await("refused")
	await("done")

	exited = true
	if err := finish(); err != nil {
		t.Fatalf("chat.mjs: %v", err)
	}
	t.Logf("browser run took %.1fs", time.Since(start).Seconds())
}

// newChat waits for a conversation in the agent's inbox that is not in seen.
func newChat(t *testing.T, a *apitest.Agent, seen map[string]bool) string {
	t.Helper()
	var id string
	apitest.Eventually(t, 10*time.Second, func() bool {
		for _, c := range a.InboxIDs(t, "RECENT", nil) {
			if !seen[c] {
				id = c
				return true
			}
		}
		return false
	}, "the visitor's chat never reached %s's inbox", a.Name)
	return id
}

// startShop serves a customer's website on another origin: a page with the
// snippet of a live-chat account that allows that origin.
func startShop(t *testing.T, w *apitest.Workspace, parley string) string {
	t.Helper()
	var page atomic.Value
	shop := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(rw, page.Load().(string))
	}))
	t.Cleanup(shop.Close)
	r := w.Admin.C.Query(t, `mutation($input: CreateChannelAccountInput!) { createChannelAccount(input: $input) { id snippet } }`,
		map[string]any{"input": map[string]any{"channel": "LIVE_CHAT", "name": "Shop", "queueID": w.QueueID,
			"liveChat": map[string]any{"allowedOrigins": []string{shop.URL}}}})
	if len(r.Errors) > 0 {
		t.Fatal(string(r.Raw))
	}
	var out struct{ CreateChannelAccount struct{ Snippet string } }
	r.Decode(t, &out)
	if !strings.Contains(out.CreateChannelAccount.Snippet, parley+"/widget.js") {
		t.Fatalf("snippet %q", out.CreateChannelAccount.Snippet)
	}
	page.Store(`<!doctype html><html><head><meta charset="utf-8"><title>Shop</title><link rel="icon" href="data:,"></head>` +
		`<body><h1>A shop</h1>` + out.CreateChannelAccount.Snippet + `</body></html>`)
	return shop.URL + "/"
}

type message struct {
	ID, Direction, Body string
	Attachments         []struct{ Filename, ContentType string }
}

type agentView struct {
	Contact  struct{ DisplayName, Email string }
	Visitor  struct{ PageURL, UserAgent string }
	Messages []message
}

// conversation returns the conversation as the agent sees it.
func conversation(t *testing.T, a *apitest.Agent, id string) agentView {
	t.Helper()
	var out struct {
		Conversation struct {
			Contact  struct{ DisplayName, Email string }
			Visitor  struct{ PageURL, UserAgent string }
			Messages struct{ Edges []struct{ Node message } }
		}
	}
	a.C.MustOp(t, "Conversation", map[string]any{"id": id, "last": 50}, &out)
	v := agentView{Contact: out.Conversation.Contact, Visitor: out.Conversation.Visitor}
	for _, e := range out.Conversation.Messages.Edges {
		v.Messages = append(v.Messages, e.Node)
	}
	return v
}

// cutProxy forwards TCP connections to the server and can cut the network:
// close every connection and refuse new ones until restored.
type cutProxy struct {
	URL string
	ln  net.Listener

	mu     sync.Mutex
	target string
	down   bool
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

func startCutProxy(t *testing.T) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{URL: "http://" + ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) setTarget(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = addr
}

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// track registers connections unless the network is down.
func (p *cutProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

func (p *cutProxy) forward(c net.Conn) {
	defer p.wg.Done()
	defer c.Close()
	p.mu.Lock()
	target, down := p.target, p.down
	p.mu.Unlock()
	if down || target == "" {
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(c, up) {
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}
