// Package graph is Parley's GraphQL layer: the gqlgen executable schema and
// thin resolvers that take the caller from the context and call one service
// method each.
package graph

// One `go generate ./...` regenerates everything: ent (with entgql, which
// writes graph/ent.graphql) first, then gqlgen over both schemas. gqlgen
// runs from the repository root, and without the GOPACKAGE variable that go
// generate sets: with it, gqlgen fails to load the schema.
//go:generate go run ../ent/entc.go
//go:generate sh -c "cd .. && env -u GOPACKAGE -u GOFILE -u GOLINE go tool gqlgen generate --config gqlgen.yml"
