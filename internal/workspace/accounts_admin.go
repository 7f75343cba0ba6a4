package workspace

// Administration of queues and channel accounts beyond creating them:
// deleting a queue (its accounts and open conversations moved to another),
// changing a channel account (name, routing, fallback queue, credentials,
// allowed origins), turning it off and on, and deleting it. Each change
// writes its audit entry in its own transaction.

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/agent"
	"github.com/parleyhq/parley/ent/channelaccount"
	"github.com/parleyhq/parley/ent/contactidentity"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/interaction"
	"github.com/parleyhq/parley/ent/predicate"
	"github.com/parleyhq/parley/ent/queue"
	"github.com/parleyhq/parley/ent/queuemember"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/audit"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/store"
)

// MoveConversations moves the open conversations of queue from into queue
// to inside tx and routes them again there, each with an interaction that
// says detail; it returns how many moved. It is the conversations service's
// MoveOpenToQueue, wired by the app: the workspace owns queues, the
// conversations service owns conversations, routing and their events.
type MoveConversations func(ctx context.Context, tx *ent.Tx, after *store.After, from, to int, detail string) (int, error)

// queueView is a queue as its audit entries show it.
type queueView struct {
	Name                    string `json:"name"`
	Description             string `json:"description,omitempty"`
	Strategy                string `json:"strategy"`
	OfferTimeoutSeconds     int    `json:"offerTimeoutSeconds"`
	OwnerAwayTimeoutSeconds *int   `json:"ownerAwayTimeoutSeconds,omitempty"`
	ServiceLevelSeconds     int    `json:"serviceLevelSeconds"`
	// Members are the agent ids, first first.
	Members []int `json:"members"`
}

func queueState(ctx context.Context, tx *ent.Tx, id int) (*queueView, error) {
	q, err := tx.Queue.Get(ctx, id)
	if err != nil {
		return nil, store.Coded(err, "queue")
	}
	ms, err := tx.QueueMember.Query().Where(queuemember.QueueID(id)).Order(ent.Asc(queuemember.FieldPriority)).All(ctx)
	if err != nil {
		return nil, err
	}
	v := &queueView{Name: q.Name, Description: q.Description, Strategy: string(q.Strategy),
		OfferTimeoutSeconds: q.OfferTimeoutSeconds, OwnerAwayTimeoutSeconds: q.OwnerAwayTimeoutSeconds, ServiceLevelSeconds: q.ServiceLevelSeconds, Members: []int{}}
	for _, m := range ms {
		v.Members = append(v.Members, m.AgentID)
	}
	return v, nil
}

// auditQueue records a change of queue id, before (nil for a creation)
// against the queue as it is now.
func auditQueue(ctx context.Context, tx *ent.Tx, action string, id int, before *queueView) error {
	now, err := queueState(ctx, tx, id)
	if err != nil {
		return err
	}
	var b any
	if before != nil {
		b = before
	}
	return audit.Record(ctx, tx, audit.Change{Action: action, TargetID: id, Before: b, After: now})
}

// lockForDelete locks the selected rows until the transaction ends, on
// PostgreSQL (FOR UPDATE), so that a concurrent insert that references them
// (a new conversation in the queue) waits for the delete and then fails its
// foreign key check, instead of committing in between; SQLite's immediate
// transactions are serialized anyway.
func lockForDelete[P ~func(*sql.Selector)]() P {
	return func(s *sql.Selector) {
		if s.Dialect() == dialect.Postgres {
			s.ForUpdate()
		}
	}
}

