package wsgql

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gobwas/ws"
)

// closeGrace is how long a closing connection waits for the peer's close
// frame before dropping the TCP connection.
const closeGrace = 2 * time.Second

// frame is one websocket frame queued for a socket. A message is written as
// head + body + tail so that body, the encoded result shared by every
// socket of a fan-out, is never copied per socket.
type frame struct {
	op         ws.OpCode
	head, body []byte
	tail       []byte
	final      bool // a close frame: nothing is written after it
}

func (f frame) size() int { return len(f.head) + len(f.body) + len(f.tail) }

// conn is one websocket. Its reader goroutine ([conn.serve]) is the only
// goroutine it owns while idle; [conn.flush] runs only while frames wait.
type conn struct {
	t     *Transport
	nc    net.Conn
	exec  graphql.GraphExecutor
	proto string
	early []byte // bytes the client sent before the handshake's answer

	base context.Context // the request's values, no cancellation

	mu       sync.Mutex
	ctx      context.Context // base, then the caller's, once initialised
	sess     Session
	inited   bool // connection_init received
	acked    bool
	closing  bool // a close frame is queued; no more messages
	ended    bool // torn down
	ops      map[string]*op
	queue    []frame
	qbytes   int
	writing  bool
	initTime *time.Timer

	hdr [ws.MaxHeaderSize]byte // read scratch; only the reader uses it
}

// op is one operation of a connection: a subscription's membership of a
// fan-out group, or a single-result operation in flight.
type op struct {
	id     string
	c      *conn
	prefix []byte // `{"id":"…","type":"next","payload":`
	g      *group
	idx    int  // position in g.members, guarded by g.mu
	live   bool // counted in the Subscriptions gauge, guarded by g.mu
	cancel context.CancelFunc
}

func newConn(t *Transport, nc net.Conn, proto string, exec graphql.GraphExecutor, base context.Context) *conn {
	c := &conn{t: t, nc: nc, proto: proto, exec: exec, base: base, ctx: base}
	c.mu.Lock() // the timer's function reads c.initTime through close
	defer c.mu.Unlock()
	c.initTime = time.AfterFunc(t.cfg.InitTimeout, func() {
		c.mu.Lock()
		late := !c.inited
		c.mu.Unlock()
		if late {
			c.closeWith(CloseInitTimeout, "Connection initialisation timeout")
		}
	})
	return c
}

func (c *conn) session() (Session, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess, c.acked && !c.closing
}

