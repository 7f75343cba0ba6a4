package workspace

import (
	"context"
	"errors"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/queuemember"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/audit"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/pubsub"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/textsearch"
)

// The rules of agent administration, beside createAgent's:
//   - ADMIN and SYSTEM_OWNER only; anyone else gets FORBIDDEN and nothing
//     changes.
//   - Only a SYSTEM_OWNER changes, deactivates, reactivates or resets the
//     password of a SYSTEM_OWNER, and only a SYSTEM_OWNER grants the role.
//   - The last active SYSTEM_OWNER cannot be demoted or deactivated:
//     CONFLICT (a state of the workspace, not a lack of right).
//   - Nobody deactivates themselves or resets their own password
//     (FORBIDDEN): the first would lock the caller out mid-request, the
//     second is changePassword's job.
//   - Every change is written to the audit log in its own transaction,
//     without passwords or hashes.

// AgentUpdate changes some of an agent's fields; nil fields stay.
type AgentUpdate struct {
	Name, Email, Extension *string
	Role                   *schematype.Role
	MaxConcurrentChats     *int
}

// agentState is what the audit log keeps of an agent (never its password
// hash).
type agentState struct {
	Name               string          `json:"name"`
	Email              string          `json:"email"`
	Extension          string          `json:"extension"`
	Role               schematype.Role `json:"role"`
	MaxConcurrentChats int             `json:"maxConcurrentChats"`
	Active             bool            `json:"active"`
}

func stateOf(a *ent.Agent) agentState {
	return agentState{Name: a.Name, Email: a.Email, Extension: a.Extension, Role: a.Role,
		MaxConcurrentChats: a.MaxConcurrentChats, Active: a.Active}
}

// adminTarget loads the agent an admin acts on, in tx: FORBIDDEN when the
// target is a SYSTEM_OWNER and the caller is not.
func adminTarget(ctx context.Context, tx *ent.Tx, p auth.Principal, id int) (*ent.Agent, error) {
	a, err := tx.Agent.Get(ctx, id)
	if err != nil {
		return nil, store.Coded(err, "agent")
	}
	if a.Role == schematype.RoleSystemOwner && p.Role != schematype.RoleSystemOwner {
		return nil, apperr.New(apperr.Forbidden, "only a system owner may change a system owner")
	}
	return a, nil
}

// otherActiveOwners counts the active system owners but one, locking their
// rows on PostgreSQL so that two demotions at once cannot leave none (SQLite
// transactions are serialised already).
func otherActiveOwners(ctx context.Context, tx *ent.Tx, but int) (int, error) {
	ids, err := tx.Agent.Query().
		Where(agent.RoleEQ(schematype.RoleSystemOwner), agent.Active(true)).
		Select(agent.FieldID).
		Modify(func(s *entsql.Selector) {
			if s.Dialect() == dialect.Postgres {
				s.ForUpdate()
			}
		}).Ints(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if id != but {
			n++
		}
	}
	return n, nil
}

// sessionsChanged announces that the agent's tokens were revoked or now
// authenticate differently: every instance rechecks its websockets after
// the commit.
func (s *Service) sessionsChanged(after *store.After, agentID int) {
	if s.Events != nil {
		s.Events.Emit(after, pubsub.Event{Kind: pubsub.KindSessionsChanged, AgentIDs: []int{agentID}}, pubsub.SessionsTopic)
	}
}

