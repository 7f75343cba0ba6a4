// Package labels holds the workspace's labels ("billing", "complaint"):
// admins create, rename, recolour and delete them, each change audited in
// its own transaction; any agent lists them. Putting a label on a
// conversation is the conversation workflow's (internal/conversations,
// labels.go), under the rule of who may see it. The inbox and queueStats
// filter with ConversationHasAny; Conversation.labels is loaded per page
// (Loader).
package labels

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"entgo.io/ent/dialect/sql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/conversation"
	"github.com/parleyhq/parley/ent/conversationlabel"
	"github.com/parleyhq/parley/ent/label"
	"github.com/parleyhq/parley/ent/predicate"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/audit"
	"github.com/parleyhq/parley/internal/auth"
	"github.com/parleyhq/parley/internal/store"
)

// Limits on labels.
const (
	// MaxNameLen is the longest label name, in characters, once trimmed.
	MaxNameLen = 50
	// MaxFilter is how many labels a filter (inbox, queueStats) names at most.
	MaxFilter = 100
)

// Service manages the workspace's labels.
type Service struct {
	client *ent.Client
	// Detached, when set, runs inside deleteLabel's transaction, after the
	// label left the conversations ids: it tells their viewers and logs
	// the removal in their contacts' histories (internal/conversations).
	Detached func(ctx context.Context, tx *ent.Tx, after *store.After, name string, ids []int) error
}

// NewService returns the labels service.
func NewService(client *ent.Client) *Service { return &Service{client: client} }

// ConversationHasAny is the conversations carrying any of the labels ids
// (none when ids is empty), for the inbox's labelIDs and queueStats'. An id
// that is no label matches nothing. It reads the join table alone, through
// its label_id index.
func ConversationHasAny(ids []int) predicate.Conversation {
	return func(s *sql.Selector) {
		t := sql.Table(conversationlabel.Table)
		s.Where(sql.In(s.C(conversation.FieldID),
			sql.Select(t.C(conversationlabel.FieldConversationID)).From(t).
				Where(sql.InInts(t.C(conversationlabel.FieldLabelID), ids...))))
	}
}

// ByName orders labels as every list shows them: by name, case aside, then
// by id. Pass it to WithLabels when eager-loading a conversation's labels.
func ByName(q *ent.LabelQuery) {
	q.Order(ent.Asc(label.FieldNameKey), ent.Asc(label.FieldID))
}

// List returns every label, by name. Any agent may list them.
func (s *Service) List(ctx context.Context) ([]*ent.Label, error) {
	if _, err := auth.Agent(ctx); err != nil {
		return nil, err
	}
	q := s.client.Label.Query()
	ByName(q)
	return q.All(ctx)
}

// state is what the audit log keeps of a label.
type state struct {
	Name  string `json:"name"`
	Color string `json:"color"`
}

func stateOf(l *ent.Label) state { return state{Name: l.Name, Color: l.Color} }

// Create adds a label (ADMIN and SYSTEM_OWNER). A name another label has,
// case aside, is CONFLICT.
func (s *Service) Create(ctx context.Context, name, color string) (*ent.Label, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return nil, err
	}
	name, err := CheckName(name)
	if err != nil {
		return nil, err
	}
	if color, err = CheckColor(color); err != nil {
		return nil, err
	}
	var out *ent.Label
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		if err := checkUnique(ctx, tx, 0, name); err != nil {
			return err
		}
		l, err := tx.Label.Create().SetName(name).SetNameKey(nameKey(name)).SetColor(color).Save(ctx)
		if err != nil {
			return entErr(err)
		}
		out = l
		return audit.Record(ctx, tx, audit.Change{Action: "label.create", TargetID: l.ID, After: stateOf(l)})
	})
	if err != nil {
		return nil, err
	}
	return out.Unwrap(), nil
}

// Update renames or recolours a label (ADMIN and SYSTEM_OWNER); nil
// leaves a field as it is. Bad input changes nothing.
func (s *Service) Update(ctx context.Context, id int, name, color *string) (*ent.Label, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return nil, err
	}
	var err error
	if name != nil {
		n, err := CheckName(*name)
		if err != nil {
			return nil, err
		}
		name = &n
	}
	if color != nil {
		c, err := CheckColor(*color)
		if err != nil {
			return nil, err
		}
		color = &c
	}
	var out *ent.Label
	err = store.Tx(ctx, s.client, func(tx *ent.Tx, _ *store.After) error {
		l, err := tx.Label.Get(ctx, id)
		if err != nil {
			return store.Coded(err, "label")
		}
		u := tx.Label.UpdateOneID(id)
		if name != nil {
			if err := checkUnique(ctx, tx, id, *name); err != nil {
				return err
			}
			u.SetName(*name).SetNameKey(nameKey(*name))
		}
		if color != nil {
			u.SetColor(*color)
		}
		if out, err = u.Save(ctx); err != nil {
			return entErr(err)
		}
		return audit.Record(ctx, tx, audit.Change{Action: "label.update", TargetID: id, Before: stateOf(l), After: stateOf(out)})
	})
	if err != nil {
		return nil, err
	}
	return out.Unwrap(), nil
}

