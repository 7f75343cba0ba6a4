package livechat

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/parleyhq/parley/ent"
	"github.com/parleyhq/parley/ent/channelaccount"
	"github.com/parleyhq/parley/ent/schema/schematype"
)

// Origins knows which browser origins the live-chat accounts allow, so that
// CORS, cross-origin protection and the websocket origin check can let a
// customer's website talk to Parley. It caches the accounts' lists and
// reloads them when an unknown origin shows up (at most once a second).
type Origins struct {
	client *ent.Client
	self   string // the public URL's origin: the /demo page

	mu        sync.Mutex
	loaded    time.Time
	any       map[int]bool            // accounts allowing every origin
	byAcct    map[int]map[string]bool // account -> origins
	union     map[string]bool
	anyOrigin bool
}

// NewOrigins returns the origin policy of the live-chat accounts.
func NewOrigins(client *ent.Client, publicURL string) *Origins {
	return &Origins{client: client, self: originOf(publicURL)}
}

func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme + "://" + u.Host)
}

func (o *Origins) reload(ctx context.Context, force bool) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !force && time.Since(o.loaded) < time.Second {
		return nil
	}
	accts, err := o.client.ChannelAccount.Query().
		Where(channelaccount.ChannelEQ(schematype.ChannelLiveChat)).All(ctx)
	if err != nil {
		return err
	}
	o.any, o.byAcct, o.union, o.anyOrigin = map[int]bool{}, map[int]map[string]bool{}, map[string]bool{}, false
	for _, a := range accts {
		set := map[string]bool{}
		for _, x := range a.Config.AllowedOrigins {
			if x == "*" {
				o.any[a.ID], o.anyOrigin = true, true
				continue
			}
			x = strings.ToLower(strings.TrimRight(x, "/"))
			set[x], o.union[x] = true, true
		}
		o.byAcct[a.ID] = set
	}
	o.loaded = time.Now()
	return nil
}

// Invalidate makes the next check reload the accounts' lists: called after
// an account's allowed origins changed on this instance (other instances
// reload within a second, as for any change).
func (o *Origins) Invalidate() {
	o.mu.Lock()
	o.loaded = time.Time{}
	o.mu.Unlock()
}

func (o *Origins) lookup(f func() bool) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return f()
}

// AllowedFor reports whether a page on origin may use the account's chat.
// Requests without an Origin (not from a browser) and the server's own
// origin (the demo page) are always allowed.
func (o *Origins) AllowedFor(ctx context.Context, accountID int, origin string) (bool, error) {
	origin = strings.ToLower(strings.TrimRight(origin, "/"))
	if origin == "" || origin == o.self {
		return true, nil
	}
	check := func() bool { return o.any[accountID] || o.byAcct[accountID][origin] }
	known := func() bool { _, ok := o.byAcct[accountID]; return ok }
	if err := o.reload(ctx, false); err != nil {
		return false, err
	}
	if !o.lookup(known) {
		// An account created since the last load (callers are rate-limited
		// per IP, so this cannot be sprayed).
		if err := o.reload(ctx, true); err != nil {
			return false, err
		}
	}
	return o.lookup(check), nil
}

// AnyAllows reports whether some live-chat account allows origin: such an
// origin may call the API from a browser (what it may do there is still up
// to its token).
func (o *Origins) AnyAllows(ctx context.Context, origin string) bool {
	origin = strings.ToLower(strings.TrimRight(origin, "/"))
	if origin == "" {
		return false
	}
	if err := o.reload(ctx, false); err != nil {
		return false
	}
	return o.lookup(func() bool { return o.anyOrigin || o.union[origin] })
}
