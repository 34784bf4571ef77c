package proxy

import (
	"errors"
	"strings"

	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// held is what a session keeps from one command to the next beyond its
// batch: an open transaction, the dedicated connection of its WATCHed
// keys, its subscriptions. A session gets one with its first MULTI, WATCH
// or SUBSCRIBE and drops it when it holds nothing again.
type held struct {
	// lease is the dedicated connection WATCH made, to the master of
	// slot; nil without a WATCH.
	lease *router.Lease
	// slot is the one slot every key of the transaction (WATCH included)
	// must hash to, fixed by the first key; router.NoSlot before.
	slot int

	multi  bool     // between MULTI and EXEC/DISCARD
	dirty  bool     // a command was refused while queued: EXEC aborts
	queued [][]byte // the commands queued since MULTI, encoded
	loads  [][]byte // SCRIPT LOADs for the EVALSHAs queued, sent before MULTI

	sub *subscriber // Pub/Sub state (pubsub.go); nil when not subscribed
}

// heldShown is what CLIENT LIST shows of a session's held state. Other
// sessions read it, so it is replaced whole, never changed.
type heldShown struct {
	sub, psub, ssub int // subscriptions by kind
	multi           int // commands queued; -1 outside MULTI
}

// show publishes what CLIENT LIST shows of the held state.
func (s *session) show() {
	h := s.held
	v := heldShown{multi: -1}
	if h != nil {
		if h.multi {
			v.multi = len(h.queued)
		}
		if sub := h.sub; sub != nil {
			sub.mu.Lock()
			v.sub, v.psub, v.ssub = len(sub.sets[subChannel]), len(sub.sets[subPattern]), len(sub.sets[subShard])
			sub.mu.Unlock()
		}
	}
	if v == (heldShown{multi: -1}) {
		s.shown.Store(nil)
		return
	}
	s.shown.Store(&v)
}

// pubsub reports whether CLIENT LIST and KILL see a Pub/Sub client.
func (s *session) pubsub() bool {
	v := s.shown.Load()
	return v != nil && v.sub+v.psub+v.ssub > 0
}

// holding returns the session's held state, making it.
func (s *session) holding() *held {
	if s.held == nil {
		s.held = &held{slot: router.NoSlot}
	}
	return s.held
}

// dropHeld forgets the held state once nothing is held any more.
func (s *session) dropHeld() {
	h := s.held
	if h != nil && h.lease == nil && !h.multi && h.sub == nil {
		s.held = nil
	}
}

// answerHeld serves a command of a session that holds something; it
// reports false for a command served as usual.
//
//go:noinline
func (s *session) answerHeld(cmd *Command, args [][]byte, raw []byte) bool {
	h := s.held
	if h.multi {
		s.queue(cmd, args, raw)
		s.show()
		return true
	}
	if h.sub != nil {
		return s.answerSubscribed(cmd, args, raw)
	}
	return false
}

// reject replies with a refusal of the command itself; inside MULTI it
// also dooms the transaction, as redis-server's rejectCommand does.
//
//go:noinline
func (s *session) reject(msg string) {
	if h := s.held; h != nil && h.multi {
		h.dirty = true
	}
	s.replyError(msg)
}

// rejectCmd is reject for a known command. A refused EXEC ends the
// transaction and answers EXECABORT with the reason, as redis-server's
// execCommandAbort does.
//
//go:noinline
func (s *session) rejectCmd(cmd *Command, msg string) {
	if cmd.Name != "exec" {
		s.reject(msg)
		return
	}
	if s.held != nil {
		s.discard()
		s.show()
	}
	s.replyError("EXECABORT Transaction discarded because of: " + strings.TrimPrefix(msg, "ERR "))
}

// settle waits for every request of the batch sent so far. A command on a
// dedicated connection calls it first: the shared connections and the
// dedicated one are not ordered with each other, and the client's earlier
// commands must have run before it (a SET before a WATCH of its key).
func (s *session) settle() {
	if s.pending.Add(-1) != 0 {
		<-s.wake
	}
	s.pending.Store(1)
}

// flushEarlier settles the batch and writes the replies of its commands
// so far: a command that may block must not hold back the replies to the
// commands before it, which redis-server would have sent already.
func (s *session) flushEarlier() error {
	s.settle()
	if s.written == len(s.entries) {
		return nil
	}
	s.appendReplies()
	if len(s.wbuf) == 0 {
		return nil
	}
	err := s.write(s.wbuf)
	s.wbuf = s.wbuf[:0]
	return err
}

// replyRaw records a reply a node sent on a dedicated connection.
func (s *session) replyRaw(reply []byte) {
	off := len(s.local)
	s.local = append(s.local, reply...)
	s.replyLocal(off)
}

// keySlot returns the one slot of cmd's keys in args: router.NoSlot
// without keys, -2 when they are in several slots.
func (s *session) keySlot(cmd *Command, args [][]byte) int {
	slot := router.NoSlot
	s.keys = cmd.Keys(args, s.keys[:0])
	for _, k := range s.keys {
		ks := int(slotmap.Slot(args[k]))
		if slot == router.NoSlot {
			slot = ks
		} else if ks != slot {
			return slotsDiffer
		}
	}
	return slot
}

const slotsDiffer = -2

// masterOf returns the address of the master serving slot in the current
// table (a dedicated connection is leased once the batch's earlier
// requests are settled, so the batch's own table need not be kept), any
// master for router.NoSlot; "" when the table has none.
func (s *session) masterOf(slot int) string {
	t := s.srv.router.Table()
	if t == nil {
		return ""
	}
	shards := t.Shards()
	if len(shards) == 0 {
		return ""
	}
	if slot == router.NoSlot {
		return shards[int(s.id)%len(shards)].Master.Addr
	}
	i := t.ShardIndex(uint16(slot))
	if i < 0 {
		return ""
	}
	return shards[i].Master.Addr
}

// lease takes a dedicated connection to the master of slot, or returns the
// error reply to give instead.
func (s *session) lease(slot int) (*router.Lease, string) {
	addr := s.masterOf(slot)
	if addr == "" {
		if s.srv.router.Table() == nil {
			return nil, router.MsgNoTable
		}
		return nil, router.MsgSlotDown
	}
	return s.leaseAt(addr)
}

// leaseAt takes a dedicated connection to the node at addr.
func (s *session) leaseAt(addr string) (*router.Lease, string) {
	l, err := s.srv.router.Lease(addr, s.proto == 3)
	if err != nil {
		if errors.Is(err, router.ErrNoLease) {
			return nil, "ERR slotproxy: no dedicated backend connection free: " + err.Error()
		}
		return nil, router.MsgUnreachable + err.Error()
	}
	return l, ""
}

// releaseHeld gives back or closes whatever the session holds; the session
// is ending.
func (s *session) releaseHeld() {
	h := s.held
	if h == nil {
		return
	}
	if h.lease != nil {
		// WATCHed keys: the connection is not clean.
		h.lease.Close()
		h.lease = nil
	}
	if h.sub != nil {
		s.unsubscribeAll()
	}
	s.held = nil
	s.shown.Store(nil)
}