// Delete removes a label from every conversation that carries it, whose
// viewers are told (Detached), and then the label itself (ADMIN and
// SYSTEM_OWNER).
func (s *Service) Delete(ctx context.Context, id int) (int, error) {
	if _, err := auth.Admin(ctx); err != nil {
		return 0, err
	}
	err := store.Tx(ctx, s.client, func(tx *ent.Tx, after *store.After) error {
		l, err := tx.Label.Get(ctx, id)
		if err != nil {
			return store.Coded(err, "label")
		}
		convs, err := tx.ConversationLabel.Query().Where(conversationlabel.LabelID(id)).
			Select(conversationlabel.FieldConversationID).Ints(ctx)
		if err != nil {
			return err
		}
		// The join rows go explicitly, not only by the foreign key's
		// cascade, so that the conversations are told what really changed.
		if _, err := tx.ConversationLabel.Delete().Where(conversationlabel.LabelID(id)).Exec(ctx); err != nil {
			return err
		}
		if err := tx.Label.DeleteOneID(id).Exec(ctx); err != nil {
			return store.Coded(err, "label")
		}
		if s.Detached != nil && len(convs) > 0 {
			if err := s.Detached(ctx, tx, after, l.Name, convs); err != nil {
				return err
			}
		}
		return audit.Record(ctx, tx, audit.Change{Action: "label.delete", TargetID: id,
			Before: stateOf(l), After: map[string]any{"deleted": true, "removedFromConversations": len(convs)}})
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

var colorRe = regexp.MustCompile(`^#[0-9a-f]{6}$`)

// CheckName trims a label's name and checks its length (1 to MaxNameLen
// characters).
func CheckName(in string) (string, error) {
	name := strings.TrimSpace(in)
	if name == "" || utf8.RuneCountInString(name) > MaxNameLen {
		return "", apperr.Invalid("name", "name must have 1 to %d characters", MaxNameLen)
	}
	return name, nil
}

// CheckColor normalises a colour to lower case and checks that it is a
// CSS hex colour, #rrggbb.
func CheckColor(in string) (string, error) {
	c := strings.ToLower(strings.TrimSpace(in))
	if !colorRe.MatchString(c) {
		return "", apperr.Invalid("color", "color must be a hex colour #rrggbb, not %q", in)
	}
	return c, nil
}

// nameKey is how names are compared for uniqueness: case aside.
func nameKey(name string) string { return strings.ToLower(name) }

// checkUnique refuses a name another label (than self) has, case aside. The
// unique index on name_key holds under concurrent writers too (entErr).
func checkUnique(ctx context.Context, tx *ent.Tx, self int, name string) error {
	taken, err := tx.Label.Query().Where(label.NameKey(nameKey(name)), label.IDNEQ(self)).Exist(ctx)
	if err != nil {
		return err
	}
	if taken {
		return apperr.Taken("name", "a label named %q exists", name)
	}
	return nil
}

func entErr(err error) error {
	if ent.IsConstraintError(err) {
		// A concurrent writer took the name between checkUnique and here.
		return apperr.Taken("name", "a label with that name exists")
	}
	return store.Coded(err, "label")
}

// Of returns the labels of conversation c, by name: those loaded with it
// (WithLabels(ByName)), else its page's (Prime), else its own. Labels are
// workspace metadata, like a conversation's status: every agent who reaches
// the conversation (an inbox, a contact's history) reads them; they are
// never shown to a visitor.
func (s *Service) Of(ctx context.Context, c *ent.Conversation) ([]*ent.Label, error) {
	if p, ok := auth.FromContext(ctx); !ok || !p.IsAgent() {
		return []*ent.Label{}, nil
	}
	if ls, err := c.Edges.LabelsOrErr(); err == nil {
		return orEmpty(ls), nil
	}
	return loaderOf(ctx).of(ctx, s.client, c.ID)
}

// load returns the labels of the conversations ids, by name, in one query.
func load(ctx context.Context, client *ent.Client, ids []int) (map[int][]*ent.Label, error) {
	rows, err := client.ConversationLabel.Query().Where(conversationlabel.ConversationIDIn(ids...)).
		WithLabel().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("labels of conversations: %w", err)
	}
	out := make(map[int][]*ent.Label, len(ids))
	for _, r := range rows {
		if r.Edges.Label != nil {
			out[r.ConversationID] = append(out[r.ConversationID], r.Edges.Label)
		}
	}
	for _, ls := range out {
		sortByName(ls)
	}
	return out, nil
}
