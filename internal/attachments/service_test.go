package attachments_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/attachments"
	"github.com/parleyhq/parley/internal/attachments/attachmenttest"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/store/storetest"
)

// seesNothing is an Access under which no conversation is visible.
type seesNothing struct{}

func (seesNothing) MaySee(context.Context, auth.Principal, int) (bool, error) { return false, nil }

// onlyReader hides everything but Read, as a network body does.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func newService(t *testing.T, b storetest.Backend, max int64) (*attachments.Service, *attachments.LocalStore) {
	t.Helper()
	db := storetest.Open(t, b)
	files, err := attachments.NewLocalStore(filepath.Join(t.TempDir(), "attachments"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := attachments.NewService(db, files, attachments.NewSigner([]byte(strings.Repeat("k", 32))), seesNothing{}, log,
		attachments.Config{MaxBytes: max, PublicURL: "https://chat.example.com"})
	return svc, files
}

func TestAttachmentsServiceIngest(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		svc, files := newService(t, b, 4096)
		ctx := context.Background()

		// A provider's body that cannot seek is spooled, and checked.
		pdf := attachmenttest.PDF()
		a, err := svc.Ingest(ctx, attachments.File{Name: "factura", Content: onlyReader{bytes.NewReader(pdf)}})
		if err != nil {
			t.Fatal(err)
		}
		if a.ContentType != "application/pdf" || a.Filename != "factura.pdf" || a.Size != int64(len(pdf)) ||
			a.UploaderAgentID != nil || a.UploaderConversationID != nil {
			t.Fatalf("ingested %+v", a)
		}
		if _, err := svc.Ingest(ctx, attachments.File{Name: "x.pdf", Content: onlyReader{bytes.NewReader(attachmenttest.EXE())}}); !apperr.Is(err, apperr.BadUserInput) {
			t.Fatalf("an executable: %v", err)
		}
		big := onlyReader{io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("a"), 4096)), strings.NewReader("b"))}
		if _, err := svc.Ingest(ctx, attachments.File{Name: "big.txt", Content: big}); !apperr.Is(err, apperr.BadUserInput) {
			t.Fatalf("one byte over the limit, unseekable: %v", err)
		}

		// Audio recognised by the channel: stored as it says, same limit.
		ogg := append([]byte("OggS\x00\x02"), bytes.Repeat([]byte{1}, 100)...)
		voice := &attachments.Kind{Name: "OGG", MIME: "audio/ogg", Exts: []string{"ogg"}}
		a, err = svc.IngestAs(ctx, attachments.File{Name: "voice note", Content: bytes.NewReader(ogg)}, voice)
		if err != nil || a.ContentType != "audio/ogg" || a.Filename != "voice note.ogg" {
			t.Fatalf("IngestAs: %+v %v", a, err)
		}
		if _, err := svc.IngestAs(ctx, attachments.File{Name: "long.ogg", Content: bytes.NewReader(make([]byte, 4097))}, voice); !apperr.Is(err, apperr.BadUserInput) {
			t.Fatalf("IngestAs over the limit: %v", err)
		}
		if _, err := files.Open(ctx, a.Sha256); err != nil {
			t.Fatal(err)
		}
		// Unsent and old: swept, file and all.
		if n, err := svc.Sweep(ctx, time.Now().Add(time.Minute)); err != nil || n != 2 {
			t.Fatalf("sweep removed %d (%v)", n, err)
		}
		if _, err := files.Open(ctx, a.Sha256); err == nil {
			t.Fatal("the swept file is still there")
		}
	})
}

func TestAttachmentsServiceUploadAndAuthorize(t *testing.T) {
	storetest.Each(t, func(t *testing.T, b storetest.Backend) {
		svc, _ := newService(t, b, 0)
		ctx := context.Background()
		txt := attachments.File{Name: "a.txt", Content: strings.NewReader("hola")}
		if _, err := svc.Upload(ctx, txt); !apperr.Is(err, apperr.Unauthenticated) {
			t.Fatalf("no caller: %v", err)
		}
		visitor := auth.WithPrincipal(ctx, auth.Principal{ConversationID: 77})
		a, err := svc.Upload(visitor, attachments.File{Name: "a.txt", Content: strings.NewReader("hola")})
		if err != nil || a.UploaderConversationID == nil || *a.UploaderConversationID != 77 || a.UploaderAgentID != nil {
			t.Fatalf("visitor upload %+v %v", a, err)
		}
		agent := auth.WithPrincipal(ctx, auth.Principal{AgentID: 5})
		for name, c := range map[string]context.Context{
			"the uploading visitor": visitor,
		} {
			if _, err := svc.Authorize(c, a.ID, "", ""); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		for name, c := range map[string]context.Context{
			"no caller":       ctx,
			"an agent":        agent,
			"another visitor": auth.WithPrincipal(ctx, auth.Principal{ConversationID: 78}),
		} {
			if _, err := svc.Authorize(c, a.ID, "", ""); !apperr.Is(err, apperr.NotFound) {
				t.Fatalf("%s: %v", name, err)
			}
		}
		link, err := svc.URL(visitor, a)
		if err != nil || !strings.HasPrefix(link, "https://chat.example.com/attachments/") {
			t.Fatalf("URL %q %v", link, err)
		}
		q := link[strings.IndexByte(link, '?')+1:]
		exp := q[strings.Index(q, "exp=")+4 : strings.Index(q, "&")]
		sig := q[strings.Index(q, "sig=")+4:]
		if _, err := svc.Authorize(ctx, a.ID, exp, sig); err != nil {
			t.Fatalf("the signed link: %v", err)
		}
		if _, err := svc.Authorize(ctx, a.ID+1, exp, sig); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("a missing attachment: %v", err)
		}
		// The link lives between one and two URL lifetimes (an hour each).
		e, _ := strconv.ParseInt(exp, 10, 64)
		if left := time.Until(time.Unix(e, 0)); left < 59*time.Minute || left > 2*time.Hour {
			t.Fatalf("the link lives %v more", left)
		}
	})
}
