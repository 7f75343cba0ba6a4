package apitest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// clientOutcome is a line printed by wsclient/client.mjs.
type clientOutcome struct {
	Result string
	Code   int
	Reason string
	Opened int
	Data   json.RawMessage
}

// startReferenceClient runs the graphql-ws reference client against s and
// returns its outcomes as they are printed.
func startReferenceClient(t *testing.T, s *apitest.Server, token, mode string) <-chan clientOutcome {
	t.Helper()
	node, err := exec.LookPath("node")
	dir, _ := filepath.Abs("wsclient")
	if _, statErr := os.Stat(filepath.Join(dir, "node_modules", "graphql-ws")); err != nil || statErr != nil {
		msg := "the reference client test needs node and `npm ci --prefix internal/apitest/wsclient` (make test runs it)"
		if storetest.RequireServices() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "client.mjs"), s.WebsocketURL(), token, mode)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := make(chan clientOutcome, 4)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var o clientOutcome
			if json.Unmarshal(sc.Bytes(), &o) == nil {
				out <- o
			}
		}
		_ = cmd.Wait()
	}()
	return out
}

func nextOutcome(t *testing.T, out <-chan clientOutcome) clientOutcome {
	t.Helper()
	select {
	case o, ok := <-out:
		if !ok {
			t.Fatal("the reference client ended without an outcome")
		}
		return o
	case <-time.After(30 * time.Second):
		t.Fatal("the reference client printed nothing")
	}
	return clientOutcome{}
}

// TestGraphQLWSReferenceClient: the npm graphql-ws client, refused at
// connection_init, ends with an error (4403) instead of reconnecting
// forever: at once with retryAttempts 0, after its bounded retries by
// default. With a good token it receives events.
func TestGraphQLWSReferenceClient(t *testing.T) {
	s := apitest.Start(t, apitest.Options{})
	w := apitest.NewWorkspace(t, s, apitest.WorkspaceOption{})

	t.Run("refused, no retries", func(t *testing.T) {
		o := nextOutcome(t, startReferenceClient(t, s, "plt_revoked", "no-retry"))
		if o.Result != "error" || o.Code != 4403 || o.Opened != 1 {
			t.Fatalf("want an error with 4403 after one connection, got %+v", o)
		}
	})
	t.Run("refused, default retries", func(t *testing.T) {
		o := nextOutcome(t, startReferenceClient(t, s, "plt_revoked", "default"))
		// graphql-ws retries 5 times by default: 6 connections, then the error.
		if o.Result != "error" || o.Code != 4403 || o.Opened != 6 {
			t.Fatalf("want an error with 4403 after 6 connections, got %+v", o)
		}
	})
	t.Run("accepted", func(t *testing.T) {
		w.Inbound(t, w.WhatsApp, "34600555444", "hola")
		out := startReferenceClient(t, s, w.Ana.Token, "ok")
		if o := nextOutcome(t, out); o.Result != "ready" {
			t.Fatalf("want ready, got %+v", o)
		}
		waitSubscribed(t, s, 1)
		w.Inbound(t, w.WhatsApp, "34600555444", "hola desde node")
		o := nextOutcome(t, out)
		var data struct {
			InboxEvents struct {
				Kind    string
				Message *struct{ Body string }
			}
		}
		if o.Result != "next" || json.Unmarshal(o.Data, &data) != nil || data.InboxEvents.Message == nil ||
			data.InboxEvents.Message.Body != "hola desde node" {
			t.Fatalf("want the message's event, got %+v (%s)", o, o.Data)
		}
	})
}
