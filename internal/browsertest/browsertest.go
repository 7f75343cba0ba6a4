// Package browsertest finds what the browser tests need: Node.js, the
// playwright-core of a test's e2e folder, and Debian's Chromium. The tests
// (internal/widget, internal/playground) drive Chromium from a Node.js
// script in that folder; .ci/run installs Chromium and runs npm ci there.
package browsertest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/store/storetest"
)

// DefaultChromium is where Debian's chromium package puts the browser;
// CHROMIUM overrides it.
const DefaultChromium = "/usr/bin/chromium"

// Require returns node and Chromium for the e2e folder dir (relative to the
// test's package, such as "e2e"), or skips the test when one is missing
// (fails it with PARLEY_REQUIRE_SERVICES=1). pkg is the package's path in
// the repository ("internal/widget"), for the message.
func Require(t testing.TB, dir, pkg string) (node, chromium string) {
	t.Helper()
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = DefaultChromium
	}
	var missing []string
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, "node (Node.js 20 or later)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "playwright-core (npm ci --prefix "+pkg+"/"+dir+")")
	}
	if _, err := os.Stat(chromium); err != nil {
		missing = append(missing, chromium+" (apt-get install chromium)")
	}
	if len(missing) > 0 {
		msg := "the browser test needs " + strings.Join(missing, ", ") + "; .ci/run installs them"
		if storetest.RequireServices() {
			t.Fatal(msg)
		}
		t.Skip(msg + "; set PARLEY_REQUIRE_SERVICES=1 to fail instead")
	}
	return node, chromium
}
