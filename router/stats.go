package router

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotproxy/slotproxy/metrics"
	"github.com/slotproxy/slotproxy/slotmap"
)

// nodeStats counts what happens between the proxy and one node. It lives
// as long as the router, so that a node's counters keep counting across
// the pools that come and go for it (a failed pool, RESP2 and RESP3).
// Only connection readers and writers touch it, with atomic adds: one
// reader per connection, so an add rarely meets another core's.
type nodeStats struct {
	dialErrors  atomic.Uint64 // dials (with their handshake) that failed
	connErrors  atomic.Uint64 // established connections that broke or timed out
	moved       atomic.Uint64
	ask         atomic.Uint64
	tryagain    atomic.Uint64
	clusterdown atomic.Uint64
	// latency is from the write of a request to its reply; its count is
	// the replies read, redirections included.
	latency *metrics.Histogram
}

// Retry reasons, the label values of slotproxy_retries_total.
const (
	retryTryAgain = iota
	retryClusterDown
	retryUnreachable // no connection to the master could be had
	retryConnLost    // sent again after its connection broke
	numRetryReasons
)

var retryReasons = [numRetryReasons]string{"tryagain", "clusterdown", "unreachable", "connection_lost"}

// stats is the router's part of the proxy's metrics.
type stats struct {
	mu      sync.Mutex
	nodes   map[string]*nodeStats
	retries [numRetryReasons]atomic.Uint64
}

// nodeStats returns addr's counters, made on first use.
func (rt *Router) nodeStats(addr string) *nodeStats {
	rt.stats.mu.Lock()
	defer rt.stats.mu.Unlock()
	if rt.stats.nodes == nil {
		rt.stats.nodes = make(map[string]*nodeStats)
	}
	st := rt.stats.nodes[addr]
	if st == nil {
		st = &nodeStats{latency: metrics.NewHistogram()}
		rt.stats.nodes[addr] = st
	}
	return st
}

// NodeStat is one node's figures, for INFO and the metrics.
type NodeStat struct {
	Addr string
	// Role is "master" while the slot table has the node serving slots,
	// else "other" (a replica, a node that left).
	Role                       string
	Shared, Dedicated, Leased  int // connections open: multiplexed; dedicated in all; of those, in use
	InFlight                   int // requests written or queued, not answered
	Replies                    uint64
	DialErrors, ConnErrors     uint64
	Moved, Ask, TryAgain, Down uint64
	Latency                    *metrics.Histogram
}

// NodeStats returns the figures of every node the router has talked to,
// sorted by address. It takes locks the data path takes too: it is for
// scrapes and INFO, not for every request.
func (rt *Router) NodeStats() []NodeStat {
	masters := map[string]bool{}
	if t := rt.slots.Table(); t != nil {
		for _, sh := range t.Shards() {
			masters[sh.Master.Addr] = true
		}
	}
	rt.stats.mu.Lock()
	out := make([]NodeStat, 0, len(rt.stats.nodes))
	for addr, st := range rt.stats.nodes {
		out = append(out, NodeStat{
			Addr: addr, Role: "other",
			Replies: st.latency.Count(), DialErrors: st.dialErrors.Load(), ConnErrors: st.connErrors.Load(),
			Moved: st.moved.Load(), Ask: st.ask.Load(), TryAgain: st.tryagain.Load(), Down: st.clusterdown.Load(),
			Latency: st.latency,
		})
	}
	rt.stats.mu.Unlock()
	slices.SortFunc(out, func(a, b NodeStat) int { return strings.Compare(a.Addr, b.Addr) })

	rt.mu.Lock()
	pools := make([]*pool, 0, len(rt.pools))
	for _, p := range rt.pools {
		pools = append(pools, p)
	}
	leases := make(map[string]*leasePool, len(rt.leases))
	for a, lp := range rt.leases {
		leases[a] = lp
	}
	rt.mu.Unlock()
	find := func(addr string) *NodeStat {
		i, ok := slices.BinarySearchFunc(out, addr, func(n NodeStat, a string) int { return strings.Compare(n.Addr, a) })
		if !ok {
			return nil
		}
		return &out[i]
	}
	for _, p := range pools {
		n := find(p.addr)
		if n == nil {
			continue
		}
		for i := range p.conns {
			if c := p.conns[i].Load(); c != nil {
				n.Shared++
				n.InFlight += c.pending()
			}
		}
	}
	for addr, lp := range leases {
		if n := find(addr); n != nil {
			n.Dedicated, n.Leased = lp.counts()
		}
	}
	for i := range out {
		if masters[out[i].Addr] {
			out[i].Role = "master"
		}
	}
	return out
}

// Retries returns how many requests were queued to be sent again, by
// reason (the label values of slotproxy_retries_total).
func (rt *Router) Retries() map[string]uint64 {
	m := make(map[string]uint64, numRetryReasons)
	for i, name := range retryReasons {
		m[name] = rt.stats.retries[i].Load()
	}
	return m
}

// stampSent stamps the requests of a batch about to be written, for the
// latency of their node: one clock read per write, not per request.
func stampSent(batch []*Request) {
	now := time.Now().UnixNano()
	for _, r := range batch {
		r.sent = now
	}
}

// RetryReasons lists the reasons Retries counts, in a fixed order.
func RetryReasons() []string { return retryReasons[:] }

// SlotMap returns the slot map the router routes by.
func (rt *Router) SlotMap() *slotmap.Map { return rt.slots }
