package router

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slotproxy/slotproxy/internal/respenc"
)

// ErrNoLease is the failure to lease a dedicated connection to a node
// within the wait: the node's bound of dedicated connections is in use.
var ErrNoLease = errors.New("router: no dedicated connection free")

// ErrInterrupted is the end of a Read that Lease.Interrupt stopped.
var ErrInterrupted = errors.New("router: read interrupted")

// Lease is a backend connection that one holder uses exclusively: a
// transaction with its WATCHed keys, a blocking command, a subscriber
// connection. Its state (WATCH, MULTI, a block, subscriptions) belongs to
// the holder, so it is never multiplexed. The holder writes commands and
// reads their replies itself, on its own goroutine.
//
// A lease goes back with Release only in a clean state: no MULTI open, no
// key watched, not blocked, not subscribed. Any other lease is ended with
// Close, which closes the connection.
type Lease struct {
	// Addr is the node the connection goes to.
	Addr string
	// ID is the node's CLIENT ID of the connection, for CLIENT UNBLOCK.
	ID int64

	p          *leasePool
	resp3      bool
	nc         net.Conn
	buf        []byte
	start, end int
	sc         replyScanner
	closed     bool
	skip       int         // replies to drop before the next one is read: ASKING's
	stop       atomic.Bool // Interrupt was called
}

// leasePool bounds the dedicated connections to one node, of both
// protocols. A slot in sem is taken by every connection in use; idle ones
// are reused before anything is dialed, so the connections open, in use or
// idle, never exceed the bound.
type leasePool struct {
	rt   *Router
	addr string
	sem  chan struct{}

	mu   sync.Mutex
	idle [2][]*Lease // by protocol: [1] speaks RESP3
	open int         // connections in use or idle
}

// Lease returns a connection to the node at addr that no one else uses,
// reusing an idle one when there is one. It waits up to
// Options.DedicatedWait for one of the node's bounded connections to be
// free, then fails with ErrNoLease.
func (rt *Router) Lease(addr string, resp3 bool) (*Lease, error) {
	if rt.closed.Load() {
		return nil, ErrClosed
	}
	p := rt.leasePool(addr)
	select {
	case p.sem <- struct{}{}:
	default:
		wait := rt.opts.DedicatedWait
		t := time.NewTimer(wait)
		select {
		case p.sem <- struct{}{}:
			t.Stop()
		case <-t.C:
			return nil, fmt.Errorf("%w: %d connections to %s in use for %v", ErrNoLease, cap(p.sem), addr, wait)
		}
	}
	for {
		l, other := p.take(resp3)
		if l == nil && other == nil {
			break
		}
		if l == nil {
			// Switched rather than closed and dialed again: RESP2 and
			// RESP3 clients competing for a full pool would otherwise
			// redial on every turn.
			if other.alive() && other.switchProto(resp3) == nil {
				return other, nil
			}
			p.closed(other)
			continue
		}
		if l.alive() {
			return l, nil
		}
		p.closed(l)
	}
	l, err := p.dial(resp3)
	if err != nil {
		p.mu.Lock()
		p.open--
		p.mu.Unlock()
		<-p.sem
		return nil, err
	}
	return l, nil
}

func (rt *Router) leasePool(addr string) *leasePool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	p := rt.leases[addr]
	if p == nil {
		p = &leasePool{rt: rt, addr: addr, sem: make(chan struct{}, rt.opts.MaxDedicatedPerNode)}
		rt.leases[addr] = p
	}
	return p
}

// counts returns how many dedicated connections are open, idle or in use,
// and how many of them are in use.
func (p *leasePool) counts() (open, inUse int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open, len(p.sem)
}

// LeasesInUse returns how many dedicated connections to addr are held.
func (rt *Router) LeasesInUse(addr string) int {
	rt.mu.Lock()
	p := rt.leases[addr]
	rt.mu.Unlock()
	if p == nil {
		return 0
	}
	return len(p.sem)
}

