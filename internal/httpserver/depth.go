package httpserver

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/parleyhq/parley/internal/apperr"
)

// depthLimit refuses, as BAD_USER_INPUT, operations whose fields nest
// deeper than max, beside the complexity limit: complexity adds fields up,
// but a long chain of cheap ones (agent → queues → members → agent …) stays
// under it while every level runs its resolvers over the level before.
// Fragments count where they are spread. Introspection is measured like any
// other selection, since nested __Type fields multiply too: gqlgen's full
// introspection query (nine levels of ofType) nests exactly 15 deep.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	m := depthMeter{frags: oc.Doc.Fragments, memo: map[string]int{}}
	if n := m.depth(oc.Operation.SelectionSet); n > d.max {
		ae := apperr.New(apperr.BadUserInput, "the operation nests %d fields deep, more than the limit of %d", n, d.max)
		return &gqlerror.Error{Message: ae.Message, Err: ae}
	}
	return nil
}

// depthMeter measures selection sets. A fragment's depth does not depend on
// where it is spread, so each is measured once: fragments that spread
// others many times cannot make the measurement itself expensive.
type depthMeter struct {
	frags ast.FragmentDefinitionList
	memo  map[string]int
}

func (m depthMeter) depth(set ast.SelectionSet) int {
	deepest := 0
	for _, sel := range set {
		n := 0
		switch s := sel.(type) {
		case *ast.Field:
			n = 1 + m.depth(s.SelectionSet)
		case *ast.InlineFragment:
			n = m.depth(s.SelectionSet)
		case *ast.FragmentSpread:
			var ok bool
			if n, ok = m.memo[s.Name]; !ok {
				// Validation has refused fragment cycles; the zero
				// stored first guards against one anyway.
				m.memo[s.Name] = 0
				if f := m.frags.ForName(s.Name); f != nil {
					n = m.depth(f.SelectionSet)
				}
				m.memo[s.Name] = n
			}
		}
		deepest = max(deepest, n)
	}
	return deepest
}
