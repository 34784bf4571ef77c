package router

import (
	"fmt"
	"time"
)

// Ready reports whether the proxy can serve every slot: the slot table
// covers all 16384 slots and every master has an established shared
// connection. When not, reason says what is missing, in one line. A master
// without a connection (none was needed yet, or its last one failed) is
// sent a PING, so that a later call finds it connected if it can be.
func (rt *Router) Ready() (ok bool, reason string) {
	t := rt.slots.Table()
	if t == nil {
		return false, "no slot table yet"
	}
	if n := t.Covered(); n < 16384 {
		return false, fmt.Sprintf("the slot table covers %d of 16384 slots", n)
	}
	for _, sh := range t.Shards() {
		addr := sh.Master.Addr
		p := rt.pool(poolKey{addr: addr})
		if p.established() {
			continue
		}
		reason = "no working connection to master " + addr
		if err := p.lastDialError(); err != nil {
			reason += fmt.Sprintf(" (last dial: %v)", err)
		}
		rt.Do(&Request{Raw: pingCmd, Slot: NoSlot, Node: addr, ReadOnly: true, Done: discard{}}, nil)
		return false, reason
	}
	return true, ""
}

var pingCmd = []byte("*1\r\n$4\r\nPING\r\n")

// discard completes a request whose reply no one needs.
type discard struct{}

func (discard) Complete(*Request) {}

// established reports whether one of the pool's connections is up.
func (p *pool) established() bool {
	for i := range p.conns {
		c := p.conns[i].Load()
		if c == nil {
			continue
		}
		c.mu.Lock()
		up := c.nc != nil && c.err == nil
		c.mu.Unlock()
		if up {
			return true
		}
	}
	return false
}

// lastDialError returns the error of the pool's last dial while it is in
// backoff after it, else nil.
func (p *pool) lastDialError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Now().Before(p.retryAt) {
		return p.lastErr
	}
	return nil
}
