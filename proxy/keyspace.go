package proxy

import (
	"bytes"
	"math/rand/v2"
	"strconv"

	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// Commands over the whole keyspace: each master holds a part of it.

// mergeKeys answers KEYS with every master's keys. A key that a slot
// migration shows on two masters at once is listed once.
func mergeKeys(s *session, b []byte, parts []value) []byte {
	var keys [][]byte
	seen := make(map[string]bool)
	for _, p := range parts {
		for _, k := range p.elems {
			if !seen[string(k.str)] {
				seen[string(k.str)] = true
				keys = append(keys, k.str)
			}
		}
	}
	b = appendArrayHeader(b, len(keys))
	for _, k := range keys {
		b = appendBulk(b, k)
	}
	return b
}

// mergeMin answers with the smallest integer (LASTSAVE: the time since
// which every master's data is saved).
func mergeMin(s *session, b []byte, parts []value) []byte {
	m := parts[0].num
	for _, p := range parts[1:] {
		m = min(m, p.num)
	}
	return appendInt(b, m)
}

// numSlots is the size of the slot space a SCAN cursor walks.
const numSlots = 16384

// scanJob serves SCAN. Its cursor names a position in the slot space,
// not a node's cursor, so it stays valid whatever happens to the cluster
// between two calls (a failover gives a slot a master whose dict has
// another order; a reshard moves it): the low 14 bits are the next slot to
// visit, the bits above them how many slots the next call visits. That
// window is sized so that a call returns about COUNT keys, from the keys
// per slot the call before found (from DBSIZE for the first call); a slot
// is the smallest step, as a slot's key list has no cursor of its own.
// A call:
//
//  1. CLUSTER GETKEYSINSLOT for each slot, to its master, followed on
//     the same connection by CLUSTER NODES to that master: a slot that
//     master still owns then, and is not migrating, kept all its keys
//     there while they were listed.
//  2. For any other slot (in migration, or moved since the table was
//     read), GETKEYSINSLOT again to every master: a key only moves from
//     the source to the target, so asking the target after the source
//     finds every key that was in either.
//  3. With TYPE, TYPE of each key that matched.
//
// A key present for the whole iteration is therefore returned at least
// once; one that moved during a call may be returned twice, as SCAN
// allows.
type scanJob struct {
	start, end int // the slots of this call
	count      int // the client's COUNT
	first      bool
	sizes      []*router.Request // the first call's DBSIZE of every master
	found      int               // keys the call found before MATCH
	match      []byte
	typ        []byte
	round      int
	reqs       []*router.Request
	views      []*router.Request // round 1's CLUSTER NODES, one per master
	keys       [][]byte
	types      []*router.Request
	err        []byte // an error reply from a part
}

func (s *session) scan(args [][]byte) {
	cursor, ok := parseCursor(args[1])
	if !ok {
		s.replyError("ERR invalid cursor")
		return
	}
	j := &scanJob{start: int(cursor % numSlots), first: cursor == 0}
	count := int64(10)
	for i := 2; i < len(args); i += 2 {
		if i+1 >= len(args) {
			s.replyError(msgSyntax)
			return
		}
		opt, val := args[i], args[i+1]
		switch {
		case bytes.EqualFold(opt, []byte("count")):
			n, ok := string2ll(val)
			if !ok {
				s.replyError(msgNotInteger)
				return
			}
			if n < 1 {
				s.replyError(msgSyntax)
				return
			}
			count = int64(n)
		case bytes.EqualFold(opt, []byte("match")):
			j.match = val
			if len(val) == 1 && val[0] == '*' {
				j.match = nil
			}
		case bytes.EqualFold(opt, []byte("type")):
			j.typ = val
		default:
			s.replyError(msgSyntax)
			return
		}
	}
	// The arguments alias the read buffer, which the next batch reuses.
	j.match = bytes.Clone(j.match)
	j.typ = bytes.Clone(j.typ)
	j.count = int(min(count, numSlots*numSlots))
	if !j.first {
		j.setWindow(int(min(cursor/numSlots, numSlots)))
	}
	s.startJob(j, true)
}

// setWindow makes the call visit window slots from start, at least one.
func (j *scanJob) setWindow(window int) {
	j.end = min(j.start+max(window, 1), numSlots)
}

// maxWindowGrowth bounds how much the window may grow from one call to
// the next, so that a run of empty slots does not make the next call take
// in a dense part of the keyspace whole.
const maxWindowGrowth = 8

// nextWindow sizes the next call's window from what this one found.
func (j *scanJob) nextWindow() int {
	w := j.end - j.start
	next := w * maxWindowGrowth
	if j.found > 0 {
		next = min(next, (j.count*w+j.found-1)/j.found)
	}
	return min(max(next, 1), numSlots)
}

func (j *scanJob) next(s *session) bool {
	if j.first {
		// The first call sizes its window by the keys per slot over the
		// whole cluster.
		if j.sizes == nil {
			for _, m := range s.masters() {
				j.sizes = append(j.sizes, s.jobSend([]byte("*1\r\n$6\r\nDBSIZE\r\n"), router.NoSlot, m, true))
			}
			if len(j.sizes) > 0 {
				return true
			}
		}
		j.first = false
		total := 0
		for _, r := range j.sizes {
			if v, ok := parseValue(r.Reply); ok && v.typ == ':' {
				total += int(v.num)
			}
		}
		j.setWindow(int(min(int64(j.count)*numSlots/int64(max(total, 1)), numSlots)))
	}
	for j.round < 3 {
		j.round++
		if j.send(s) {
			return true
		}
	}
	return false
}

// send sends the job's round, if it has anything to send.
func (j *scanJob) send(s *session) bool {
	switch j.round {
	case 1:
		t := s.jobTable
		if t == nil {
			t = s.srv.router.Table()
		}
		owners := map[string]bool{}
		for slot := j.start; slot < j.end; slot++ {
			j.reqs = append(j.reqs, s.jobSend(getKeysInSlot(slot), slot, "", true))
			if t != nil {
				owners[t.Master(uint16(slot))] = true
			}
		}
		for m := range owners {
			if m != "" {
				j.views = append(j.views, s.jobSend([]byte("*2\r\n$7\r\nCLUSTER\r\n$5\r\nNODES\r\n"), router.NoSlot, m, true))
			}
		}
		return len(j.reqs) > 0
	case 2:
		j.collect()
		stable := j.stableSlots()
		t := s.srv.router.Table()
		if t == nil {
			j.err = appendError(nil, router.MsgNoTable)
			return false
		}
		masters := mastersOf(t)
		for slot := j.start; slot < j.end && j.err == nil; slot++ {
			if stable[slot-j.start] {
				continue
			}
			for _, m := range masters {
				j.reqs = append(j.reqs, s.jobSend(getKeysInSlot(slot), router.NoSlot, m, true))
			}
		}
		return len(j.reqs) > 0
	case 3:
		j.collect()
		j.found = len(j.keys)
		j.filterMatch()
		if j.typ == nil || j.err != nil {
			return false
		}
		for _, k := range j.keys {
			j.types = append(j.types, s.jobSend(appendCommand(nil, [][]byte{[]byte("TYPE"), k}), int(slotmap.Slot(k)), "", true))
		}
		return len(j.types) > 0
	}
	return false
}

// parseCursor reads a SCAN cursor as redis-server does, with C's strtoul:
// a sign is allowed ("-1" is the largest cursor), leading space and
// trailing bytes are not, and an empty cursor is 0.
func parseCursor(b []byte) (uint64, bool) {
	// strtoul reads a C string: it ends at a NUL.
	if z := bytes.IndexByte(b, 0); z >= 0 {
		b = b[:z]
	}
	neg := false
	digits := b
	if len(b) > 0 {
		switch b[0] {
		case ' ', '\t', '\n', '\v', '\f', '\r':
			return 0, false
		case '+', '-':
			neg = b[0] == '-'
			digits = b[1:]
			if len(digits) == 0 {
				return 0, false
			}
		}
	}
	n, err := strconv.ParseUint(string(digits), 10, 64)
	if err != nil && len(digits) > 0 {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

func getKeysInSlot(slot int) []byte {
	return appendCommand(nil, [][]byte{
		[]byte("CLUSTER"), []byte("GETKEYSINSLOT"),
		strconv.AppendInt(nil, int64(slot), 10), []byte("2147483647"),
	})
}

// stableSlots reports, for each slot of the call, whether a master's
// CLUSTER NODES, read right after the slot's keys were listed on that
// master, shows it owning the slot with no migration under way.
func (j *scanJob) stableSlots() []bool {
	stable := make([]bool, j.end-j.start)
	for _, r := range j.views {
		v, ok := parseValue(r.Reply)
		if !ok || v.isError() {
			continue // the slots it owns are asked of every master
		}
		for _, line := range bytes.Split(v.str, []byte("\n")) {
			f := bytes.Fields(line)
			if len(f) < 8 || !bytes.Contains(f[2], []byte("myself")) {
				continue
			}
			busy := map[int]bool{}
			for _, tok := range f[8:] {
				if tok[0] == '[' { // [slot->-id] or [slot-<-id]
					if n, err := strconv.Atoi(string(tok[1:bytes.IndexByte(tok, '-')])); err == nil {
						busy[n] = true
					}
					continue
				}
				lo, hi, _ := bytes.Cut(tok, []byte("-"))
				a, err1 := strconv.Atoi(string(lo))
				b, err2 := a, error(nil)
				if hi != nil {
					b, err2 = strconv.Atoi(string(hi))
				}
				if err1 != nil || err2 != nil {
					continue
				}
				for slot := max(a, j.start); slot <= min(b, j.end-1); slot++ {
					stable[slot-j.start] = true
				}
			}
			for slot := range busy {
				if slot >= j.start && slot < j.end {
					stable[slot-j.start] = false
				}
			}
		}
	}
	return stable
}

// collect adds the keys of the round's replies, each once.
func (j *scanJob) collect() {
	parts, errReply := decodeParts(j.reqs)
	j.reqs = j.reqs[:0]
	if errReply != nil {
		j.err = errReply
		return
	}
	seen := make(map[string]bool, len(j.keys))
	for _, k := range j.keys {
		seen[string(k)] = true
	}
	for _, p := range parts {
		for _, k := range p.elems {
			if !seen[string(k.str)] {
				seen[string(k.str)] = true
				j.keys = append(j.keys, k.str)
			}
		}
	}
}

func (j *scanJob) filterMatch() {
	if j.match == nil {
		return
	}
	kept := j.keys[:0]
	for _, k := range j.keys {
		if globMatch(j.match, k) {
			kept = append(kept, k)
		}
	}
	j.keys = kept
}

func (j *scanJob) appendReply(s *session, b []byte) []byte {
	if j.err != nil {
		return append(b, j.err...)
	}
	keys := j.keys
	if j.typ != nil {
		kept := keys[:0:0]
		for i, r := range j.types {
			v, ok := parseValue(r.Reply)
			if !ok || v.isError() {
				return append(b, r.Reply...)
			}
			if bytes.EqualFold(v.str, j.typ) {
				kept = append(kept, keys[i])
			}
		}
		keys = kept
	}
	next := uint64(0)
	if j.end < numSlots {
		next = uint64(j.nextWindow())*numSlots + uint64(j.end)
	}
	b = appendArrayHeader(b, 2)
	b = appendBulk(b, strconv.AppendUint(nil, next, 10))
	b = appendArrayHeader(b, len(keys))
	for _, k := range keys {
		b = appendBulk(b, k)
	}
	return b
}

// randomKeyJob serves RANDOMKEY: DBSIZE of every master, then RANDOMKEY of
// one master chosen with a weight of its key count, so that every key is
// as likely as on one server.
type randomKeyJob struct {
	masters []string
	round   int
	reqs    []*router.Request
	pick    *router.Request
	err     []byte
}

func (s *session) randomKey() {
	masters := s.masters()
	if len(masters) == 0 {
		s.replyError(router.MsgNoTable)
		return
	}
	s.startJob(&randomKeyJob{masters: masters}, true)
}

func (j *randomKeyJob) next(s *session) bool {
	j.round++
	switch j.round {
	case 1:
		for _, m := range j.masters {
			j.reqs = append(j.reqs, s.jobSend([]byte("*1\r\n$6\r\nDBSIZE\r\n"), router.NoSlot, m, true))
		}
		return true
	case 2:
		parts, errReply := decodeParts(j.reqs)
		if errReply != nil {
			j.err = errReply
			return false
		}
		var total int64
		for _, p := range parts {
			total += p.num
		}
		if total <= 0 {
			return false
		}
		n := rand.Int64N(total)
		for i, p := range parts {
			if n < p.num {
				j.pick = s.jobSend([]byte("*1\r\n$9\r\nRANDOMKEY\r\n"), router.NoSlot, j.masters[i], true)
				return true
			}
			n -= p.num
		}
	}
	return false
}

func (j *randomKeyJob) appendReply(s *session, b []byte) []byte {
	switch {
	case j.err != nil:
		return append(b, j.err...)
	case j.pick == nil:
		return appendNull(b, s.proto)
	}
	return append(b, j.pick.Reply...)
}
