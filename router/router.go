package router

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotproxy/slotproxy/internal/oplog"
	"github.com/slotproxy/slotproxy/slotmap"
)

// Options configure a Router.
type Options struct {
	// ConnsPerNode is the number of multiplexed connections kept to each
	// master; zero means 1. One connection batches the most requests per
	// write; more only pay when several threads run Go code at once.
	ConnsPerNode int
	// DialTimeout bounds a dial and its AUTH; zero means 1s.
	DialTimeout time.Duration
	// ReadTimeout is how long a master may stay silent while requests
	// wait for it before its connection is declared dead; zero means 3s.
	ReadTimeout time.Duration
	// RetryTimeout bounds how long a request is retried on TRYAGAIN,
	// CLUSTERDOWN or an unreachable master before the error is passed
	// on; zero means 5s.
	RetryTimeout time.Duration
	// MaxRedirects bounds the MOVED/ASK redirections followed for one
	// request; zero means 5.
	MaxRedirects int
	// MaxDedicatedPerNode bounds the dedicated connections (transactions,
	// blocking commands, subscribers) open to each node, in use or idle;
	// zero means 256.
	MaxDedicatedPerNode int
	// DedicatedWait is how long a Lease waits for a dedicated connection
	// when the node's are all in use; zero means 5s.
	DedicatedWait time.Duration
	// Username and Password authenticate every backend connection; empty
	// Password means no AUTH, empty Username the default user.
	Username, Password string
	// Logger receives connection events; nil means no logs.
	Logger *slog.Logger
	// Dial opens a connection to a node; nil means TCP with DialTimeout
	// and keep-alives. (*TLS).Dial speaks TLS; in-memory benchmarks dial
	// pipes.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
}