// serve is the reader: it reads frames straight off the socket until the
// connection ends, then tears it down.
func (c *conn) serve() {
	defer c.teardown()
	var r io.Reader = c.nc
	if len(c.early) > 0 {
		r = io.MultiReader(bytes.NewReader(c.early), c.nc)
		c.early = nil
	}
	var (
		msg     []byte // a fragmented message being assembled
		msgOp   ws.OpCode
		started bool
	)
	c.extendRead()
	for {
		h, err := ws.ReadHeaderBuffer(r, c.hdr[:2:cap(c.hdr)])
		if err != nil {
			return
		}
		if !h.Masked || h.Rsv != 0 || h.OpCode.IsReserved() {
			c.closeWith(CloseProtocolError, "protocol error")
			c.drain(r)
			return
		}
		if h.OpCode.IsControl() && (h.Length > 125 || !h.Fin) {
			c.closeWith(CloseProtocolError, "protocol error")
			c.drain(r)
			return
		}
		if h.Length > c.t.cfg.MaxMessageBytes || int64(len(msg))+h.Length > c.t.cfg.MaxMessageBytes {
			c.closeWith(CloseTooBig, "message too big")
			c.drain(r)
			return
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(r, payload); err != nil {
			return
		}
		ws.Cipher(payload, h.Mask, 0)
		c.extendRead()

		switch h.OpCode {
		case ws.OpPing:
			c.send(frame{op: ws.OpPong, body: payload})
			continue
		case ws.OpPong:
			continue
		case ws.OpClose:
			code, _ := ws.ParseCloseFrameData(payload)
			c.answerClose(code)
			c.drain(r)
			return
		case ws.OpContinuation:
			if !started {
				c.closeWith(CloseProtocolError, "unexpected continuation frame")
				c.drain(r)
				return
			}
			msg = append(msg, payload...)
		default: // text or binary
			if started {
				c.closeWith(CloseProtocolError, "expected a continuation frame")
				c.drain(r)
				return
			}
			msg, msgOp, started = payload, h.OpCode, true
		}
		if !h.Fin {
			continue
		}
		data := msg
		msg, started = nil, false
		if msgOp != ws.OpText || !utf8.Valid(data) {
			c.closeWith(CloseBadRequest, "messages must be JSON text")
			c.drain(r)
			return
		}
		c.handle(data)
		if c.isClosing() {
			c.drain(r)
			return
		}
	}
}

// drain reads (and discards) until the peer answers the close or the grace
// period passes, so that our close frame is not lost to a TCP reset.
func (c *conn) drain(r io.Reader) {
	_ = c.nc.SetReadDeadline(time.Now().Add(closeGrace))
	var buf [512]byte
	for {
		if _, err := r.Read(buf[:]); err != nil {
			return
		}
	}
}

// extendRead moves the read deadline: a peer that sends nothing (not even
// a pong to our pings) for two ping intervals is gone.
func (c *conn) extendRead() {
	_ = c.nc.SetReadDeadline(time.Now().Add(2*c.t.cfg.PingInterval + 5*time.Second))
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// ping is the keep-alive: a websocket ping (browsers and libraries answer
// it by themselves) and, in the legacy protocol, a "ka" message.
func (c *conn) ping() {
	c.mu.Lock()
	legacy := c.proto == ProtocolLegacyWS && c.acked
	c.mu.Unlock()
	c.send(frame{op: ws.OpPing})
	if legacy {
		c.send(frame{op: ws.OpText, body: msgKeepAlive})
	}
}

// send queues f unless the connection is closing. A socket whose queue is
// full is closed with 1013: it is not keeping up, and waiting for it would
// delay everyone who shares its events.
func (c *conn) send(f frame) {
	c.mu.Lock()
	c.sendLocked(f)
}

// sendLocked is send with c.mu held; it unlocks.
func (c *conn) sendLocked(f frame) {
	if c.closing {
		c.mu.Unlock()
		return
	}
	if len(c.queue) >= c.t.cfg.SendQueue || c.qbytes+f.size() > c.t.cfg.SendQueueBytes {
		c.mu.Unlock()
		c.t.cfg.Log.Info("websocket: dropping a slow client", "queued", len(c.queue))
		c.closeAbort(CloseTryAgainLater, "slow consumer: reconnect and resume")
		return
	}
	c.enqueueLocked(f)
	c.mu.Unlock()
}

func (c *conn) enqueueLocked(f frame) {
	c.queue = append(c.queue, f)
	c.qbytes += f.size()
	if !c.writing {
		c.writing = true
		select {
		case c.t.ready <- c:
		default: // every writer is busy and the hand-over queue full
			go c.flush(nil)
		}
	}
}

// flush writes queued frames, a batch per system call, until the queue is
// empty, then ends; the next send starts it again. It runs on one of the
// transport's writers (pooled), whose stacks are already grown and whose
// writes are bounded by writeSlice so a socket that does not take its
// bytes cannot hold a writer: what is left of such a write moves to a
// goroutine of the connection's own, which finishes it under the full
// WriteTimeout and goes on from there.
func (c *conn) flush(sc *scratch) {
	pooled := sc != nil
	if sc == nil {
		sc = &scratch{}
	}
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.ended {
			c.writing = false
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue, c.qbytes = sc.batch[:0], 0
		c.mu.Unlock()

		hdrs := sc.hdrs[:0]
		if need := len(batch) * ws.MaxHeaderSize; cap(hdrs) < need {
			hdrs = make([]byte, 0, need)
		}
		bufs := sc.bufs[:0]
		final := false
		for _, f := range batch {
			start := len(hdrs)
			hdrs = appendHeader(hdrs, f.op, int64(f.size()))
			bufs = append(bufs, hdrs[start:len(hdrs):len(hdrs)])
			for _, b := range [][]byte{f.head, f.body, f.tail} {
				if len(b) > 0 {
					bufs = append(bufs, b)
				}
			}
			if f.final {
				final = true
				break
			}
		}
		clear(batch)
		sc.batch, sc.hdrs, sc.bufs = batch[:0], hdrs[:0], bufs[:0]
		limit := c.t.cfg.WriteTimeout
		if pooled {
			limit = writeSlice
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(limit))
		rest := bufs
		_, err := rest.WriteTo(c.nc) // consumes what it wrote
		if pooled && err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			// The scratch stays with the writer: the rest moves out of it.
			own := make(net.Buffers, len(rest))
			for i, b := range rest {
				own[i] = append([]byte(nil), b...)
			}
			clear(sc.bufs[:cap(sc.bufs)])
			go c.finishWrite(own, final)
			return
		}
		clear(bufs)
		if !c.wrote(err, final) {
			return
		}
	}
}

// finishWrite writes what a pooled writer could not, then carries on
// flushing on this goroutine.
func (c *conn) finishWrite(rest net.Buffers, final bool) {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.t.cfg.WriteTimeout))
	_, err := rest.WriteTo(c.nc)
	if c.wrote(err, final) {
		c.flush(nil)
	}
}

