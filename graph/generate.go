// Package graph is Parley's GraphQL layer: the gqlgen executable schema and
// thin resolvers that take the caller from the context and call one service
// method each.
package graph

// One `go generate ./...` regenerates everything: ent (with entgql, which
// writes graph/ent.graphql) first, then gqlgen, from the repository root,
// over both schemas.
//go:generate go run ../ent/entc.go
//go:generate sh -c "cd .. && go tool gqlgen generate --config gqlgen.yml"
