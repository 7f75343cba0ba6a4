// Package livechat is Parley's own channel: the website widget's visitor
// API. A visitor starts a chat on a LIVE_CHAT account and gets a token bound
// to that one conversation; with it the visitor sends messages, reads the
// conversation and receives the agents' replies, and nothing else.
//
// Which browser origins may embed the widget is each account's
// allowedOrigins; blocked IP addresses are refused on every account, and
// visitor calls are rate-limited per IP.
package livechat

import (
	"context"
	"net/mail"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/conversations"
	"github.com/parleyhq/parley/internal/ratelimit"
)

// Per-IP limits of the visitor API.
const (
	StartsPerMinute   = 10
	MessagesPerMinute = 60
	UploadsPerMinute  = 20
)

// Service runs the visitor API.
type Service struct {
	convs   *conversations.Service
	auth    *auth.Service
	limiter ratelimit.Limiter
	Origins *Origins
}

// NewService returns the live-chat service.
func NewService(client *ent.Client, convs *conversations.Service, a *auth.Service, limiter ratelimit.Limiter, publicURL string) *Service {
	return &Service{convs: convs, auth: a, limiter: limiter, Origins: NewOrigins(client, publicURL)}
}

// StartInput is the pre-chat form.
type StartInput struct {
	ChannelAccountID int
	Name, Email      *string
	PageURL          *string
}

// Start opens a chat for a new visitor and returns its visitor token.
// Blocked IP addresses get FORBIDDEN, as does a page on an origin the
// account does not allow.
func (s *Service) Start(ctx context.Context, in StartInput) (string, *ent.Conversation, error) {
	ip := auth.ClientIP(ctx)
	if err := s.limit(ctx, "livechat:start:"+ip, StartsPerMinute); err != nil {
		return "", nil, err
	}
	if blocked, err := s.convs.VisitorIsBlocked(ctx, ip); err != nil || blocked {
		if err != nil {
			return "", nil, err
		}
		return "", nil, apperr.New(apperr.Forbidden, "chat is not available")
	}
	ok, err := s.Origins.AllowedFor(ctx, in.ChannelAccountID, auth.ClientOf(ctx).Origin)
	if err != nil {
		return "", nil, err
	}
	if !ok {
		return "", nil, apperr.New(apperr.Forbidden, "this website may not use this chat")
	}
	sess := conversations.VisitorSession{ChannelAccountID: in.ChannelAccountID, IP: ip, UserAgent: auth.ClientOf(ctx).UserAgent}
	if in.Name != nil {
		sess.Name = strings.TrimSpace(*in.Name)
		if utf8.RuneCountInString(sess.Name) > 100 {
			return "", nil, apperr.Invalid("name", "name must have at most 100 characters")
		}
	}
	if in.Email != nil && strings.TrimSpace(*in.Email) != "" {
		e := strings.TrimSpace(*in.Email)
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
			return "", nil, apperr.Invalid("email", "%q is not an email address", e)
		}
		sess.Email = e
	}
	if in.PageURL != nil && *in.PageURL != "" {
		u, err := url.Parse(*in.PageURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || len(*in.PageURL) > 2000 {
			return "", nil, apperr.Invalid("pageURL", "pageURL must be an http(s) URL")
		}
		sess.PageURL = *in.PageURL
	}
	c, token, err := s.convs.StartVisitorSession(ctx, sess, func(tx *ent.Tx, convID int) (string, error) {
		return s.auth.IssueVisitorToken(ctx, tx.Client(), convID)
	})
	if err != nil {
		return "", nil, err
	}
	return token, c, nil
}

// CheckUpload decides whether the calling visitor may upload a file now:
// not from a blocked address, not into an ended chat nor one whose account
// is off, and within the
// per-IP limit. The attachments service asks it before reading the file.
func (s *Service) CheckUpload(ctx context.Context) error {
	if _, err := auth.Visitor(ctx); err != nil {
		return err
	}
	ip := auth.ClientIP(ctx)
	if err := s.limit(ctx, "livechat:upload:"+ip, UploadsPerMinute); err != nil {
		return err
	}
	if blocked, err := s.convs.VisitorIsBlocked(ctx, ip); err != nil || blocked {
		if err != nil {
			return err
		}
		return apperr.New(apperr.Forbidden, "chat is not available")
	}
	return s.convs.CheckVisitorChat(ctx)
}

// Send stores a visitor's message.
func (s *Service) Send(ctx context.Context, body *string, attachmentIDs []int) (*ent.Message, error) {
	if _, err := auth.Visitor(ctx); err != nil {
		return nil, err
	}
	ip := auth.ClientIP(ctx)
	if err := s.limit(ctx, "livechat:send:"+ip, MessagesPerMinute); err != nil {
		return nil, err
	}
	if blocked, err := s.convs.VisitorIsBlocked(ctx, ip); err != nil || blocked {
		if err != nil {
			return nil, err
		}
		return nil, apperr.New(apperr.Forbidden, "chat is not available")
	}
	b := ""
	if body != nil {
		b = *body
	}
	return s.convs.VisitorSend(ctx, b, attachmentIDs)
}

func (s *Service) limit(ctx context.Context, key string, n int) error {
	ok, retry, err := s.limiter.Allow(ctx, key, n, time.Minute)
	if err != nil {
		return err
	}
	if !ok {
		return apperr.New(apperr.RateLimited, "too many requests, try again in %d seconds", int(retry.Seconds())+1)
	}
	return nil
}
