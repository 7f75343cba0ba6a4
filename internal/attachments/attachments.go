// Package attachments stores the files agents, visitors and channels send:
// it checks what a file is by its content (only the kinds in Kinds are
// stored), keeps it content-addressed behind the Storage interface, decides
// who may download it, signs expiring links for providers and browsers, and
// removes uploads that were never sent.
//
// Who may see an attachment follows its message's conversation (the rules
// of internal/conversations); an upload not yet sent is its uploader's only.
// Anyone else is told it does not exist.
package attachments

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"time"

	"entgo.io/ent/dialect"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/attachment"
	"github.com/parleyhq/parley/ent/message"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/worker"
)

// Defaults of Config.
const (
	DefaultMaxBytes = 25 << 20
	DefaultGrace    = 24 * time.Hour
	DefaultURLTTL   = time.Hour
)

// Config tunes the service.
type Config struct {
	// MaxBytes is the largest file accepted (PARLEY_MAX_UPLOAD_BYTES).
	MaxBytes int64
	// PublicURL is the server's external base URL; download links start
	// with it.
	PublicURL string
	// Grace is how long an upload may stay unsent before cleanup removes it.
	Grace time.Duration
	// URLTTL is the shortest life of the signed link in Attachment.url; a
	// link lives between URLTTL and twice that, so that repeated queries
	// give the same URL for a while and browsers can cache the file.
	URLTTL time.Duration
}

// Access says whether a caller may see a conversation and its messages.
// internal/conversations implements it; it is the one place with that rule.
type Access interface {
	MaySee(ctx context.Context, p auth.Principal, conversationID int) (bool, error)
}

// Service is the attachments service.
type Service struct {
	client *ent.Client
	files  Storage
	signer *Signer
	access Access
	locks  *contentLocks
	log    *slog.Logger
	cfg    Config
	now    func() time.Time

	// VisitorGate, when set, is asked before a visitor's upload is read:
	// the live-chat rules (blocked addresses, per-IP limits, ended chats).
	VisitorGate func(context.Context) error
}

// NewService returns the service over db, storing contents in files.
func NewService(db *store.DB, files Storage, signer *Signer, access Access, log *slog.Logger, cfg Config) *Service {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.URLTTL <= 0 {
		cfg.URLTTL = DefaultURLTTL
	}
	locks := &contentLocks{}
	if db.Dialect == dialect.Postgres {
		locks.pg = db.SQL
	}
	return &Service{
		client: db.Client, files: files, signer: signer, access: access, locks: locks,
		log: log, cfg: cfg, now: time.Now,
	}
}

// Storage returns where contents are kept.
func (s *Service) Storage() Storage { return s.files }

// Signer returns the link signer.
func (s *Service) Signer() *Signer { return s.signer }

// File is an uploaded file as a transport hands it over.
type File struct {
	// Name is the name the client gave; it is cleaned (CleanFilename).
	Name string
	// Content is the file. An io.ReadSeeker (what gqlgen hands over) is read
	// in place; anything else is first copied to a temporary file, at most
	// one byte more than the limit.
	Content io.Reader
}

// Upload stores a file for the caller: an agent's upload may then be sent
// by that agent (SendMessage), a visitor's in the visitor's conversation
// (VisitorSendMessage). Anyone else gets UNAUTHENTICATED. A file that is
// empty, larger than the limit or not of an allowed kind gets
// BAD_USER_INPUT, and nothing is stored.
func (s *Service) Upload(ctx context.Context, f File) (*ent.Attachment, error) {
	p, ok := auth.FromContext(ctx)
	switch {
	case ok && p.IsAgent():
		return s.save(ctx, f, nil, func(c *ent.AttachmentCreate) { c.SetUploaderAgentID(p.AgentID) })
	case ok && p.IsVisitor():
		if s.VisitorGate != nil {
			if err := s.VisitorGate(ctx); err != nil {
				return nil, err
			}
		}
		return s.save(ctx, f, nil, func(c *ent.AttachmentCreate) { c.SetUploaderConversationID(p.ConversationID) })
	case !ok:
		_, err := auth.Agent(ctx) // says why: no token, or which failure
		return nil, err
	}
	return nil, apperr.ErrUnauthenticated
}

// Ingest stores a file a channel adapter received from a provider, with no
// uploader: the adapter then passes its id in conversations.Inbound, and
// only the inbound entry point can attach it. The same checks as Upload
// apply.
func (s *Service) Ingest(ctx context.Context, f File) (*ent.Attachment, error) {
	return s.save(ctx, f, nil, func(*ent.AttachmentCreate) {})
}

