package secrets

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyFile is where, under the data directory, a generated key is kept when
// PARLEY_SECRET_KEY is not set.
const KeyFile = "secret-key"

// LoadRing returns the ring that seals with current (PARLEY_SECRET_KEY) and
// also opens with old (PARLEY_SECRET_KEY_OLD). When current is nil, the key
// is the one in dataDir/secret-key, generated on first use: enough for one
// instance or several sharing the data directory; others must set
// PARLEY_SECRET_KEY, or each would seal with a key the rest cannot open.
func LoadRing(current *Key, old []Key, dataDir string) (*Ring, error) {
	if current == nil {
		path := filepath.Join(dataDir, KeyFile)
		s, err := LoadOrCreateFile(path, 2*KeySize)
		if err != nil {
			return nil, fmt.Errorf("secret key: %w", err)
		}
		k, err := ParseKey(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		current = &k
	}
	return NewRing(*current, old...)
}

// LoadOrCreateFile returns the trimmed contents of the file at path, first
// writing 32 random bytes there in hex when it does not exist. The file
// appears whole or not at all (written aside, then linked into place, which
// fails if another process got there first), so concurrent first starts
// agree on one secret. Contents shorter than minLen are refused.
func LoadOrCreateFile(path string, minLen int) (string, error) {
	read := func() (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", err
		}
		s := strings.TrimSpace(string(b))
		if len(s) < minLen {
			return "", fmt.Errorf("%s holds fewer than %d characters", path, minLen)
		}
		return s, nil
	}
	s, err := read()
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return "", err
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
		return "", werr
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	return read()
}
