package attachments_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/attachments"
	"github.com/parleyhq/parley/internal/attachments/attachmenttest"
)

func detect(b []byte) (*attachments.Kind, error) {
	return attachments.Detect(bytes.NewReader(b), int64(len(b)))
}

func TestAttachmentsDetectAllowedKinds(t *testing.T) {
	seen := map[*attachments.Kind]bool{}
	for _, s := range attachmenttest.Allowed() {
		t.Run(s.Name, func(t *testing.T) {
			k, err := detect(s.Data)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if k.MIME != s.Want {
				t.Fatalf("detected %s, want %s", k.MIME, s.Want)
			}
			seen[k] = true
		})
	}
	for _, k := range attachments.Kinds {
		if !seen[k] {
			t.Errorf("no sample is detected as %s", k.Name)
		}
	}
}

func TestAttachmentsDetectRefusedKinds(t *testing.T) {
	for _, s := range append(attachmenttest.Refused(), attachmenttest.Sample{Name: "empty.txt"}) {
		t.Run(s.Name, func(t *testing.T) {
			k, err := detect(s.Data)
			if !errors.Is(err, attachments.ErrNotAllowed) {
				t.Fatalf("want ErrNotAllowed, got %v (%v)", k, err)
			}
		})
	}
}

// Text is checked in chunks: a character split across a chunk boundary is
// still valid, one cut off at the end is not, and a NUL far into the file
// is found.
func TestAttachmentsDetectTextAcrossChunks(t *testing.T) {
	for _, pad := range []int{64<<10 - 1, 64<<10 - 2, 64<<10 - 3, 64 << 10} {
		b := append(bytes.Repeat([]byte("a"), pad), "✓ ñ 日本\n"...)
		if k, err := detect(b); err != nil || k != attachments.KindTXT {
			t.Fatalf("pad %d: %v %v", pad, k, err)
		}
	}
	long := bytes.Repeat([]byte("línea de texto\n"), 20000)
	if _, err := detect(append(long, 0xe2, 0x9c)); !errors.Is(err, attachments.ErrNotAllowed) {
		t.Fatalf("a truncated character at the end was accepted")
	}
	if _, err := detect(append(append([]byte(nil), long...), "\x00end"...)); !errors.Is(err, attachments.ErrNotAllowed) {
		t.Fatalf("a NUL past the first chunk was accepted")
	}
	if _, err := detect(append([]byte("\xef\xbb\xbf"), "con BOM"...)); err != nil {
		t.Fatalf("UTF-8 with a BOM: %v", err)
	}
}

// Hostile compound files: loops in the directory chain or the tree, and
// sectors out of range, are refused quickly instead of hanging detection.
func TestAttachmentsDetectHostileOLE(t *testing.T) {
	le := binary.LittleEndian
	cases := map[string]func(b []byte){
		"directory chain loops": func(b []byte) { le.PutUint32(b[512+4:], 1) },
		"tree loops": func(b []byte) {
			le.PutUint32(b[1024+128+72:], 1) // the first stream is its own right sibling
		},
		"directory out of range":  func(b []byte) { le.PutUint32(b[0x30:], 5000) },
		"FAT sector out of range": func(b []byte) { le.PutUint32(b[0x4c:], 0xfffffff0) },
		"huge FAT count":          func(b []byte) { le.PutUint32(b[0x2c:], 1<<30) },
		"bad sector shift":        func(b []byte) { le.PutUint16(b[0x1e:], 30) },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			b := attachmenttest.OLE("Other", "WordDocument")
			mutate(b)
			done := make(chan error, 1)
			go func() { _, err := detect(b); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, attachments.ErrNotAllowed) {
					t.Fatalf("want ErrNotAllowed, got %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("detection did not finish")
			}
		})
	}
	if k, err := detect(attachmenttest.OLE("Other", "WordDocument")); err != nil || k != attachments.KindDOC {
		t.Fatalf("the unmutated sample: %v %v", k, err)
	}
}

func TestAttachmentsDetectIgnoresLeadingMarkupOnlyInText(t *testing.T) {
	// Binary kinds are judged by their magic, whatever follows.
	pdf := append(attachmenttest.PDF(), "<script>"...)
	if k, err := detect(pdf); err != nil || k != attachments.KindPDF {
		t.Fatalf("PDF: %v %v", k, err)
	}
	// A mention of markup further than the first KiB of a text is text.
	txt := strings.Repeat("Notas de la reunión.\n", 100) + "usar <script> en la web\n"
	if k, err := detect([]byte(txt)); err != nil || k != attachments.KindTXT {
		t.Fatalf("text: %v %v", k, err)
	}
}