// IngestAs is Ingest for a provider's file of a kind outside Kinds (audio,
// video) that the caller has recognised itself: no content check, but the
// same size limit, storage, cleanup and locking against cleanup as every
// other attachment.
func (s *Service) IngestAs(ctx context.Context, f File, k *Kind) (*ent.Attachment, error) {
	if k == nil || k.MIME == "" || len(k.Exts) == 0 {
		return nil, errors.New("attachments: IngestAs needs a kind with a type and an extension")
	}
	return s.save(ctx, f, k, func(*ent.AttachmentCreate) {})
}

// save stores f as kind, or as what Detect says when kind is nil.
func (s *Service) save(ctx context.Context, f File, kind *Kind, owner func(*ent.AttachmentCreate)) (*ent.Attachment, error) {
	if f.Content == nil {
		return nil, apperr.Invalid("file", "a file is required")
	}
	src, size, done, err := s.source(f.Content)
	if err != nil {
		return nil, err
	}
	defer done()
	if size == 0 {
		return nil, apperr.Invalid("file", "the file is empty")
	}
	if size > s.cfg.MaxBytes {
		return nil, apperr.Invalid("file", "the file is larger than the limit of %s", human(s.cfg.MaxBytes))
	}
	if kind == nil {
		kind, err = Detect(src, size)
		if errors.Is(err, ErrNotAllowed) {
			return nil, apperr.Invalid("file", "this kind of file is not allowed: send PDF, Word, Excel, PowerPoint, text, RTF or an image (JPEG, PNG, GIF, BMP, WebP, TIFF, HEIC)")
		}
		if err != nil {
			return nil, fmt.Errorf("read upload: %w", err)
		}
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(src, 0, size)); err != nil {
		return nil, fmt.Errorf("read upload: %w", err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	name := CleanFilename(f.Name, kind)

	// The long write happens outside the lock; under it, Put only checks
	// the file is still there (cleanup may have removed identical content in
	// between) before the row that refers to it is added.
	if err := s.files.Put(ctx, sum, io.NewSectionReader(src, 0, size)); err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	unlock, err := s.locks.lock(ctx, sum)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := s.files.Put(ctx, sum, io.NewSectionReader(src, 0, size)); err != nil {
		return nil, fmt.Errorf("store upload: %w", err)
	}
	c := s.client.Attachment.Create().SetFilename(name).SetContentType(kind.MIME).
		SetSize(size).SetSha256(sum).SetCreatedAt(s.now())
	owner(c)
	a, err := c.Save(ctx)
	if err != nil {
		s.dropIfUnused(context.WithoutCancel(ctx), sum)
		return nil, store.Coded(err, "attachment")
	}
	return a, nil
}

// source gives random access to the upload and its size, without reading
// more than one byte past the limit.
func (s *Service) source(r io.Reader) (io.ReaderAt, int64, func(), error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		size, err := rs.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("read upload: %w", err)
		}
		if _, err := rs.Seek(0, io.SeekStart); err != nil {
			return nil, 0, nil, fmt.Errorf("read upload: %w", err)
		}
		if ra, ok := r.(io.ReaderAt); ok {
			return ra, size, func() {}, nil
		}
		return &seekReaderAt{rs: rs}, size, func() {}, nil
	}
	tmp, err := os.CreateTemp("", "parley-upload-*")
	if err != nil {
		return nil, 0, nil, err
	}
	done := func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}
	n, err := io.Copy(tmp, io.LimitReader(r, s.cfg.MaxBytes+1))
	if err != nil {
		done()
		return nil, 0, nil, fmt.Errorf("read upload: %w", err)
	}
	return tmp, n, done, nil
}

// seekReaderAt reads at offsets of a ReadSeeker, for one reader at a time.
type seekReaderAt struct{ rs io.ReadSeeker }