func proto(resp3 bool) int {
	if resp3 {
		return 1
	}
	return 0
}

// take returns an idle connection of the protocol; or, at the bound, an
// idle one of the other protocol to switch; or neither when one may be
// dialed, which it counts as open already. The caller holds a slot of
// sem.
func (p *leasePool) take(resp3 bool) (l, other *Lease) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l = p.pop(proto(resp3)); l != nil {
		return l, nil
	}
	if p.open < cap(p.sem) {
		p.open++
		return nil, nil
	}
	// All open connections are in use or idle, and this caller's slot
	// is free: an idle one of the other protocol is there.
	return nil, p.pop(1 - proto(resp3))
}

// switchProto makes an idle connection speak RESP3 or RESP2 (HELLO 3 or
// HELLO 2; the connection is authenticated already).
func (l *Lease) switchProto(resp3 bool) error {
	hello := respenc.AppendCommand(nil, "HELLO", "2")
	if resp3 {
		hello = respenc.AppendCommand(nil, "HELLO", "3")
	}
	if err := l.Write(hello); err != nil {
		return err
	}
	reply, err := l.Read(false)
	if err != nil {
		return err
	}
	if reply[0] == '-' {
		return fmt.Errorf("%w: %s", ErrProtocol, bytes.TrimSpace(reply))
	}
	l.resp3 = resp3
	return nil
}

func (p *leasePool) pop(i int) *Lease {
	idle := p.idle[i]
	n := len(idle)
	if n == 0 {
		return nil
	}
	l := idle[n-1]
	idle[n-1] = nil
	p.idle[i] = idle[:n-1]
	return l
}

// closed closes l's connection and stops counting it.
func (p *leasePool) closed(l *Lease) {
	l.nc.Close()
	p.mu.Lock()
	p.open--
	p.mu.Unlock()
}

// dial opens, authenticates and identifies a new dedicated connection.
func (p *leasePool) dial(resp3 bool) (*Lease, error) {
	nc, err := p.rt.dialNode(p.addr, resp3)
	if err != nil {
		return nil, err
	}
	l := &Lease{Addr: p.addr, p: p, resp3: resp3, nc: nc, buf: make([]byte, 4096)}
	if err := l.Write(respenc.AppendCommand(nil, "CLIENT", "ID")); err != nil {
		nc.Close()
		return nil, err
	}
	reply, err := l.Read(false)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if len(reply) < 4 || reply[0] != ':' {
		nc.Close()
		return nil, fmt.Errorf("%w: CLIENT ID answered %q", ErrProtocol, reply)
	}
	l.ID, _ = strconv.ParseInt(string(reply[1:len(reply)-2]), 10, 64)
	return l, nil
}

// alive tells whether an idle connection is still usable: the node has
// not closed it and sent nothing unasked.
func (l *Lease) alive() bool {
	sc, ok := socketOf(l.nc).(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = err == syscall.EAGAIN
		return true
	})
	return ok
}

// Write writes b, one or more commands, to the connection.
func (l *Lease) Write(b []byte) error {
	l.nc.SetWriteDeadline(time.Now().Add(l.p.rt.opts.ReadTimeout))
	if _, err := l.nc.Write(b); err != nil {
		return fmt.Errorf("%w: %w", ErrConnLost, err)
	}
	return nil
}

// WriteAsking writes cmd right after ASKING, for a node that an ASK
// redirection named; Read drops ASKING's reply.
func (l *Lease) WriteAsking(cmd []byte) error {
	b := make([]byte, 0, len(askingCmd)+len(cmd))
	if err := l.Write(append(append(b, askingCmd...), cmd...)); err != nil {
		return err
	}
	l.skip++
	return nil
}

