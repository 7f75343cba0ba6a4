package conversations

import (
	"context"
	"slices"
	"sync"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/internal/apperr"
	"github.com/parleyhq/parley/internal/auth"
)

// requestScope is what one GraphQL operation shares between its resolvers:
// the access verdicts judged so far (so that a page of conversations is not
// judged again field by field), and the per-request unread and mentions
// loaders (an inbox page counts its unread messages in one query, and a
// page of messages loads its notes' mentions in one, the first time a row
// asks).
// A subscription holds one scope for its life: its deliveries note fresh
// verdicts, and it never primes the loader, so its counts are never stale.
type requestScope struct {
	mu       sync.Mutex
	verdicts map[[2]int]bool // (agent, conversation) -> may see
	pages    []*unreadPage
	notes    []*mentionPage // for the mentions loader (notes.go)
}

type unreadPage struct {
	agent  int
	ids    []int
	once   sync.Once
	counts map[int]int
	err    error
}

type scopeKey struct{}

// WithRequestScope returns ctx carrying a scope for one GraphQL operation.
func (s *Service) WithRequestScope(ctx context.Context) context.Context {
	return context.WithValue(ctx, scopeKey{}, &requestScope{verdicts: map[[2]int]bool{}})
}

// scopeOf returns the operation's scope; nil (which remembers nothing) outside
// an operation.
func scopeOf(ctx context.Context) *requestScope {
	sc, _ := ctx.Value(scopeKey{}).(*requestScope)
	return sc
}

// note records that agent may (or may not) see the conversations ids.
func (sc *requestScope) note(agent int, sees bool, ids ...int) {
	if sc == nil {
		return
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, id := range ids {
		sc.verdicts[[2]int{agent, id}] = sees
	}
}

// forget drops the verdicts on a conversation whose viewers just changed.
func (sc *requestScope) forget(id int) {
	if sc == nil {
		return
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for k := range sc.verdicts {
		if k[1] == id {
			delete(sc.verdicts, k)
		}
	}
}

func (sc *requestScope) verdict(agent, id int) (sees, known bool) {
	if sc == nil {
		return false, false
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sees, known = sc.verdicts[[2]int{agent, id}]
	return sees, known
}

// sees reports whether the caller may see conversation id's content (its
// messages, last message, unread count and visitor), however the
// conversation was reached: a live chat's visitor sees their own, an agent
// what access.go says, judged at most once per operation.
func (s *Service) sees(ctx context.Context, id int) (bool, error) {
	p, ok := auth.FromContext(ctx)
	switch {
	case !ok:
		return false, apperr.ErrUnauthenticated
	case !p.IsAgent():
		return s.MaySee(ctx, p, id)
	}
	sc := scopeOf(ctx)
	if sees, known := sc.verdict(p.AgentID, id); known {
		return sees, nil
	}
	sees, err := s.MaySee(ctx, p, id)
	if err != nil {
		return false, err
	}
	sc.note(p.AgentID, sees, id)
	return sees, nil
}

// prime registers an inbox page for the unread loader.
func (sc *requestScope) prime(agent int, ids []int) {
	if sc == nil || len(ids) == 0 {
		return
	}
	sc.mu.Lock()
	sc.pages = append(sc.pages, &unreadPage{agent: agent, ids: ids})
	sc.mu.Unlock()
}

// unread counts agent's unread messages in conversation conv: with its
// whole inbox page when it has one (once per page), alone otherwise.
func (sc *requestScope) unread(ctx context.Context, client *ent.Client, agent, conv int) (int, error) {
	var pg *unreadPage
	if sc != nil {
		sc.mu.Lock()
		for _, p := range sc.pages {
			if p.agent == agent && slices.Contains(p.ids, conv) {
				pg = p
			}
		}
		sc.mu.Unlock()
	}
	if pg == nil {
		counts, err := unreadCounts(ctx, client, agent, []int{conv})
		return counts[conv], err
	}
	pg.once.Do(func() { pg.counts, pg.err = unreadCounts(ctx, client, agent, pg.ids) })
	return pg.counts[conv], pg.err
}
