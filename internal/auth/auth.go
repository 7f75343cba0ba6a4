package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/authtoken"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/ratelimit"
)

// Token prefixes make a leaked token recognisable (secret scanners) and tell
// agent tokens from visitor tokens at a glance. The rest is 256 random bits.
const (
	AgentTokenPrefix   = "plt_"
	VisitorTokenPrefix = "plv_"
)

// Login limits: attempts per email and per IP address in a window.
const (
	LoginPerEmail = 10
	LoginPerIP    = 30
	LoginWindow   = 5 * time.Minute
)

// Password length bounds. bcrypt reads at most 72 bytes; a longer password
// would be silently truncated, so it is refused instead.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 72
)

// Service logs agents in and out and resolves bearer tokens.
type Service struct {
	client  *ent.Client
	limiter ratelimit.Limiter
	ttl     time.Duration
	cost    int
	now     func() time.Time
	// dummy is compared against when the email is unknown, so that the
	// answer takes as long as for a known email with a wrong password.
	dummy []byte
	// LoggedIn, when set, is told of every successful login (presence
	// counts it as a sign of life).
	LoggedIn func(ctx context.Context, agentID int)
}

// Option configures a Service.
type Option func(*Service)

// WithHashCost sets the bcrypt cost (tests lower it; production keeps the
// default, about a quarter of a second per hash).
func WithHashCost(cost int) Option { return func(s *Service) { s.cost = cost } }

