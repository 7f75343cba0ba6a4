// Package auth decides who is calling: agents log in with an email and a
// password and get an opaque bearer token; live-chat visitors get a token
// bound to one conversation. Only SHA-256 digests of tokens are stored.
//
// Roles are enforced here and in the services, never in resolvers.
package auth

import (
	"context"
	"strconv"
	"time"

	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
)

// Principal is the authenticated caller: an agent, or a visitor.
type Principal struct {
	// AgentID is set for an agent.
	AgentID int
	Role    schematype.Role
	// ConversationID is set for a live-chat visitor: the one conversation
	// the visitor token is bound to.
	ConversationID int
	// TokenHash identifies the token the request came with, for logout.
	TokenHash []byte
	// ExpiresAt is when that token expires (zero when unknown).
	ExpiresAt time.Time
	// MustChangePassword is set while the agent logs in with a one-time
	// password an admin reset: until changePassword, only the operations
	// [GatePasswordChange] allows run.
	MustChangePassword bool
}

// ViewerKey identifies what the caller may see: callers with the same key
// get the same answers (the websocket transport shares one execution of a
// subscription between them). It covers every field of the principal that
// rules read: the agent and role, or the visitor's conversation.
func (p Principal) ViewerKey() string {
	if p.IsAgent() {
		k := "agent:" + strconv.Itoa(p.AgentID) + ":" + string(p.Role)
		if p.MustChangePassword {
			k += ":must-change-password"
		}
		return k
	}
	return "visitor:" + strconv.Itoa(p.ConversationID)
}

// IsAgent reports whether the caller is an agent.
func (p Principal) IsAgent() bool { return p.AgentID != 0 }

// IsVisitor reports whether the caller is a live-chat visitor.
func (p Principal) IsVisitor() bool { return p.AgentID == 0 && p.ConversationID != 0 }

// IsAdmin reports whether the caller administers the workspace.
func (p Principal) IsAdmin() bool {
	return p.IsAgent() && (p.Role == schematype.RoleAdmin || p.Role == schematype.RoleSystemOwner)
}

// ManagesTemplates reports whether the caller may create, change and delete
// quick-reply templates: admins, group owners and system owners.
func (p Principal) ManagesTemplates() bool {
	return p.IsAgent() && p.Role != schematype.RoleAgent
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the caller, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

type failureKey struct{}

// WithFailure records that the request carried a token that did not
// authenticate (unknown, expired, revoked). Public operations still run;
// the ones that need a caller answer with this error, which says why.
func WithFailure(ctx context.Context, err error) context.Context {
	return context.WithValue(ctx, failureKey{}, err)
}

func unauthenticated(ctx context.Context) error {
	if err, ok := ctx.Value(failureKey{}).(error); ok {
		return err
	}
	return apperr.ErrUnauthenticated
}

// Agent returns the calling agent, or UNAUTHENTICATED (no token, a bad
// token, or a visitor token).
func Agent(ctx context.Context) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return Principal{}, unauthenticated(ctx)
	}
	if !p.IsAgent() {
		return Principal{}, apperr.New(apperr.Forbidden, "visitor tokens may only use the visitor operations")
	}
	return p, nil
}

// Admin returns the calling agent when it is an ADMIN or SYSTEM_OWNER;
// FORBIDDEN for other agents.
func Admin(ctx context.Context) (Principal, error) {
	p, err := Agent(ctx)
	if err != nil {
		return p, err
	}
	if !p.IsAdmin() {
		return p, apperr.New(apperr.Forbidden, "only admins may do this")
	}
	return p, nil
}

// Visitor returns the calling visitor, or UNAUTHENTICATED.
func Visitor(ctx context.Context) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return Principal{}, unauthenticated(ctx)
	}
	if !p.IsVisitor() {
		return Principal{}, apperr.New(apperr.Unauthenticated, "visitor token required")
	}
	return p, nil
}

type ipKey struct{}

// WithClientIP returns ctx carrying the client's IP address, as the HTTP
// layer determined it (trusted proxies considered).
func WithClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, ipKey{}, ip)
}

// ClientIP returns the client's IP address, or "" when unknown.
func ClientIP(ctx context.Context) string {
	s, _ := ctx.Value(ipKey{}).(string)
	return s
}

type clientKey struct{}

// Client is what the HTTP layer saw of the caller's software.
type Client struct {
	UserAgent string
	// Origin is the browser's Origin header ("" for non-browser clients).
	Origin string
}

// WithClient returns ctx carrying the caller's user agent and origin.
func WithClient(ctx context.Context, c Client) context.Context {
	return context.WithValue(ctx, clientKey{}, c)
}

// ClientOf returns what the HTTP layer saw of the caller's software.
func ClientOf(ctx context.Context) Client {
	c, _ := ctx.Value(clientKey{}).(Client)
	return c
}
