package router

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotproxy/slotproxy/internal/oplog"
	"github.com/slotproxy/slotproxy/internal/respenc"
)

// askingCmd is sent right before a command redirected by ASK, on the same
// connection, so the importing master accepts it.
var askingCmd = []byte("*1\r\n$6\r\nASKING\r\n")

// conn is one pipelined connection to a master, shared by many client
// sessions. A writer goroutine takes every queued request, writes them as
// one batch and moves them to the FIFO of requests in flight; a reader
// goroutine frames each reply and hands it to the head of the FIFO. A
// failure fails the whole connection: what was never written is retried
// anywhere, what was written is retried only when read-only.
type conn struct {
	p    *pool
	slot int // index in p.conns
	nc   net.Conn

	// wake has room for one signal: the queue became non-empty, or the
	// connection failed.
	wake chan struct{}
	// progress is when the connection last showed life while requests
	// were in flight (unix nanoseconds): a read, or the first write after
	// being idle. The watchdog fails it when that is older than the read
	// timeout.
	progress atomic.Int64

	mu      sync.Mutex
	queue   []*Request // accepted, not written yet
	spare   []*Request // the writer's previous batch, reused as the next queue
	writing bool       // the writer holds a batch taken from queue, not in fifo yet
	fifo    fifo       // written, waiting for replies
	err     error      // set once; the connection then accepts nothing
}

// send queues r for writing. It reports false when the connection has
// failed, and then r is untouched.
func (c *conn) send(r *Request) bool {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return false
	}
	c.queue = append(c.queue, r)
	first := len(c.queue) == 1
	c.mu.Unlock()
	if first {
		c.signal()
	}
	return true
}

func (c *conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// run dials the master and then serves the connection until it fails.
func (c *conn) run() {
	rt := c.p.rt
	nc, err := c.dial()
	if err != nil {
		c.p.dialFailed(err)
		c.fail(err)
		return
	}
	sock := newSocket(nc)
	c.mu.Lock()
	c.nc = nc
	closed := c.err != nil
	c.mu.Unlock()
	if closed { // failed (router closing) while dialing
		nc.Close()
		return
	}
	c.p.dialed()
	rt.logs.Log(rt.opts.Logger, slog.LevelInfo, "connected "+c.p.addr, "backend connected", "node", c.p.addr, "conn", c.slot)
	go c.readLoop(sock)
	c.writeLoop(sock)
}

func (c *conn) dial() (net.Conn, error) { return c.p.rt.dialNode(c.p.addr, c.p.resp3) }

// dialNode opens a connection to addr, authenticated, in RESP3 when resp3.
func (rt *Router) dialNode(addr string, resp3 bool) (net.Conn, error) {
	o := &rt.opts
	ctx, cancel := context.WithTimeout(context.Background(), o.DialTimeout)
	defer cancel()
	nc, err := o.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	if o.Password != "" || resp3 {
		// dial_timeout bounds the whole of it, authentication included: a
		// node that accepts but does not answer (hung, or a host whose
		// process is stopped) holds the requests waiting on this dial no
		// longer than that.
		deadline, _ := ctx.Deadline()
		if err := handshake(nc, o.Username, o.Password, resp3, deadline); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return nc, nil
}

// handshake authenticates a fresh connection, and for a RESP3 pool
// switches it to RESP3 with HELLO 3, before it carries any traffic.
func handshake(nc net.Conn, user, pass string, resp3 bool, deadline time.Time) error {
	var cmd []byte
	switch {
	case resp3 && pass != "":
		if user == "" {
			user = "default"
		}
		cmd = respenc.AppendCommand(nil, "HELLO", "3", "AUTH", user, pass)
	case resp3:
		cmd = respenc.AppendCommand(nil, "HELLO", "3")
	case user != "":
		cmd = respenc.AppendCommand(nil, "AUTH", user, pass)
	default:
		cmd = respenc.AppendCommand(nil, "AUTH", pass)
	}
	nc.SetDeadline(deadline)
	defer nc.SetDeadline(time.Time{})
	if _, err := nc.Write(cmd); err != nil {
		return err
	}
	// HELLO's reply is a map of a few hundred bytes; frame it whole so
	// that nothing of it is left for the first request.
	buf := make([]byte, 0, 1024)
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= 64<<10 {
				return fmt.Errorf("%w: handshake reply too long", ErrProtocol)
			}
			buf = append(buf, make([]byte, len(buf))...)[:len(buf)]
		}
		n, err := nc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if size, serr := ScanReply(buf); serr != nil {
			return serr
		} else if size > 0 {
			if size != len(buf) {
				return fmt.Errorf("%w: bytes after the handshake reply", ErrProtocol)
			}
			break
		}
		if err != nil {
			return err
		}
	}
	// The reply reaches logs and clients: a node that does not know the
	// command (AUTH renamed away, HELLO before Redis 6) quotes its
	// arguments, the password among them.
	if buf[0] == '-' {
		return fmt.Errorf("%w: %s", ErrAuth, oplog.Scrub(string(bytes.TrimSpace(buf[1:])), pass))
	}
	if !resp3 && !bytes.HasPrefix(buf, []byte("+OK")) {
		return fmt.Errorf("%w: %s", ErrAuth, oplog.Scrub(string(bytes.TrimSpace(buf)), pass))
	}
	return nil
}

