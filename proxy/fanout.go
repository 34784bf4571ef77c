package proxy

import (
	"bytes"
	"strconv"

	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// fanOp says how a multi-key command whose keys span slots is split into
// one command per slot, and how the parts' replies are merged into the one
// reply a single redis-server would give.
type fanOp uint8

const (
	fanNone fanOp = iota // not split: CROSSSLOT across slots
	fanMGet              // MGET: the values, in the order of the keys
	fanMSet              // MSET: OK once every part is OK
	fanSum               // DEL, UNLINK, EXISTS, TOUCH: the sum of the counts
)

// fanOf names the commands that are split and how. MSETNX is not: its
// all-or-nothing promise cannot be kept across masters.
func fanOf(name string) fanOp {
	switch name {
	case "mget":
		return fanMGet
	case "mset":
		return fanMSet
	case "del", "unlink", "exists", "touch":
		return fanSum
	}
	return fanNone
}

// fanout is a command split by slot. Its parts are routed like any request;
// the session merges their replies when it writes the batch.
type fanout struct {
	op      fanOp
	parts   []fanPart
	keyPart []int32 // for each key in order, the part that holds it
}

type fanPart struct {
	slot   uint16
	keys   int // keys in this part
	req    *router.Request
	cursor int // merge position in req.Reply
}

// split sends one command per slot for a command whose keys (positions in
// args) span slots. Each key is followed by step-1 arguments that travel
// with it (MSET's values).
func (s *session) split(cmd *Command, args [][]byte, keys []int) {
	step := 1
	if cmd.fan == fanMSet {
		step = 2
		if len(args)%2 == 0 { // a key without its value
			s.replyError(wrongArity(cmd.Name))
			return
		}
	}
	f := s.nextFanout()
	f.op = cmd.fan

	if s.slotParts == nil {
		s.slotParts = make(map[uint16]int32)
	}
	clear(s.slotParts)
	for _, k := range keys {
		slot := slotmap.Slot(args[k])
		p, ok := s.slotParts[slot]
		if !ok {
			p = int32(len(f.parts))
			s.slotParts[slot] = p
			f.parts = append(f.parts, fanPart{slot: slot})
		}
		f.parts[p].keys++
		f.keyPart = append(f.keyPart, p)
	}

	// Encode every part's command: the client's own command name, then the
	// part's keys (with their values) in the client's order.
	first := s.nreq
	for p := range f.parts {
		r, raw := s.nextRequest()
		raw = appendArrayHeader(raw, 1+f.parts[p].keys*step)
		r.Slot = int(f.parts[p].slot)
		r.ReadOnly = cmd.Flags&CmdReadOnly != 0
		r.Idempotent = cmd.resend == resendAlways
		if !r.ReadOnly {
			s.wrote(r.Slot)
		}
		s.raws[first+p] = appendBulk(raw, args[0])
		f.parts[p].req = r
	}
	for i, k := range keys {
		p := first + int(f.keyPart[i])
		for _, a := range args[k : k+step] {
			s.raws[p] = appendBulk(s.raws[p], a)
		}
	}
	s.entries = append(s.entries, entry{fan: f})
	for p := range f.parts {
		r := f.parts[p].req
		r.Raw = s.raws[first+p]
		s.pending.Add(1)
		s.srv.router.Do(r, s.table)
	}
}

// nextFanout returns a reset fanout from the session's pool.
func (s *session) nextFanout() *fanout {
	if s.nfan == len(s.fans) {
		s.fans = append(s.fans, &fanout{})
	}
	f := s.fans[s.nfan]
	s.nfan++
	f.parts = f.parts[:0]
	f.keyPart = f.keyPart[:0]
	return f
}

// appendMerged appends the one reply of a split command to b.
func (f *fanout) appendMerged(b []byte) []byte {
	// An error from any part is the reply, as a single server would have
	// failed the whole command. The other parts may have run.
	for _, p := range f.parts {
		if r := p.req.Reply; len(r) > 0 && r[0] == '-' {
			return append(b, r...)
		}
	}
	switch f.op {
	case fanMSet:
		for _, p := range f.parts {
			if !bytes.Equal(p.req.Reply, []byte("+OK\r\n")) {
				return appendError(b, msgBadPartReply)
			}
		}
		return appendSimple(b, "OK")
	case fanSum:
		var sum int64
		for _, p := range f.parts {
			n, ok := parseIntReply(p.req.Reply)
			if !ok {
				return appendError(b, msgBadPartReply)
			}
			sum += n
		}
		return appendInt(b, sum)
	}
	return f.appendMGet(b)
}

// appendMGet interleaves the parts' arrays back into the order of the keys.
func (f *fanout) appendMGet(b []byte) []byte {
	for i := range f.parts {
		p := &f.parts[i]
		n, hdr, ok := arrayHeader(p.req.Reply)
		if !ok || n != p.keys {
			return appendError(b, msgBadPartReply)
		}
		p.cursor = hdr
	}
	start := len(b)
	b = appendArrayHeader(b, len(f.keyPart))
	for _, pi := range f.keyPart {
		p := &f.parts[pi]
		size, err := router.ScanReply(p.req.Reply[p.cursor:])
		if err != nil || size == 0 {
			return appendError(b[:start], msgBadPartReply)
		}
		b = append(b, p.req.Reply[p.cursor:p.cursor+size]...)
		p.cursor += size
	}
	return b
}

const msgBadPartReply = "ERR slotproxy: unexpected reply from a master to a split command"

// arrayHeader reads "*<n>\r\n" and returns n and the header's length.
func arrayHeader(b []byte) (n, size int, ok bool) {
	if len(b) < 4 || b[0] != '*' {
		return 0, 0, false
	}
	end := bytes.IndexByte(b, '\r')
	if end < 0 {
		return 0, 0, false
	}
	v, err := strconv.Atoi(string(b[1:end]))
	return v, end + 2, err == nil
}

// parseIntReply reads ":<n>\r\n".
func parseIntReply(b []byte) (int64, bool) {
	if len(b) < 4 || b[0] != ':' {
		return 0, false
	}
	v, err := strconv.ParseInt(string(b[1:len(b)-2]), 10, 64)
	return v, err == nil
}
