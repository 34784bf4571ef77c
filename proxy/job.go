package proxy

import (
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// A job is a command the proxy answers with requests of its own: one to
// every master (KEYS, DBSIZE, SCRIPT LOAD, INFO), or several rounds of them
// (SCAN, RANDOMKEY). Jobs are rare next to GET and SET, so they allocate
// freely; a batch without one pays a length check.
//
// A job runs on its session's goroutine only. Its requests complete through
// the batch like any other, so its reply takes its place in request order.
type job interface {
	// next is called when the command is handled and then each time every
	// request the job sent has its reply. It sends the next round with
	// session.jobSend and reports true, or reports false when done.
	next(s *session) bool
	// appendReply appends the job's reply, in the session's protocol.
	appendReply(s *session, b []byte) []byte
}

// startJob puts j in the batch and lets it send its first round. A job
// that sends more rounds after the first ends the batch: the client's
// later commands wait for its reply, so that none of them runs between
// two rounds on a master.
func (s *session) startJob(j job, rounds bool) {
	s.entries = append(s.entries, entry{job: j})
	s.hadJobs = true
	s.jobTable = s.table
	if j.next(s) {
		s.jobs = append(s.jobs, j)
	}
	s.jobTable = nil
	if rounds {
		s.cut = true
	}
}

// runJobs runs the rounds of the batch's jobs until all are done. The
// first round of each went with the batch.
func (s *session) runJobs() {
	for len(s.jobs) > 0 {
		s.pending.Store(1)
		active := s.jobs[:0]
		for _, j := range s.jobs {
			if j.next(s) {
				active = append(active, j)
			}
		}
		clear(s.jobs[len(active):])
		s.jobs = active
		if s.pending.Add(-1) != 0 {
			<-s.wake
		}
	}
}

// jobSend sends one request of a job: to node when it is set, else to the
// master of slot (any master for router.NoSlot). It goes on the
// connections the session's own commands use, so that it runs after them.
func (s *session) jobSend(raw []byte, slot int, node string, readOnly bool) *router.Request {
	r := s.jobRequest(raw, slot, node, readOnly)
	s.jobDo(r)
	return r
}

// jobRequest makes a request of a job, for jobDo to send.
func (s *session) jobRequest(raw []byte, slot int, node string, readOnly bool) *router.Request {
	return &router.Request{
		Raw:      raw,
		Slot:     slot,
		Node:     node,
		ReadOnly: readOnly,
		Affinity: uint32(s.id),
		RESP3:    s.proto == 3,
		Done:     s.batch,
	}
}

func (s *session) jobDo(r *router.Request) {
	s.pending.Add(1)
	s.srv.router.Do(r, s.jobTable)
}

// masters returns the addresses of the masters of the batch's table, or
// nil while there is none.
func (s *session) masters() []string {
	t := s.table
	if t == nil {
		t = s.srv.router.Table()
	}
	return mastersOf(t)
}

func mastersOf(t *slotmap.Table) []string {
	if t == nil {
		return nil
	}
	shards := t.Shards()
	addrs := make([]string, len(shards))
	for i, sh := range shards {
		addrs[i] = sh.Master.Addr
	}
	return addrs
}

// broadcast is a job that sends one command to every master (or every
// node) and merges the replies.
type broadcast struct {
	raw   []byte
	nodes []string
	ro    bool
	reqs  []*router.Request
	sent  bool
	// keepErrors gives merge the error replies too, as values.
	keepErrors bool
	urgent     bool // router.Request.Urgent
	// merge builds the reply from the parts, all decoded and none an
	// error (an error from any part is the reply, as redis-server's one
	// command would have failed).
	merge func(s *session, b []byte, parts []value) []byte
}

// sendAll answers args, sent as they are to every master, with merge.
func (s *session) sendAll(args [][]byte, readOnly bool, merge func(*session, []byte, []value) []byte) {
	s.sendNodes(s.masters(), appendCommand(nil, args), readOnly, merge)
}

// sendKill sends SCRIPT KILL or FUNCTION KILL to every master, over
// connections that carry nothing else: on the shared one, it would wait
// behind the very script it is meant to stop. merge sees every part's
// reply, errors included.
func (s *session) sendKill(args [][]byte, merge func(*session, []byte, []value) []byte) {
	s.startBroadcast(&broadcast{raw: appendCommand(nil, args), nodes: s.masters(), keepErrors: true, urgent: true, merge: merge})
}

// sendNodes answers raw, sent to each of nodes, with merge.
func (s *session) sendNodes(nodes []string, raw []byte, readOnly bool, merge func(*session, []byte, []value) []byte) {
	s.startBroadcast(&broadcast{raw: raw, nodes: nodes, ro: readOnly, merge: merge})
}

func (s *session) startBroadcast(j *broadcast) {
	if len(j.nodes) == 0 {
		s.replyError(router.MsgNoTable)
		return
	}
	s.startJob(j, false)
}

func (j *broadcast) next(s *session) bool {
	if j.sent {
		return false
	}
	j.sent = true
	for _, n := range j.nodes {
		r := s.jobRequest(j.raw, router.NoSlot, n, j.ro)
		r.Urgent = j.urgent
		j.reqs = append(j.reqs, r)
		s.jobDo(r)
	}
	return true
}

func (j *broadcast) appendReply(s *session, b []byte) []byte {
	if j.keepErrors {
		parts := make([]value, len(j.reqs))
		for i, r := range j.reqs {
			v, ok := parseValue(r.Reply)
			if !ok {
				return appendError(b, msgBadPartReply)
			}
			parts[i] = v
		}
		return j.merge(s, b, parts)
	}
	parts, errReply := decodeParts(j.reqs)
	if errReply != nil {
		return append(b, errReply...)
	}
	return j.merge(s, b, parts)
}

// decodeParts decodes the replies of reqs. When one is an error, or not
// a reply at all, that error reply is returned instead.
func decodeParts(reqs []*router.Request) ([]value, []byte) {
	parts := make([]value, len(reqs))
	for i, r := range reqs {
		v, ok := parseValue(r.Reply)
		if !ok {
			return nil, appendError(nil, msgBadPartReply)
		}
		if v.isError() {
			return nil, r.Reply
		}
		parts[i] = v
	}
	return parts, nil
}

// mergeFirst answers with the first part's reply as it came: the parts
// all say the same (OK, a sha1).
func mergeFirst(s *session, b []byte, parts []value) []byte {
	return appendValue(b, parts[0], s.proto)
}

// mergeSum answers with the sum of integer replies (DBSIZE).
func mergeSum(s *session, b []byte, parts []value) []byte {
	var sum int64
	for _, p := range parts {
		sum += p.num
	}
	return appendInt(b, sum)
}

// appendValue encodes v in proto; the proxy's own replies built from
// decoded parts use it.
func appendValue(b []byte, v value, proto int) []byte {
	switch v.typ {
	case '+':
		return appendSimple(b, string(v.str))
	case '-', '!':
		return appendError(b, string(v.str))
	case ':', '#':
		if v.typ == '#' {
			return appendBool(b, v.num == 1, proto)
		}
		return appendInt(b, v.num)
	case '_':
		return appendNull(b, proto)
	case ',':
		if proto >= 3 {
			return append(append(append(b, ','), v.str...), '\r', '\n')
		}
		return appendBulk(b, v.str)
	case '(':
		if proto >= 3 {
			return append(append(append(b, '('), v.str...), '\r', '\n')
		}
		return appendBulk(b, v.str)
	case '$', '=':
		if v.null {
			return appendNull(b, proto)
		}
		if v.typ == '=' {
			return appendVerbatim(b, string(v.str), proto)
		}
		return appendBulk(b, v.str)
	case '%':
		if v.null {
			return appendNullArray(b, proto)
		}
		b = appendMapHeader(b, len(v.elems)/2, proto)
	case '~':
		b = appendSetHeader(b, len(v.elems), proto)
	default: // '*', '>'
		if v.null {
			return appendNullArray(b, proto)
		}
		b = appendArrayHeader(b, len(v.elems))
	}
	for _, e := range v.elems {
		b = appendValue(b, e, proto)
	}
	return b
}

// routedJob is one request routed by its slot, whose reply the proxy
// rewrites with merge; an error reply passes as it is.
type routedJob struct {
	r     *router.Request
	sent  bool
	merge func(s *session, b []byte, v value) []byte
}

func (j *routedJob) next(s *session) bool {
	if j.sent {
		return false
	}
	j.sent = true
	s.jobDo(j.r)
	return true
}

func (j *routedJob) appendReply(s *session, b []byte) []byte {
	v, ok := parseValue(j.r.Reply)
	switch {
	case !ok:
		return appendError(b, msgBadPartReply)
	case v.isError():
		return append(b, j.r.Reply...)
	}
	return j.merge(s, b, v)
}
