// Package pubsub is the realtime event bus that Parley's GraphQL
// subscriptions sit on.
//
// # What travels
//
// Events are tiny, versioned envelopes ([Event]) that carry IDs only — a
// conversation ID, a message ID, the agents concerned — never entity
// content. A subscription resolver that receives an event reloads what it
// needs through the normal data layer, so authorization and privacy rules are
// applied at read time, in one place, and a message body never sits in Redis
// or in a buffer belonging to a user who has since lost access.
//
// Topics are plain strings built with [ConversationTopic], [AgentTopic] and
// [VisitorTopic].
//
// # Brokers
//
// A [Broker] publishes and subscribes. Two implementations exist:
//
//   - [NewInMemory] delivers straight to an in-process [Hub]. It is for a
//     single instance, development and tests.
//   - [NewRedis] lets several server instances share events through Redis
//     PUBLISH/SUBSCRIBE. Each process holds exactly ONE Redis pub/sub
//     connection and ONE reader goroutine, however many GraphQL
//     subscriptions it serves: a Redis channel is subscribed when the first
//     local subscriber of its topic arrives and unsubscribed when the last one
//     leaves, and every message read is fanned out in memory by the [Hub].
//     A connection per GraphQL subscription would exhaust Redis's client
//     limit and make each browser tab cost a socket and a goroutine on both
//     sides.
//
// # Drop-slow-subscriber policy
//
// Delivery never blocks. Every subscriber has a bounded buffer (64 events by
// default, see [WithBuffer]); when an event arrives and a subscriber's buffer
// is full, that subscriber alone is dropped: it is removed, its channel is
// closed and [Subscription.Err] returns [ErrSlowConsumer]. Everyone else on
// the topic is unaffected, and the single Redis reader can never be stalled
// by one stuck websocket. A dropped client is expected to resubscribe and
// refetch state, which is cheap because events only carry IDs.
//
// # Lifecycle
//
// A subscription ends when its context is done (Err returns ctx.Err()), when
// it is closed with [Subscription.Close], when it is dropped for being slow,
// or when the broker is closed ([ErrClosed]). Only the hub closes a
// subscription's channel, exactly once; cleanup is tied to the context with
// [context.AfterFunc], so an open subscription costs no goroutine of its own.
package pubsub
