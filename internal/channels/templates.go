package channels

import (
	"context"
	"errors"
	"strings"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/schema/schematype"
	"github.com/parleyhq/parley/ent/whatsapptemplate"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/audit"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/channels/provider"
	"github.com/parleyhq/parley/internal/store"
)

// WhatsApp message templates: an account's approved templates, registered
// by an admin or synced from the Graph API. conversations.Start and Send
// read them (by name and language) to send a template outside the 24-hour
// window; who may list them is every agent, since every agent may start a
// conversation.

// RemoteTemplate is a template as the provider lists it.
type RemoteTemplate struct {
	ID, Name, Language, Category, Status string
	// Body is the BODY component's text; Header and Buttons the HEADER and
	// BUTTONS components as JSON, empty when absent.
	Body, Header, Buttons string
	// HeaderComponent and ButtonComponents are the header and buttons as
	// the adapter read them; Unsupported says what of the template Parley
	// cannot send (a LOCATION header, a COPY_CODE button, ...), empty when
	// nothing.
	HeaderComponent  *schematype.TemplateHeader
	ButtonComponents []schematype.TemplateButton
	Unsupported      string
}

// TemplateLister is a Provider that lists an account's message templates
// (WhatsApp).
type TemplateLister interface {
	ListTemplates(ctx context.Context, acct *Account) ([]RemoteTemplate, error)
}

// TemplateInput is an admin's registration of a template: its body, and
// optionally a header and buttons as the Cloud API allows them.
type TemplateInput struct {
	Name, Language, Category, Body string
	Header                         *schematype.TemplateHeader
	Buttons                        []schematype.TemplateButton
}

// WhatsAppTemplates lists a WhatsApp account's templates by name and
// language. Any agent may.
func (s *Service) WhatsAppTemplates(ctx context.Context, accountID int) ([]*ent.WhatsAppTemplate, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	if _, err := s.whatsAppAccount(ctx, s.db, accountID); err != nil {
		return nil, err
	}
	return s.db.WhatsAppTemplate.Query().Where(whatsapptemplate.ChannelAccountID(accountID)).
		Order(ent.Asc(whatsapptemplate.FieldName), ent.Asc(whatsapptemplate.FieldLanguage)).All(ctx)
}

// CreateWhatsAppTemplate registers an approved template by hand (admins):
// its name, language, category and placeholders as Meta requires them. A
// template of the same name and language on the account is CONFLICT.
func (s *Service) CreateWhatsAppTemplate(ctx context.Context, accountID int, in TemplateInput) (*ent.WhatsAppTemplate, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return nil, err
	}
	name, body := strings.TrimSpace(in.Name), strings.TrimSpace(in.Body)
	category := strings.ToUpper(strings.TrimSpace(in.Category))
	lang, n, err := provider.CheckTemplate(name, in.Language, category, body)
	if err != nil {
		return nil, err
	}
	var header *schematype.TemplateHeader
	if in.Header != nil {
		h, err := provider.CheckTemplateHeader("header", *in.Header)
		if err != nil {
			return nil, err
		}
		header = &h
	}
	buttons, err := provider.CheckTemplateButtons("buttons", in.Buttons)
	if err != nil {
		return nil, err
	}
	var out *ent.WhatsAppTemplate
	err = store.Tx(ctx, s.db, func(tx *ent.Tx, _ *store.After) error {
		if _, err := s.whatsAppAccount(ctx, tx.Client(), accountID); err != nil {
			return err
		}
		c := tx.WhatsAppTemplate.Create().SetChannelAccountID(accountID).SetName(name).SetLanguage(lang).
			SetCategory(category).SetBody(body).SetPlaceholders(n).SetStatus("APPROVED").SetButtonComponents(buttons)
		if header != nil {
			c.SetHeaderComponent(header)
		}
		out, err = c.Save(ctx)
		if ent.IsConstraintError(err) {
			return apperr.Taken("name", "the account has a template %s in %s", name, lang)
		}
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{Action: "whatsappTemplate.create", TargetID: out.ID,
			After: templateAudit(out)})
	})
	if err != nil {
		return nil, store.Coded(err, "WhatsApp template")
	}
	return out.Unwrap(), nil
}

