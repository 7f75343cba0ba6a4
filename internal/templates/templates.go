// Package templates manages quick-reply templates: anyone may read and
// search them; only admins, group owners and system owners manage them.
//
// A template is identified, for people, by its name and language: two
// templates with the same name (compared case-insensitively) in the same
// language are refused with CONFLICT, because an agent picking "Greeting
// (en)" from a list could not tell them apart. The same name in another
// language is the expected case (one greeting per language) and is allowed.
package templates

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"entgo.io/contrib/entgql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/template"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/paging"
	"github.com/parleyhq/parley/internal/store"
	"github.com/parleyhq/parley/internal/textsearch"
)

// Field limits, in characters (runes) after trimming.
const (
	MaxName     = 200
	MaxCategory = 100
	MaxBody     = 4096
)

// Service manages templates.
type Service struct {
	client *ent.Client
	// Conversations, when set, lets Render fill in variables for a
	// conversation the caller may see.
	Conversations Conversations
}

// NewService returns the templates service.
func NewService(client *ent.Client) *Service { return &Service{client: client} }

// Filter narrows a template list. Empty (or blank) fields do not filter;
// the ones given combine.
type Filter struct {
	// Search matches name and body, ignoring case and accents; LIKE's
	// wildcards in it are literal.
	Search string
	// Category and Language match exactly, after trimming (a language is
	// normalised like a stored one, so "pt-br" finds "pt-BR").
	Category, Language string
}

// List returns the templates matching f, by name then id. Any agent may
// list them.
func (s *Service) List(ctx context.Context, f Filter, after *entgql.Cursor[int], first *int, before *entgql.Cursor[int], last *int) (*ent.TemplateConnection, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	q := s.client.Template.Query()
	if search := strings.TrimSpace(f.Search); search != "" {
		if err := textsearch.CheckQuery(search); err != nil {
			return nil, err
		}
		q = q.Where(textsearch.Match(template.FieldSearchKey, search))
	}
	if c := strings.TrimSpace(f.Category); c != "" {
		q = q.Where(template.Category(c))
	}
	if l := strings.TrimSpace(f.Language); l != "" {
		if norm, ok := NormalizeLanguage(l); ok {
			l = norm
		}
		q = q.Where(template.Language(l))
	}
	first, last = paging.Clamp(first, last)
	return q.Paginate(ctx, after, first, before, last, byName)
}

// Categories lists the distinct categories in use, sorted. Any agent may
// list them.
func (s *Service) Categories(ctx context.Context) ([]string, error) {
	return s.distinct(ctx, template.FieldCategory)
}

// Languages lists the distinct languages in use, sorted. Any agent may list
// them.
func (s *Service) Languages(ctx context.Context) ([]string, error) {
	return s.distinct(ctx, template.FieldLanguage)
}

// distinct sorts in Go rather than in SQL so that both databases answer in
// the same (byte) order whatever their collation.
func (s *Service) distinct(ctx context.Context, column string) ([]string, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	vals, err := s.client.Template.Query().Unique(true).Select(column).Strings(ctx)
	if err != nil {
		return nil, err
	}
	slices.Sort(vals)
	return vals, nil
}

// Input creates (every field required) or updates (nil fields unchanged) a
// template.
type Input struct {
	Name, Category, Language, Body *string
}

// Create adds a template. Only callers who manage templates may.
func (s *Service) Create(ctx context.Context, in Input) (*ent.Template, error) {
	if err := manager(ctx); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name  string
		value *string
	}{{"name", in.Name}, {"category", in.Category}, {"language", in.Language}, {"body", in.Body}} {
		if f.value == nil {
			return nil, apperr.Invalid(f.name, "%s is required", f.name)
		}
	}
	v, err := validate(in)
	if err != nil {
		return nil, err
	}
	var out *ent.Template
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		if err := checkUnique(ctx, tx, 0, *v.Name, *v.Language); err != nil {
			return err
		}
		created, err := tx.Template.Create().
			SetName(*v.Name).SetCategory(*v.Category).SetLanguage(*v.Language).SetBody(*v.Body).
			SetSearchKey(textsearch.Key(*v.Name, *v.Body)).SetNameKey(nameKey(*v.Name)).
			Save(ctx)
		out = created
		return entErr(err)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Update changes some fields of a template. Only callers who manage
