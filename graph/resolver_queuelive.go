package graph

import (
	"time"

	"github.com/parleyhq/parley/internal/queuelive"
	"github.com/parleyhq/parley/internal/stats"
)

// QueueLiveHub is the hub behind queueEvents: its payload is the QueueStats
// the schema declares.
type QueueLiveHub = queuelive.Hub[*stats.QueueStats]

// RenderQueueStats is queueEvents' payload: the period figures (the day so
// far) with the live figures at now put in. period is copied, never
// changed: later updates reuse it.
func RenderQueueStats(l queuelive.Live, period *stats.QueueStats, now time.Time) *stats.QueueStats {
	out := &stats.QueueStats{}
	if period != nil {
		*out = *period
	}
	if out.Agents == nil {
		out.Agents = []*stats.AgentStats{}
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
