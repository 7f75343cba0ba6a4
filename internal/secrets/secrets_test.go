package secrets_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/secrets"
)

func randomKey(t *testing.T) (secrets.Key, []byte) {
	t.Helper()
	raw := make([]byte, secrets.KeySize)
	_, _ = rand.Read(raw)
	k, err := secrets.ParseKey(hex.EncodeToString(raw))
	require.NoError(t, err)
	return k, raw
}

func TestParseKey(t *testing.T) {
	raw := make([]byte, 32)
	for i := range raw {
		raw[i] = byte(250 - i) // bytes that differ between the base64 alphabets
	}
	want, err := secrets.ParseKey(hex.EncodeToString(raw))
	require.NoError(t, err)
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"hex", hex.EncodeToString(raw), true},
		{"HEX", strings.ToUpper(hex.EncodeToString(raw)), true},
		{"base64", base64.StdEncoding.EncodeToString(raw), true},
		{"base64 unpadded", base64.RawStdEncoding.EncodeToString(raw), true},
		{"base64 url", base64.URLEncoding.EncodeToString(raw), true},
		{"base64 url unpadded", base64.RawURLEncoding.EncodeToString(raw), true},
		{"with a newline", base64.StdEncoding.EncodeToString(raw) + "\n", true},
		{"empty", "", false},
		{"a password", "correct horse battery staple", false},
		{"31 bytes", base64.StdEncoding.EncodeToString(raw[:31]), false},
		{"33 bytes", base64.StdEncoding.EncodeToString(append(raw, 1)), false},
		{"short hex", hex.EncodeToString(raw[:16]), false},
		{"not hex", strings.Repeat("zz", 32), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := secrets.ParseKey(tc.in)
			if !tc.ok {
				require.ErrorIs(t, err, secrets.ErrBadKey)
				if tc.in != "" {
					require.NotContains(t, err.Error(), tc.in, "the error repeats the input")
				}
				return
			}
			require.NoError(t, err)
			require.Equal(t, want.ID(), k.ID())
		})
	}
}

// TestKeyNeverPrints: a key inside a configuration printed by %v, %+v or
// %#v shows nothing of itself.
func TestKeyNeverPrints(t *testing.T) {
	k, raw := randomKey(t)
	cfg := struct {
		Key  secrets.Key
		Old  []secrets.Key
		Next *secrets.Key
	}{k, []secrets.Key{k}, &k}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		out := fmt.Sprintf(verb, cfg) + fmt.Sprintf(verb, k) + fmt.Sprintf(verb, *cfg.Next)
		for _, leak := range []string{hex.EncodeToString(raw), fmt.Sprint(raw[:4]), fmt.Sprintf("%d", raw[0]) + " " + fmt.Sprintf("%d", raw[1])} {
			require.NotContains(t, out, leak, verb)
		}
	}
}

func TestSealOpen(t *testing.T) {
	k, _ := randomKey(t)
	ring, err := secrets.NewRing(k)
	require.NoError(t, err)
	a, err := ring.Seal("EAAG-live-token")
	require.NoError(t, err)
	b, err := ring.Seal("EAAG-live-token")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(a, "v1:"+k.ID()+":"), a)
	require.NotContains(t, a, "EAAG")
	require.NotEqual(t, a, b, "two seals of one value must differ (a fresh nonce each)")
	for _, s := range []string{a, b} {
		got, err := ring.Open(s)
		require.NoError(t, err)
		require.Equal(t, "EAAG-live-token", got)
	}
	// The empty string stays empty; plaintext from before encryption
	// opens as itself.
	empty, err := ring.Seal("")
	require.NoError(t, err)
	require.Equal(t, "", empty)
	for _, plain := range []string{"", "legacy-token", "v1"} {
		got, err := ring.Open(plain)
		require.NoError(t, err)
		require.Equal(t, plain, got)
	}
}

// TestTampering: a changed byte anywhere, a swapped key id or a truncated
// value does not open, and says so as an INTERNAL error without the value.
func TestTampering(t *testing.T) {
	k, _ := randomKey(t)
	other, _ := randomKey(t)
	ring, err := secrets.NewRing(k, other)
	require.NoError(t, err)
	sealed, err := ring.Seal("tw-auth-token")
	require.NoError(t, err)
	body := sealed[len("v1:"+k.ID()+":"):]
	raw, err := base64.RawStdEncoding.DecodeString(body)
	require.NoError(t, err)
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"a flipped bit", "v1:" + k.ID() + ":" + base64.RawStdEncoding.EncodeToString(flipped), secrets.ErrDamaged},
		{"another key's id", "v1:" + other.ID() + ":" + body, secrets.ErrDamaged},
		{"an unknown key id", "v1:00000000:" + body, secrets.ErrUnknownKey},
		{"truncated", "v1:" + k.ID() + ":" + body[:10], secrets.ErrDamaged},
		{"no base64", "v1:" + k.ID() + ":!!!", secrets.ErrDamaged},
		{"no id", "v1:" + body, secrets.ErrDamaged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ring.Open(tc.in)
			require.ErrorIs(t, err, tc.want)
			require.Equal(t, apperr.Internal, apperr.CodeOf(err))
			require.NotContains(t, err.Error(), body[:12])
		})
	}
}

