package proxy

import (
	"errors"
	"sync"
	"syscall"

	"github.com/slotproxy/slotproxy/internal/sockio"
)

// errSlowClient disconnects a client whose unread replies passed the
// output limit.
var errSlowClient = errors.New("proxy: client output over the limit")

// backlog holds replies a client has not read yet. A client may pipeline
// commands without reading replies until it has sent them all, as go-redis
// and Jedis pipelines do: if the session stopped reading while its writes
// block, neither side would ever move. So, as redis-server keeps reading
// while its output buffer grows, the session goes on reading and a
// goroutine of the backlog's own writes what the socket would not take at
// once; past Options.MaxOutputBytes the client is disconnected.
type backlog struct {
	mu      sync.Mutex
	buf     []byte // replies waiting, in order
	writing bool   // a flusher goroutine owns the socket's writes
	err     error  // the write failure or errSlowClient; final
	done    sync.WaitGroup
}

// write sends b to the client, or queues it behind what is already
// waiting. It never blocks on a client that does not read.
func (s *session) write(b []byte) error {
	if h := s.held; h != nil && h.sub != nil {
		// Messages are written from the hub's goroutines too (pubsub.go).
		return s.writeSubscribed(h.sub, b)
	}
	return s.writeNow(b)
}

// writeNow is write for a session that is the only writer of its
// client, or that holds its subscriber's lock.
func (s *session) writeNow(b []byte) error {
	if s.srv.stats != nil {
		s.netOut.Add(uint64(len(b)))
	}
	if o := s.out; o != nil {
		o.mu.Lock()
		switch {
		case o.err != nil:
			o.mu.Unlock()
			return o.err
		case o.writing:
			if len(o.buf)+len(b) > s.srv.maxOutputBytes() {
				o.mu.Unlock()
				return s.overLimit(o)
			}
			o.buf = append(o.buf, b...)
			o.mu.Unlock()
			return nil
		}
		o.mu.Unlock()
	}
	// Nothing is waiting: the socket first, the backlog for what it leaves.
	n, err := s.writeOnce(b)
	if err != nil || n == len(b) {
		return err
	}
	if s.out == nil {
		s.out = &backlog{}
	}
	o := s.out
	if len(b)-n > s.srv.maxOutputBytes() {
		return s.overLimit(o)
	}
	o.mu.Lock()
	o.buf = append(o.buf[:0], b[n:]...)
	o.writing = true
	o.done.Add(1)
	o.mu.Unlock()
	go s.flushBacklog()
	return nil
}

// writeOnce makes one write attempt that does not wait for the client:
// what the socket does not take is for the backlog. Connections that are
// not sockets (in-memory pipes) are written in full.
func (s *session) writeOnce(b []byte) (int, error) {
	if s.raw == nil {
		return s.nc.Write(b)
	}
	s.writeB, s.writeN, s.writeErr = b, 0, nil
	err := s.raw.Write(s.writeFn)
	n, werr := s.writeN, s.writeErr
	s.writeB = nil
	if err != nil {
		return n, err
	}
	return n, werr
}

// writeReady is writeOnce's callback, made once: a closure made per write
// would be allocated per write.
func (s *session) writeReady(fd uintptr) bool {
	s.writeN, s.writeErr = sockio.Write(fd, s.writeB)
	if s.writeErr == syscall.EAGAIN {
		s.writeErr = nil
	}
	return true
}

// flushBacklog writes the backlog until it is empty.
func (s *session) flushBacklog() {
	o := s.out
	defer o.done.Done()
	var spare []byte
	for {
		o.mu.Lock()
		b := o.buf
		o.buf = spare[:0]
		if len(b) == 0 {
			o.writing = false
			o.mu.Unlock()
			return
		}
		o.mu.Unlock()
		if _, err := s.nc.Write(b); err != nil {
			o.mu.Lock()
			o.err = err
			o.writing = false
			o.mu.Unlock()
			s.nc.Close()
			return
		}
		spare = b
	}
}

// overLimit disconnects a client whose unread replies passed the limit.
func (s *session) overLimit(o *backlog) error {
	o.mu.Lock()
	o.err = errSlowClient
	o.mu.Unlock()
	s.srv.closedBy(closedOutputLimit)
	s.srv.noteRefused("client disconnected", "output_limit", s.nc, "limit_bytes", s.srv.maxOutputBytes())
	s.nc.Close()
	return errSlowClient
}
