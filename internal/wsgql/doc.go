// Package wsgql is Parley's GraphQL-over-websocket transport: a
// [graphql.Transport] on gqlgen's executor that speaks graphql-transport-ws
// exactly as its protocol document says, close codes included, and the
// legacy graphql-ws (subscriptions-transport-ws) for older clients.
//
// It exists because gqlgen's own websocket transport cannot set close codes
// (a refused token ends with 1000, which clients take for a normal end and
// reconnect forever) and costs several goroutines and a retained subscribe
// payload per subscription. Here:
//
//   - A connection is one reader goroutine and nothing else while idle:
//     frames are read straight off the socket (gobwas/ws does the framing,
//     nothing is buffered between frames), and a writer goroutine exists
//     only while the connection has frames to send.
//   - Subscriptions with the same operation, variables and viewer (see
//     [Session.Key]) share one execution: the event is resolved and its JSON
//     encoded once, and the same bytes are written to every socket that
//     shares them, each with its own small message prefix.
//   - A socket that does not keep up is closed (1013, try again later)
//     instead of delaying anyone; its queue is bounded.
//   - Keep-alive pings are sent by one loop for all connections; a peer
//     that answers nothing within two intervals is dropped.
//   - Tokens are checked again every few seconds for every open socket: a
//     revoked or expired one closes its sockets with 4403.
package wsgql