// writeLoop writes queued requests in batches: one write per wake-up,
// however many requests from however many clients were queued meanwhile.
func (c *conn) writeLoop(sock *socket) {
	var buf []byte
	for range c.wake {
		// Let the other runnable goroutines go first: sessions that are
		// about to queue requests for this master then join this batch.
		// Measured under redis-benchmark -c 50 (SET, no pipelining): one
		// write carried 1.1 requests without the yield and 2.4 with it,
		// and the masters' CPU per request fell below that of direct
		// clients.
		runtime.Gosched()
		c.mu.Lock()
		if c.err != nil {
			c.mu.Unlock()
			return
		}
		if len(c.queue) == 0 {
			c.mu.Unlock()
			continue
		}
		batch := c.queue
		c.queue = c.spare[:0]
		c.writing = true
		c.mu.Unlock()

		// The batch belongs to this goroutine alone until it enters the
		// FIFO: build the bytes first.
		buf = buf[:0]
		stampSent(batch)
		for _, r := range batch {
			buf = append(buf, r.pre...)
			buf = append(buf, r.Raw...)
		}

		c.mu.Lock()
		c.writing = false
		if c.err != nil {
			// Failed meanwhile: nothing of the batch was written, and
			// fail left the queue, which is newer, for this goroutine to
			// retry after the batch.
			rest := c.queue
			c.queue = nil
			msg := MsgUnreachable + c.err.Error()
			expired := c.requeue(slices.Concat(batch, rest), msg, retryUnreachable)
			c.mu.Unlock()
			for _, r := range expired {
				r.fail(msg)
			}
			return
		}
		if c.fifo.len() == 0 {
			c.progress.Store(time.Now().UnixNano())
		}
		for _, r := range batch {
			if r.pre != nil {
				c.fifo.push(nil)
				r.pre = nil
			}
			c.fifo.push(r)
		}
		clear(batch)
		c.spare = batch
		c.mu.Unlock()

		if err := sock.write(buf); err != nil {
			c.fail(fmt.Errorf("%w: %w", ErrConnLost, err))
			return
		}
		if cap(buf) > maxKeptBuffer {
			buf = nil
		}
	}
}

// maxKeptBuffer is the largest buffer a connection keeps between batches;
// a larger one, grown for a big value, is given back to the GC.
const maxKeptBuffer = 1 << 20

const readBufferSize = 16 << 10

