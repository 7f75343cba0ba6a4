// Package bench holds Parley's end-to-end benchmarks: real servers
// (internal/apitest) on PostgreSQL and Redis, driven over real HTTP and real
// websockets, each figure printed next to a floor measured in the same run:
//
//   - claim throughput under contention (Take by several agents racing for
//     the same conversations), next to a bare conditional UPDATE on the
//     same table with the same contention;
//   - end-to-end latency from the inbound entry point (Receive) to an
//     InboxEvents subscriber over a websocket, next to a raw Redis
//     PUBLISH-to-subscriber round trip;
//   - delivery latency and memory per subscription with 5,000 websocket
//     subscriptions on one server, next to the in-memory pub/sub hub alone;
//   - the Inbox query on 100,000 conversations and 1,000,000 messages, next
//     to one hand-written SQL query that returns the same page.
//   - webhook ingest end to end (20,000 signed WhatsApp webhooks over HTTP
//     to the last message stored and routed), next to single-row INSERTs on
//     8 connections.
//
// The benchmarks report figures, never pass or fail on timings. They run
// with `make bench` (or `go test -run '^$' -bench . ./internal/bench/`) and
// print a table after the run; without -bench nothing heavy runs. They need
// PostgreSQL (TEST_DATABASE_URL) and Redis (TEST_REDIS_URL) and are skipped
// when either does not answer, unless PARLEY_REQUIRE_SERVICES=1.
package bench
