// Package setup builds the channels service with its three adapters over
// the attachments service (inbound media, signed links for outbound media),
// from Parley's configuration, so that the application's wiring stays one
// call.
package setup

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/attachments"
	"github.com/parleyhq/parley/internal/channels"
	"github.com/parleyhq/parley/internal/channels/messenger"
	"github.com/parleyhq/parley/internal/channels/twilio"
	"github.com/parleyhq/parley/internal/channels/whatsapp"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/ratelimit"
	"github.com/parleyhq/parley/internal/secrets"
)

// New builds the channels service from the configuration; shared, when not
// nil, caps send rates across instances; ring opens the stored credentials.
func New(db *ent.Client, convs channels.Conversations, atts *attachments.Service, log *slog.Logger,
	cfg config.Config, shared ratelimit.Limiter, ring *secrets.Ring) (*channels.Service, error) {
	set := channels.Settings{GraphVersion: cfg.GraphAPIVersion}
	client := channels.NewHTTPClient()
	maxBytes := cfg.MaxUploadBytes
	if maxBytes <= 0 {
		maxBytes = attachments.DefaultMaxBytes
	}
	s := channels.New(channels.Deps{
		DB: db, Conversations: convs, Log: log, PublicURL: cfg.PublicURL, Shared: shared, Secrets: ring,
		Media: &MediaStore{Attachments: atts, MaxBytes: maxBytes},
		Links: atts,
		Providers: []channels.Provider{
			whatsapp.New(set.GraphVersion, client),
			messenger.New(set.GraphVersion, client),
			twilio.New(client),
		},
	})
	// A download larger than what is kept stops early.
	s.MaxMediaBytes = maxBytes
	return s, nil
}

// MediaStore keeps inbound provider media through the attachments service:
// the allowed kinds as any upload (checked by content), and, beyond the
// upload allow-list, audio and video (see the media policy in package
// channels) in the same content-addressed storage.
type MediaStore struct {
	Attachments *attachments.Service
	MaxBytes    int64
}

// Store implements channels.MediaStore.
func (m *MediaStore) Store(ctx context.Context, filename, claimedType string, r io.ReadSeeker) (int, error) {
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return 0, err
	}
	if size == 0 {
		return 0, &channels.MediaError{Reason: "the file is empty", Permanent: true}
	}
	if size > m.MaxBytes {
		return 0, &channels.MediaError{Reason: fmt.Sprintf("larger than %d MB", m.MaxBytes>>20), Permanent: true}
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	a, err := m.Attachments.Ingest(ctx, attachments.File{Name: filename, Content: r})
	if err == nil {
		return a.ID, nil
	}
	if !apperr.Is(err, apperr.BadUserInput) {
		return 0, err
	}
	// Not an allowed kind: keep it if it is audio or video.
	head := make([]byte, 512)
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	n, _ := io.ReadFull(r, head)
	ct, ok := channels.MediaType(head[:n], claimedType)
	if !ok {
		return 0, &channels.MediaError{Reason: "not a kind of file Parley keeps", Permanent: true}
	}
	// Audio and video go through the attachments service too: its size
	// limit, content-addressed storage and content lock against cleanup.
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	kind := &attachments.Kind{Name: ct, MIME: ct, Exts: []string{channels.MediaExtension(ct)}}
	a, err = m.Attachments.IngestAs(ctx, attachments.File{Name: filename, Content: r}, kind)
	if err != nil {
		return 0, err
	}
	return a.ID, nil
}
