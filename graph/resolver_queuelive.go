package graph

import (
	"time"

	"github.com/parleyhq/parley/graph/model"
	"github.com/parleyhq/parley/internal/queuelive"
)

// QueueLiveHub is the hub behind queueEvents: its payload is the QueueStats
// the schema declares.
type QueueLiveHub = queuelive.Hub[*model.QueueStats]

// RenderQueueStats is queueEvents' payload: the period figures (the day so
// far; zero while no period function is wired) with the live figures at
// now put in. period is copied, never changed: later updates reuse it.
func RenderQueueStats(l queuelive.Live, period *model.QueueStats, now time.Time) *model.QueueStats {
	out := &model.QueueStats{}
	if period != nil {
		*out = *period
	}
	if out.FirstReplySeconds == nil {
		out.FirstReplySeconds = &model.DurationStats{}
	}
	if out.HandleSeconds == nil {
		out.HandleSeconds = &model.DurationStats{}
	}
	if out.Agents == nil {
		out.Agents = []*model.AgentStats{}
	}
	out.Queue = l.Queue
	out.WaitingNow = l.WaitingNow
	out.LongestWaitSeconds = l.LongestWaitSeconds(now)
	out.AgentsAvailable, out.AgentsOnline = l.AgentsAvailable, l.AgentsOnline
	out.OldestWaitingSince = nil
	if !l.OldestWaitingSince.IsZero() {
		since := l.OldestWaitingSince
		out.OldestWaitingSince = &since
	}
	return out
}
