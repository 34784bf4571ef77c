package proxy

import (
	"bytes"
	"fmt"

	"github.com/slotproxy/slotproxy/router"
)

// Transactions. A cluster runs a transaction on one master, so all of its
// keys, WATCHed ones included, must hash to one slot; the first key fixes
// it. The proxy answers MULTI and queues the commands itself, answering
// QUEUED or the refusal redis-server would give (unknown command, wrong
// arity, CROSSSLOT: the transaction is then doomed). EXEC sends MULTI, the
// queue and EXEC in one write on a dedicated connection to the slot's
// master, and gives the client EXEC's reply. WATCH needs the connection
// before that: it leases one at once and keeps it until EXEC, DISCARD or
// UNWATCH, after which the connection is clean and goes back to its pool.

const (
	msgExecAbort      = "EXECABORT Transaction discarded because of previous errors."
	msgTxnLost        = "ERR slotproxy: backend connection lost; the transaction may or may not have run"
	msgWatchLost      = "ERR slotproxy: backend connection lost; WATCH again"
	msgInMultiFmt     = "ERR slotproxy does not support '%s' inside MULTI"
	msgMovedWhileHeld = "EXECABORT Transaction discarded: its slot moved to another master while it was queued; nothing ran ("
)

var (
	multiCmd   = []byte("*1\r\n$5\r\nMULTI\r\n")
	execCmd    = []byte("*1\r\n$4\r\nEXEC\r\n")
	unwatchCmd = []byte("*1\r\n$7\r\nUNWATCH\r\n")
)

// answerTxn serves the transaction commands outside MULTI.
func (s *session) answerTxn(cmd *Command, args [][]byte) {
	defer s.show()
	switch cmd.Name {
	case "multi":
		h := s.holding()
		h.multi, h.dirty = true, false
		off := len(s.local)
		s.local = appendSimple(s.local, "OK")
		s.replyLocal(off)
	case "exec":
		s.replyError("ERR EXEC without MULTI")
	case "discard":
		s.replyError("ERR DISCARD without MULTI")
	case "watch":
		s.watch(cmd, args)
	case "unwatch":
		s.unwatch()
		off := len(s.local)
		s.local = appendSimple(s.local, "OK")
		s.replyLocal(off)
	}
}

// queue serves a command between MULTI and EXEC.
func (s *session) queue(cmd *Command, args [][]byte, raw []byte) {
	h := s.held
	switch cmd.Name {
	case "exec":
		s.exec()
		return
	case "discard":
		s.discard()
		off := len(s.local)
		s.local = appendSimple(s.local, "OK")
		s.replyLocal(off)
		return
	case "multi":
		s.replyError("ERR MULTI calls can not be nested")
		return
	case "watch":
		s.replyError("ERR WATCH inside MULTI is not allowed")
		return
	case "quit", "reset":
		s.answerLocal(cmd, args)
		return
	}
	if cmd.Flags&CmdNoMulti != 0 {
		s.reject("ERR Command not allowed inside a transaction")
		return
	}
	switch cmd.kind {
	case kindForward, kindScript, kindBlocking:
	case kindPubSub:
		if cmd.Name != "publish" && cmd.Name != "spublish" {
			s.reject(fmt.Sprintf(msgInMultiFmt, commandName(cmd)))
			return
		}
	case kindLocal:
		// A master answers these as the proxy would; SELECT 1 gets
		// the cluster's own error either way.
		if cmd.Name != "ping" && cmd.Name != "echo" && cmd.Name != "select" {
			s.reject(fmt.Sprintf(msgInMultiFmt, commandName(cmd)))
			return
		}
	default:
		s.reject(fmt.Sprintf(msgInMultiFmt, commandName(cmd)))
		return
	}
	slot := s.keySlot(cmd, args)
	if slot == slotsDiffer || (slot != router.NoSlot && h.slot != router.NoSlot && slot != h.slot) {
		s.reject(msgCrossSlot)
		return
	}
	if slot != router.NoSlot {
		h.slot = slot
	}
	if cmd.kind == kindScript {
		if cmd.Name == "eval" || cmd.Name == "eval_ro" {
			s.srv.scripts.add(args[1])
		} else if load := s.srv.scripts.get(args[1]); load != nil {
			h.loads = append(h.loads, load)
		}
	}
	if raw == nil {
		raw = appendCommand(nil, args)
	} else {
		raw = bytes.Clone(raw) // raw is in the read buffer, reused by the next batch
	}
	h.queued = append(h.queued, raw)
	off := len(s.local)
	s.local = appendSimple(s.local, "QUEUED")
	s.replyLocal(off)
}

