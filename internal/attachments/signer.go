package attachments

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// MinSecretLen is the shortest PARLEY_URL_SECRET accepted.
const MinSecretLen = 32

// SecretFile is where, under the data directory, a generated URL secret is
// kept when PARLEY_URL_SECRET is not set.
const SecretFile = "url-secret"

// Signer makes and checks expiring download links that need no login: the
// query "exp=<unix seconds>&sig=<hex>", where sig is HMAC-SHA256 over
// "attachment:<id>:<exp>" with a server secret. Providers (WhatsApp,
// Twilio, Messenger) fetch agents' attachments through such links, and
// browsers show images with them where no Authorization header can be set.
// Every instance that serves downloads must share the secret.
type Signer struct {
	key []byte
	now func() time.Time
}

// NewSigner returns a signer keyed with key.
func NewSigner(key []byte) *Signer {
	return &Signer{key: append([]byte(nil), key...), now: time.Now}
}

// LoadSigner returns a signer keyed with secret (PARLEY_URL_SECRET) or, when
// that is empty, with a random secret kept in dataDir/url-secret, created
// on first use. A deployment of several instances must set
// PARLEY_URL_SECRET (or share the data directory): otherwise each instance
// makes its own secret and refuses the others' links.
func LoadSigner(secret, dataDir string) (*Signer, error) {
	if secret != "" {
		if len(secret) < MinSecretLen {
			return nil, fmt.Errorf("PARLEY_URL_SECRET must have at least %d characters", MinSecretLen)
		}
		return NewSigner([]byte(secret)), nil
	}
	key, err := loadOrCreateSecret(filepath.Join(dataDir, SecretFile))
	if err != nil {
		return nil, fmt.Errorf("URL secret: %w", err)
	}
	return NewSigner(key), nil
}

// loadOrCreateSecret reads the secret file, or writes a new random secret
// there. The file appears whole or not at all (written aside, then linked
// into place, which fails if another process got there first), so
// concurrent first starts agree on one secret.
func loadOrCreateSecret(path string) ([]byte, error) {
	read := func() ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		s := strings.TrimSpace(string(b))
		if len(s) < MinSecretLen {
			return nil, fmt.Errorf("%s holds fewer than %d characters", path, MinSecretLen)
		}
		return []byte(s), nil
	}
	key, err := read()
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".url-secret-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(hex.EncodeToString(raw) + "\n")
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, werr
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return read()
}

// Sign returns the query that lets anyone download attachment id for ttl.
func (s *Signer) Sign(id int, ttl time.Duration) string {
	return s.SignUntil(id, s.now().Add(ttl))
}

// SignUntil returns the query that lets anyone download attachment id until
// exp (to the second).
func (s *Signer) SignUntil(id int, exp time.Time) string {
	e := exp.Unix()
	return url.Values{"exp": {strconv.FormatInt(e, 10)}, "sig": {hex.EncodeToString(s.mac(id, e))}}.Encode()
}

// Verify reports whether exp and sig, as found in a link's query, are a
// signature of attachment id that has not expired.
func (s *Signer) Verify(id int, exp, sig string) bool {
	if exp == "" || sig == "" || len(exp) > 19 || exp[0] == '+' || exp[0] == '-' {
		return false
	}
	e, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || s.now().Unix() > e {
		return false
	}
	got, err := hex.DecodeString(sig)
	if err != nil {
		return false
	}
	return hmac.Equal(got, s.mac(id, e))
}

func (s *Signer) mac(id int, exp int64) []byte {
	m := hmac.New(sha256.New, s.key)
	fmt.Fprintf(m, "attachment:%d:%d", id, exp)
	return m.Sum(nil)
}
