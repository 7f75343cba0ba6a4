package labels

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/parleyhq/parley/ent"
)

// Loader is one GraphQL operation's memory of the pages of conversations
// it lists (an inbox page, a contact's history page): the first
// Conversation.labels of a page loads the labels of the whole page, in one
// go, so a page costs the same queries whatever its size. A conversation
// outside every page (conversation(id), a mutation's result) loads its own.
// A subscription never primes its loader, so its deliveries are never
// stale (they carry their labels with the event's snapshot).
type Loader struct {
	mu    sync.Mutex
	pages []*page
}

type page struct {
	ids    []int
	once   sync.Once
	labels map[int][]*ent.Label
	err    error
}

type loaderKey struct{}

// WithLoader returns ctx carrying a loader for one GraphQL operation.
func WithLoader(ctx context.Context) context.Context {
	return context.WithValue(ctx, loaderKey{}, &Loader{})
}

func loaderOf(ctx context.Context) *Loader {
	l, _ := ctx.Value(loaderKey{}).(*Loader)
	return l
}

// Prime registers a page of conversations ids listed in the operation of
// ctx (nothing outside an operation).
func Prime(ctx context.Context, ids []int) {
	l := loaderOf(ctx)
	if l == nil || len(ids) == 0 {
		return
	}
	l.mu.Lock()
	l.pages = append(l.pages, &page{ids: ids})
	l.mu.Unlock()
}

// of returns conversation id's labels: with its page when it has one (once
// per page), alone otherwise.
func (l *Loader) of(ctx context.Context, client *ent.Client, id int) ([]*ent.Label, error) {
	var pg *page
	if l != nil {
		l.mu.Lock()
		for _, p := range l.pages {
			if slices.Contains(p.ids, id) {
				pg = p
				break
			}
		}
		l.mu.Unlock()
	}
	if pg == nil {
		ls, err := load(ctx, client, []int{id})
		return orEmpty(ls[id]), err
	}
	pg.once.Do(func() { pg.labels, pg.err = load(ctx, client, pg.ids) })
	return orEmpty(pg.labels[id]), pg.err
}

// orEmpty makes "no labels" an empty list, as Conversation.labels is
// non-null.
func orEmpty(ls []*ent.Label) []*ent.Label {
	if ls == nil {
		return []*ent.Label{}
	}
	return ls
}

func sortByName(ls []*ent.Label) {
	slices.SortFunc(ls, func(a, b *ent.Label) int {
		if c := strings.Compare(a.NameKey, b.NameKey); c != 0 {
			return c
		}
		return a.ID - b.ID
	})
}