// DeleteQueue deletes a queue (admins only). While channel accounts route
// to it (as their queue or their fallback queue) or open conversations sit
// in it, it is refused with CONFLICT, unless moveTo names another queue,
// which takes them: the accounts are re-pointed, the open conversations
// moved and routed again there (MoveConversations), and the closed ones
// moved too, so that they stay in the queue views of its members. Without
// moveTo the closed conversations keep no queue. Interactions keep their
// history; their queue reference is cleared with the queue.
func (s *Service) DeleteQueue(ctx context.Context, id int, moveTo *int) (int, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return 0, err
	}
	if moveTo != nil && *moveTo == id {
		return 0, apperr.Invalid("moveTo", "moveTo must name another queue than the one deleted")
	}
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		q, err := tx.Queue.Query().Where(queue.ID(id), lockForDelete[predicate.Queue]()).Only(ctx)
		if err != nil {
			return store.Coded(err, "queue")
		}
		before, err := queueState(ctx, tx, id)
		if err != nil {
			return err
		}
		var target *ent.Queue
		if moveTo != nil {
			target, err = tx.Queue.Query().Where(queue.ID(*moveTo), lockForDelete[predicate.Queue]()).Only(ctx)
			if ent.IsNotFound(err) {
				return apperr.Invalid("moveTo", "no such queue")
			}
			if err != nil {
				return err
			}
		}
		accts, err := tx.ChannelAccount.Query().
			Where(channelaccount.Or(channelaccount.QueueID(id), channelaccount.FallbackQueueID(id))).
			Order(ent.Asc(channelaccount.FieldID)).IDs(ctx)
		if err != nil {
			return err
		}
		open, err := tx.Conversation.Query().
			Where(conversation.QueueID(id), conversation.StatusEQ(schematype.ConversationOpen)).Count(ctx)
		if err != nil {
			return err
		}
		change := map[string]any{"deleted": true}
		if target == nil {
			if len(accts) > 0 || open > 0 {
				return apperr.New(apperr.Conflict,
					"queue %q still has %d channel account(s) routed to it and %d open conversation(s): give moveTo, a queue to take them",
					q.Name, len(accts), open)
			}
			if err := tx.Conversation.Update().Where(conversation.QueueID(id)).ClearQueueID().Exec(ctx); err != nil {
				return err
			}
		} else {
			if err := tx.ChannelAccount.Update().Where(channelaccount.QueueID(id)).SetQueueID(target.ID).Exec(ctx); err != nil {
				return err
			}
			if err := tx.ChannelAccount.Update().Where(channelaccount.FallbackQueueID(id)).SetFallbackQueueID(target.ID).Exec(ctx); err != nil {
				return err
			}
			moved := 0
			if open > 0 {
				if s.MoveConversations == nil {
					return fmt.Errorf("delete queue %d: no MoveConversations wired", id)
				}
				detail := fmt.Sprintf("queue %q was deleted: moved to queue %q", q.Name, target.Name)
				if moved, err = s.MoveConversations(ctx, tx, after, id, target.ID, detail); err != nil {
					return err
				}
			}
			// What is left are closed conversations: they move quietly.
			if err := tx.Conversation.Update().Where(conversation.QueueID(id)).SetQueueID(target.ID).Exec(ctx); err != nil {
				return err
			}
			change["movedTo"], change["accounts"], change["openConversations"] = target.ID, accts, moved
		}
		if err := tx.Interaction.Update().Where(interaction.QueueID(id)).ClearQueueID().Exec(ctx); err != nil {
			return err
		}
		if _, err := tx.QueueMember.Delete().Where(queuemember.QueueID(id)).Exec(ctx); err != nil {
			return err
		}
		if err := tx.Queue.DeleteOneID(id).Exec(ctx); err != nil {
			return store.Coded(err, "queue")
		}
		return audit.Record(ctx, tx, audit.Change{Action: "queue.delete", TargetID: id, Before: before, After: change})
	})
	if err != nil {
		return 0, err
	}
	s.queueChanged(ctx, id)
	return id, nil
}

// ProviderConfig is a provider config block as the caller filled it in:
// the config, and which block was given (a block for another channel is
// refused, not ignored).
type ProviderConfig struct {
	Config                                                 schematype.ChannelConfig
	GivenWhatsApp, GivenMessenger, GivenSMS, GivenLiveChat bool
}

func (p ProviderConfig) given() bool {
	return p.GivenWhatsApp || p.GivenMessenger || p.GivenSMS || p.GivenLiveChat
}

// ChannelAccountUpdate changes a channel account; nil fields and a config
// with no block given stay as they are.
type ChannelAccountUpdate struct {
	Name *string
	// QueueID or AgentID re-routes the account (at most one; setting one
	// clears the other).
	QueueID, AgentID *int
	FallbackQueueID  *int
	// Provider, when a block is given, replaces the whole provider config:
	// new credentials, or a live chat's allowed origins.
	Provider ProviderConfig
}

