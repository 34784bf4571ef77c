package proxy

import (
	"errors"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// errPark ends a session's goroutine, not the session: it waits parked.
var errPark = errors.New("proxy: session parked")

// parker holds idle clients without a goroutine each: a goroutine's stack
// and descriptor are most of what an idle connection costs. Their sockets
// wait in an epoll set of the parker's own, level-triggered and one-shot;
// when one becomes readable (or closes) its session gets a new goroutine.
// New connections start parked, and a session idle for
// Options.IdleParkAfter parks again (Server.sweep wakes it out of its read
// for that).
type parker struct {
	srv  *Server
	epfd int
	// ep is epfd as a file the runtime's poller waits on: the set is
	// itself readable while it holds a ready socket, so run needs no
	// thread of its own blocked in epoll_wait.
	ep   *os.File
	wake [2]int // a pipe whose read end in the set stops run

	mu     sync.Mutex
	parked map[int32]*session // by socket fd
	closed bool
}

func newParker(srv *Server) (*parker, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &parker{srv: srv, epfd: epfd, parked: make(map[int32]*session)}
	if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.wake[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.closeFDs()
		return nil, err
	}
	// Non-blocking, so that os.NewFile hands it to the runtime's poller.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		p.closeFDs()
		return nil, err
	}
	p.ep = os.NewFile(uintptr(epfd), "parker-epoll")
	raw, err := p.ep.SyscallConn()
	if err != nil {
		p.closeFDs()
		return nil, err
	}
	go p.run(raw)
	return p, nil
}

// park hands s over; false means it could not, and the caller serves s.
// After true, the caller must not touch s: it may already be resumed.
func (p *parker) park(s *session) bool {
	if s.fd < 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || s.killed.Load() {
		return false
	}
	op := syscall.EPOLL_CTL_ADD
	if s.inEpoll {
		op = syscall.EPOLL_CTL_MOD
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(s.fd)}
	if err := syscall.EpollCtl(p.epfd, op, s.fd, &ev); err != nil {
		return false
	}
	s.inEpoll = true
	if s.idleSince.Load() == 0 {
		// A new client: idle since it connected, for the idle timeout.
		// One parked from a wait for its client keeps when that began.
		s.idleSince.Store(time.Now().UnixNano())
	}
	p.parked[int32(s.fd)] = s
	s.parked.Store(true)
	p.srv.parkedN.Add(1)
	return true
}

// forget takes s's socket out of the set before it is closed.
func (p *parker) forget(s *session) {
	if !s.inEpoll {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, s.fd, nil)
	}
	s.inEpoll = false
}

// kill marks s killed (CLIENT KILL) and, when it is parked, takes it out
// of the set and reports true: the caller then closes its socket and
// serves it, so that it ends. Under p.mu, so that s either parked before
// and is found here, or sees killed and does not park.
func (p *parker) kill(s *session) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s.killed.Store(true)
	return p.take(s)
}

// expire takes out of the set, into out, the sessions of list still
// parked and idle since before limit, but for Pub/Sub subscribers, which
// redis-server's timeout spares too. The caller closes their sockets and
// serves them, so that they end.
func (p *parker) expire(list []*session, limit int64, out []*session) []*session {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range list {
		if t := s.idleSince.Load(); t == 0 || t >= limit || s.pubsub() {
			continue
		}
		if p.take(s) {
			s.killed.Store(true) // it must not park again
			out = append(out, s)
		}
	}
	return out
}

// take removes s from the set if it is parked there, and reports whether
// it was. Its caller holds p.mu.
func (p *parker) take(s *session) bool {
	if s.fd < 0 || p.parked[int32(s.fd)] != s {
		return false
	}
	delete(p.parked, int32(s.fd))
	s.parked.Store(false)
	if !p.closed {
		syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, s.fd, nil)
	}
	s.inEpoll = false
	p.srv.parkedN.Add(-1)
	return true
}

func (p *parker) run(raw syscall.RawConn) {
	events := make([]syscall.EpollEvent, 128)
	var ready []*session
	var n int
	var err error
	// poll takes what is ready without waiting; when nothing is, the
	// runtime's poller waits for the set to become readable. The set is
	// polled again after every batch, so an edge is never missed.
	poll := func(fd uintptr) bool {
		for {
			n, err = syscall.EpollWait(int(fd), events, 0)
			if err != syscall.EINTR {
				break
			}
		}
		if err != nil {
			n = 0
			return true
		}
		return n > 0
	}
	for {
		if rerr := raw.Read(poll); rerr != nil {
			n, err = 0, rerr
		}
		p.mu.Lock()
		stop := err != nil || p.closed
		ready = ready[:0]
		for _, ev := range events[:max(n, 0)] {
			if s := p.parked[ev.Fd]; s != nil {
				delete(p.parked, ev.Fd)
				s.parked.Store(false)
				ready = append(ready, s)
			}
		}
		if stop {
			for fd, s := range p.parked {
				delete(p.parked, fd)
				s.parked.Store(false)
				ready = append(ready, s)
			}
		}
		p.mu.Unlock()
		for _, s := range ready {
			p.srv.parkedN.Add(-1)
			go p.srv.serveClient(s)
		}
		// Held until the next wake-up, the last sessions resumed would
		// stay reachable after they end, with whatever they hold.
		clear(ready)
		if stop {
			p.closeFDs()
			return
		}
	}
}