// wrote handles the end of a write and reports whether flushing goes on.
func (c *conn) wrote(err error, final bool) bool {
	if err == nil && !final {
		return true
	}
	if err != nil {
		_ = c.nc.Close() // the reader ends and tears down
	}
	c.mu.Lock()
	c.writing = false
	c.queue = nil
	c.mu.Unlock()
	return false
}

// scratch is a writer's reusable memory for building writes.
type scratch struct {
	batch []frame
	hdrs  []byte
	bufs  net.Buffers
}

// writeSlice bounds one write of a pooled writer.
const writeSlice = 10 * time.Millisecond

// appendHeader appends an unmasked, final frame header.
func appendHeader(b []byte, op ws.OpCode, n int64) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		return append(b, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// closeWith ends the connection with code: every operation ends, the close
// frame follows whatever is queued, and the reader waits for the peer's
// answer (bounded) before the TCP connection is dropped.
func (c *conn) closeWith(code ws.StatusCode, reason string) {
	c.close(code, reason, false)
}

// closeAbort is closeWith for a client that is not reading: what is queued
// is discarded and the close frame goes first.
func (c *conn) closeAbort(code ws.StatusCode, reason string) {
	c.close(code, reason, true)
}

func (c *conn) close(code ws.StatusCode, reason string, discard bool) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	if discard {
		clear(c.queue)
		c.queue, c.qbytes = c.queue[:0], 0
	}
	if len(reason) > 123 {
		reason = reason[:123]
	}
	c.enqueueLocked(frame{op: ws.OpClose, body: ws.NewCloseFrameBody(code, reason), final: true})
	ops := c.takeOpsLocked()
	c.initTime.Stop()
	c.mu.Unlock()
	for _, o := range ops {
		o.end()
	}
	// Wake the reader if it is waiting for a frame, so that it drains.
	_ = c.nc.SetReadDeadline(time.Now().Add(closeGrace))
}

// answerClose answers the peer's close frame with the same code.
func (c *conn) answerClose(code ws.StatusCode) {
	if code == 0 || code == 1005 {
		code = CloseNormal
	}
	c.closeWith(code, "")
}

func (c *conn) takeOpsLocked() []*op {
	ops := make([]*op, 0, len(c.ops))
	for _, o := range c.ops {
		ops = append(ops, o)
	}
	c.ops = nil
	return ops
}

// teardown runs once, when the reader ends: the socket closes and every
// operation ends.
func (c *conn) teardown() {
	c.mu.Lock()
	c.initTime.Stop()
	c.ended = true
	c.closing = true
	acked, closed := c.acked, c.sess.Closed
	ops := c.takeOpsLocked()
	c.queue = nil
	c.mu.Unlock()
	if closed != nil {
		closed()
	}
	for _, o := range ops {
		o.end()
	}
	_ = c.nc.Close()
	if acked {
		c.t.cfg.Connections(-1)
	}
	c.t.remove(c)
}

// end stops an operation: it leaves its group, or its single result is
// cancelled.
func (o *op) end() {
	if o.g != nil {
		o.g.leave(o)
	}
	if o.cancel != nil {
		o.cancel()
	}
}

// handle decodes one client message and acts on it.
func (c *conn) handle(data []byte) {
	var m clientMessage
	if err := json.Unmarshal(data, &m); err != nil || m.Type == "" {
		c.closeWith(CloseBadRequest, "Invalid message received")
		return
	}
	if c.proto == ProtocolLegacyWS {
		c.handleLegacy(m)
		return
	}
	switch m.Type {
	case "connection_init":
		c.init(m.Payload)
	case "ping":
		c.send(frame{op: ws.OpText, body: pongMessage(m.Payload)})
	case "pong":
	case "subscribe":
		if !c.isAcked() {
			c.closeWith(CloseUnauthorized, "Unauthorized")
			return
		}
		if m.ID == "" {
			c.closeWith(CloseBadRequest, "subscribe needs an id")
			return
		}
		var p graphql.RawParams
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			c.closeWith(CloseBadRequest, "Invalid subscribe payload")
			return
		}
		c.start(m.ID, &p)
	case "complete":
		c.stop(m.ID)
	default:
		c.closeWith(CloseBadRequest, "Invalid message type "+truncate(m.Type, 40))
	}
}

