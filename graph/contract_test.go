package graph

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// contractPath is the client contract the repository keeps and its tests
// send.
const contractPath = "../api/operations.graphql"

// sharedContractPath is the baseline existing clients use, beside the
// repository when it is checked out with ../shared; PARLEY_SHARED_CONTRACT
// names another place and makes the file required.
const sharedContractPath = "../../shared/api/operations.graphql"

func loadSchema(t *testing.T) *ast.Schema {
	t.Helper()
	var sources []*ast.Source
	for _, f := range []string{"../schema.graphql", "ent.graphql"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, &ast.Source{Name: filepath.Base(f), Input: string(b)})
	}
	schema, err := gqlparser.LoadSchema(sources...)
	if err != nil {
		t.Fatalf("schema does not load: %v", err)
	}
	return schema
}

// parseContract parses an operations document and checks that every
// operation the file declares was parsed.
func parseContract(name, src string) (*ast.QueryDocument, error) {
	doc, perr := parser.ParseQuery(&ast.Source{Name: name, Input: src})
	if perr != nil {
		return nil, fmt.Errorf("%s does not parse: %v", name, perr)
	}
	declared := regexp.MustCompile(`(?m)^(query|mutation|subscription)\b`).FindAllString(src, -1)
	if len(doc.Operations) == 0 || len(doc.Operations) != len(declared) {
		return nil, fmt.Errorf("%s: parsed %d operations, the file declares %d", name, len(doc.Operations), len(declared))
	}
	return doc, nil
}

// validateContract checks each operation alone, then the whole document, and
// reports the first failure with the operation's name.
func validateContract(schema *ast.Schema, doc *ast.QueryDocument) error {
	for _, op := range doc.Operations {
		single := &ast.QueryDocument{Operations: ast.OperationList{op}, Fragments: doc.Fragments}
		if errs := validator.Validate(schema, single); len(errs) > 0 {
			return fmt.Errorf("operation %s does not validate: %v", op.Name, errs)
		}
	}
	if errs := validator.Validate(schema, doc); len(errs) > 0 {
		return fmt.Errorf("document does not validate as a whole: %v", errs)
	}
	return nil
}

// canonical prints an operation with the fragments it uses, so that two
// documents can be compared operation by operation whatever their layout.
func canonical(doc *ast.QueryDocument, op *ast.OperationDefinition) string {
	used := map[string]*ast.FragmentDefinition{}
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				walk(s.SelectionSet)
			case *ast.InlineFragment:
				walk(s.SelectionSet)
			case *ast.FragmentSpread:
				if _, seen := used[s.Name]; seen {
					continue
				}
				if f := doc.Fragments.ForName(s.Name); f != nil {
					used[s.Name] = f
					walk(f.SelectionSet)
				}
			}
		}
	}
	walk(op.SelectionSet)
	one := &ast.QueryDocument{Operations: ast.OperationList{op}}
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		one.Fragments = append(one.Fragments, used[n])
	}
	var buf bytes.Buffer
	formatter.NewFormatter(&buf, formatter.WithoutDescription()).FormatQueryDocument(one)
	return buf.String()
}

// contractKept lists what the repository's contract breaks of the shared
// baseline: an operation missing or changed, or one that no longer
// validates against the schema.
func contractKept(schema *ast.Schema, shared, repo *ast.QueryDocument) []string {
	var problems []string
	if err := validateContract(schema, shared); err != nil {
		problems = append(problems, "shared contract: "+err.Error())
	}
	for _, op := range shared.Operations {
		mine := repo.Operations.ForName(op.Name)
		switch {
		case mine == nil:
			problems = append(problems, fmt.Sprintf("operation %s of the shared contract is missing from %s", op.Name, contractPath))
		case canonical(shared, op) != canonical(repo, mine):
			problems = append(problems, fmt.Sprintf("operation %s differs from the shared contract", op.Name))
		}
	}
	return problems
}

func readContract(t *testing.T, path string) *ast.QueryDocument {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the client contract is required at %s: %v", path, err)
	}
	doc, err := parseContract(filepath.Base(path), string(b))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestContractOperationsValidate checks every operation of the repository's
// client contract, unchanged, against the schema, and fails on the first
// invalid one with its name.
func TestContractOperationsValidate(t *testing.T) {
	if err := validateContract(loadSchema(t), readContract(t, contractPath)); err != nil {
		t.Fatal(err)
	}
}

// TestSharedContractKept checks the shared baseline existing clients use:
// every operation in it is in the repository's copy, unchanged, and
// validates. It runs when the baseline is beside the repository (CI names it
// with PARLEY_SHARED_CONTRACT, which makes it required).
func TestSharedContractKept(t *testing.T) {
	path := os.Getenv("PARLEY_SHARED_CONTRACT")
	if path == "" {
		path = sharedContractPath
		if _, err := os.Stat(path); os.IsNotExist(err) {
			t.Skipf("no shared contract at %s", path)
		}
	}
	schema := loadSchema(t)
	if problems := contractKept(schema, readContract(t, path), readContract(t, contractPath)); len(problems) > 0 {
		t.Fatalf("the repository's contract breaks the shared one:\n%s", strings.Join(problems, "\n"))
	}
}

// TestContractKeptFindsBreaks shows the check can fail: an operation
// removed, one changed and one that no longer validates are each reported,
// while an added operation and a different layout are not.
func TestContractKeptFindsBreaks(t *testing.T) {
	schema := loadSchema(t)
	parse := func(src string) *ast.QueryDocument {
		doc, err := parseContract("test.graphql", src)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	shared := parse(`query Me { me { ...Who } }
query Gone { me { id } }
query Changed { me { id name } }
fragment Who on Agent { id name }
`)
	repo := parse(`query Me {
  me { ...Who }
}
query Changed { me { id } }
query Added { me { id } }
fragment Who on Agent {
  id
  name
}
`)
	problems := strings.Join(contractKept(schema, shared, repo), "\n")
	for _, want := range []string{"operation Gone of the shared contract is missing", "operation Changed differs"} {
		if !strings.Contains(problems, want) {
			t.Errorf("expected %q in:\n%s", want, problems)
		}
	}
	if strings.Contains(problems, "Me ") || strings.Contains(problems, "Added") {
		t.Errorf("an unchanged or added operation was reported:\n%s", problems)
	}
	broken := parse("query Me { me { id shoeSize } }\n")
	if got := strings.Join(contractKept(schema, broken, broken), "\n"); !strings.Contains(got, "shoeSize") {
		t.Errorf("an operation that does not validate was not reported: %s", got)
	}
}

// TestSchemaRejectsWrongOperation shows the check can fail: an operation
// asking for a field the schema lacks does not validate.
func TestSchemaRejectsWrongOperation(t *testing.T) {
	schema := loadSchema(t)
	doc, err := parser.ParseQuery(&ast.Source{Input: "query { me { id shoeSize } }"})
	if err != nil {
		t.Fatal(err)
	}
	errs := validator.Validate(schema, doc)
	if len(errs) == 0 || !strings.Contains(errs.Error(), "shoeSize") {
		t.Fatalf("expected a validation error about shoeSize, got %v", errs)
	}
}
