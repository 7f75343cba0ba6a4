package httpserver

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/introspection"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
)

func measure(t *testing.T, query string) int {
	t.Helper()
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		t.Fatal(err)
	}
	m := depthMeter{frags: doc.Fragments, memo: map[string]int{}}
	return m.depth(doc.Operations[0].SelectionSet)
}

func TestDepthMeter(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  int
	}{
		{`{ me { id } }`, 2},
		{`{ a b { c } d { e { f } } }`, 3},
		{`{ me { ... on Agent { queues { name } } } }`, 3},
		{`{ me { ...F } } fragment F on Agent { queues { members { id } } }`, 4},
		// gqlgen's full introspection query, with nine levels of ofType,
		// is exactly as deep as the limit allows.
		{introspection.Query, 15},
	} {
		if got := measure(t, tc.query); got != tc.want {
			t.Errorf("depth of %.40q = %d, want %d", tc.query, got, tc.want)
		}
	}
	if measure(t, introspection.Query) > DepthLimit {
		t.Fatalf("introspection is deeper than DepthLimit %d", DepthLimit)
	}
}

// A document whose fragments each spread the next one twice would take
// 2^n steps to walk naively; each fragment is measured once.
func TestDepthMeterMeasuresFragmentsOnce(t *testing.T) {
	const n = 60
	var b strings.Builder
	b.WriteString("{ ...F0 }\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "fragment F%d on Query { a { ...F%d } b { ...F%d } }\n", i, i+1, i+1)
	}
	fmt.Fprintf(&b, "fragment F%d on Query { leaf }\n", n)
	start := time.Now()
	if got := measure(t, b.String()); got != n+1 {
		t.Fatalf("depth %d, want %d", got, n+1)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("measuring took %v", d)
	}
}