// endTxn closes the transaction and returns what it held.
func (s *session) endTxn() (queued, loads [][]byte, dirty bool, slot int, lease *router.Lease) {
	h := s.held
	queued, loads, dirty, slot, lease = h.queued, h.loads, h.dirty, h.slot, h.lease
	h.multi, h.dirty, h.queued, h.loads, h.lease = false, false, nil, nil, nil
	h.slot = router.NoSlot
	s.dropHeld()
	return
}

// exec runs the queued transaction on the master of its slot.
func (s *session) exec() {
	queued, loads, dirty, slot, lease := s.endTxn()
	if dirty {
		if lease != nil {
			s.settle()
			s.unwatchOn(lease)
		}
		s.replyError(msgExecAbort)
		return
	}
	if len(queued) == 0 && lease == nil {
		off := len(s.local)
		s.local = appendArrayHeader(s.local, 0)
		s.replyLocal(off)
		return
	}
	s.settle()
	if lease == nil {
		var msg string
		if lease, msg = s.lease(slot); lease == nil {
			s.replyError(msg)
			return
		}
	}
	var b []byte
	for _, l := range loads {
		b = append(b, l...)
	}
	b = append(b, multiCmd...)
	for _, q := range queued {
		b = append(b, q...)
	}
	b = append(b, execCmd...)
	if err := lease.Write(b); err != nil {
		lease.Close()
		s.replyError(msgTxnLost)
		return
	}
	var moved string
	for range len(loads) + 1 + len(queued) {
		reply, err := lease.Read(false)
		if err != nil {
			lease.Close()
			s.replyError(msgTxnLost)
			return
		}
		if moved == "" && (bytes.HasPrefix(reply, []byte("-MOVED ")) || bytes.HasPrefix(reply, []byte("-ASK "))) {
			moved = string(bytes.TrimSpace(reply[1:]))
			s.srv.router.Redirection(reply, lease.Addr)
		}
	}
	reply, err := lease.Read(false)
	if err != nil {
		lease.Close()
		s.replyError(msgTxnLost)
		return
	}
	if moved != "" {
		s.replyError(msgMovedWhileHeld + moved + ")")
	} else {
		s.replyRaw(reply)
	}
	lease.Release()
}

// discard drops the queued transaction and the keys watched.
func (s *session) discard() {
	_, _, _, _, lease := s.endTxn()
	if lease != nil {
		s.settle()
		s.unwatchOn(lease)
	}
}

// unwatch forgets the keys watched outside MULTI.
func (s *session) unwatch() {
	h := s.held
	if h == nil || h.lease == nil {
		return
	}
	lease := h.lease
	h.lease = nil
	h.slot = router.NoSlot
	s.dropHeld()
	s.settle()
	s.unwatchOn(lease)
}

// unwatchOn sends UNWATCH on lease and gives it back clean, or closes it.
func (s *session) unwatchOn(lease *router.Lease) {
	if err := lease.Write(unwatchCmd); err != nil {
		lease.Close()
		return
	}
	if reply, err := lease.Read(false); err != nil || reply[0] != '+' {
		lease.Close()
		return
	}
	lease.Release()
}

// watch sends WATCH on the session's dedicated connection to the master of
// the keys' slot, leasing it with the first WATCH.
func (s *session) watch(cmd *Command, args [][]byte) {
	h := s.holding()
	slot := s.keySlot(cmd, args)
	if slot == slotsDiffer || (h.slot != router.NoSlot && slot != h.slot) {
		s.replyError(msgCrossSlot)
		s.dropHeld()
		return
	}
	s.settle()
	raw := appendCommand(nil, args)
	had := h.lease != nil
	for attempt := 0; ; attempt++ {
		if h.lease == nil {
			l, msg := s.lease(slot)
			if l == nil {
				s.replyError(msg)
				s.dropHeld()
				return
			}
			h.lease, h.slot = l, slot
		}
		reply, err := h.roundTrip(raw)
		if err != nil {
			h.lease.Close()
			h.lease, h.slot = nil, router.NoSlot
			s.dropHeld()
			s.replyError(msgWatchLost)
			return
		}
		if _, _, ok := s.srv.router.Redirection(reply, h.lease.Addr); ok {
			// The slot moved since the table was read. A first WATCH is
			// made again at the new owner; keys watched before on the
			// old one cannot follow.
			s.unwatchOn(h.lease)
			h.lease, h.slot = nil, router.NoSlot
			if !had && attempt < 3 {
				continue
			}
			s.dropHeld()
			s.replyError("ERR slotproxy: the slot of the watched keys moved to another master; WATCH again")
			return
		}
		s.replyRaw(reply)
		return
	}
}

// roundTrip sends one command on the held lease and returns its reply.
func (h *held) roundTrip(cmd []byte) ([]byte, error) {
	if err := h.lease.Write(cmd); err != nil {
		return nil, err
	}
	return h.lease.Read(false)
}
