package graph

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
)

// contractPath is the client contract, in ../shared beside the repository.
const contractPath = "../../shared/api/operations.graphql"

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

// TestContractOperationsValidate checks every operation of the client
// contract, unchanged, against the schema, and fails on the first invalid
// one with its name.
func TestContractOperationsValidate(t *testing.T) {
	b, err := os.ReadFile(contractPath)
	if err != nil {
		t.Fatalf("the client contract is required at %s: %v", contractPath, err)
	}
	schema := loadSchema(t)
	doc, perr := parser.ParseQuery(&ast.Source{Name: "operations.graphql", Input: string(b)})
	if perr != nil {
		t.Fatalf("contract does not parse: %v", perr)
	}
	declared := regexp.MustCompile(`(?m)^(query|mutation|subscription)\b`).FindAllString(string(b), -1)
	if len(doc.Operations) == 0 || len(doc.Operations) != len(declared) {
		t.Fatalf("parsed %d operations, the file declares %d", len(doc.Operations), len(declared))
	}
	for _, op := range doc.Operations {
		single := &ast.QueryDocument{Operations: ast.OperationList{op}, Fragments: doc.Fragments}
		if errs := validator.Validate(schema, single); len(errs) > 0 {
			t.Fatalf("operation %s does not validate: %v", op.Name, errs)
		}
	}
	// Every operation together, as the tests send the whole document.
	if errs := validator.Validate(schema, doc); len(errs) > 0 {
		t.Fatalf("contract document does not validate as a whole: %v", errs)
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
