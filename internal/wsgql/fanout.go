package wsgql

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gobwas/ws"
	"github.com/vektah/gqlparser/v2/ast"
)

// group is one execution of a subscription shared by every socket that
// subscribed to the same operation with the same variables as the same
// viewer: each event is resolved and encoded once, and the same bytes are
// queued to every member.
type group struct {
	t      *Transport
	key    [sha256.Size]byte
	ctx    context.Context
	cancel context.CancelFunc

	// sendMu orders what members are sent: held while a result is fanned
	// out and while a joiner of a stateful group gets the latest one, so
	// that a joiner never gets an older result after a newer one. Taken
	// before mu, never while holding it (a send can drop a slow socket,
	// whose operations then leave, taking mu).
	sendMu  sync.Mutex
	mu      sync.Mutex
	members []*op
	live    bool   // the subscription is established; members are counted
	done    bool   // ended or ending: nobody joins any more
	state   bool   // stateful (Config.Stateful): joiners get last first
	last    []byte // the latest result's payload, of a stateful group
}

// groupKey identifies what a subscription's results depend on: the viewer,
// the document (or its persisted-query hash), the operation and the
// variables.
func groupKey(viewer string, p *graphql.RawParams) [sha256.Size]byte {
	h := sha256.New()
	write := func(s string) {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	write(viewer)
	if p.Query != "" {
		write("q:" + p.Query)
	} else if pq, ok := p.Extensions["persistedQuery"].(map[string]any); ok {
		hash, _ := pq["sha256Hash"].(string)
		write("apq:" + hash)
	}
	write(p.OperationName)
	vars, _ := json.Marshal(p.Variables) // maps encode with sorted keys
	h.Write(vars)
	var key [sha256.Size]byte
	h.Sum(key[:0])
	return key
}

// run starts operation o of connection c: a subscription joins the group
// of its key, or starts one; queries and mutations run once. Validation
// errors end the operation with an error message.
func (t *Transport) run(c *conn, o *op, ctx context.Context, sess Session, p *graphql.RawParams) {
	key := groupKey(sess.Key, p)
	if g := t.findGroup(key); g != nil && g.join(c, o) {
		return
	}
	rc, errs := c.exec.CreateOperationContext(ctx, p)
	if errs != nil {
		resp := c.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		c.finish(o, encodeMessage(o.id, "error", mustJSON(resp.Errors)))
		return
	}
	if rc.Operation == nil || rc.Operation.Operation != ast.Subscription {
		c.runOnce(o, ctx, rc)
		return
	}
	t.groupsMu.Lock()
	if g := t.groups[key]; g != nil {
		t.groupsMu.Unlock()
		if g.join(c, o) {
			return
		}
		t.groupsMu.Lock()
	}
	gctx, cancel := context.WithCancel(ctx)
	g := &group{t: t, key: key, ctx: gctx, cancel: cancel, state: t.cfg.Stateful != nil && t.cfg.Stateful(rc)}
	t.groups[key] = g
	t.groupsMu.Unlock()
	g.join(c, o) // a fresh group is not done: this cannot fail
	go g.run(c.exec, rc)
}

func (t *Transport) findGroup(key [sha256.Size]byte) *group {
	t.groupsMu.Lock()
	defer t.groupsMu.Unlock()
	return t.groups[key]
}

// join adds o (of connection c) unless the group is ending. An operation
// its connection ended meanwhile leaves again at once.
func (g *group) join(c *conn, o *op) bool {
	g.sendMu.Lock()
	defer g.sendMu.Unlock()
	g.mu.Lock()
	if g.done {
		g.mu.Unlock()
		return false
	}
	o.c, o.idx = c, len(g.members)
	g.members = append(g.members, o)
	counted := g.live
	o.live = counted
	last := g.last
	g.mu.Unlock()
	if counted {
		g.t.cfg.Subscriptions(+1)
	}
	c.mu.Lock()
	active := c.ops[o.id] == o
	if active {
		o.g = g
	}
	c.mu.Unlock()
	if !active {
		g.leave(o)
		return true
	}
	if last != nil {
		c.sendOp(o, frame{op: ws.OpText, head: o.prefix, body: last, tail: msgTail})
	}
	return true
}

// leave removes o; the last member to leave ends the execution.
func (g *group) leave(o *op) {
	g.mu.Lock()
	if o.idx < 0 || o.idx >= len(g.members) || g.members[o.idx] != o {
		g.mu.Unlock()
		return
	}
	last := len(g.members) - 1
	moved := g.members[last]
	g.members[o.idx], moved.idx = moved, o.idx
	g.members[last] = nil
	g.members = g.members[:last]
	o.idx = -1
	counted := o.live
	empty := len(g.members) == 0 && !g.done
	if empty {
		g.done = true
	}
	g.mu.Unlock()
	if counted {
		g.t.cfg.Subscriptions(-1)
	}
	if empty {
		g.unregister()
		g.cancel()
	}
}

func (g *group) unregister() {
	g.t.groupsMu.Lock()
	if g.t.groups[g.key] == g {
		delete(g.t.groups, g.key)
	}
	g.t.groupsMu.Unlock()
}

// run executes the subscription and fans every result out to the members.
// When the stream ends on the server's side, each member gets complete.
func (g *group) run(exec graphql.GraphExecutor, rc *graphql.OperationContext) {
	defer g.cancel()
	h, ctx := exec.DispatchOperation(g.ctx, rc)

	g.mu.Lock()
	g.live = true
	for _, m := range g.members {
		m.live = true
	}
	n := len(g.members)
	g.mu.Unlock()
	g.t.cfg.Subscriptions(n)

	var targets []*op
	for {
		resp := h(ctx)
		if resp == nil {
			break
		}
		payload := mustJSON(resp) // copies resp.Data, which the executor reuses
		g.sendMu.Lock()
		g.mu.Lock()
		targets = append(targets[:0], g.members...)
		if g.state {
			g.last = payload
		}
		g.mu.Unlock()
		for _, m := range targets {
			m.c.sendOp(m, frame{op: ws.OpText, head: m.prefix, body: payload, tail: msgTail})
		}
		g.sendMu.Unlock()
		clear(targets)
	}

	g.mu.Lock()
	g.done = true
	ended := g.members
	g.members = nil
	counted := 0
	for _, m := range ended {
		m.idx = -1
		if m.live {
			counted++
		}
	}
	g.mu.Unlock()
	g.unregister()
	if counted > 0 {
		g.t.cfg.Subscriptions(-counted)
	}
	if g.ctx.Err() != nil {
		return // every member left
	}
	for _, m := range ended {
		m.c.finish(m, nil)
	}
}