func (c *conn) handleLegacy(m clientMessage) {
	switch m.Type {
	case "connection_init":
		c.init(m.Payload)
	case "start":
		if !c.isAcked() {
			c.closeWith(CloseUnauthorized, "Unauthorized")
			return
		}
		var p graphql.RawParams
		if m.ID == "" || json.Unmarshal(m.Payload, &p) != nil {
			c.send(frame{op: ws.OpText, body: encodeMessage(m.ID, "error", errorList("invalid start message"))})
			return
		}
		c.start(m.ID, &p)
	case "stop":
		c.stop(m.ID)
	case "connection_terminate":
		c.closeWith(CloseNormal, "")
	default:
		c.send(frame{op: ws.OpText, body: encodeMessage(m.ID, "error", errorList("unknown message type"))})
	}
}

func (c *conn) isAcked() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acked
}

// init authenticates connection_init. It runs on the reader, so messages
// the client sends meanwhile wait in the socket.
func (c *conn) init(raw json.RawMessage) {
	c.mu.Lock()
	again := c.inited
	c.inited = true
	c.initTime.Stop()
	c.mu.Unlock()
	if again {
		if c.proto == ProtocolLegacyWS {
			return // the legacy protocol never said; ignore it
		}
		c.closeWith(CloseTooManyInitRequest, "Too many initialisation requests")
		return
	}
	var payload map[string]any
	if len(raw) > 0 && string(raw) != "null" {
		if err := json.Unmarshal(raw, &payload); err != nil {
			c.closeWith(CloseBadRequest, "connection_init payload must be an object")
			return
		}
	}
	ctx, sess, err := c.base, Session{}, error(nil)
	if c.t.cfg.Init != nil {
		ctx, sess, err = c.t.cfg.Init(c.base, payload)
	}
	if err != nil {
		reason := err.Error()
		if c.proto == ProtocolLegacyWS {
			c.send(frame{op: ws.OpText, body: encodeMessage("", "connection_error", errorObject(reason))})
		}
		c.closeWith(CloseForbidden, reason)
		return
	}
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.ctx, c.sess, c.acked = ctx, sess, true
	c.enqueueLocked(frame{op: ws.OpText, body: msgAck})
	if c.proto == ProtocolLegacyWS {
		c.enqueueLocked(frame{op: ws.OpText, body: msgKeepAlive})
	}
	c.mu.Unlock()
	c.t.cfg.Connections(+1)
}

// start begins operation id: a subscription joins (or starts) the fan-out
// group of its operation, variables and viewer; anything else runs once.
func (c *conn) start(id string, p *graphql.RawParams) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	if _, dup := c.ops[id]; dup {
		c.mu.Unlock()
		if c.proto == ProtocolLegacyWS {
			c.send(frame{op: ws.OpText, body: encodeMessage(id, "error", errorList("an operation with this id is already running"))})
			return
		}
		c.closeWith(CloseSubscriberExists, "Subscriber for "+truncate(id, 80)+" already exists")
		return
	}
	o := &op{id: id, prefix: messagePrefix(c.proto, id, resultType(c.proto))}
	if c.ops == nil {
		c.ops = map[string]*op{}
	}
	c.ops[id] = o
	ctx, sess := c.ctx, c.sess
	c.mu.Unlock()

	c.t.run(c, o, ctx, sess, p)
}

// runOnce executes a query or mutation sent over the socket: its result,
// then complete.
func (c *conn) runOnce(o *op, ctx context.Context, rc *graphql.OperationContext) {
	ctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	if c.ops[o.id] != o {
		c.mu.Unlock()
		cancel()
		return
	}
	o.cancel = cancel
	c.mu.Unlock()
	go func() {
		defer cancel()
		h, rctx := c.exec.DispatchOperation(ctx, rc)
		for {
			resp := h(rctx)
			if resp == nil {
				break
			}
			c.sendOp(o, frame{op: ws.OpText, head: o.prefix, body: mustJSON(resp), tail: msgTail})
		}
		c.finish(o, nil)
	}()
}

// sendOp queues a result of operation o, if it is still running.
func (c *conn) sendOp(o *op, f frame) {
	c.mu.Lock()
	if c.ops[o.id] != o {
		c.mu.Unlock()
		return
	}
	c.sendLocked(f)
}

// finish ends operation o from the server side: last (an error message)
// or complete is sent, unless the client ended it first.
func (c *conn) finish(o *op, last []byte) {
	c.mu.Lock()
	if c.ops[o.id] != o {
		c.mu.Unlock()
		return
	}
	delete(c.ops, o.id)
	c.mu.Unlock()
	if last == nil {
		last = encodeMessage(o.id, "complete", nil)
	}
	c.send(frame{op: ws.OpText, body: last})
}

// stop ends operation id from the client side; nothing is sent back.
func (c *conn) stop(id string) {
	c.mu.Lock()
	o := c.ops[id]
	if o != nil {
		delete(c.ops, id)
	}
	c.mu.Unlock()
	if o != nil {
		o.end()
	}
}