// SyncWhatsAppTemplates reads the account's templates from the Graph API
// (every page) and stores them, upserted by name and language with the
// provider's status, in one transaction: a provider error (PROVIDER_ERROR,
// or RATE_LIMITED when it says slow down) stores nothing. Templates the
// provider no longer lists (registered by hand or synced before) become
// DELETED: still listed, so history reads as it did, but never sent; a
// later sync that lists one again restores its status. A template whose
// header or buttons Parley cannot fill in is UNSUPPORTED. It returns the
// templates the provider listed. Admins only; the account needs its
// businessAccountID.
func (s *Service) SyncWhatsAppTemplates(ctx context.Context, accountID int) ([]*ent.WhatsAppTemplate, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return nil, err
	}
	row, err := s.whatsAppAccount(ctx, s.db, accountID)
	if err != nil {
		return nil, err
	}
	if row.Config.BusinessAccountID == "" {
		return nil, apperr.Invalid("channelAccountID", "the account has no businessAccountID (the WhatsApp Business Account id) to list templates from")
	}
	lister, ok := s.byChannel[schematype.ChannelWhatsApp].(TemplateLister)
	if !ok {
		return nil, apperr.Invalid("channelAccountID", "Parley cannot list this provider's templates")
	}
	acct, err := s.toAccount(row)
	if err != nil {
		return nil, err
	}
	remote, err := lister.ListTemplates(ctx, acct)
	if err != nil {
		return nil, providerRefusal(err)
	}
	var ids []int
	err = store.Tx(ctx, s.db, func(tx *ent.Tx, _ *store.After) error {
		var synced []string
		for _, r := range remote {
			lang, ok := provider.TemplateLanguage(r.Language)
			if r.Name == "" || !ok {
				s.log.Warn("whatsapp template sync: skipped a template without name or language", "account", accountID, "name", r.Name)
				continue
			}
			n, err := provider.Placeholders(r.Body)
			status := strings.ToUpper(r.Status)
			header, buttons, why := checkRemote(r)
			if err != nil {
				why = "its body's placeholders"
			}
			if why != "" {
				// Not a template Parley can fill in: kept, but never sendable.
				s.log.Info("whatsapp template sync: unsupported template", "account", accountID, "name", r.Name, "why", why)
				status, n, header, buttons = "UNSUPPORTED", 0, nil, nil
			}
			if status == "" {
				status = "UNKNOWN"
			}
			category := r.Category
			if category == "" {
				category = "UNKNOWN"
			}
			c := tx.WhatsAppTemplate.Create().SetChannelAccountID(accountID).SetName(r.Name).SetLanguage(lang).
				SetCategory(category).SetBody(r.Body).SetPlaceholders(n).SetStatus(status).
				SetNillableHeader(optional(r.Header)).SetNillableButtons(optional(r.Buttons)).
				SetNillableProviderID(optional(r.ID)).SetButtonComponents(buttons)
			if header != nil {
				c.SetHeaderComponent(header)
			}
			id, err := c.OnConflictColumns(whatsapptemplate.FieldChannelAccountID, whatsapptemplate.FieldName, whatsapptemplate.FieldLanguage).
				Update(func(u *ent.WhatsAppTemplateUpsert) {
					u.UpdateCategory().UpdateBody().UpdatePlaceholders().UpdateStatus().
						UpdateHeader().UpdateButtons().UpdateProviderID().UpdateUpdatedAt().UpdateButtonComponents()
					if header == nil {
						u.ClearHeaderComponent()
					} else {
						u.UpdateHeaderComponent()
					}
				}).ID(ctx)
			if err != nil {
				return err
			}
			ids = append(ids, id)
			synced = append(synced, r.Name+"/"+lang+"="+status)
		}
		// What the provider no longer lists cannot be sent: DELETED, kept
		// so that messages sent with it still read as they did.
		gone := tx.WhatsAppTemplate.Update().Where(whatsapptemplate.ChannelAccountID(accountID),
			whatsapptemplate.StatusNEQ(deletedStatus))
		if len(ids) > 0 {
			gone.Where(whatsapptemplate.IDNotIn(ids...))
		}
		deleted, err := gone.SetStatus(deletedStatus).Save(ctx)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Change{Action: "whatsappTemplate.sync", TargetID: accountID,
			After: map[string]any{"templates": synced, "deleted": deleted}})
	})
	if err != nil {
		return nil, store.Coded(err, "WhatsApp template")
	}
	out, err := s.db.WhatsAppTemplate.Query().Where(whatsapptemplate.IDIn(ids...)).
		Order(ent.Asc(whatsapptemplate.FieldName), ent.Asc(whatsapptemplate.FieldLanguage)).All(ctx)
	return out, err
}

// deletedStatus is the status of a template the provider no longer lists.
const deletedStatus = "DELETED"

// checkRemote checks a listed template's header and buttons as a
// registration would; why says what Parley cannot send ("" when all is
// well).
func checkRemote(r RemoteTemplate) (*schematype.TemplateHeader, []schematype.TemplateButton, string) {
	if r.Unsupported != "" {
		return nil, nil, r.Unsupported
	}
	var header *schematype.TemplateHeader
	if r.HeaderComponent != nil {
		h, err := provider.CheckTemplateHeader("header", *r.HeaderComponent)
		if err != nil {
			return nil, nil, "its header"
		}
		header = &h
	}
	buttons, err := provider.CheckTemplateButtons("buttons", r.ButtonComponents)
	if err != nil {
		return nil, nil, "its buttons"
	}
	return header, buttons, ""
}

// whatsAppAccount loads a WhatsApp account: NOT_FOUND for none,
// BAD_USER_INPUT for an account of another channel.
func (s *Service) whatsAppAccount(ctx context.Context, db *ent.Client, id int) (*ent.ChannelAccount, error) {
	a, err := db.ChannelAccount.Get(ctx, id)
	if err != nil {
		return nil, store.Coded(err, "channel account")
	}
	if a.Channel != schematype.ChannelWhatsApp {
		return nil, apperr.Invalid("channelAccountID", "only WhatsApp accounts have message templates")
	}
	return a, nil
}

// providerRefusal codes a failed provider call the client waited for.
func providerRefusal(err error) error {
	var se *SendError
	if errors.As(err, &se) {
		if se.Status == 429 || throttles(schematype.ChannelWhatsApp, se.Code) {
			return apperr.Wrap(apperr.RateLimited, err, "%s", se.Reason)
		}
		return apperr.Wrap(apperr.ProviderError, err, "%s", se.Reason)
	}
	return apperr.Wrap(apperr.ProviderError, err, "could not reach WhatsApp: %s", NetworkReason(err))
}

func templateAudit(t *ent.WhatsAppTemplate) map[string]any {
	return map[string]any{"name": t.Name, "language": t.Language, "category": t.Category, "body": t.Body, "status": t.Status,
		"header": t.HeaderComponent, "buttons": t.ButtonComponents}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
