package attachments_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/attachments"
)

func sumOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// files lists the regular files under dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("must not be read") }

func TestAttachmentsLocalStore(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "attachments")
	st, err := attachments.NewLocalStore(root)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("contenido de prueba")
	sum := sumOf(data)
	if err := st.Put(ctx, sum, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(root, sum[:2], sum[2:4], sum)
	if st.Path(sum) != want {
		t.Fatalf("path %s, want %s", st.Path(sum), want)
	}
	if got := files(t, root); len(got) != 1 || got[0] != want {
		t.Fatalf("files after Put: %v (no temporary file may remain)", got)
	}
	// Identical content is stored once: a second Put does not even read.
	if err := st.Put(ctx, sum, failReader{}); err != nil {
		t.Fatalf("second Put read its content: %v", err)
	}
	f, err := st.Open(ctx, sum)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) {
		t.Fatalf("read %q", got)
	}
	if _, ok := f.(io.ReadSeeker); !ok {
		t.Fatal("the local store's reader must seek (Range requests)")
	}

	// Content that does not match its key is refused and leaves nothing.
	other := sumOf([]byte("otra cosa"))
	if err := st.Put(ctx, other, strings.NewReader("no es otra cosa")); err == nil {
		t.Fatal("a mismatched hash was stored")
	}
	if _, err := os.Stat(st.Path(other)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("mismatched content left a file: %v", err)
	}
	if got := files(t, root); len(got) != 1 {
		t.Fatalf("files after a refused Put: %v", got)
	}

	// Keys that are not hashes never reach the filesystem.
	for _, bad := range []string{"../../etc/passwd", strings.ToUpper(sum), sum[:63], ""} {
		if err := st.Put(ctx, bad, strings.NewReader("x")); err == nil {
			t.Fatalf("Put accepted key %q", bad)
		}
		if _, err := st.Open(ctx, bad); err == nil {
			t.Fatalf("Open accepted key %q", bad)
		}
	}

	if err := st.Delete(ctx, sum); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Open(ctx, sum); !errors.Is(err, attachments.ErrNotExist) {
		t.Fatalf("Open after Delete: %v", err)
	}
	if err := st.Delete(ctx, sum); err != nil {
		t.Fatalf("deleting twice: %v", err)
	}
}