// TestRotation: the old key still opens what it sealed once it is the old
// key of a ring; the new key seals; without the old key its values do not
// open, and Current tells which fields still need re-encryption.
func TestRotation(t *testing.T) {
	oldKey, _ := randomKey(t)
	newKey, _ := randomKey(t)
	before, err := secrets.NewRing(oldKey)
	require.NoError(t, err)
	token, secret := "access", "app-secret"
	require.NoError(t, before.SealAll(&token, &secret))
	sealedOld := token

	during, err := secrets.NewRing(newKey, oldKey)
	require.NoError(t, err)
	require.Equal(t, newKey.ID(), during.CurrentID())
	require.False(t, during.Current(&token, &secret))
	require.NoError(t, during.OpenAll(&token, &secret))
	require.Equal(t, []string{"access", "app-secret"}, []string{token, secret})
	require.NoError(t, during.SealAll(&token, &secret))
	require.True(t, during.Current(&token, &secret))
	require.True(t, strings.HasPrefix(token, "v1:"+newKey.ID()+":"))

	after, err := secrets.NewRing(newKey)
	require.NoError(t, err)
	require.NoError(t, after.OpenAll(&token, &secret))
	require.Equal(t, []string{"access", "app-secret"}, []string{token, secret})
	_, err = after.Open(sealedOld)
	require.ErrorIs(t, err, secrets.ErrUnknownKey)
	require.Contains(t, err.Error(), oldKey.ID(), "the error names the missing key")

	plain := "legacy"
	require.False(t, after.Current(&plain), "plaintext needs sealing")
	empty := ""
	require.True(t, after.Current(&empty))
}

func TestNilRing(t *testing.T) {
	var r *secrets.Ring
	got, err := r.Open("plaintext")
	require.NoError(t, err)
	require.Equal(t, "plaintext", got)
	_, err = r.Seal("x")
	require.ErrorIs(t, err, secrets.ErrNoRing)
	_, err = r.Open("v1:00000000:AAAA")
	require.ErrorIs(t, err, secrets.ErrUnknownKey)
}

// TestLoadRing: without a configured key, concurrent first starts agree on
// one key generated into the data directory, readable by the owner only and
// kept across restarts; a configured key takes precedence.
func TestLoadRing(t *testing.T) {
	dir := t.TempDir()
	rings := make([]*secrets.Ring, 8)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for i := range rings {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rings[i], errs[i] = secrets.LoadRing(nil, nil, dir)
		}()
	}
	wg.Wait()
	sealed, err := rings[0].Seal("token")
	require.NoError(t, err)
	for i, r := range rings {
		require.NoError(t, errs[i])
		got, err := r.Open(sealed)
		require.NoError(t, err, "ring %d has another key", i)
		require.Equal(t, "token", got)
	}
	fi, err := os.Stat(filepath.Join(dir, secrets.KeyFile))
	require.NoError(t, err)
	require.Zero(t, fi.Mode().Perm()&0o077, "the key file is readable by others: %v", fi.Mode())
	again, err := secrets.LoadRing(nil, nil, dir)
	require.NoError(t, err)
	_, err = again.Open(sealed)
	require.NoError(t, err, "a restart does not keep the key")

	configured, _ := randomKey(t)
	r, err := secrets.LoadRing(&configured, nil, dir)
	require.NoError(t, err)
	require.Equal(t, configured.ID(), r.CurrentID())
	_, err = r.Open(sealed)
	require.True(t, errors.Is(err, secrets.ErrUnknownKey))

	// A damaged key file is refused with its path, not used.
	bad := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bad, secrets.KeyFile), []byte(strings.Repeat("x", 64)), 0o600))
	_, err = secrets.LoadRing(nil, nil, bad)
	require.ErrorIs(t, err, secrets.ErrBadKey)
	require.Contains(t, err.Error(), secrets.KeyFile)
}
