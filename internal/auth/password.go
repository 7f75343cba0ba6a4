package auth

import (
	"context"
	"crypto/rand"
	"strconv"

	"golang.org/x/crypto/bcrypt"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/authtoken"
	"github.com/parleyhq/parley/internal/apperr"
)

// PasswordMatches reports whether password is the one hash was made from.
func PasswordMatches(hash, password string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
}

// LimitPasswordCheck counts one check of an agent's current password
// (changePassword) against the same budget as logins: LoginPerEmail per
// LoginWindow, so a stolen token cannot be used to guess the password.
func (s *Service) LimitPasswordCheck(ctx context.Context, agentID int) error {
	return s.limit(ctx, "password:agent:"+strconv.Itoa(agentID), LoginPerEmail)
}

// temporaryAlphabet has no look-alike characters (0/O, 1/l/I): a one-time
// password is read off a screen and typed.
const temporaryAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// TemporaryPasswordLen gives about 140 bits of entropy.
const TemporaryPasswordLen = 24

// TemporaryPassword returns a random one-time password (crypto/rand,
// uniform over temporaryAlphabet: bytes past the last whole multiple of the
// alphabet are drawn again).
func TemporaryPassword() (string, error) {
	const n = len(temporaryAlphabet)
	limit := 256 - 256%n
	out := make([]byte, 0, TemporaryPasswordLen)
	buf := make([]byte, 2*TemporaryPasswordLen)
	for len(out) < TemporaryPasswordLen {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < TemporaryPasswordLen {
				out = append(out, temporaryAlphabet[int(b)%n])
			}
		}
	}
	return string(out), nil
}

// RevokeAgentTokens deletes every login token of an agent inside tx, but
// the one whose hash is keep (nil keeps none), and returns how many went.
// Open websockets of the deleted tokens are closed at the next recheck, or
// at once when the caller announces the revocation (pubsub.SessionsTopic).
func RevokeAgentTokens(ctx context.Context, tx *ent.Tx, agentID int, keep []byte) (int, error) {
	d := tx.AuthToken.Delete().Where(authtoken.AgentID(agentID))
	if keep != nil {
		d = d.Where(authtoken.Not(authtoken.TokenHash(keep)))
	}
	return d.Exec(ctx)
}

// beforePasswordChange are the root fields a token of an agent who must
// change their password may use.
var beforePasswordChange = map[string]bool{
	"changePassword": true, "me": true, "logout": true,
	"__typename": true, "__schema": true, "__type": true,
}

// GatePasswordChange answers nil when the root field may run for
// p. An agent who logged in with a one-time password (an admin's reset)
// may only change it, look at themselves and log out: anything else
// answers PASSWORD_CHANGE_REQUIRED until changePassword succeeds.
func GatePasswordChange(p Principal, rootField string) error {
	if !p.MustChangePassword || beforePasswordChange[rootField] {
		return nil
	}
	return apperr.New(apperr.PasswordChangeRequired, "change your one-time password first (changePassword)")
}
