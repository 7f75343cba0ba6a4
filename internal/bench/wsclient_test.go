package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// wsClient is a deliberately minimal graphql-transport-ws client over a
// raw TCP connection: one reader goroutine, a 512-byte read buffer, one
// reused message buffer and no timers. The benchmarks run thousands of
// clients in the server's own process, so the client must be cheap and its
// cost measurable on its own (see sink).
//
// It speaks the protocol as browsers do: connection_init with the token,
// then subscribe with the whole contract document and an operationName,
// and it answers the server's pings.
type wsClient struct {
	conn net.Conn
	br   *bufio.Reader
	wmu  sync.Mutex
	buf  []byte
	// handle sees every text message except pings, on the reader goroutine,
	// with the time its last byte was read; msg is only valid during the call.
	handle func(at time.Time, msg []byte)
	done   chan struct{}
	err    error // why reading ended; set before done is closed
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// dialWS opens a websocket to addr (host:port) at /graphql with the
// graphql-transport-ws subprotocol.
func dialWS(ctx context.Context, addr string, handle func(at time.Time, msg []byte)) (*wsClient, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET /graphql HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != wsAccept(key) ||
		resp.Header.Get("Sec-WebSocket-Protocol") != "graphql-transport-ws" {
		conn.Close()
		return nil, fmt.Errorf("websocket handshake: status %d, protocol %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	_ = conn.SetDeadline(time.Time{})
	c := &wsClient{conn: conn, br: br, handle: handle, done: make(chan struct{})}
	go c.read()
	return c, nil
}

// read reads frames until the connection ends.
func (c *wsClient) read() {
	defer close(c.done)
	var hdr [8]byte
	var ctl []byte
	for {
		if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
			c.err = err
			return
		}
		fin, op := hdr[0]&0x80 != 0, hdr[0]&0x0f
		masked, n := hdr[1]&0x80 != 0, uint64(hdr[1]&0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(c.br, hdr[:2]); err != nil {
				c.err = err
				return
			}
			n = uint64(binary.BigEndian.Uint16(hdr[:2]))
		case 127:
			if _, err := io.ReadFull(c.br, hdr[:8]); err != nil {
				c.err = err
				return
			}
			n = binary.BigEndian.Uint64(hdr[:8])
		}
		if n > 16<<20 {
			c.err = fmt.Errorf("frame of %d bytes", n)
			return
		}
		var mask [4]byte
		if masked { // servers must not mask; accept it anyway
			if _, err := io.ReadFull(c.br, mask[:]); err != nil {
				c.err = err
				return
			}
		}
		control := op >= 0x8
		var p []byte
		if control {
			ctl = append(ctl[:0], make([]byte, n)...)
			p = ctl
		} else {
			if op != 0x0 { // a new message (not a continuation)
				c.buf = c.buf[:0]
			}
			start := len(c.buf)
			c.buf = append(c.buf, make([]byte, n)...)
			p = c.buf[start:]
		}
		if _, err := io.ReadFull(c.br, p); err != nil {
			c.err = err
			return
		}
		if masked {
			for i := range p {
				p[i] ^= mask[i%4]
			}
		}
		switch op {
		case 0x8: // close
			_ = c.writeFrame(0x8, p[:min(len(p), 2)])
			c.err = io.EOF
			return
		case 0x9: // ping
			_ = c.writeFrame(0xA, p)
		case 0xA: // pong
		default:
			if !fin {
				continue
			}
			at := time.Now()
			if bytes.Contains(c.buf, []byte(`"type":"ping"`)) {
				_ = c.send([]byte(`{"type":"pong"}`))
				continue
			}
			if c.handle != nil {
				c.handle(at, c.buf)
			}
		}
	}
}

// writeFrame writes one masked frame, as a client must.
func (c *wsClient) writeFrame(op byte, p []byte) error {
	frame := make([]byte, 0, 14+len(p))
	frame = append(frame, 0x80|op)
	switch n := len(p); {
	case n < 126:
		frame = append(frame, 0x80|byte(n))
	case n <= 0xffff:
		frame = append(frame, 0x80|126, byte(n>>8), byte(n))
	default:
		frame = append(frame, 0x80|127)
		frame = binary.BigEndian.AppendUint64(frame, uint64(n))
	}
	var mask [4]byte
	_, _ = rand.Read(mask[:])
	frame = append(frame, mask[:]...)
	for i, x := range p {
		frame = append(frame, x^mask[i%4])
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.conn.Write(frame)
	return err
}

// send writes one text message.
func (c *wsClient) send(msg []byte) error { return c.writeFrame(0x1, msg) }

// close closes the connection and waits for the reader to end.
func (c *wsClient) close() {
	_ = c.conn.Close()
	<-c.done
}

// subscriber is a wsClient that has been acknowledged and subscribed to one
// operation, with id "1".
type subscriber struct {
	*wsClient
	acked  chan struct{}
	failed chan string // an error or complete for the operation
}

// subscribe dials addr, authenticates with token, waits for the ack and
// starts the contract operation op (the whole contract document is sent,
// with operationName, as clients do). onNext sees every "next" message.
func subscribe(ctx context.Context, addr, token, doc, op string, onNext func(at time.Time, msg []byte)) (*subscriber, error) {
	s := &subscriber{acked: make(chan struct{}), failed: make(chan string, 1)}
	var ackOnce sync.Once
	c, err := dialWS(ctx, addr, func(at time.Time, msg []byte) {
		switch {
		case bytes.Contains(msg, []byte(`"type":"next"`)):
			if onNext != nil {
				onNext(at, msg)
			}
		case bytes.Contains(msg, []byte(`"type":"connection_ack"`)):
			ackOnce.Do(func() { close(s.acked) })
		default: // error, complete, connection_error
			select {
			case s.failed <- string(msg):
			default:
			}
		}
	})
	if err != nil {
		return nil, err
	}
	s.wsClient = c
	init, _ := json.Marshal(map[string]any{"type": "connection_init", "payload": map[string]string{"authToken": token}})
	if err := c.send(init); err != nil {
		c.close()
		return nil, err
	}
	select {
	case <-s.acked:
	case m := <-s.failed:
		c.close()
		return nil, fmt.Errorf("connection_init: %s", m)
	case <-c.done:
		return nil, fmt.Errorf("connection_init: connection ended: %v", c.err)
	case <-ctx.Done():
		c.close()
		return nil, fmt.Errorf("connection_init: %w", ctx.Err())
	}
	sub, _ := json.Marshal(map[string]any{"id": "1", "type": "subscribe",
		"payload": map[string]any{"query": doc, "operationName": op, "variables": map[string]any{}}})
	if err := c.send(sub); err != nil {
		c.close()
		return nil, err
	}
	return s, nil
}

// sink is a websocket server that accepts the handshake, sends a
// connection_ack and one event-sized message, and then only holds the
// socket: no goroutine, no buffer. Clients connected to it cost what they
// cost against the real server, plus the sink's few hundred bytes of
// socket; the benchmarks subtract that from the real server's figures.
type sink struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
	event []byte
}

func startSink(tb testing.TB, event []byte) *sink {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &sink{ln: ln, event: event}
	s.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			s.handshake(conn)
		}
	})
	return s
}

