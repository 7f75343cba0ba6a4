package app

import (
	"log/slog"
	"path/filepath"

	"github.com/parleyhq/parley/internal/attachments"
	"github.com/parleyhq/parley/internal/config"
	"github.com/parleyhq/parley/internal/conversations"
	"github.com/parleyhq/parley/internal/store"
)

// newAttachments builds the attachments service: files under
// PARLEY_DATA_DIR/attachments, links signed with PARLEY_URL_SECRET (or the
// data directory's generated secret), access decided by the conversations.
func newAttachments(cfg config.Config, db *store.DB, convs *conversations.Service, log *slog.Logger) (*attachments.Service, error) {
	files, err := attachments.NewLocalStore(filepath.Join(cfg.DataDir, "attachments"))
	if err != nil {
		return nil, err
	}
	signer, err := attachments.LoadSigner(cfg.URLSecret, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return attachments.NewService(db, files, signer, convs, log, attachments.Config{
		MaxBytes: cfg.MaxUploadBytes, PublicURL: cfg.PublicURL,
	}), nil
}
