package routing

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/parleyhq/parley/ent/schema/schematype"
)

func TestPick(t *testing.T) {
	// Members by priority: 10 (p1), 20 (p2), 30 (p3), 40 (p4), 50 (p5).
	members := []int{10, 20, 30, 40, 50}
	all := []Candidate{
		{AgentID: 30, Priority: 3, IdleSinceUnix: 100, HandledSecondsToday: 50, AnsweredToday: 1},
		{AgentID: 10, Priority: 1, IdleSinceUnix: 300, HandledSecondsToday: 90, AnsweredToday: 4},
		{AgentID: 20, Priority: 2, IdleSinceUnix: 200, HandledSecondsToday: 10, AnsweredToday: 2},
		{AgentID: 40, Priority: 4, IdleSinceUnix: 50, HandledSecondsToday: 70, AnsweredToday: 0},
		{AgentID: 50, Priority: 5, IdleSinceUnix: 400, HandledSecondsToday: 30, AnsweredToday: 3},
	}
	tried := func(ids ...int) map[int]bool {
		m := map[int]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	cases := []struct {
		name      string
		s         schematype.PollingStrategy
		cands     []Candidate
		turn      Turn
		want      []int
		exhausted bool
	}{
		{"ring all offers everyone", schematype.StrategyRingAll, all, Turn{Tried: tried(10)}, []int{10, 20, 30, 40, 50}, false},
		{"hunt starts at the first", schematype.StrategyHunt, all, Turn{}, []int{10}, false},
		{"hunt moves on", schematype.StrategyHunt, all, Turn{Tried: tried(10, 20)}, []int{30}, false},
		{"hunt skips the unavailable", schematype.StrategyHunt, all[2:], Turn{Tried: tried(10)}, []int{20}, false},
		{"hunt exhausted", schematype.StrategyHunt, all, Turn{Tried: tried(10, 20, 30, 40, 50)}, nil, true},
		{"hunt by threes, first three", schematype.StrategyHuntByThrees, all, Turn{}, []int{10, 20, 30}, false},
		{"hunt by threes, next three", schematype.StrategyHuntByThrees, all, Turn{Tried: tried(10, 20, 30)}, []int{40, 50}, false},
		{"first three available", schematype.StrategyFirstThreeAvailable, all[1:], Turn{Tried: tried(10)}, []int{10, 20, 40}, false},
		{"round robin after the last taker", schematype.StrategyRoundRobin, all, Turn{LastTaker: 30, Members: members}, []int{40}, false},
		{"round robin wraps", schematype.StrategyRoundRobin, all, Turn{LastTaker: 50, Members: members}, []int{10}, false},
		{"round robin continues after the last offered", schematype.StrategyRoundRobin, all, Turn{LastTaker: 30, LastOffered: 40, Tried: tried(40), Members: members}, []int{50}, false},
		{"round robin with a departed taker starts at the top", schematype.StrategyRoundRobin, all, Turn{LastTaker: 99, Members: members}, []int{10}, false},
		{"random start continues after the last offered", schematype.StrategyHuntRandomStart, all, Turn{LastOffered: 20, Tried: tried(20), Members: members}, []int{30}, false},
		{"longest waiting", schematype.StrategyLongestWaiting, all, Turn{}, []int{40}, false},
		{"longest waiting, next", schematype.StrategyLongestWaiting, all, Turn{Tried: tried(40)}, []int{30}, false},
		{"least handling time", schematype.StrategyLeastHandlingTime, all, Turn{}, []int{20}, false},
		{"fewest answered", schematype.StrategyFewestAnswered, all, Turn{}, []int{40}, false},
		{"fewest answered, next", schematype.StrategyFewestAnswered, all, Turn{Tried: tried(40)}, []int{30}, false},
		{"nobody available", schematype.StrategyHunt, nil, Turn{}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.turn.Tried == nil {
				tc.turn.Tried = map[int]bool{}
			}
			got, exhausted := Pick(tc.s, tc.cands, tc.turn, rand.New(rand.NewPCG(1, 2)))
			if !slices.Equal(got, tc.want) || exhausted != tc.exhausted {
				t.Fatalf("Pick = %v (exhausted %v), want %v (%v)", got, exhausted, tc.want, tc.exhausted)
			}
		})
	}
}

// TestHuntRandomStartSpreads checks that the first offer of a round does
// not always go to the same member.
func TestHuntRandomStartSpreads(t *testing.T) {
	cands := []Candidate{{AgentID: 1, Priority: 1}, {AgentID: 2, Priority: 2}, {AgentID: 3, Priority: 3}}
	rnd := rand.New(rand.NewPCG(7, 7))
	seen := map[int]int{}
	for i := 0; i < 300; i++ {
		got, _ := Pick(schematype.StrategyHuntRandomStart, cands, Turn{Tried: map[int]bool{}, Members: []int{1, 2, 3}}, rnd)
		seen[got[0]]++
	}
	for _, id := range []int{1, 2, 3} {
		if seen[id] < 50 {
			t.Fatalf("random start chose %d only %d times in 300: %v", id, seen[id], seen)
		}
	}
}
