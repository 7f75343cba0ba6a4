package queuelive

import (
	"context"

	"github.com/parleyhq/parley/internal/pubsub"
)

// Topic is where nudges travel: "look at the queues' figures again". It is
// a broker topic, not an event-log one: a nudge carries nothing to replay,
// and one lost (a crash between commit and publish, a Redis restart) costs
// at most [Hub.Refresh] of delay.
const Topic = "queues.live"

// KindNudge is the kind of a nudge.
const KindNudge = "queues.nudge"

// Nudges is the event log's Derived hook (eventlog.Log.Derived): a
// transaction whose events may change some queue's live figures (a
// conversation created, changed, claimed, moved, closed; a message that
// claims; an agent's presence or status; a role or a deactivation) also
// publishes one nudge, however many events it has. Delivery statuses,
// edits and typing change no figure and publish none.
func Nudges(events []pubsub.Event) []pubsub.Message {
	for _, ev := range events {
		switch ev.Kind {
		case pubsub.KindMessageUpdated, pubsub.KindTyping:
			continue
		}
		return []pubsub.Message{{Topic: Topic, Event: pubsub.Event{Kind: KindNudge, ConversationID: ev.ConversationID}}}
	}
	return nil
}

// Nudge publishes a nudge outside any logged event: a queue's members or
// name changed (workspace.Service.QueueChanged).
func Nudge(ctx context.Context, b pubsub.Broker) error {
	return b.Publish(ctx, Topic, pubsub.Event{Kind: KindNudge})
}
