package router

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// pool holds the connections to one node. A request goes on the connection
// its Affinity picks, so the requests of one client stay in order; each
// connection multiplexes many clients.
// Connections are dialed on first use and redialed after a failure, with
// a backoff between failed dials.
type pool struct {
	rt    *Router
	key   poolKey
	addr  string
	resp3 bool // connections say HELLO 3 first
	conns []atomic.Pointer[conn]
	st    *nodeStats

	leaving bool // under rt.mu: retire found its node out of the table

	mu      sync.Mutex
	closed  bool
	retryAt time.Time     // no dial before this, after a failed one
	backoff time.Duration // the wait after the next failed dial
	lastErr error
}

const (
	minDialBackoff = 50 * time.Millisecond
	maxDialBackoff = time.Second
	// logEvery is the least time between two log lines of one kind for
	// one node. A node that is down is dialed about once a second by each
	// of its pools' connections; its log line comes once per period,
	// counting the failures it stands for.
	logEvery = 10 * time.Second
)

func newPool(rt *Router, k poolKey) *pool {
	return &pool{
		rt:      rt,
		key:     k,
		addr:    k.addr,
		resp3:   k.resp3,
		conns:   make([]atomic.Pointer[conn], rt.opts.ConnsPerNode),
		st:      rt.nodeStats(k.addr),
		backoff: minDialBackoff,
	}
}

// send hands r to one of the pool's connections, dialing one if needed.
func (p *pool) send(r *Request) {
	i := int(r.Affinity % uint32(len(p.conns)))
	if c := p.conns[i].Load(); c != nil && c.send(r) {
		return
	}
	// The connection failed: its retries were queued before that showed,
	// and r, sent later, must not overtake them.
	if p.rt.queueBehind(r) {
		return
	}
	p.sendSlow(i, r)
}

func (p *pool) sendSlow(i int, r *Request) {
	p.mu.Lock()
	if p.closed || p.rt.closed.Load() {
		p.mu.Unlock()
		if !p.rt.closed.Load() {
			// retire closed p after r was routed to it: the address's
			// pool now, a new one, takes r.
			p.rt.pool(p.key).send(r)
			return
		}
		r.fail(msgClosed)
		return
	}
	if c := p.conns[i].Load(); c != nil && c.send(r) {
		p.mu.Unlock()
		return
	}
	if time.Now().Before(p.retryAt) {
		msg := MsgUnreachable + p.lastErr.Error()
		p.mu.Unlock()
		// The node may be gone for good (a master killed, its replica
		// promoted): the table must show its successor as soon as the
		// cluster does, not at the next dial. The slot map merges these
		// triggers into one refresh per MinRefreshGap.
		p.rt.slots.Refresh("node unreachable")
		p.rt.retry(r, msg, retryUnreachable)
		return
	}
	c := &conn{p: p, slot: i, wake: make(chan struct{}, 1)}
	c.send(r) // queued until the dial completes
	p.conns[i].Store(c)
	p.mu.Unlock()
	go c.run()
}

func (p *pool) dialFailed(err error) {
	p.mu.Lock()
	p.lastErr = err
	p.st.dialErrors.Add(1)
	p.retryAt = time.Now().Add(p.backoff)
	p.backoff = min(2*p.backoff, maxDialBackoff)
	p.mu.Unlock()
	p.rt.logs.Log(p.rt.opts.Logger, slog.LevelWarn, "dial failed "+p.addr, "backend dial failed", "node", p.addr, "err", err)
	p.rt.slots.Refresh("dial failure")
}

func (p *pool) dialed() {
	p.mu.Lock()
	p.backoff = minDialBackoff
	p.mu.Unlock()
}

// dropped forgets a failed connection so that the next send redials.
// connected tells whether it had been established, as opposed to a failed
// dial, which dialFailed reports.
func (p *pool) dropped(c *conn, err error, connected bool) {
	if !p.conns[c.slot].CompareAndSwap(c, nil) {
		return
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if !closed && connected {
		p.st.connErrors.Add(1)
		p.rt.logs.Log(p.rt.opts.Logger, slog.LevelWarn, "lost "+p.addr, "backend connection lost", "node", p.addr, "err", err)
		p.rt.slots.Refresh("connection failure")
	}
}

// close fails every connection; requests still queued get msgClosed.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for i := range p.conns {
		if c := p.conns[i].Load(); c != nil {
			c.fail(ErrClosed)
		}
	}
}

// checkTimeouts fails connections whose master has not answered within the
// read timeout while requests were in flight.
func (p *pool) checkTimeouts(now time.Time, timeout time.Duration) {
	for i := range p.conns {
		c := p.conns[i].Load()
		if c == nil || c.inflight() == 0 {
			continue
		}
		if now.Sub(time.Unix(0, c.progress.Load())) > timeout {
			c.fail(ErrTimeout)
		}
	}
}
