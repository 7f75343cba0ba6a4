package attachments

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/parleyhq/parley/internal/secrets"
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
	key, err := secrets.LoadOrCreateFile(filepath.Join(dataDir, SecretFile), MinSecretLen)
	if err != nil {
		return nil, fmt.Errorf("URL secret: %w", err)
	}
	return NewSigner([]byte(key)), nil
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