// close resumes every parked session, so that it ends on its closed
// socket, and stops run.
func (p *parker) close() {
	p.mu.Lock()
	was := p.closed
	p.closed = true
	p.mu.Unlock()
	if was {
		return // run may have closed the pipe already
	}
	syscall.Write(p.wake[1], []byte{1})
}

func (p *parker) closeFDs() {
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
	if p.ep != nil {
		p.ep.Close()
	} else {
		syscall.Close(p.epfd)
	}
}

// returnMemoryAfter is how far the number of session goroutines, or of
// clients, must fall from its peak (and by at least half) for the sweeper
// to hand the freed memory back to the OS at once. A served session holds
// about 40 KiB of buffers and stack while busy, so 32 of them ending leave
// over a MiB behind; handing it back is a forced GC of a heap of a few MiB,
// about a millisecond, at most once per sweep.
const returnMemoryAfter = 32

// peakGauge is a count that also remembers its peak since fell last
// looked.
type peakGauge struct {
	cur, peak atomic.Int64
}

func (g *peakGauge) add(d int64) int64 {
	n := g.cur.Add(d)
	for d > 0 {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return n
}

// fell reports whether the count fell far from its peak since the last
// call, and starts a new peak from the current count.
func (g *peakGauge) fell() bool {
	n := g.cur.Load()
	peak := g.peak.Swap(n)
	return peak-n >= returnMemoryAfter && n <= peak/2
}

// sweep makes sessions idle for IdleParkAfter leave their read, to park;
// closes parked sessions idle for IdleTimeout; and returns memory to the
// OS after many sessions parked or ended.
//
// A session past the idle timeout that is still in its read is made to
// park first, and expires at the next tick: once parked, it has no
// goroutine that could be starting on a command, so closing it cannot
// cut one short.
func (s *Server) sweep(stop <-chan struct{}) {
	timeout := s.idleTimeoutNow()
	kickAfter := s.kickAfter(timeout)
	// Four ticks per delay: a client is parked or closed at most half a
	// delay late (its kick, then its expiry).
	tick := time.NewTicker(max(kickAfter/4, minSweepTick))
	defer tick.Stop()
	var idle, expired []*session // parked past the timeout; taken out of the set
	for {
		select {
		case <-stop:
			return
		case now := <-tick.C:
			if t := s.idleTimeoutNow(); t != timeout { // Reload changed it
				timeout, kickAfter = t, s.kickAfter(t)
				tick.Reset(max(kickAfter/4, minSweepTick))
			}
			// Many sessions parked or ended: their goroutines' stacks
			// and buffers stay with the runtime until a GC, which a
			// proxy that allocates nothing per request may not run for
			// minutes.
			if s.serving.fell() || s.clients.fell() {
				debug.FreeOSMemory()
			}
			kick := now.Add(-kickAfter).UnixNano()
			expire := now.Add(-timeout).UnixNano()
			s.mu.Lock()
			for sess := range s.sessions {
				t := sess.idleSince.Load()
				switch {
				case t == 0 || t >= kick:
				case !sess.parked.Load():
					sess.kicked.Store(true)
					sess.nc.SetReadDeadline(time.Unix(1, 0))
				case timeout > 0 && t < expire:
					idle = append(idle, sess)
				}
			}
			s.mu.Unlock()
			if len(idle) > 0 {
				expired = s.parker.expire(idle, expire, expired)
				for _, sess := range expired {
					s.closedBy(closedIdleTimeout)
					s.noteRefused("client disconnected", "idle_timeout", sess.nc, "timeout", timeout)
					sess.nc.Close()
					go s.serveClient(sess)
				}
				clear(idle)
				clear(expired)
				idle, expired = idle[:0], expired[:0]
			}
		}
	}
}

// kickAfter is how long a client may be idle before its session is made
// to park: the idle timeout, when shorter than IdleParkAfter, so that
// the session can expire.
func (s *Server) kickAfter(timeout time.Duration) time.Duration {
	if timeout > 0 {
		return min(s.opts.IdleParkAfter, timeout)
	}
	return s.opts.IdleParkAfter
}

// minSweepTick bounds how often the sweeper runs, whatever the delays.
const minSweepTick = 10 * time.Millisecond

// kickedRead reports whether err is the sweeper's doing, and if so
// clears the deadline it set.
func (s *session) kickedRead(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || !s.kicked.Load() {
		return false
	}
	s.kicked.Store(false)
	if s.srv.draining.Load() {
		return false // Shutdown's deadline, not the sweeper's
	}
	s.clearReadDeadline()
	return true
}
