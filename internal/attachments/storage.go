package attachments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Storage keeps file contents by their SHA-256, so identical content is
// stored once however many attachments refer to it. The local filesystem is
// the only implementation today; the interface is what an S3-compatible
// store would implement.
type Storage interface {
	// Put stores content under sum, its lowercase hex SHA-256. When content
	// under sum is already there, Put returns nil without reading content.
	// Put fails, and stores nothing, when content does not hash to sum.
	Put(ctx context.Context, sum string, content io.Reader) error
	// Open returns the content stored under sum, or an error wrapping
	// ErrNotExist. The reader may also be an io.ReadSeeker (the local store's
	// is), which lets downloads answer Range requests.
	Open(ctx context.Context, sum string) (io.ReadCloser, error)
	// Delete removes the content under sum; content that is not there is not
	// an error.
	Delete(ctx context.Context, sum string) error
}

// ErrNotExist is wrapped by Open's error when nothing is stored under a sum.
var ErrNotExist = fs.ErrNotExist

// errBadSum refuses a key that is not a SHA-256 in lowercase hex, so that a
// key can never name a path outside the store.
var errBadSum = errors.New("attachments: storage key is not a lowercase hex SHA-256")

func validSum(sum string) bool {
	if len(sum) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(sum); i++ {
		c := sum[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// LocalStore keeps contents in a directory (PARLEY_DATA_DIR/attachments),
// each file at ab/cd/abcd…, named by its SHA-256 and sharded by its first two
// bytes so that no directory grows huge. Writes are atomic: a temporary file
// in the target directory is written, synced and renamed into place, so a
// reader or a crash never sees half a file.
type LocalStore struct {
	root string
}

// NewLocalStore returns a store rooted at dir, creating it.
func NewLocalStore(dir string) (*LocalStore, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("attachments directory: %w", err)
	}
	return &LocalStore{root: dir}, nil
}

// Path is where the content under sum lives (whether or not it exists).
func (l *LocalStore) Path(sum string) string {
	return filepath.Join(l.root, sum[0:2], sum[2:4], sum)
}

// Put implements Storage.
func (l *LocalStore) Put(ctx context.Context, sum string, content io.Reader) (err error) {
	if !validSum(sum) {
		return errBadSum
	}
	dst := l.Path(sum)
	if fi, err := os.Stat(dst); err == nil && fi.Mode().IsRegular() {
		return nil
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	if _, err = io.Copy(io.MultiWriter(tmp, h), ctxReader{ctx, content}); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("attachments: content hashes to %s, not %s", got, sum)
	}
	if err = tmp.Chmod(0o640); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	// The rename is durable once the directory is synced.
	if d, derr := os.Open(dir); derr == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Open implements Storage; the reader is an *os.File.
func (l *LocalStore) Open(_ context.Context, sum string) (io.ReadCloser, error) {
	if !validSum(sum) {
		return nil, errBadSum
	}
	f, err := os.Open(l.Path(sum))
	if err != nil {
		return nil, err // wraps fs.ErrNotExist when missing
	}
	return f, nil
}

// Delete implements Storage. Shard directories stay: removing an empty one
// could race with a concurrent Put creating its file there.
func (l *LocalStore) Delete(_ context.Context, sum string) error {
	if !validSum(sum) {
		return errBadSum
	}
	err := os.Remove(l.Path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
