package router

import (
	"sort"
	"time"
)

// retireEvery paces the search for connections to nodes that left the
// cluster. A node's pool is closed at the second search that finds the
// node out of the slot table, so its last requests have at least this
// long to be answered.
const retireEvery = 2 * time.Second

// retire closes the pools and the idle dedicated connections of nodes
// that are no longer in the slot table (a del-node, a replica removed):
// without it, every node the cluster ever had would keep its connections
// and goroutines. A pool is closed once it was seen out of the table at
// two searches in a row and nothing waits on its connections. A request
// that reaches it after that (a batch routed by an older table) is sent
// on a new pool of the same address, which goes the same way.
// Dedicated connections in use stay with their holders; their pool goes
// once the last is given back.
func (rt *Router) retire() {
	t := rt.slots.Table()
	if t == nil {
		return
	}
	live := make(map[string]bool)
	for _, s := range t.Shards() {
		live[s.Master.Addr] = true
		for _, r := range s.Replicas {
			live[r.Addr] = true
		}
	}
	var closing []*pool
	var leases []*leasePool
	rt.mu.Lock()
	for k, p := range rt.pools {
		switch {
		case live[k.addr]:
			p.leaving = false
		case !p.leaving:
			p.leaving = true
		case !p.busy():
			delete(rt.pools, k)
			closing = append(closing, p)
		}
	}
	for addr, lp := range rt.leases {
		if !live[addr] {
			leases = append(leases, lp)
		}
	}
	rt.mu.Unlock()

	gone := make(map[string]bool)
	for _, p := range closing {
		p.close()
		gone[p.addr] = true
	}
	for _, lp := range leases {
		if lp.closeIdle() {
			gone[lp.addr] = true
		}
	}
	for addr := range gone {
		rt.opts.Logger.Info("node left the cluster: its connections are closed", "node", addr)
	}
}

// busy reports whether a request waits on one of p's connections.
func (p *pool) busy() bool {
	for i := range p.conns {
		if c := p.conns[i].Load(); c != nil && c.inflight() > 0 {
			return true
		}
	}
	return false
}

// closeIdle closes p's idle connections and, when none is in use either,
// forgets p; it reports whether it forgot p.
func (p *leasePool) closeIdle() bool {
	p.rt.mu.Lock()
	defer p.rt.mu.Unlock()
	p.mu.Lock()
	idle := p.idle
	p.idle = [2][]*Lease{}
	p.open -= len(idle[0]) + len(idle[1])
	forget := p.open == 0 && len(p.sem) == 0
	p.mu.Unlock()
	if forget {
		delete(p.rt.leases, p.addr)
	}
	for _, l := range append(idle[0], idle[1]...) {
		l.nc.Close()
	}
	return forget
}

// registered reports whether p is still its address's pool: a lease given
// back to a pool that retire forgot is closed, not kept.
func (p *leasePool) registered() bool {
	p.rt.mu.Lock()
	defer p.rt.mu.Unlock()
	return p.rt.leases[p.addr] == p
}

// Nodes returns the addresses the router holds a pool or dedicated
// connections for, sorted.
func (rt *Router) Nodes() []string {
	rt.mu.Lock()
	seen := make(map[string]bool)
	for k := range rt.pools {
		seen[k.addr] = true
	}
	for addr := range rt.leases {
		seen[addr] = true
	}
	rt.mu.Unlock()
	addrs := make([]string, 0, len(seen))
	for addr := range seen {
		addrs = append(addrs, addr)
	}
	sort.Strings(addrs)
	return addrs
}
