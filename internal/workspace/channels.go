package workspace

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/channelaccount"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/audit"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/channels/provider"
	"github.com/parleyhq/parley/internal/store"
)

// NewChannelAccount is what CreateChannelAccount needs: exactly one routing
// target and the provider config that matches the channel.
type NewChannelAccount struct {
	Channel schematype.Channel
	Name    string
	QueueID *int
	AgentID *int
	// FallbackQueueID, only with AgentID, is where the agent's
	// conversations go when they cannot take them in time (routing).
	FallbackQueueID *int
	Config          schematype.ChannelConfig
	// Given records which config blocks the caller filled in, so that a
	// config for another channel is refused rather than ignored.
	GivenWhatsApp, GivenMessenger, GivenSMS, GivenLiveChat bool
}

// CreateChannelAccount connects a provider account (admins only).
func (s *Service) CreateChannelAccount(ctx context.Context, in NewChannelAccount) (*ent.ChannelAccount, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return nil, err
	}
	name := strings.TrimSpace(in.Name)
	if name == "" || utf8.RuneCountInString(name) > 200 {
		return nil, apperr.Invalid("name", "name must have 1 to 200 characters")
	}
	if (in.QueueID == nil) == (in.AgentID == nil) {
		return nil, apperr.Invalid("queueID", "give exactly one of queueID and agentID")
	}
	external, err := checkConfig(in)
	if err != nil {
		return nil, err
	}
	cfg := in.Config
	if err := s.secrets.SealAll(cfg.Secrets()...); err != nil {
		return nil, err
	}
	var out *ent.ChannelAccount
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		// The account and its audit entry commit together.
		client := tx.Client()
		c := client.ChannelAccount.Create().SetChannel(in.Channel).SetName(name).
			SetConfig(cfg).SetExternalID(external)
		if in.QueueID != nil {
			if _, err := client.Queue.Get(ctx, *in.QueueID); err != nil {
				return apperr.Invalid("queueID", "no such queue")
			}
			c.SetQueueID(*in.QueueID)
		}
		if in.AgentID != nil {
			a, err := client.Agent.Get(ctx, *in.AgentID)
			if err != nil || !a.Active {
				return apperr.Invalid("agentID", "no such active agent")
			}
			c.SetAgentID(*in.AgentID)
		}
		if in.FallbackQueueID != nil {
			if in.AgentID == nil {
				return apperr.Invalid("fallbackQueueID", "a fallback queue is only for an account routed to an agent")
			}
			if _, err := client.Queue.Get(ctx, *in.FallbackQueueID); err != nil {
				return apperr.Invalid("fallbackQueueID", "no such queue")
			}
			c.SetFallbackQueueID(*in.FallbackQueueID)
		}
		a, err := c.Save(ctx)
		if err != nil {
			return store.Coded(err, "channel account")
		}
		out = a
		return audit.Record(ctx, tx, audit.Change{Action: "channelAccount.create", TargetID: a.ID,
			After: map[string]any{"channel": a.Channel, "name": a.Name, "queueID": a.QueueID, "agentID": a.AgentID,
				"fallbackQueueID": a.FallbackQueueID, "credentials": audit.Redacted}})
	})
	if err != nil {
		return nil, err
	}
	// Loaded again outside the transaction, whose client resolvers cannot use.
	a, err := s.client.ChannelAccount.Get(ctx, out.ID)
	return a, store.Coded(err, "channel account")
}

// checkConfig validates the provider config for the channel and returns the
// account's external id (what inbound webhooks are routed by). The rules of
// each provider's config are its own (package channels/provider); here are
// those of every account.
func checkConfig(in NewChannelAccount) (string, error) {
	cfg := in.Config
	given := map[schematype.Channel]bool{
		schematype.ChannelWhatsApp: in.GivenWhatsApp,
		schematype.ChannelFacebook: in.GivenMessenger,
		schematype.ChannelSMS:      in.GivenSMS,
		schematype.ChannelLiveChat: in.GivenLiveChat,
	}
	for _, f := range provider.All() {
		if given[f.Channel] && f.Channel != in.Channel {
			return "", apperr.Invalid("channel", "a %s config does not fit a %s account", f.ConfigField, in.Channel)
		}
	}
	if cfg.APIBaseURL != "" {
		u, err := url.Parse(cfg.APIBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return "", apperr.Invalid("apiBaseURL", "apiBaseURL must be an http(s) URL")
		}
	}
	if in.Channel == schematype.ChannelInternal {
		return "", apperr.Invalid("channel", "INTERNAL chats need no channel account")
	}
	f, ok := provider.For(in.Channel)
	if !ok {
		return "", apperr.Invalid("channel", "unknown channel %q", in.Channel)
	}
	return f.Check(cfg, given[in.Channel])
}

// ResealCredentials seals every channel account's credentials with the
// current key: plaintext from before encryption, and values sealed with an
// old key (PARLEY_SECRET_KEY_OLD). It is `parley reencrypt-secrets`, run by
// an operator, so it checks no caller. One transaction: either every
// account is resealed or none. Accounts already sealed with the current key
// are left alone, so a second run changes nothing.
func (s *Service) ResealCredentials(ctx context.Context) (resealed, total int, err error) {
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		accts, err := tx.ChannelAccount.Query().Order(ent.Asc(channelaccount.FieldID)).All(ctx)
		if err != nil {
			return err
		}
		resealed, total = 0, len(accts)
		for _, a := range accts {
			cfg := a.Config
			if s.secrets.Current(cfg.Secrets()...) {
				continue
			}
			if err := s.secrets.OpenAll(cfg.Secrets()...); err != nil {
				return fmt.Errorf("channel account %d: %w", a.ID, err)
			}
			if err := s.secrets.SealAll(cfg.Secrets()...); err != nil {
				return err
			}
			if err := tx.ChannelAccount.UpdateOne(a).SetConfig(cfg).Exec(ctx); err != nil {
				return err
			}
			resealed++
		}
		return nil
	})
	return resealed, total, err
}

// ChannelAccounts lists every channel account (admins only).
func (s *Service) ChannelAccounts(ctx context.Context) ([]*ent.ChannelAccount, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return nil, err
	}
	return s.client.ChannelAccount.Query().Order(ent.Asc(channelaccount.FieldID)).All(ctx)
}

// WebhookURL is the full webhook URL for the provider's console; nil for
// live chat, which has no webhook.
func (s *Service) WebhookURL(a *ent.ChannelAccount) *string {
	p := provider.WebhookPath(a.Channel, a.ID)
	if p == "" {
		return nil
	}
	u := s.publicURL + p
	return &u
}

// Snippet is the HTML that embeds the live-chat widget for a LIVE_CHAT
// account; nil for other channels.
func (s *Service) Snippet(a *ent.ChannelAccount) *string {
	if a.Channel != schematype.ChannelLiveChat {
		return nil
	}
	v := `<script src="` + s.publicURL + `/widget.js" data-parley-account="` + strconv.Itoa(a.ID) + `" async></script>`
	return &v
}
