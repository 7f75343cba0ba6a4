package attachments_test

import (
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/attachments"
)

func TestAttachmentsSigner(t *testing.T) {
	s := attachments.NewSigner([]byte(strings.Repeat("k", 32)))
	q, err := url.ParseQuery(s.Sign(42, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	exp, sig := q.Get("exp"), q.Get("sig")
	if !s.Verify(42, exp, sig) {
		t.Fatal("a fresh signature does not verify")
	}
	e, _ := strconv.ParseInt(exp, 10, 64)
	flip := func(h string) string {
		b := []byte(h)
		if b[len(b)-1] == '0' {
			b[len(b)-1] = '1'
		} else {
			b[len(b)-1] = '0'
		}
		return string(b)
	}
	expired, _ := url.ParseQuery(s.Sign(42, -time.Second))
	other := attachments.NewSigner([]byte(strings.Repeat("x", 32)))
	for name, ok := range map[string]bool{
		"another attachment":  s.Verify(43, exp, sig),
		"a later expiry":      s.Verify(42, strconv.FormatInt(e+3600, 10), sig),
		"a tampered sig":      s.Verify(42, exp, flip(sig)),
		"a truncated sig":     s.Verify(42, exp, sig[:len(sig)-2]),
		"no sig":              s.Verify(42, exp, ""),
		"no exp":              s.Verify(42, "", sig),
		"a signed exp":        s.Verify(42, "+"+exp, sig),
		"expired":             s.Verify(42, expired.Get("exp"), expired.Get("sig")),
		"another secret":      other.Verify(42, exp, sig),
		"not hex":             s.Verify(42, exp, "zz"+sig[2:]),
		"an absurd exp value": s.Verify(42, "99999999999999999999999", sig),
	} {
		if ok {
			t.Errorf("%s verified", name)
		}
	}
}

func TestAttachmentsLoadSigner(t *testing.T) {
	dir := t.TempDir()
	if _, err := attachments.LoadSigner("too short", dir); err == nil {
		t.Fatal("a short PARLEY_URL_SECRET was accepted")
	}
	// Without a configured secret, concurrent first starts agree on one
	// generated secret, kept in the data directory.
	var wg sync.WaitGroup
	signers := make([]*attachments.Signer, 8)
	errs := make([]error, 8)
	for i := range signers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			signers[i], errs[i] = attachments.LoadSigner("", dir)
		}()
	}
	wg.Wait()
	q, _ := url.ParseQuery(signers[0].Sign(7, time.Hour))
	for i, s := range signers {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !s.Verify(7, q.Get("exp"), q.Get("sig")) {
			t.Fatalf("signer %d has another secret", i)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, attachments.SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("the secret file is readable by others: %v", fi.Mode())
	}
	again, err := attachments.LoadSigner("", dir)
	if err != nil || !again.Verify(7, q.Get("exp"), q.Get("sig")) {
		t.Fatalf("a restart does not keep the secret: %v", err)
	}
	configured, err := attachments.LoadSigner(strings.Repeat("s", 32), dir)
	if err != nil || configured.Verify(7, q.Get("exp"), q.Get("sig")) {
		t.Fatalf("PARLEY_URL_SECRET must take precedence over the file: %v", err)
	}
}