func (s *seekReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if _, err := s.rs.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.ReadFull(s.rs, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

// URL is Attachment.url: a link to download the file that works without a
// login (an <img> or a native viewer cannot send the Authorization
// header), signed to expire between URLTTL and twice that from now. It is
// only reachable through queries that already checked the caller may see
// the attachment (a visible conversation's messages, the caller's own
// upload), like the attachment's other fields.
func (s *Service) URL(ctx context.Context, a *ent.Attachment) (string, error) {
	if _, ok := auth.FromContext(ctx); !ok {
		return "", apperr.ErrUnauthenticated
	}
	ttl := s.cfg.URLTTL
	exp := s.now().Truncate(ttl).Add(2 * ttl)
	return s.link(a, s.signer.SignUntil(a.ID, exp)), nil
}

// SignedURL is a download link for a provider (WhatsApp, Messenger, Twilio
// fetch the media of outbound messages from it), valid for ttl.
func (s *Service) SignedURL(a *ent.Attachment, ttl time.Duration) string {
	return s.link(a, s.signer.Sign(a.ID, ttl))
}

// Path is the download path of an attachment without a signature: it works
// with an agent's or the visitor's Authorization header.
func Path(a *ent.Attachment) string {
	return "/attachments/" + strconv.Itoa(a.ID) + "/" + url.PathEscape(a.Filename)
}

func (s *Service) link(a *ent.Attachment, query string) string {
	return s.cfg.PublicURL + Path(a) + "?" + query
}

// Authorize returns attachment id when the request may download it: with a
// valid, unexpired signature (exp, sig from the link's query), or for the
// caller in ctx: an agent or the visitor who may see the conversation of
// the attachment's message, or, for an upload not yet sent, its uploader.
// Everyone else gets NOT_FOUND, exactly as for an attachment that does not
// exist.
func (s *Service) Authorize(ctx context.Context, id int, exp, sig string) (*ent.Attachment, error) {
	notFound := apperr.NotFoundf("attachment")
	a, err := s.client.Attachment.Query().Where(attachment.ID(id)).
		WithMessage(func(q *ent.MessageQuery) { q.Select(message.FieldConversationID) }).
		Only(ctx)
	if ent.IsNotFound(err) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if (exp != "" || sig != "") && s.signer.Verify(id, exp, sig) {
		return a, nil
	}
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, notFound
	}
	if m := a.Edges.Message; m != nil {
		ok, err := s.access.MaySee(ctx, p, m.ConversationID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, notFound
		}
		return a, nil
	}
	switch {
	case p.IsAgent() && a.UploaderAgentID != nil && *a.UploaderAgentID == p.AgentID:
	case p.IsVisitor() && a.UploaderConversationID != nil && *a.UploaderConversationID == p.ConversationID:
	default:
		return nil, notFound
	}
	return a, nil
}

// Open returns an attachment's content (an io.ReadSeeker for the local
// store); an error wrapping ErrNotExist when the file is missing.
func (s *Service) Open(ctx context.Context, a *ent.Attachment) (io.ReadCloser, error) {
	return s.files.Open(ctx, a.Sha256)
}

// Sweep removes the uploads created before cutoff that no message refers
// to: the row, and the file unless another row has the same content. An
// upload sent while the sweep runs is kept: the delete is conditional on
// it still being unsent. It returns how many were removed.
func (s *Service) Sweep(ctx context.Context, cutoff time.Time) (int, error) {
	const batch = 200
	removed, after := 0, 0
	for {
		list, err := s.client.Attachment.Query().
			Where(attachment.Not(attachment.HasMessage()), attachment.CreatedAtLT(cutoff), attachment.IDGT(after)).
			Order(ent.Asc(attachment.FieldID)).Limit(batch).All(ctx)
		if err != nil {
			return removed, err
		}
		for _, a := range list {
			after = a.ID
			ok, err := s.remove(ctx, a)
			if err != nil {
				return removed, err
			}
			if ok {
				removed++
			}
		}
		if len(list) < batch {
			return removed, nil
		}
	}
}

func (s *Service) remove(ctx context.Context, a *ent.Attachment) (bool, error) {
	unlock, err := s.locks.lock(ctx, a.Sha256)
	if err != nil {
		return false, err
	}
	defer unlock()
	n, err := s.client.Attachment.Delete().
		Where(attachment.ID(a.ID), attachment.Not(attachment.HasMessage())).Exec(ctx)
	if err != nil || n == 0 {
		return false, err
	}
	return true, s.dropIfUnused(ctx, a.Sha256)
}

// dropIfUnused deletes the file of sum when no row refers to it. The caller
// holds the content lock.
func (s *Service) dropIfUnused(ctx context.Context, sum string) error {
	used, err := s.client.Attachment.Query().Where(attachment.Sha256(sum)).Exist(ctx)
	if err != nil || used {
		return err
	}
	if err := s.files.Delete(ctx, sum); err != nil {
		s.log.Warn("delete attachment file", "sha256", sum, "err", err)
		return err
	}
	return nil
}

// Cleanup sweeps the uploads older than the grace period.
func (s *Service) Cleanup(ctx context.Context) (int, error) {
	return s.Sweep(ctx, s.now().Add(-s.cfg.Grace))
}

// Run cleans up at start and then periodically (a twenty-fourth of the
// grace period, at most hourly) until ctx ends.
func (s *Service) Run(ctx context.Context) {
	every := min(s.cfg.Grace/24, time.Hour)
	if every < time.Second {
		every = time.Second
	}
	worker.Loop{Name: "attachment cleanup", Every: every, AtStart: true, Log: s.log,
		Pass: worker.Once(func(ctx context.Context) error {
			n, err := s.Cleanup(ctx)
			if n > 0 {
				s.log.Info("removed unsent uploads", "count", n)
			}
			return err
		}),
	}.Run(ctx)
}

func human(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