// Read returns the next reply, framed, valid until the next Read. The node
// has the read timeout to send it; with block, as long as it takes: a
// blocking command's own timeout is the node's to keep.
func (l *Lease) Read(block bool) ([]byte, error) {
	var deadline time.Time
	if !block {
		deadline = time.Now().Add(l.p.rt.opts.ReadTimeout)
	}
	if l.start == l.end {
		l.start, l.end = 0, 0
	}
	for {
		if l.start < l.end {
			size, err := l.sc.scan(l.buf[l.start:l.end])
			if err != nil {
				return nil, fmt.Errorf("%w from %s: %w", ErrProtocol, l.Addr, err)
			}
			if size > 0 {
				reply := l.buf[l.start : l.start+size]
				l.start += size
				if l.skip > 0 {
					l.skip--
					continue
				}
				return reply, nil
			}
		}
		if l.end == len(l.buf) {
			if l.start > 0 {
				l.end = copy(l.buf, l.buf[l.start:l.end])
				l.start = 0
			} else {
				nb := make([]byte, 2*len(l.buf))
				copy(nb, l.buf[:l.end])
				l.buf = nb
			}
		}
		l.nc.SetReadDeadline(deadline)
		if l.stop.Load() {
			return nil, ErrInterrupted
		}
		n, err := l.nc.Read(l.buf[l.end:])
		l.end += n
		if err != nil && n == 0 {
			var ne net.Error
			if l.stop.Load() {
				return nil, ErrInterrupted
			}
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, fmt.Errorf("%w: %s", ErrTimeout, l.Addr)
			}
			return nil, fmt.Errorf("%w: %w", ErrConnLost, err)
		}
	}
}

// Interrupt makes a Read in progress on another goroutine return at once
// with an error. The lease must then be closed.
func (l *Lease) Interrupt() {
	l.stop.Store(true)
	l.nc.SetReadDeadline(time.Unix(1, 0))
}

// Release gives a clean connection back for reuse.
func (l *Lease) Release() {
	if l.closed {
		return
	}
	l.closed = true
	if l.start != l.end || l.skip != 0 || len(l.buf) > maxKeptBuffer || l.p.rt.closed.Load() || !l.p.registered() {
		l.p.closed(l)
	} else {
		l.nc.SetDeadline(time.Time{})
		fresh := &Lease{Addr: l.Addr, ID: l.ID, p: l.p, resp3: l.resp3, nc: l.nc, buf: l.buf}
		l.p.mu.Lock()
		l.p.idle[proto(l.resp3)] = append(l.p.idle[proto(l.resp3)], fresh)
		l.p.mu.Unlock()
	}
	<-l.p.sem
}

// Close ends a lease whose connection is not clean, or broke: the
// connection is closed, never handed on.
func (l *Lease) Close() {
	if l.closed {
		return
	}
	l.closed = true
	l.p.closed(l)
	<-l.p.sem
}

// closeLeases closes the idle dedicated connections; those in use are
// their holders' to close.
func (rt *Router) closeLeases() {
	rt.mu.Lock()
	pools := make([]*leasePool, 0, len(rt.leases))
	for _, p := range rt.leases {
		pools = append(pools, p)
	}
	rt.mu.Unlock()
	for _, p := range pools {
		p.mu.Lock()
		idle := p.idle
		p.idle = [2][]*Lease{}
		p.open -= len(idle[0]) + len(idle[1])
		p.mu.Unlock()
		for _, l := range append(idle[0], idle[1]...) {
			l.nc.Close()
		}
	}
}

// Redirection reads a MOVED or ASK reply that a dedicated connection to
// from received. A MOVED patches the slot table, as on the shared
// connections, so that the next lease goes to the new owner. ok is false
// for any other reply.
func (rt *Router) Redirection(reply []byte, from string) (addr string, ask, ok bool) {
	if !bytes.HasPrefix(reply, []byte("-MOVED ")) && !bytes.HasPrefix(reply, []byte("-ASK ")) {
		return "", false, false
	}
	slot, addr, ok := parseRedirect(reply, from)
	if !ok {
		return "", false, false
	}
	ask = reply[1] == 'A'
	if !ask {
		rt.slots.Patch(slot, addr)
	}
	return addr, ask, true
}