// handshake answers one upgrade inline (on the accept goroutine), so the
// sink keeps no goroutine per connection.
func (s *sink) handshake(conn net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := http.ReadRequest(bufio.NewReader(conn))
	if err != nil {
		conn.Close()
		return
	}
	var out bytes.Buffer
	out.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	out.WriteString("Sec-WebSocket-Accept: " + wsAccept(req.Header.Get("Sec-WebSocket-Key")) + "\r\n")
	out.WriteString("Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n")
	for _, m := range [][]byte{[]byte(`{"type":"connection_ack"}`), s.event} {
		out.WriteByte(0x81)
		switch n := len(m); {
		case n < 126:
			out.WriteByte(byte(n))
		default:
			out.Write([]byte{126, byte(n >> 8), byte(n)})
		}
		out.Write(m)
	}
	if _, err := conn.Write(out.Bytes()); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	s.mu.Lock()
	s.conns = append(s.conns, conn)
	s.mu.Unlock()
}

func (s *sink) addr() string { return s.ln.Addr().String() }

func (s *sink) close() {
	s.ln.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// serverAddr is the host:port of a server URL.
func serverAddr(url string) string {
	return strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://")
}

// TestWSClientAgainstSink checks the minimal client's handshake and framing
// against the sink; it needs no services and takes milliseconds.
func TestWSClientAgainstSink(t *testing.T) {
	s := startSink(t, []byte(`{"type":"next","id":"1","payload":{"data":{"x":"`+strings.Repeat("y", 300)+`"}}}`))
	defer s.close()
	got := make(chan int, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := subscribe(ctx, s.addr(), "token", "subscription X { x }", "X", func(_ time.Time, msg []byte) { got <- len(msg) })
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	select {
	case n := <-got:
		if n != len(s.event) {
			t.Fatalf("got a %d-byte message, want %d", n, len(s.event))
		}
	case <-ctx.Done():
		t.Fatal("no event from the sink")
	}
}