func (o *Options) setDefaults() {
	if o.ConnsPerNode <= 0 {
		o.ConnsPerNode = 1
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 3 * time.Second
	}
	if o.RetryTimeout <= 0 {
		o.RetryTimeout = 5 * time.Second
	}
	if o.MaxDedicatedPerNode <= 0 {
		o.MaxDedicatedPerNode = 256
	}
	if o.DedicatedWait <= 0 {
		o.DedicatedWait = 5 * time.Second
	}
	if o.MaxRedirects <= 0 {
		o.MaxRedirects = 5
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		o.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
}

// Router sends requests to the masters of one cluster.
type Router struct {
	opts  Options
	slots *slotmap.Map

	routes atomic.Pointer[routes]
	rr     atomic.Uint32 // round robin over masters for keyless requests
	closed atomic.Bool

	mu     sync.Mutex
	pools  map[poolKey]*pool
	leases map[string]*leasePool

	retries retries
	stats   stats
	logs    *oplog.Limiter // node events, so that a dead node cannot flood the log

	stop context.CancelFunc
	done chan struct{}
}

// poolKey names a pool: a node, and the protocol its connections speak.
// RESP2 and RESP3 clients never share a connection, so that every reply is
// forwarded in the protocol its client asked for.
type poolKey struct {
	addr   string
	resp3  bool
	urgent bool // Request.Urgent's own connections
}

// routes resolves a slot table's shard indexes to pools; it is rebuilt
// whenever the table pointer changes, so the hot path needs no map lookup.
type routes struct {
	table *slotmap.Table
	pools [2][]*pool // pools[proto][i] serves table.Shards()[i]; proto 1 is RESP3
	// prev is the routes of the table before, kept because a batch is
	// routed by the table of its start: while the table changes, batches
	// on the old and the new one interleave.
	prev *routes
}

// lookup returns the routes of t among rs and its predecessor, or nil.
func (rs *routes) lookup(t *slotmap.Table) *routes {
	switch {
	case rs == nil:
		return nil
	case rs.table == t:
		return rs
	case rs.prev != nil && rs.prev.table == t:
		return rs.prev
	}
	return nil
}

// New returns a Router that routes by the tables of slots.
func New(slots *slotmap.Map, opts Options) *Router {
	opts.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	rt := &Router{
		opts:    opts,
		slots:   slots,
		pools:   make(map[poolKey]*pool),
		leases:  make(map[string]*leasePool),
		retries: retries{queues: make(map[uint32]*retryQueue)},
		logs:    oplog.NewLimiter(logEvery, 1),
		stop:    cancel,
		done:    make(chan struct{}),
	}
	go rt.watchdog(ctx)
	return rt
}

// Do sends r to the master serving r.Slot and arranges for r.Done to be
// told of its reply. It never blocks on I/O. t is the slot table to route
// by, from Table; a client's requests sent with one table reach their
// master in order even while the table changes. nil means the current one.
func (rt *Router) Do(r *Request, t *slotmap.Table) {
	r.reset()
	r.table = t
	rt.route(r)
}

// Table returns the current slot table, or nil while there is none.
func (rt *Router) Table() *slotmap.Table { return rt.slots.Table() }

func (rt *Router) route(r *Request) {
	if rt.closed.Load() {
		r.fail(msgClosed)
		return
	}
	if rt.queueBehind(r) {
		return
	}
	if r.target != "" {
		p := rt.pool(poolKey{r.target, r.RESP3, r.Urgent})
		r.target = ""
		p.send(r)
		return
	}
	if r.Node != "" {
		rt.pool(poolKey{r.Node, r.RESP3, r.Urgent}).send(r)
		return
	}
	t := r.table
	if t == nil {
		t = rt.slots.Table()
	}
	if t == nil {
		r.fail(MsgNoTable)
		return
	}
	rs := rt.routesFor(t)
	pools := rs.pools[0]
	if r.RESP3 {
		pools = rs.pools[1]
	}
	if len(pools) == 0 {
		rt.retry(r, MsgSlotDown, retryClusterDown)
		return
	}
	if r.Slot == NoSlot {
		pools[int(rt.rr.Add(1)%uint32(len(pools)))].send(r)
		return
	}
	i := t.ShardIndex(uint16(r.Slot))
	if i < 0 {
		rt.slots.Refresh("uncovered slot")
		rt.retry(r, MsgSlotDown, retryClusterDown)
		return
	}
	pools[i].send(r)
}

func (rt *Router) routesFor(t *slotmap.Table) *routes {
	if rs := rt.routes.Load().lookup(t); rs != nil {
		return rs
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	cur := rt.routes.Load()
	if rs := cur.lookup(t); rs != nil {
		return rs
	}
	rs := &routes{table: t}
	for proto := range rs.pools {
		rs.pools[proto] = make([]*pool, len(t.Shards()))
		for i, s := range t.Shards() {
			rs.pools[proto][i] = rt.poolLocked(poolKey{s.Master.Addr, proto == 1, false})
		}
	}
	if t != rt.slots.Table() {
		// An old table, from a batch that started before the change:
		// serve it without making it current.
		return rs
	}
	if cur != nil {
		rs.prev = &routes{table: cur.table, pools: cur.pools}
	}
	rt.routes.Store(rs)
	return rs
}

func (rt *Router) pool(k poolKey) *pool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.poolLocked(k)
}

// poolLocked returns the pool of k, creating it. rt.mu must be held. A
// pool dials nothing until its first request.
func (rt *Router) poolLocked(k poolKey) *pool {
	p := rt.pools[k]
	if p == nil {
		p = newPool(rt, k)
		rt.pools[k] = p
	}
	return p
}

// watchdog fails connections whose master stopped answering, and retires
// the connections of nodes that left the cluster.
func (rt *Router) watchdog(ctx context.Context) {
	defer close(rt.done)
	every := max(rt.opts.ReadTimeout/10, 10*time.Millisecond)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var pools []*pool
	lastRetire := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if now.Sub(lastRetire) >= retireEvery {
				rt.retire()
				lastRetire = now
			}
			rt.mu.Lock()
			pools = pools[:0]
			for _, p := range rt.pools {
				pools = append(pools, p)
			}
			rt.mu.Unlock()
			for _, p := range pools {
				p.checkTimeouts(now, rt.opts.ReadTimeout)
			}
		}
	}
}

// Close fails every connection and stops the router's goroutines. Requests
// in flight complete with an error reply.
func (rt *Router) Close() {
	if !rt.closed.CompareAndSwap(false, true) {
		return
	}
	rt.stop()
	<-rt.done
	rt.mu.Lock()
	pools := make([]*pool, 0, len(rt.pools))
	for _, p := range rt.pools {
		pools = append(pools, p)
	}
	rt.mu.Unlock()
	for _, p := range pools {
		p.close()
	}
	rt.closeLeases()
}
