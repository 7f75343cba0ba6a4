package playground_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gqlplayground "github.com/99designs/gqlgen/graphql/playground"

	"github.com/parleyhq/parley/internal/apitest"
	"github.com/parleyhq/parley/internal/browsertest"
)

// The browser test's Node.js folder; .ci/run runs npm ci there.
const e2eDir = "e2e"

// offlineResult is what e2e/offline.mjs reports.
type offlineResult struct {
	OK         bool
	Failure    string
	Outside    []string
	Violations []string
	Errors     []string
}

// requireBrowser returns node and Chromium, or skips the test.
func requireBrowser(t *testing.T) (node, chromium string) {
	t.Helper()
	return browsertest.Require(t, e2eDir, "internal/playground")
}

// runOffline loads pageURL in headless Chromium with every request to
// another host blocked (e2e/offline.mjs), as the agent with token and name.
func runOffline(t *testing.T, node, chromium, pageURL, token, name string) (offlineResult, []string) {
	t.Helper()
	shots := os.Getenv("PARLEY_PLAYGROUND_SHOTS") // keep the screenshots there
	if shots == "" {
		shots = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(e2eDir, "offline.mjs"), pageURL)
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "SHOTS="+shots, "TOKEN="+token, "NAME="+name)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	t.Logf("browser run took %.1fs (screenshots in %s)", time.Since(start).Seconds(), shots)
	var res offlineResult
	var steps []string
	found := false
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if s, ok := strings.CutPrefix(line, "STEP "); ok {
			steps = append(steps, s)
		} else if j, ok := strings.CutPrefix(line, "RESULT "); ok {
			if err := json.Unmarshal([]byte(j), &res); err != nil {
				t.Fatalf("offline.mjs result %q: %v", j, err)
			}
			found = true
		} else {
			t.Logf("browser: %s", line)
		}
	}
	if !found {
		t.Fatalf("offline.mjs reported nothing (%v)\nstderr:\n%s", runErr, stderr.String())
	}
	if (runErr == nil) != res.OK {
		t.Fatalf("offline.mjs exited with %v but reported ok=%v\nstderr:\n%s", runErr, res.OK, stderr.String())
	}
	return res, steps
}

// TestPlaygroundOffline loads the playground of a real server in headless
// Chromium with every request to another host refused, as on a network
// that reaches nothing but Parley: the GraphiQL editor renders, runs
// `{ __typename }`, runs `{ me { name } }` with the headers editor's Bearer
// token, opens a subscription whose connection_init carries the token and
// is acknowledged, and opens a dialog; the browser asked for nothing
// outside and the page's Content-Security-Policy refused nothing.
func TestPlaygroundOffline(t *testing.T) {
	node, chromium := requireBrowser(t)
	s := apitest.Start(t, apitest.Options{})
	token, _ := s.Client().Login(t, apitest.AdminEmail, apitest.AdminPassword)
	res, steps := runOffline(t, node, chromium, s.URL+"/", token, "System owner")
	t.Logf("steps: %s", strings.Join(steps, ", "))
	if !res.OK {
		t.Fatalf("the playground failed offline: %s\noutside requests: %q\npolicy violations: %q\npage errors: %q",
			res.Failure, res.Outside, res.Violations, res.Errors)
	}
	if want := "rendered, queried, authenticated, subscribed, dialog"; strings.Join(steps, ", ") != want {
		t.Fatalf("steps %q, want %q", steps, want)
	}
}

// TestPlaygroundOfflineCatchesOutsideRequests runs the same browser check
// on gqlgen's stock playground, which loads GraphiQL from a public CDN: the
// check must fail it, having refused its outside requests.
func TestPlaygroundOfflineCatchesOutsideRequests(t *testing.T) {
	node, chromium := requireBrowser(t)
	cdn := httptest.NewServer(gqlplayground.Handler("CDN playground", "/graphql"))
	t.Cleanup(cdn.Close)
	res, steps := runOffline(t, node, chromium, cdn.URL+"/", "", "")
	if res.OK || len(res.Outside) == 0 {
		t.Fatalf("the check passed a page that loads from outside: ok=%v, outside %q, steps %q", res.OK, res.Outside, steps)
	}
	t.Logf("refused, as it should: %q (%s)", res.Outside, res.Failure)
}