// accountView is a channel account as its audit entries show it: the
// non-secret settings, and only whether credentials are set.
type accountView struct {
	Name            string   `json:"name"`
	Channel         string   `json:"channel"`
	Enabled         bool     `json:"enabled"`
	QueueID         *int     `json:"queueID,omitempty"`
	AgentID         *int     `json:"agentID,omitempty"`
	FallbackQueueID *int     `json:"fallbackQueueID,omitempty"`
	PhoneNumberID   string   `json:"phoneNumberID,omitempty"`
	PageID          string   `json:"pageID,omitempty"`
	AccountSID      string   `json:"accountSID,omitempty"`
	FromNumber      string   `json:"fromNumber,omitempty"`
	APIBaseURL      string   `json:"apiBaseURL,omitempty"`
	AllowedOrigins  []string `json:"allowedOrigins,omitempty"`
	// Credentials is audit.Redacted when the account has any.
	Credentials string `json:"credentials,omitempty"`
	// CredentialsRotated, in the after of an update, says they changed.
	CredentialsRotated bool `json:"credentialsRotated,omitempty"`
}

func accountState(a *ent.ChannelAccount) *accountView {
	c := a.Config
	v := &accountView{
		Name: a.Name, Channel: string(a.Channel), Enabled: a.Enabled,
		QueueID: a.QueueID, AgentID: a.AgentID, FallbackQueueID: a.FallbackQueueID,
		PhoneNumberID: c.PhoneNumberID, PageID: c.PageID, AccountSID: c.AccountSID, FromNumber: c.FromNumber,
		APIBaseURL: c.APIBaseURL, AllowedOrigins: c.AllowedOrigins,
	}
	for _, sec := range c.Secrets() {
		if *sec != "" {
			v.Credentials = audit.Redacted
		}
	}
	return v
}

// UpdateChannelAccount changes a channel account (admins only). A config
// block replaces the provider config, sealed like a new account's: the
// webhooks and the outbox read an account's credentials from the database
// on every delivery and every pass, so the new ones work at once and the old
// ones stop, on every instance.
func (s *Service) UpdateChannelAccount(ctx context.Context, id int, in ChannelAccountUpdate) (*ent.ChannelAccount, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return nil, err
	}
	if in.QueueID != nil && in.AgentID != nil {
		return nil, apperr.Invalid("queueID", "give at most one of queueID and agentID")
	}
	var out *ent.ChannelAccount
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		a, err := tx.ChannelAccount.Get(ctx, id)
		if err != nil {
			return store.Coded(err, "channel account")
		}
		u := tx.ChannelAccount.UpdateOneID(id)
		if in.Name != nil {
			name := strings.TrimSpace(*in.Name)
			if name == "" || utf8.RuneCountInString(name) > 200 {
				return apperr.Invalid("name", "name must have 1 to 200 characters")
			}
			u.SetName(name)
		}
		if in.QueueID != nil {
			if ok, err := tx.Queue.Query().Where(queue.ID(*in.QueueID)).Exist(ctx); err != nil || !ok {
				return orInvalid(err, "queueID", "no such queue")
			}
			u.SetQueueID(*in.QueueID).ClearAgentID()
		}
		if in.AgentID != nil {
			if ok, err := tx.Agent.Query().Where(agent.ID(*in.AgentID), agent.Active(true)).Exist(ctx); err != nil || !ok {
				return orInvalid(err, "agentID", "no such active agent")
			}
			u.SetAgentID(*in.AgentID).ClearQueueID()
		}
		if in.FallbackQueueID != nil {
			if ok, err := tx.Queue.Query().Where(queue.ID(*in.FallbackQueueID)).Exist(ctx); err != nil || !ok {
				return orInvalid(err, "fallbackQueueID", "no such queue")
			}
			u.SetFallbackQueueID(*in.FallbackQueueID)
		}
		rotated := false
		if p := in.Provider; p.given() {
			external, err := checkConfig(NewChannelAccount{Channel: a.Channel, Config: p.Config,
				GivenWhatsApp: p.GivenWhatsApp, GivenMessenger: p.GivenMessenger, GivenSMS: p.GivenSMS, GivenLiveChat: p.GivenLiveChat})
			if err != nil {
				return err
			}
			rotated = s.rotates(a.Config, p.Config)
			cfg := p.Config
			if err := s.secrets.SealAll(cfg.Secrets()...); err != nil {
				return err
			}
			u.SetConfig(cfg).SetExternalID(external)
		}
		if out, err = u.Save(ctx); err != nil {
			return store.Coded(err, "channel account")
		}
		now := accountState(out)
		now.CredentialsRotated = rotated
		return audit.Record(ctx, tx, audit.Change{Action: "channelAccount.update", TargetID: id, Before: accountState(a), After: now})
	})
	if err != nil {
		return nil, err
	}
	s.accountChanged(ctx, id)
	return out.Unwrap(), nil
}