// UpdateAgent changes an agent (admins only; see the rules above).
func (s *Service) UpdateAgent(ctx context.Context, id int, in AgentUpdate) (*ent.Agent, error) {
	p, err := auth.Admin(ctx)
	if err != nil {
		return nil, err
	}
	// Validate everything before touching anything.
	var name, email, ext string
	var maxChats int
	if in.Name != nil {
		if name, err = checkName(*in.Name); err != nil {
			return nil, err
		}
	}
	if in.Email != nil {
		if email, err = checkEmail(*in.Email); err != nil {
			return nil, err
		}
	}
	if in.Extension != nil {
		if ext, err = checkExtension(*in.Extension); err != nil {
			return nil, err
		}
	}
	if in.Role != nil {
		if err := validateRole(*in.Role); err != nil {
			return nil, err
		}
		if *in.Role == schematype.RoleSystemOwner && p.Role != schematype.RoleSystemOwner {
			return nil, apperr.New(apperr.Forbidden, "only a system owner may grant the system owner role")
		}
	}
	if in.MaxConcurrentChats != nil {
		if maxChats, err = checkMaxChats(*in.MaxConcurrentChats); err != nil {
			return nil, err
		}
	}
	var out *ent.Agent
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		a, err := adminTarget(ctx, tx, p, id)
		if err != nil {
			return err
		}
		u := tx.Agent.UpdateOneID(id)
		newName, newExt := a.Name, a.Extension
		if in.Name != nil {
			u.SetName(name)
			newName = name
		}
		if in.Email != nil && email != a.Email {
			if taken, err := tx.Agent.Query().Where(agent.Email(email), agent.IDNEQ(id)).Exist(ctx); err != nil {
				return err
			} else if taken {
				return apperr.Taken("email", "an agent with email %s exists", email)
			}
			u.SetEmail(email)
		}
		if in.Extension != nil && ext != a.Extension {
			if taken, err := tx.Agent.Query().Where(agent.Extension(ext), agent.IDNEQ(id)).Exist(ctx); err != nil {
				return err
			} else if taken {
				return apperr.Taken("extension", "extension %s is taken", ext)
			}
			u.SetExtension(ext)
			newExt = ext
		}
		roleChanged := in.Role != nil && *in.Role != a.Role
		if roleChanged {
			if a.Role == schematype.RoleSystemOwner && a.Active {
				n, err := otherActiveOwners(ctx, tx, id)
				if err != nil {
					return err
				}
				if n == 0 {
					return apperr.New(apperr.Conflict, "the last active system owner cannot be demoted: make another agent system owner first")
				}
			}
			u.SetRole(*in.Role)
		}
		if in.MaxConcurrentChats != nil {
			u.SetMaxConcurrentChats(maxChats)
		}
		u.SetSearchKey(textsearch.Key(newName, newExt))
		out, err = u.Save(ctx)
		if ent.IsConstraintError(err) {
			// A concurrent change took the email or extension.
			return apperr.New(apperr.Conflict, "the email or extension was just taken by another agent")
		}
		if err != nil {
			return store.Coded(err, "agent")
		}
		if roleChanged {
			// Open websockets carry the old role: close them, the client
			// reconnects with the new one.
			s.sessionsChanged(after, id)
		}
		return audit.Record(ctx, tx, audit.Change{Action: "agent.update", TargetID: id, Before: stateOf(a), After: stateOf(out)})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// membership is a queue membership as the audit log keeps it.
type membership struct {
	QueueID   int    `json:"queueID"`
	QueueName string `json:"queueName"`
	Priority  int    `json:"priority"`
}

// DeactivateAgent retires an agent (admins only; see the rules above): they
// cannot log in, every token of theirs is revoked (and their websockets
// close on every instance), they leave every queue (the audit entry lists
// which, at which priority) and go OFFLINE. After the commit, Deactivated
// moves their offers and conversations on. Deactivating an inactive agent
// changes nothing.
func (s *Service) DeactivateAgent(ctx context.Context, id int) (*ent.Agent, error) {
	p, err := auth.Admin(ctx)
	if err != nil {
		return nil, err
	}
	if id == p.AgentID {
		return nil, apperr.New(apperr.Forbidden, "you cannot deactivate yourself")
	}
	var out *ent.Agent
	changed := false
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		a, err := adminTarget(ctx, tx, p, id)
		if err != nil {
			return err
		}
		if !a.Active {
			out = a
			return nil
		}
		if a.Role == schematype.RoleSystemOwner {
			n, err := otherActiveOwners(ctx, tx, id)
			if err != nil {
				return err
			}
			if n == 0 {
				return apperr.New(apperr.Conflict, "the last active system owner cannot be deactivated")
			}
		}
		ms, err := tx.QueueMember.Query().Where(queuemember.AgentID(id)).WithQueue().
			Order(ent.Asc(queuemember.FieldQueueID)).All(ctx)
		if err != nil {
			return err
		}
		removed := make([]membership, 0, len(ms))
		for _, m := range ms {
			r := membership{QueueID: m.QueueID, Priority: m.Priority}
			if m.Edges.Queue != nil {
				r.QueueName = m.Edges.Queue.Name
			}
			removed = append(removed, r)
		}
		if _, err := tx.QueueMember.Delete().Where(queuemember.AgentID(id)).Exec(ctx); err != nil {
			return err
		}
		revoked, err := auth.RevokeAgentTokens(ctx, tx, id, nil)
		if err != nil {
			return err
		}
		out, err = tx.Agent.UpdateOneID(id).SetActive(false).
			SetStatus(schematype.StatusOffline).SetStatusChangedAt(s.now()).Save(ctx)
		if err != nil {
			return store.Coded(err, "agent")
		}
		s.sessionsChanged(after, id)
		changed = true
		return audit.Record(ctx, tx, audit.Change{Action: "agent.deactivate", TargetID: id,
			Before: map[string]any{"active": true, "status": a.Status, "queues": removed},
			After:  map[string]any{"active": false, "status": out.Status, "removedFromQueues": removed, "tokensRevoked": revoked},
		})
	})
	if err != nil {
		return nil, err
	}
	if changed {
		if s.StatusChanged != nil {
			s.StatusChanged(ctx, id, out.Status)
		}
		if s.Deactivated != nil {
			s.Deactivated(ctx, id)
		}
	}
	return out, nil
}