// templates may. An update that fails validation changes nothing.
func (s *Service) Update(ctx context.Context, id int, in Input) (*ent.Template, error) {
	if err := manager(ctx); err != nil {
		return nil, err
	}
	v, err := validate(in)
	if err != nil {
		return nil, err
	}
	var out *ent.Template
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		t, err := tx.Template.Get(ctx, id)
		if err != nil {
			return store.Coded(err, "template")
		}
		name, lang, body := pick(v.Name, t.Name), pick(v.Language, t.Language), pick(v.Body, t.Body)
		if v.Name != nil || v.Language != nil {
			if err := checkUnique(ctx, tx, id, name, lang); err != nil {
				return err
			}
		}
		out, err = tx.Template.UpdateOneID(id).
			SetName(name).SetLanguage(lang).SetBody(body).
			SetCategory(pick(v.Category, t.Category)).
			SetSearchKey(textsearch.Key(name, body)).SetNameKey(nameKey(name)).
			Save(ctx)
		return entErr(err)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delete removes a template and returns its id. Only callers who manage
// templates may.
func (s *Service) Delete(ctx context.Context, id int) (int, error) {
	if err := manager(ctx); err != nil {
		return 0, err
	}
	n, err := s.client.Template.Delete().Where(template.ID(id)).Exec(ctx)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, apperr.NotFoundf("template")
	}
	return id, nil
}

func manager(ctx context.Context) error {
	p, err := auth.Agent(ctx)
	if err != nil {
		return err
	}
	if !p.ManagesTemplates() {
		return apperr.New(apperr.Forbidden, "only admins, group owners and system owners may manage templates")
	}
	return nil
}

// validate checks the given fields and returns them trimmed and normalised.
func validate(in Input) (Input, error) {
	var out Input
	var err error
	if out.Name, err = text(in.Name, "name", MaxName); err != nil {
		return out, err
	}
	if out.Category, err = text(in.Category, "category", MaxCategory); err != nil {
		return out, err
	}
	if out.Body, err = text(in.Body, "body", MaxBody); err != nil {
		return out, err
	}
	if out.Body != nil {
		if err := checkVariables(*out.Body); err != nil {
			return out, err
		}
	}
	if in.Language != nil {
		l, ok := NormalizeLanguage(*in.Language)
		if !ok {
			return out, apperr.Invalid("language", "language must be a language tag such as en, es, pt-BR or zh-Hant")
		}
		out.Language = &l
	}
	return out, nil
}

func text(v *string, field string, max int) (*string, error) {
	if v == nil {
		return nil, nil
	}
	s := strings.TrimSpace(*v)
	if s == "" || utf8.RuneCountInString(s) > max {
		return nil, apperr.Invalid(field, "%s must have 1 to %d characters", field, max)
	}
	return &s, nil
}

// entErr codes what ent refuses of a template. Its validators measure
// MaxLen in bytes while the limits here are in characters, so a name of
// 200 accented letters passes validate and is refused by ent: too long. A
// constraint is the one unique index, name in a language.
func entErr(err error) error {
	var v *ent.ValidationError
	if errors.As(err, &v) {
		return apperr.Invalid(v.Name, "%s is too long", v.Name)
	}
	if ent.IsConstraintError(err) {
		// A concurrent writer took the name between checkUnique and here.
		return apperr.Taken("name", "a template with that name exists in that language")
	}
	return store.Coded(err, "template")
}

// nameKey is how names are compared for uniqueness: case aside.
func nameKey(name string) string { return strings.ToLower(name) }

func pick(v *string, current string) string {
	if v != nil {
		return *v
	}
	return current
}

// languageTag is the subset of BCP 47 templates use: a 2–3 letter
// language, an optional 4-letter script and an optional region (2 letters
// or 3 digits): "en", "es-419", "pt-BR", "zh-Hant", "zh-Hant-TW".
var languageTag = regexp.MustCompile(`^([A-Za-z]{2,3})(?:-([A-Za-z]{4}))?(?:-([A-Za-z]{2}|[0-9]{3}))?$`)

// NormalizeLanguage trims a language tag and gives it BCP 47's usual case
// (language lower, Script title, REGION upper), or reports that it is not
// one.
func NormalizeLanguage(tag string) (string, bool) {
	m := languageTag.FindStringSubmatch(strings.TrimSpace(tag))
	if m == nil {
		return "", false
	}
	out := strings.ToLower(m[1])
	if m[2] != "" {
		out += "-" + strings.ToUpper(m[2][:1]) + strings.ToLower(m[2][1:])
	}
	if m[3] != "" {
		out += "-" + strings.ToUpper(m[3])
	}
	return out, true
}

// checkUnique refuses a name already used (case-insensitively) by another
// template in the same language. It runs inside the writing transaction;
// the few templates of one language are compared in Go so that the rule
// is the same on both databases.
func checkUnique(ctx context.Context, tx *ent.Tx, self int, name, lang string) error {
	others, err := tx.Template.Query().
		Where(template.Language(lang), template.IDNEQ(self)).
		Select(template.FieldName).Strings(ctx)
	if err != nil {
		return err
	}
	for _, o := range others {
		if strings.EqualFold(o, name) {
			return apperr.New(apperr.Conflict, "a %s template named %q exists", lang, o)
		}
	}
	return nil
}

// byName orders templates by name (then id, which entgql adds).
var byName = ent.WithTemplateOrder(&ent.TemplateOrder{
	Direction: entgql.OrderDirectionAsc, Field: ent.TemplateOrderFieldName,
})
