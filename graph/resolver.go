package graph

// Resolver is the root of the resolvers. It holds the services; resolvers
// stay thin: caller from the context, one service call, return.
type Resolver struct{}
