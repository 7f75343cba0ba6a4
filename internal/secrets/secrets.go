// Package secrets seals credentials kept at rest (the provider tokens of
// channel accounts) with AES-256-GCM under a key ring: the current key
// seals, every key of the ring opens, so a key is rotated without a moment
// in which stored credentials cannot be read. A sealed value is text:
//
//	v1:<key id>:<base64 of nonce, ciphertext and tag>
//
// The key id (8 hex digits of a hash of the key, never the key) names the
// key that sealed the value, so Open needs no trial decryption and an
// operator learns which key is missing; the "v1:<key id>:" header is
// authenticated with the ciphertext. A value without the "v1:" prefix is
// plaintext stored before encryption: Open returns it unchanged, and the
// reencrypt-secrets command seals it.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/parleyhq/parley/internal/apperr"
)

// KeySize is the length of a key in bytes (AES-256).
const KeySize = 32

// prefix marks a sealed value and its format version.
const prefix = "v1:"

// Key is one 32-byte key. It prints as redacted, so a configuration that
// reaches a log or a test failure leaks nothing.
type Key struct{ b [KeySize]byte }

// String implements fmt.Stringer without revealing the key.
func (Key) String() string { return "secrets.Key{redacted}" }

// GoString keeps %#v from printing the key too.
func (k Key) GoString() string { return k.String() }

// ID names the key in sealed values: the first 4 bytes of a hash of the
// key, in hex. It identifies a key to an operator without revealing it.
func (k Key) ID() string {
	h := sha256.Sum256(append([]byte("parley secret key id\x00"), k.b[:]...))
	return hex.EncodeToString(h[:4])
}

// ErrBadKey is why ParseKey refused a key; the message never repeats it.
var ErrBadKey = errors.New("a secret key must be 32 bytes, written as 64 hex digits or in base64 (for example the output of `openssl rand -base64 32`)")

// ParseKey reads a key written as 64 hex digits or as base64 (standard or
// URL alphabet, padded or not) of 32 bytes.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	var k Key
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			copy(k.b[:], b)
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			copy(k.b[:], b)
			return k, nil
		}
	}
	return Key{}, ErrBadKey
}

// Ring seals with its current key and opens with any of its keys.
type Ring struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewRing returns a ring that seals with current and also opens values
// sealed with any of old (keys being rotated out).
func NewRing(current Key, old ...Key) (*Ring, error) {
	r := &Ring{current: current.ID(), aeads: map[string]cipher.AEAD{}}
	seen := map[string]Key{}
	for _, k := range append([]Key{current}, old...) {
		id := k.ID()
		if prev, ok := seen[id]; ok {
			if prev != k {
				return nil, fmt.Errorf("two different secret keys share the id %s; replace one", id)
			}
			continue
		}
		seen[id] = k
		block, err := aes.NewCipher(k.b[:])
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		r.aeads[id] = aead
	}
	return r, nil
}

// CurrentID is the id of the key that seals.
func (r *Ring) CurrentID() string { return r.current }

// Errors that Open wraps, for errors.Is. They are INTERNAL to clients: a
// key missing from the configuration or a damaged row is for an operator.
var (
	ErrUnknownKey = errors.New("sealed with a key that is not configured")
	ErrDamaged    = errors.New("sealed value is damaged or was sealed with another key of the same id")
	ErrNoRing     = errors.New("no secret key is configured")
)

// Seal encrypts plain with the current key. The empty string stays empty,
// so an optional credential left out stays absent.
func (r *Ring) Seal(plain string) (string, error) {
	if plain == "" {
		return "", nil
	}
	if r == nil {
		return "", apperr.Wrap(apperr.Internal, ErrNoRing, "credentials cannot be sealed")
	}
	aead := r.aeads[r.current]
	header := prefix + r.current + ":"
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", apperr.Wrap(apperr.Internal, err, "credentials cannot be sealed")
	}
	sealed := aead.Seal(nonce, nonce, []byte(plain), []byte(header))
	return header + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// Open decrypts a value Seal made with any key of the ring; a value that is
// not sealed (plaintext from before encryption) is returned unchanged. A
// nil ring opens only plaintext.
func (r *Ring) Open(s string) (string, error) {
	if !IsSealed(s) {
		return s, nil
	}
	id, body, ok := strings.Cut(s[len(prefix):], ":")
	if !ok {
		return "", openError(id, ErrDamaged)
	}
	var aead cipher.AEAD
	if r != nil {
		aead = r.aeads[id]
	}
	if aead == nil {
		return "", openError(id, ErrUnknownKey)
	}
	raw, err := base64.RawStdEncoding.DecodeString(body)
	if err != nil || len(raw) < aead.NonceSize()+aead.Overhead() {
		return "", openError(id, ErrDamaged)
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, raw[:n], raw[n:], []byte(prefix+id+":"))
	if err != nil {
		return "", openError(id, ErrDamaged)
	}
	return string(plain), nil
}

func openError(id string, cause error) error {
	if len(id) > 8 {
		id = id[:8]
	}
	return apperr.Wrap(apperr.Internal, cause, "stored credentials (key id %q) cannot be opened: set the key that sealed them (PARLEY_SECRET_KEY or PARLEY_SECRET_KEY_OLD)", id)
}

// IsSealed reports whether s is in the sealed format (of any key).
func IsSealed(s string) bool { return strings.HasPrefix(s, prefix) }

// SealAll seals each field in place with the current key. Fields must hold
// plaintext: a sealed value would be sealed again.
func (r *Ring) SealAll(fields ...*string) error { return each(fields, r.Seal) }

// OpenAll opens each field in place.
func (r *Ring) OpenAll(fields ...*string) error { return each(fields, r.Open) }

func each(fields []*string, f func(string) (string, error)) error {
	for _, p := range fields {
		v, err := f(*p)
		if err != nil {
			return err
		}
		*p = v
	}
	return nil
}

// Current reports whether every field is empty or sealed with the current
// key: nothing for a re-encryption to do.
func (r *Ring) Current(fields ...*string) bool {
	for _, f := range fields {
		if *f != "" && (r == nil || !strings.HasPrefix(*f, prefix+r.current+":")) {
			return false
		}
	}
	return true
}
