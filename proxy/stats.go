package proxy

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotproxy/slotproxy/metrics"
	"github.com/slotproxy/slotproxy/router"
)

// Commands are counted by name. The names are a label's values, so they
// are bounded: every command a table has ever listed gets a small number,
// process-wide, up to maxCommandIDs; later ones, and names no table knows,
// count as "other" (number 0).
const maxCommandIDs = 512

var commandIDs = struct {
	sync.Mutex
	ids   map[string]uint16
	names []string
}{ids: map[string]uint16{}, names: []string{"other"}}

// commandID returns the number of a top-level command name ("config" for
// "config|get").
func commandID(name string) uint16 {
	if i := strings.IndexByte(name, '|'); i >= 0 {
		name = name[:i]
	}
	commandIDs.Lock()
	defer commandIDs.Unlock()
	if id, ok := commandIDs.ids[name]; ok {
		return id
	}
	if len(commandIDs.names) >= maxCommandIDs {
		return 0
	}
	id := uint16(len(commandIDs.names))
	commandIDs.ids[name] = id
	commandIDs.names = append(commandIDs.names, name)
	return id
}

func commandNames() []string {
	commandIDs.Lock()
	defer commandIDs.Unlock()
	return commandIDs.names
}

// Results of a command, the label values of slotproxy_commands_total: an
// error reply; else a reply that needed a MOVED or ASK followed, or a
// retry; else ok.
const (
	resultOK = iota
	resultError
	resultRedirected
	resultRetried
	numResults
)

var resultNames = [numResults]string{"ok", "error", "redirected", "retried"}

// Latency is kept per command family, from the command's ACL categories:
// the first of these a command has names its family. Commands that may
// block (BLPOP, XREAD, WAIT, ...) are a family of their own, "blocking",
// whose latency is mostly the wait the client asked for.
var families = []string{
	"blocking", "string", "hash", "list", "set", "sortedset", "stream", "bitmap", "hyperloglog", "geo",
	"pubsub", "scripting", "transaction", "keyspace", "connection", "server",
}

const (
	familyOther    = 0 // families are numbered from 1 in the order above
	familyBlocking = 1
)

// familyOfCommand is familyOf for a command, the blocking ones first.
func familyOfCommand(c *Command, categories []string) uint8 {
	if c.Flags&CmdBlocking != 0 || c.Name == "wait" || c.Name == "waitaof" {
		return familyBlocking
	}
	return familyOf(categories)
}

func familyOf(categories []string) uint8 {
	for i, f := range families {
		for _, c := range categories {
			if strings.EqualFold(strings.TrimPrefix(c, "@"), f) {
				return uint8(i + 1)
			}
		}
	}
	return familyOther
}

func familyName(f uint8) string {
	if f == familyOther || int(f) > len(families) {
		return "other"
	}
	return families[f-1]
}

// stats are the figures the proxy keeps for its metrics and INFO. Every
// field is an atomic that the sessions add to; they are read at scrape
// time. A Server built with Options.NoStats keeps none, and its sessions
// skip every count.
type stats struct {
	commands [maxCommandIDs][numResults]atomic.Uint64
	latency  []*metrics.Histogram // by family

	// Bytes read from and written to clients gone; the sessions count
	// their own, uncontended, and are summed at scrape time.
	goneIn, goneOut atomic.Uint64
	closed          [numClosedReasons]atomic.Uint64
}

func newStats() *stats {
	st := &stats{latency: make([]*metrics.Histogram, len(families)+1)}
	for i := range st.latency {
		st.latency[i] = metrics.NewHistogram()
	}
	return st
}

// result classifies a reply to a client.
func result(reply []byte, r *router.Request) int {
	switch {
	case len(reply) > 0 && (reply[0] == '-' || reply[0] == '!'):
		return resultError
	case r == nil:
		return resultOK
	case r.Redirected():
		return resultRedirected
	case r.Retried():
		return resultRetried
	}
	return resultOK
}

// netBytes returns the bytes read from and written to all clients, gone
// and connected.
func (s *Server) netBytes() (in, out uint64) {
	st := s.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	in, out = st.goneIn.Load(), st.goneOut.Load()
	for c := range s.sessions {
		in += c.netIn.Load()
		out += c.netOut.Load()
	}
	return in, out
}

// done counts one command of s answered with reply, took after its batch
// began.
func (st *stats) done(s *session, cmd *Command, reply []byte, r *router.Request, took time.Duration) {
	s.cmds.Add(1)
	var id uint16
	var fam uint8
	if cmd != nil {
		id, fam = cmd.id, cmd.family
	}
	st.commands[id][result(reply, r)].Add(1)
	st.latency[fam].Observe(took)
}

// countIn counts n bytes read from the client.
func (s *session) countIn(n int) {
	if s.srv.stats != nil && n > 0 {
		s.netIn.Add(uint64(n))
	}
}

// results sums the command counts by result.
func (st *stats) results() (sum [numResults]uint64) {
	for id := range st.commands {
		for r := range numResults {
			sum[r] += st.commands[id][r].Load()
		}
	}
	return sum
}

// account counts a command of the batch answered with reply, took after
// the batch was read, and keeps it in the slow log if it was slow.
func (s *session) account(e *entry, reply []byte, took time.Duration) {
	if st := s.srv.stats; st != nil {
		st.done(s, e.cmd, reply, e.req, took)
	}
	if s.srv.slowlog.slow(took) {
		s.recordSlow(e, took)
	}
}

// recordSlow adds an entry to the slow log. A command routed to one master
// is shown with its arguments, its node and the time its node took; one
// the proxy answered itself or split across masters by its name only.
//
//go:noinline
func (s *session) recordSlow(e *entry, took time.Duration) {
	var args [][]byte
	var node string
	var wait time.Duration
	if r := e.req; r != nil {
		node, wait = r.Served()
		if r.Raw != nil {
			var parsed request
			var inline []byte
			if n, err := parseRequest(r.Raw, &parsed, &inline); err == nil && n > 0 {
				args = parsed.args
			}
		}
	}
	if args == nil && e.cmd != nil {
		name, _, _ := strings.Cut(e.cmd.Name, "|")
		args = [][]byte{[]byte(name)}
	}
	if args == nil {
		return
	}
	s.srv.slowlog.record(args, took, wait, node, s)
}