// ReactivateAgent lets a deactivated agent log in again (admins only; a
// SYSTEM_OWNER's only by a SYSTEM_OWNER). Queue memberships are not
// restored: the audit entry of the deactivation lists them.
func (s *Service) ReactivateAgent(ctx context.Context, id int) (*ent.Agent, error) {
	p, err := auth.Admin(ctx)
	if err != nil {
		return nil, err
	}
	var out *ent.Agent
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		a, err := adminTarget(ctx, tx, p, id)
		if err != nil {
			return err
		}
		if a.Active {
			out = a
			return nil
		}
		if out, err = tx.Agent.UpdateOneID(id).SetActive(true).Save(ctx); err != nil {
			return store.Coded(err, "agent")
		}
		return audit.Record(ctx, tx, audit.Change{Action: "agent.reactivate", TargetID: id,
			Before: map[string]any{"active": false}, After: map[string]any{"active": true}})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ChangePassword changes the caller's own password. current must be right
// (BAD_USER_INPUT on "current" otherwise; checks count against the login
// limit); new follows createAgent's policy and must differ from current.
// Every other token of the caller is revoked (their websockets close on
// every instance), the request's token stays, and a pending
// must-change-password is cleared.
func (s *Service) ChangePassword(ctx context.Context, current, newPassword string) error {
	p, err := auth.Agent(ctx)
	if err != nil {
		return err
	}
	if err := s.auth.LimitPasswordCheck(ctx, p.AgentID); err != nil {
		return err
	}
	a, err := s.client.Agent.Get(ctx, p.AgentID)
	if err != nil {
		return store.Coded(err, "agent")
	}
	if !auth.PasswordMatches(a.PasswordHash, current) {
		return apperr.Invalid("current", "the current password is wrong")
	}
	if newPassword == current {
		return apperr.Invalid("new", "the new password must differ from the current one")
	}
	hash, err := s.auth.HashPassword(newPassword)
	if err != nil {
		var ae *apperr.Error
		if errors.As(err, &ae) && ae.Field == "password" {
			return apperr.Invalid("new", "%s", ae.Message)
		}
		return err
	}
	return store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		// The hash compared above must still be the stored one: a
		// concurrent change or reset wins, and this one is refused.
		n, err := tx.Agent.Update().Where(agent.ID(p.AgentID), agent.PasswordHash(a.PasswordHash)).
			SetPasswordHash(hash).SetMustChangePassword(false).Save(ctx)
		if err != nil {
			return store.Coded(err, "agent")
		}
		if n == 0 {
			return apperr.Invalid("current", "the current password is wrong")
		}
		revoked, err := auth.RevokeAgentTokens(ctx, tx, p.AgentID, p.TokenHash)
		if err != nil {
			return err
		}
		s.sessionsChanged(after, p.AgentID)
		return audit.Record(ctx, tx, audit.Change{Action: "agent.changePassword", TargetID: p.AgentID,
			Before: map[string]any{"password": audit.Redacted, "mustChangePassword": a.MustChangePassword},
			After:  map[string]any{"password": audit.Redacted, "mustChangePassword": false, "otherTokensRevoked": revoked},
		})
	})
}

// ResetAgentPassword gives an agent a random one-time password (admins
// only; a SYSTEM_OWNER's only by a SYSTEM_OWNER; not one's own), revokes
// every token of theirs and makes them change it at their next login. The
// password is returned to the caller only: never stored in clear, logged or
// audited.
func (s *Service) ResetAgentPassword(ctx context.Context, id int) (*ent.Agent, string, error) {
	p, err := auth.Admin(ctx)
	if err != nil {
		return nil, "", err
	}
	if id == p.AgentID {
		return nil, "", apperr.New(apperr.Forbidden, "use changePassword for your own password")
	}
	temp, err := auth.TemporaryPassword()
	if err != nil {
		return nil, "", err
	}
	hash, err := s.auth.HashPassword(temp)
	if err != nil {
		return nil, "", err
	}
	var out *ent.Agent
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		if _, err := adminTarget(ctx, tx, p, id); err != nil {
			return err
		}
		revoked, err := auth.RevokeAgentTokens(ctx, tx, id, nil)
		if err != nil {
			return err
		}
		if out, err = tx.Agent.UpdateOneID(id).SetPasswordHash(hash).SetMustChangePassword(true).Save(ctx); err != nil {
			return store.Coded(err, "agent")
		}
		s.sessionsChanged(after, id)
		return audit.Record(ctx, tx, audit.Change{Action: "agent.resetPassword", TargetID: id,
			After: map[string]any{"password": audit.Redacted, "mustChangePassword": true, "tokensRevoked": revoked}})
	})
	if err != nil {
		return nil, "", err
	}
	return out, temp, nil
}
