package templates

import (
	"context"
	"slices"

	"entgo.io/contrib/entgql"
	"entgo.io/ent/dialect/sql"
	"github.com/99designs/gqlgen/graphql"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/predicate"
	"github.com/parleyhq/parley/ent/template"
	"github.com/parleyhq/parley/internal/apperr"
)

// paginateByName pages q by name, then id, as a Relay connection whose
// cursors carry the name (keyset pagination: a page stays right while
// templates are added or renamed).
//
// It stands in for ent's generated Paginate, which can order templates only
// by id or created_at: ordering by name needs entgql.OrderField("NAME") on
// the schema's name field. Once that annotation is generated, this function
// becomes one call:
//
//	q.Paginate(ctx, after, first, before, last,
//		ent.WithTemplateOrder(&ent.TemplateOrder{Field: ent.TemplateOrderFieldName}))
//
// first and last arrive clamped (paging.Clamp), so exactly one is usually
// set; both at once are refused, as ent refuses them.
func paginateByName(ctx context.Context, q *ent.TemplateQuery, after *entgql.Cursor[int], first *int, before *entgql.Cursor[int], last *int) (*ent.TemplateConnection, error) {
	if first != nil && last != nil {
		return nil, apperr.Invalid("last", "pass first or last, not both")
	}
	for _, c := range []struct {
		arg    string
		cursor *entgql.Cursor[int]
	}{{"after", after}, {"before", before}} {
		if c.cursor == nil {
			continue
		}
		if _, ok := c.cursor.Value.(string); !ok {
			return nil, apperr.Invalid(c.arg, "%s is not a cursor of the templates list", c.arg)
		}
	}
	conn := &ent.TemplateConnection{Edges: []*ent.TemplateEdge{}}
	if wants(ctx, "totalCount") {
		n, err := q.Clone().Count(ctx)
		if err != nil {
			return nil, err
		}
		conn.TotalCount = n
	}
	if after != nil {
		q = q.Where(keyset(sql.CompositeGT, after))
	}
	if before != nil {
		q = q.Where(keyset(sql.CompositeLT, before))
	}
	backward := last != nil
	limit := 0
	switch {
	case first != nil:
		limit = *first
	case last != nil:
		limit = *last
	}
	order := ent.Asc
	if backward {
		order = ent.Desc
	}
	nodes, err := q.Order(order(template.FieldName, template.FieldID)).Limit(limit + 1).All(ctx)
	if err != nil {
		return nil, err
	}
	more := len(nodes) > limit
	if more {
		nodes = nodes[:limit]
	}
	if backward {
		slices.Reverse(nodes)
		conn.PageInfo.HasPreviousPage, conn.PageInfo.HasNextPage = more, before != nil
	} else {
		conn.PageInfo.HasNextPage, conn.PageInfo.HasPreviousPage = more, after != nil
	}
	conn.Edges = make([]*ent.TemplateEdge, len(nodes))
	for i, t := range nodes {
		conn.Edges[i] = &ent.TemplateEdge{Node: t, Cursor: ent.Cursor{ID: t.ID, Value: t.Name}}
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.StartCursor = &conn.Edges[0].Cursor
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn, nil
}

// keyset keeps the rows whose (name, id) compares to the cursor's with cmp.
func keyset(cmp func([]string, ...any) *sql.Predicate, c *entgql.Cursor[int]) predicate.Template {
	return func(s *sql.Selector) {
		s.Where(cmp([]string{s.C(template.FieldName), s.C(template.FieldID)}, c.Value, c.ID))
	}
}

// wants reports whether the GraphQL selection of the connection asks for
// field; outside a GraphQL request everything is computed.
func wants(ctx context.Context, field string) bool {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || !graphql.HasOperationContext(ctx) {
		return true
	}
	for _, f := range graphql.CollectFields(graphql.GetOperationContext(ctx), fc.Field.Selections, nil) {
		if f.Name == field {
			return true
		}
	}
	return false
}