// WithClock replaces time.Now, for tests of expiry.
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// NewService returns an auth service issuing tokens that live for ttl.
func NewService(client *ent.Client, limiter ratelimit.Limiter, ttl time.Duration, opts ...Option) *Service {
	s := &Service{client: client, limiter: limiter, ttl: ttl, cost: 12, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.dummy, _ = bcrypt.GenerateFromPassword([]byte("parley-dummy-password"), s.cost)
	return s
}

// HashPassword checks a new password's length and returns its bcrypt hash.
func (s *Service) HashPassword(password string) (string, error) {
	if utf8.RuneCountInString(password) < MinPasswordLen {
		return "", apperr.Invalid("password", "password must have at least %d characters", MinPasswordLen)
	}
	if len(password) > MaxPasswordLen {
		return "", apperr.Invalid("password", "password must have at most %d bytes", MaxPasswordLen)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), s.cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// NormalizeEmail is how emails are stored and compared.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// LoginResult is what a successful login returns.
type LoginResult struct {
	Token     string
	ExpiresAt time.Time
	Agent     *ent.Agent
	// MustChangePassword: the password was a one-time password from an
	// admin's reset; the token serves changePassword, me and logout only
	// until the agent chooses a new one.
	MustChangePassword bool
}

// Login checks an email and password and issues a token. Attempts are
// limited per email and per client IP (from ctx); a wrong email and a wrong
// password answer alike.
func (s *Service) Login(ctx context.Context, email, password string) (*LoginResult, error) {
	email = NormalizeEmail(email)
	if err := s.limit(ctx, "login:email:"+email, LoginPerEmail); err != nil {
		return nil, err
	}
	if ip := ClientIP(ctx); ip != "" {
		if err := s.limit(ctx, "login:ip:"+ip, LoginPerIP); err != nil {
			return nil, err
		}
	}
	a, err := s.client.Agent.Query().Where(agent.Email(email), agent.Active(true)).Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return nil, err
	}
	hash := s.dummy
	if a != nil {
		hash = []byte(a.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || a == nil {
		return nil, apperr.New(apperr.Unauthenticated, "wrong email or password")
	}
	token, exp, err := s.IssueAgentToken(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	if s.LoggedIn != nil {
		s.LoggedIn(ctx, a.ID)
	}
	return &LoginResult{Token: token, ExpiresAt: exp, Agent: a, MustChangePassword: a.MustChangePassword}, nil
}

// IssueAgentToken issues a token for an agent without a password check:
// Login after its checks, and tools that act for an agent.
func (s *Service) IssueAgentToken(ctx context.Context, agentID int) (string, time.Time, error) {
	return s.issueWith(ctx, s.client, AgentTokenPrefix, func(c *ent.AuthTokenCreate) { c.SetAgentID(agentID) })
}

// IssueVisitorToken issues a token bound to one live-chat conversation.
func (s *Service) IssueVisitorToken(ctx context.Context, client *ent.Client, conversationID int) (string, error) {
	tok, _, err := s.issueWith(ctx, client, VisitorTokenPrefix, func(c *ent.AuthTokenCreate) { c.SetConversationID(conversationID) })
	return tok, err
}

func (s *Service) limit(ctx context.Context, key string, n int) error {
	ok, retry, err := s.limiter.Allow(ctx, key, n, LoginWindow)
	if err != nil {
		return fmt.Errorf("rate limiter: %w", err)
	}
	if !ok {
		return apperr.New(apperr.RateLimited, "too many attempts, try again in %d seconds", int(retry.Seconds())+1)
	}
	return nil
}

func (s *Service) issueWith(ctx context.Context, client *ent.Client, prefix string, set func(*ent.AuthTokenCreate)) (string, time.Time, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", time.Time{}, fmt.Errorf("token: %w", err)
	}
	token := prefix + base64.RawURLEncoding.EncodeToString(raw)
	exp := s.now().Add(s.ttl)
	c := client.AuthToken.Create().SetTokenHash(HashToken(token)).SetExpiresAt(exp)
	set(c)
	if err := c.Exec(ctx); err != nil {
		return "", time.Time{}, fmt.Errorf("store token: %w", err)
	}
	return token, exp, nil
}

// HashToken is the digest under which a token is stored.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Authenticate resolves a bearer token. Unknown, expired and revoked tokens,
// and tokens of deactivated agents, answer UNAUTHENTICATED.
func (s *Service) Authenticate(ctx context.Context, token string) (Principal, error) {
	if !strings.HasPrefix(token, AgentTokenPrefix) && !strings.HasPrefix(token, VisitorTokenPrefix) {
		return Principal{}, apperr.New(apperr.Unauthenticated, "invalid token")
	}
	h := HashToken(token)
	t, err := s.client.AuthToken.Query().Where(authtoken.TokenHash(h)).WithAgent().Only(ctx)
	if ent.IsNotFound(err) {
		return Principal{}, apperr.New(apperr.Unauthenticated, "invalid token")
	}
	if err != nil {
		return Principal{}, err
	}
	if !s.now().Before(t.ExpiresAt) {
		return Principal{}, apperr.New(apperr.Unauthenticated, "token expired")
	}
	p, ok := principalOf(t)
	if !ok {
		return Principal{}, apperr.New(apperr.Unauthenticated, "invalid token")
	}
	return p, nil
}

// stillValidChunk bounds the tokens of one StillValid query.
const stillValidChunk = 500

// SessionToken identifies what a websocket was opened with, for
// [Service.StillValid]: the token's digest and the viewer it authenticated
// as (agent, role, pending password change; or the visitor's
// conversation).
func (p Principal) SessionToken() string { return string(p.TokenHash) + p.ViewerKey() }

// StillValid reports which of the given session tokens
// ([Principal.SessionToken]) would still authenticate as the same viewer:
// the token known and not expired, its agent active, with the same role
// and password state as when the socket opened. Open websockets are
// rechecked with it, so a socket of a revoked token, a deactivated agent or
// a changed role closes (the client reconnects with a fresh principal).
func (s *Service) StillValid(ctx context.Context, sessions []string) (map[string]bool, error) {
	valid := make(map[string]bool, len(sessions))
	now := s.now()
	for start := 0; start < len(sessions); start += stillValidChunk {
		chunk := sessions[start:min(start+stillValidChunk, len(sessions))]
		bs := make([][]byte, 0, len(chunk))
		for _, st := range chunk {
			if len(st) >= sha256.Size {
				bs = append(bs, []byte(st[:sha256.Size]))
			}
		}
		rows, err := s.client.AuthToken.Query().
			Where(authtoken.TokenHashIn(bs...), authtoken.ExpiresAtGT(now)).
			WithAgent().All(ctx)
		if err != nil {
			return nil, err
		}
		current := make(map[string]string, len(rows))
		for _, t := range rows {
			if p, ok := principalOf(t); ok {
				current[string(t.TokenHash)] = p.ViewerKey()
			}
		}
		for _, st := range chunk {
			if len(st) < sha256.Size {
				continue
			}
			key, ok := current[st[:sha256.Size]]
			valid[st] = ok && key == st[sha256.Size:]
		}
	}
	return valid, nil
}

// principalOf is who a stored token (loaded with its agent) authenticates:
// false for a token of a deactivated agent or of nothing.
func principalOf(t *ent.AuthToken) (Principal, bool) {
	if t.AgentID != nil {
		a := t.Edges.Agent
		if a == nil || !a.Active {
			return Principal{}, false
		}
		return Principal{AgentID: a.ID, Role: a.Role, TokenHash: t.TokenHash, ExpiresAt: t.ExpiresAt, MustChangePassword: a.MustChangePassword}, true
	}
	if t.ConversationID != nil {
		return Principal{ConversationID: *t.ConversationID, TokenHash: t.TokenHash, ExpiresAt: t.ExpiresAt}, true
	}
	return Principal{}, false
}

// Logout revokes the token of the current request.
func (s *Service) Logout(ctx context.Context) error {
	p, ok := FromContext(ctx)
	if !ok || len(p.TokenHash) == 0 {
		return apperr.ErrUnauthenticated
	}
	_, err := s.client.AuthToken.Delete().Where(authtoken.TokenHash(p.TokenHash)).Exec(ctx)
	return err
}

// PurgeExpired deletes expired tokens; the server runs it now and then.
func (s *Service) PurgeExpired(ctx context.Context) (int, error) {
	return s.client.AuthToken.Delete().Where(authtoken.ExpiresAtLTE(s.now())).Exec(ctx)
}

// ErrNoToken is returned by BearerToken when the header is absent.
var ErrNoToken = errors.New("no bearer token")

// BearerToken extracts the token from an Authorization header value.
func BearerToken(header string) (string, error) {
	if header == "" {
		return "", ErrNoToken
	}
	const p = "bearer "
	if len(header) < len(p) || !strings.EqualFold(header[:len(p)], p) {
		return "", apperr.New(apperr.Unauthenticated, "Authorization must be a Bearer token")
	}
	return strings.TrimSpace(header[len(p):]), nil
}