// readLoop frames replies and completes the requests they answer, in order.
func (c *conn) readLoop(sock *socket) {
	buf := make([]byte, readBufferSize)
	start, end := 0, 0
	var sc replyScanner
	for {
		if end == len(buf) {
			if start > 0 {
				end = copy(buf, buf[start:end])
				start = 0
			} else {
				nb := make([]byte, 2*len(buf))
				copy(nb, buf[:end])
				buf = nb
			}
		}
		n, err := sock.read(buf[end:])
		if err != nil {
			c.fail(fmt.Errorf("%w: %w", ErrConnLost, err))
			return
		}
		end += n
		now := time.Now().UnixNano()
		c.progress.Store(now)
		for start < end {
			size, err := sc.scan(buf[start:end])
			if err != nil {
				c.fail(fmt.Errorf("%w from %s: %w", ErrProtocol, c.p.addr, err))
				return
			}
			if size == 0 {
				break
			}
			if err := c.deliver(buf[start:start+size], now); err != nil {
				c.fail(err)
				return
			}
			start += size
		}
		if start == end {
			start, end = 0, 0
			if len(buf) > maxKeptBuffer {
				buf = make([]byte, readBufferSize)
			}
		}
	}
}

// deliver hands one reply, read at now, to the oldest request in flight.
func (c *conn) deliver(reply []byte, now int64) error {
	c.mu.Lock()
	r, ok := c.fifo.pop()
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: reply from %s without a request", ErrProtocol, c.p.addr)
	}
	if r == nil {
		return nil // the reply to ASKING or a script load; the command's own reply follows
	}
	st := c.p.st
	st.latency.Observe(time.Duration(now - r.sent))
	if reply[0] == '-' && c.p.rt.redirect(r, reply, c.p.addr, st) {
		return nil
	}
	r.node, r.answered = c.p.addr, now
	r.answer(reply)
	return nil
}

// pending returns how many requests the connection holds: queued, being
// written, or waiting for their replies.
func (c *conn) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fifo.len() + len(c.queue)
}

// inflight returns how many replies the connection waits for.
func (c *conn) inflight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fifo.len()
}

// fail closes the connection once and settles every request it held.
//
// What was never written is retried. What was written may have run: only
// reads and idempotent writes are sent again, and only when no other write
// of the same client was written after them (their second run would land
// after it), nor, for a read, any write at all (the read could see it).
// The retries are queued before the failure is visible to senders, so a
// request sent after it waits behind them (pool.send).
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	again, lost := splitWritten(c.fifo.drain())
	if !c.writing { // else the writer retries its batch, then the queue
		again = append(again, c.queue...)
		c.queue = nil
	}
	msg := MsgUnreachable + err.Error()
	expired := c.requeue(again, msg, retryConnLost)
	nc := c.nc
	c.mu.Unlock()

	c.signal() // stop the writer
	if nc != nil {
		closeNow(nc)
	}
	c.p.dropped(c, err, nc != nil)
	for _, r := range lost {
		r.fail(MsgConnLost)
	}
	for _, r := range expired {
		r.fail(msg)
	}
}

// splitWritten sorts the requests of a failed connection's FIFO, in order,
// into those that may be sent again and those that may not. nil entries
// (ASKING replies) are dropped.
func splitWritten(written []*Request) (again, lost []*Request) {
	// By Affinity: a write, or a write that must not run twice, was
	// written later in the FIFO.
	var wrote, pinned map[uint32]bool
	for i := len(written) - 1; i >= 0; i-- {
		r := written[i]
		if r == nil {
			continue
		}
		a := r.Affinity
		resend := !pinned[a] && (r.Idempotent || r.ReadOnly && !wrote[a])
		if !r.ReadOnly {
			if wrote == nil {
				wrote, pinned = make(map[uint32]bool), make(map[uint32]bool)
			}
			wrote[a] = true
			pinned[a] = pinned[a] || !r.Idempotent
		}
		if resend {
			again = append(again, r)
		} else {
			lost = append(lost, r)
		}
	}
	slices.Reverse(again)
	return again, lost
}

// requeue queues reqs for retry, in order, and returns those past their
// deadline for the caller to fail once c.mu is released. c.mu is held, so
// that the retries are queued before a sender can see the failure.
func (c *conn) requeue(reqs []*Request, msg string, reason int) (expired []*Request) {
	for _, r := range reqs {
		if !c.p.rt.requeue(r, msg, reason) {
			expired = append(expired, r)
		}
	}
	return expired
}
