package proxy

import (
	"bytes"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slotproxy/slotproxy/router"
)

// Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP, XREAD and XREADGROUP with BLOCK) wait on a dedicated
// connection to the master of their keys' slot, so that a client blocked
// for minutes holds no shared connection up. The node keeps the command's
// own timeout (0: for ever). While it waits, the session watches its
// client's socket, so that a client that hangs up frees the connection at
// once, and the slot table, so that a master that failed over does not
// keep its clients blocked on a node that no longer serves their keys.

const (
	msgBlockFailover = "UNBLOCKED slotproxy: the master serving the keys changed while the command was blocked; it may or may not have run"
	// blockCheckEvery is how often a blocked command's master is checked
	// against the slot table.
	blockCheckEvery = 500 * time.Millisecond
)

// block runs a blocking command on a dedicated connection, following
// MOVED and ASK, and answers with the node's reply.
func (s *session) block(cmd *Command, args [][]byte, raw []byte) {
	slot := s.keySlot(cmd, args)
	if slot == slotsDiffer {
		s.replyError(msgCrossSlot)
		return
	}
	if raw == nil {
		raw = appendCommand(nil, args)
	}
	if err := s.flushEarlier(); err != nil {
		s.quit = true
		s.replyError(router.MsgConnLost)
		return
	}
	addr := s.masterOf(slot)
	asking := false
	for redirects := 0; ; redirects++ {
		if addr == "" {
			s.replyError(router.MsgSlotDown)
			return
		}
		l, msg := s.leaseAt(addr)
		if l == nil {
			s.replyError(msg)
			return
		}
		reply, gone, err := s.blockOn(l, asking, raw, slot)
		if err != nil {
			l.Close()
			switch {
			case gone == watchClientGone:
				s.quit = true
				s.replyError(router.MsgConnLost)
			case gone == watchFailover:
				s.replyError(msgBlockFailover)
			default:
				s.replyError(router.MsgConnLost)
			}
			return
		}
		target, ask, ok := s.srv.router.Redirection(reply, addr)
		if !ok || redirects >= 5 {
			s.replyRaw(reply)
			l.Release()
			return
		}
		l.Release()
		addr, asking = target, ask
	}
}

// Why a blocked command was interrupted.
const (
	watchNone int32 = iota
	watchClientGone
	watchFailover
)

// blockOn sends cmd on l, after ASKING when asking, and waits for its
// reply for as long as the node takes, unless the client hangs up or the
// slot's master changes.
func (s *session) blockOn(l *router.Lease, asking bool, cmd []byte, slot int) ([]byte, int32, error) {
	write := l.Write
	if asking {
		write = l.WriteAsking
	}
	if err := write(cmd); err != nil {
		return nil, watchNone, err
	}
	w := s.watchBlocked(l, slot)
	s.blockedOn.Store(l)
	defer s.blockedOn.Store(nil)
	reply, err := l.Read(true)
	w.stop()
	return reply, w.why.Load(), err
}

// blockWatch ends a blocked command early when its client hangs up or its
// master changes.
type blockWatch struct {
	s        *session
	l        *router.Lease
	slot     int
	why      atomic.Int32
	stopping atomic.Bool
	timer    atomic.Pointer[time.Timer]
	done     chan struct{} // closed when the socket watcher returns; nil without one
}

func (s *session) watchBlocked(l *router.Lease, slot int) *blockWatch {
	w := &blockWatch{s: s, l: l, slot: slot}
	w.timer.Store(time.AfterFunc(blockCheckEvery, w.checkMaster))
	if s.raw != nil {
		w.done = make(chan struct{})
		go w.watchClient()
	}
	return w
}

// interrupt ends the wait for the reason why, once.
func (w *blockWatch) interrupt(why int32) {
	if w.why.CompareAndSwap(watchNone, why) {
		w.l.Interrupt()
	}
}

func (w *blockWatch) checkMaster() {
	if w.stopping.Load() {
		return
	}
	if addr := w.s.masterOf(w.slot); addr != "" && addr != w.l.Addr {
		w.interrupt(watchFailover)
		return
	}
	if t := w.timer.Load(); t != nil {
		t.Reset(blockCheckEvery)
	}
}

// watchClient waits until the client's socket is readable: at its end of
// file (or a reset) the client is gone. Bytes the client sent meanwhile
// are left for the session to read; it can then no longer tell a hang-up
// early, and the command ends when the node answers.
func (w *blockWatch) watchClient() {
	defer close(w.done)
	gone := false
	err := w.s.raw.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EAGAIN || err == syscall.EINTR {
			return false
		}
		gone = err != nil || n == 0
		return true
	})
	if err != nil && !w.stopping.Load() {
		gone = true // closed by CLIENT KILL or the server's shutdown
	}
	if gone {
		w.interrupt(watchClientGone)
	}
}

// stop ends the watch and waits for its goroutine.
func (w *blockWatch) stop() {
	w.stopping.Store(true)
	if t := w.timer.Load(); t != nil {
		t.Stop()
	}
	if w.done != nil {
		w.s.nc.SetReadDeadline(time.Unix(1, 0))
		<-w.done
		w.s.clearReadDeadline()
	}
}

// clientUnblock serves CLIENT UNBLOCK: a proxy client blocked on a
// dedicated connection is unblocked on its node with that connection's
// own id.
func (s *session) clientUnblock(args [][]byte) {
	id, err := strconv.ParseInt(string(args[2]), 10, 64)
	if err != nil {
		s.replyError("ERR value is not an integer or out of range")
		return
	}
	mode := "TIMEOUT"
	if len(args) == 4 {
		switch {
		case bytes.EqualFold(args[3], []byte("timeout")):
		case bytes.EqualFold(args[3], []byte("error")):
			mode = "ERROR"
		default:
			s.replyError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
			return
		}
	}
	var l *router.Lease
	for _, c := range s.srv.clientSessions() {
		if int64(c.id) == id {
			l = c.blockedOn.Load()
			break
		}
	}
	if l == nil {
		off := len(s.local)
		s.local = appendInt(s.local, 0)
		s.replyLocal(off)
		return
	}
	raw := appendCommand(nil, [][]byte{[]byte("CLIENT"), []byte("UNBLOCK"), strconv.AppendInt(nil, l.ID, 10), []byte(mode)})
	s.sendNodes([]string{l.Addr}, raw, false, mergeFirst)
}