// rotates reports whether next carries other credentials than the stored
// (sealed) old: the secrets are compared opened, as two seals of one
// secret differ. Old credentials that no key opens any more (a lost key:
// a reason to rotate) count as replaced.
func (s *Service) rotates(old, next schematype.ChannelConfig) bool {
	if err := s.secrets.OpenAll(old.Secrets()...); err != nil {
		return true
	}
	o, n := old.Secrets(), next.Secrets()
	for i := range o {
		if *o[i] != *n[i] {
			return true
		}
	}
	return false
}

// orInvalid is err when the check failed, or bad input in field.
func orInvalid(err error, field, msg string) error {
	if err != nil {
		return err
	}
	return apperr.Invalid(field, "%s", msg)
}

// SetChannelAccountEnabled turns a channel account on or off (admins only).
// Off, its webhooks are acknowledged and stored nowhere, its widget starts
// no chats and takes no visitor messages, replies in its conversations are
// refused and replies queued for it fail (internal/channels,
// internal/conversations). Setting what is already set changes nothing and
// records nothing.
func (s *Service) SetChannelAccountEnabled(ctx context.Context, id int, enabled bool) (*ent.ChannelAccount, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return nil, err
	}
	var out *ent.ChannelAccount
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		a, err := tx.ChannelAccount.Get(ctx, id)
		if err != nil {
			return store.Coded(err, "channel account")
		}
		if a.Enabled == enabled {
			out = a
			return nil
		}
		if out, err = tx.ChannelAccount.UpdateOneID(id).SetEnabled(enabled).Save(ctx); err != nil {
			return store.Coded(err, "channel account")
		}
		action := "channelAccount.disable"
		if enabled {
			action = "channelAccount.enable"
		}
		return audit.Record(ctx, tx, audit.Change{Action: action, TargetID: id,
			Before: map[string]bool{"enabled": a.Enabled}, After: map[string]bool{"enabled": enabled}})
	})
	if err != nil {
		return nil, err
	}
	s.accountChanged(ctx, id)
	return out.Unwrap(), nil
}

// DeleteChannelAccount deletes a disabled channel account (admins only;
// CONFLICT while it is enabled, so that nothing arrives for it while it
// goes). History stays: its conversations, their messages, the contacts
// and their interactions remain readable, and the conversations and the
// contacts' identities on the account keep everything but the account
// reference, which becomes null (an identity detached so is never matched
// again: a new account makes new identities). Replies in its remaining
// open conversations are refused, and replies still queued for it fail.
func (s *Service) DeleteChannelAccount(ctx context.Context, id int) (int, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return 0, err
	}
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		a, err := tx.ChannelAccount.Query().Where(channelaccount.ID(id), lockForDelete[predicate.ChannelAccount]()).Only(ctx)
		if err != nil {
			return store.Coded(err, "channel account")
		}
		if a.Enabled {
			return apperr.New(apperr.Conflict, "channel account %q is enabled: disable it before deleting it", a.Name)
		}
		if err := tx.Conversation.Update().Where(conversation.ChannelAccountID(id)).ClearChannelAccountID().Exec(ctx); err != nil {
			return err
		}
		if err := tx.ContactIdentity.Update().Where(contactidentity.ChannelAccountID(id)).ClearChannelAccountID().Exec(ctx); err != nil {
			return err
		}
		if err := tx.ChannelAccount.DeleteOneID(id).Exec(ctx); err != nil {
			return store.Coded(err, "channel account")
		}
		return audit.Record(ctx, tx, audit.Change{Action: "channelAccount.delete", TargetID: id,
			Before: accountState(a), After: map[string]bool{"deleted": true}})
	})
	if err != nil {
		return 0, err
	}
	s.accountChanged(ctx, id)
	return id, nil
}

// accountChanged runs the AccountChanged hook after a committed change.
func (s *Service) accountChanged(ctx context.Context, id int) {
	if s.AccountChanged != nil {
		s.AccountChanged(ctx, id)
	}
}
