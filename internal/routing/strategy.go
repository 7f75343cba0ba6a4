// Package routing decides which agents are offered an unowned conversation.
// A channel account routes to one agent (offered it like a queue member
// would be, with a fallback queue when that agent is not available in time:
// see direct.go) or to a queue, whose polling strategy picks among its AVAILABLE
// members below their maximum of concurrent chats. An offer not taken within
// the queue's offer timeout moves on; a conversation nobody can be offered
// waits and is offered, oldest first, as soon as a member can take it.
//
// Timers live in the database (conversation.route_at), and each routing
// turn is claimed with a conditional update, so they survive restarts and
// run once across any number of instances.
package routing

import (
	"math/rand/v2"
	"sort"

	"github.com/parleyhq/parley/ent/schema/schematype"
)

// Candidate is a queue member that may be offered the conversation now.
type Candidate struct {
	AgentID  int
	Priority int
	// IdleSince orders LONGEST_WAITING: the later of the agent's last
	// assignment and last status change (zero = never).
	IdleSinceUnix int64
	// HandledSecondsToday orders LEAST_HANDLING_TIME.
	HandledSecondsToday int64
	// AnsweredToday orders FEWEST_ANSWERED.
	AnsweredToday int
}

// Turn is what a strategy knows about the conversation's routing so far.
type Turn struct {
	// Tried are the agents offered it in the current round.
	Tried map[int]bool
	// LastOffered is the agent offered it most recently in this round (0
	// when the round is new); hunting strategies continue after it.
	LastOffered int
	// LastTaker is the member who last took a conversation of this queue
	// (ROUND_ROBIN continues after it); 0 when none.
	LastTaker int
	// Members are all queue members by priority, eligible or not, so that
	// positions (after whom) are stable while availability changes.
	Members []int
}

// Pick returns the agents to offer the conversation to, and whether the
// round is exhausted (every eligible candidate was tried, so a new round
// must start). cands are the eligible candidates in any order.
func Pick(strategy schematype.PollingStrategy, cands []Candidate, t Turn, rnd *rand.Rand) (offer []int, exhausted bool) {
	if len(cands) == 0 {
		return nil, false
	}
	byPrio := append([]Candidate(nil), cands...)
	sort.SliceStable(byPrio, func(i, j int) bool {
		if byPrio[i].Priority != byPrio[j].Priority {
			return byPrio[i].Priority < byPrio[j].Priority
		}
		return byPrio[i].AgentID < byPrio[j].AgentID
	})
	untried := func(list []Candidate) []Candidate {
		var out []Candidate
		for _, c := range list {
			if !t.Tried[c.AgentID] {
				out = append(out, c)
			}
		}
		return out
	}
	ids := func(list []Candidate, n int) []int {
		var out []int
		for i, c := range list {
			if n > 0 && i >= n {
				break
			}
			out = append(out, c.AgentID)
		}
		return out
	}

	switch strategy {
	case schematype.StrategyRingAll:
		return ids(byPrio, 0), false
	case schematype.StrategyFirstThreeAvailable:
		return ids(byPrio, 3), false
	case schematype.StrategyHuntByThrees:
		u := untried(byPrio)
		if len(u) == 0 {
			return nil, true
		}
		return ids(u, 3), false
	case schematype.StrategyHunt:
		u := untried(byPrio)
		if len(u) == 0 {
			return nil, true
		}
		return ids(u, 1), false
	case schematype.StrategyHuntRandomStart, schematype.StrategyRoundRobin:
		after := t.LastOffered
		if after == 0 && strategy == schematype.StrategyRoundRobin {
			after = t.LastTaker
		}
		var order []Candidate
		if after == 0 && strategy == schematype.StrategyHuntRandomStart {
			start := 0
			if rnd != nil {
				start = rnd.IntN(len(byPrio))
			}
			order = append(append(order, byPrio[start:]...), byPrio[:start]...)
		} else {
			order = rotateAfter(byPrio, after, t.Members)
		}
		u := untried(order)
		if len(u) == 0 {
			return nil, true
		}
		return ids(u, 1), false
	case schematype.StrategyLongestWaiting, schematype.StrategyLeastHandlingTime, schematype.StrategyFewestAnswered:
		sorted := append([]Candidate(nil), byPrio...)
		sort.SliceStable(sorted, func(i, j int) bool {
			a, b := sorted[i], sorted[j]
			switch strategy {
			case schematype.StrategyLongestWaiting:
				return a.IdleSinceUnix < b.IdleSinceUnix
			case schematype.StrategyLeastHandlingTime:
				return a.HandledSecondsToday < b.HandledSecondsToday
			default:
				return a.AnsweredToday < b.AnsweredToday
			}
		})
		u := untried(sorted)
		if len(u) == 0 {
			return nil, true
		}
		return ids(u, 1), false
	}
	// An unknown strategy rings everyone rather than no one.
	return ids(byPrio, 0), false
}

// rotateAfter orders the candidates circularly, starting with the first
// member whose position in members comes after agent. Members no longer in
// the queue (or unknown) start from the top.
func rotateAfter(byPrio []Candidate, agent int, members []int) []Candidate {
	pos := map[int]int{}
	for i, m := range members {
		pos[m] = i
	}
	p, ok := pos[agent]
	if agent == 0 || !ok {
		return byPrio
	}
	var after, before []Candidate
	for _, c := range byPrio {
		if cp, ok := pos[c.AgentID]; ok && cp > p {
			after = append(after, c)
		} else {
			before = append(before, c)
		}
	}
	return append(after, before...)
}
