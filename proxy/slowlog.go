package proxy

// The proxy's own slow log. SLOWLOG GET, LEN and RESET answer with the
// requests that took at least a threshold through the proxy, as a
// redis-server answers with the commands that took it long to run. A
// node's own slow log is not shown: it would be one node of several, and
// would name the proxy's connections rather than the client. Operators
// read it on the node.
//
// The session calls slow once per completed request, and record only for
// the slow ones:
//
//	if s.srv.slowlog.slow(took) {
//		s.srv.slowlog.record(args, took, wait, node, s)
//	}

import (
	"bytes"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// An entry keeps at most slowlogMaxArgs arguments, the last of them
	// then saying how many more there were, and at most slowlogMaxBytes
	// bytes of each, followed by how many more: redis-server's bounds and
	// words, so that a huge MSET costs the log little and reads the same.
	slowlogMaxArgs  = 32
	slowlogMaxBytes = 128

	defaultSlowlogThreshold = 10 * time.Millisecond // slowlog-log-slower-than 10000
	defaultSlowlogMaxLen    = 128                   // slowlog-max-len

	// slowlogOff is the threshold of a log that keeps nothing: no request
	// takes that long, so slow stays one comparison.
	slowlogOff = math.MaxInt64
)

// redacted stands for an argument kept out of the log, in redis-server's
// word.
const redacted = "(redacted)"

// slowLog holds the last slow requests. slow is on every request's path
// and only loads the threshold; the rest runs for slow requests and the
// SLOWLOG command, under mu.
type slowLog struct {
	threshold atomic.Int64 // ns; slowlogOff when off
	maxLen    int
	// backendFields appends the argument count, the node and the time
	// spent waiting for it to each entry of SLOWLOG GET.
	backendFields bool

	mu     sync.Mutex
	ring   []slowEntry // grows to maxLen, then the oldest entry gives way
	oldest int         // index in ring of the oldest entry
	nextID int64       // never reset, as in redis-server: readers tell new entries by id
}

// slowEntry is one slow request, with copies of what it keeps.
type slowEntry struct {
	id      int64
	unix    int64 // when it was logged, unix seconds
	took    time.Duration
	args    [][]byte // truncated and redacted, in one buffer
	argc    int      // the request's own argument count
	addr    string   // the client's ip:port
	name    string   // the client's name, "" without one
	node    string   // the node that served it, "" for none
	backend time.Duration
}

// init sets the log up from Options' fields, defaults applied.
func (l *slowLog) init(threshold time.Duration, maxLen int, backendFields bool) {
	l.maxLen = maxLen
	l.backendFields = backendFields
	l.setThreshold(threshold)
}

// setThreshold is SetSlowlogThreshold's meaning: negative keeps nothing,
// zero every request.
func (l *slowLog) setThreshold(d time.Duration) {
	if d < 0 {
		l.threshold.Store(slowlogOff)
		return
	}
	l.threshold.Store(int64(d))
}

// SetSlowlogThreshold changes, for the requests that complete from now on,
// how long one must take to be kept in the slow log: a negative d keeps
// none, zero keeps every request, as slowlog.threshold and redis-server's
// slowlog-log-slower-than mean. Unlike Options.SlowlogThreshold, zero is
// not "the default": this sets a configured value, not an absent one.
func (s *Server) SetSlowlogThreshold(d time.Duration) { s.slowlog.setThreshold(d) }

// on reports whether the log keeps anything.
func (l *slowLog) on() bool { return l.threshold.Load() != slowlogOff }

// slow reports whether a request that took took belongs in the log.
func (l *slowLog) slow(took time.Duration) bool {
	return int64(took) >= l.threshold.Load()
}

// record adds a request to the log: args, valid only during the call, as
// the client sent them; took, its whole time through the proxy; backend,
// the part of it spent waiting for node. client may be nil (a request of
// the proxy's own).
func (l *slowLog) record(args [][]byte, took, backend time.Duration, node string, client *session) {
	e := slowEntry{
		unix:    time.Now().Unix(),
		took:    took,
		args:    keptArgs(args),
		argc:    len(args),
		node:    node,
		backend: backend,
	}
	if client != nil {
		if client.nc != nil {
			e.addr = addrString(client.nc.RemoteAddr())
		}
		e.name = client.clientMeta().name
	}
	l.mu.Lock()
	e.id = l.nextID
	l.nextID++
	if len(l.ring) < l.maxLen {
		l.ring = append(l.ring, e)
	} else {
		l.ring[l.oldest] = e
		l.oldest = (l.oldest + 1) % len(l.ring)
	}
	l.mu.Unlock()
}

// keptArgs copies what an entry keeps of args: at most slowlogMaxArgs
// arguments of at most slowlogMaxBytes bytes each, with what
// redis-server redacts replaced.
func keptArgs(args [][]byte) [][]byte {
	n := min(len(args), slowlogMaxArgs)
	hidden := redactions(args)
	size := 0
	for i := range n {
		size += min(len(args[i]), slowlogMaxBytes) + 32 // room for the words that follow a cut
	}
	buf := make([]byte, 0, size)
	kept := make([][]byte, n)
	for i := range n {
		start := len(buf)
		a := args[i]
		switch {
		case n < len(args) && i == n-1:
			buf = append(buf, "... ("...)
			buf = strconv.AppendInt(buf, int64(len(args)-n+1), 10)
			buf = append(buf, " more arguments)"...)
		case hidden&(1<<i) != 0:
			buf = append(buf, redacted...)
		case len(a) > slowlogMaxBytes:
			buf = append(buf, a[:slowlogMaxBytes]...)
			buf = append(buf, "... ("...)
			buf = strconv.AppendInt(buf, int64(len(a)-slowlogMaxBytes), 10)
			buf = append(buf, " more bytes)"...)
		default:
			buf = append(buf, a...)
		}
		kept[i] = buf[start:len(buf):len(buf)]
	}
	return kept
}

// redactions returns, as bits by position, the arguments of args that
// name a password or a user, which redis-server keeps out of its slow log:
// AUTH's, HELLO's AUTH option's, MIGRATE's AUTH and AUTH2 options', the
// values of CONFIG SET's sensitive parameters, ACL SETUSER's. The proxy
// hides a little more than redis-server: AUTH with too many arguments, and
// options after one it cannot parse, may still carry a password. Only the
// positions an entry keeps matter, so a long command is not read to its
// end.
func redactions(args [][]byte) (hidden uint64) {
	if len(args) == 0 {
		return 0
	}
	is := func(a []byte, word string) bool { return bytes.EqualFold(a, []byte(word)) }
	end := min(len(args), slowlogMaxArgs)
	switch name := args[0]; {
	case is(name, "auth"):
		return math.MaxUint64 &^ 1 // every argument
	case is(name, "hello"):
		for i := 1; i < end; i++ {
			switch {
			case is(args[i], "auth") && i+2 < len(args):
				hidden |= 3 << (i + 1)
				i += 2
			case is(args[i], "setname"):
				i++
			}
		}
	case is(name, "migrate"):
		// MIGRATE host port key db timeout [COPY] [REPLACE] [AUTH password]
		// [AUTH2 username password] [KEYS key ...]
		for i := 6; i < end; i++ {
			switch {
			case is(args[i], "auth"):
				hidden |= 1 << (i + 1)
				i++
			case is(args[i], "auth2"):
				hidden |= 3 << (i + 1)
				i += 2
			case is(args[i], "keys"):
				return hidden
			}
		}
	case is(name, "config") && len(args) > 1 && is(args[1], "set"):
		for i := 2; i+1 < len(args) && i < end; i += 2 {
			if sensitiveConfig(args[i]) {
				hidden |= 1 << (i + 1)
			}
		}
	case is(name, "acl") && len(args) > 2 && is(args[1], "setuser"):
		return math.MaxUint64 &^ 3 // every argument from the user name on
	}
	return hidden
}

// sensitiveConfig reports whether CONFIG SET's parameter p is a secret:
// those redis-server redacts, and the TLS key passphrases.
func sensitiveConfig(p []byte) bool {
	for _, s := range []string{
		"requirepass", "masterauth", "masteruser",
		"tls-key-file-pass", "tls-client-key-file-pass",
	} {
		if bytes.EqualFold(p, []byte(s)) {
			return true
		}
	}
	return false
}

// slowlogHelp is SLOWLOG HELP, word for word redis-server 7's: clients
// and people compare it with a node's.
var slowlogHelp = []string{
	"SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"GET [<count>]",
	"    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
	"    Entries are made of:",
	"    id, timestamp, time in microseconds, arguments array, client IP and port,",
	"    client name",
	"LEN",
	"    Return the length of the slowlog.",
	"RESET",
	"    Reset the slowlog.",
	"HELP",
	"    Prints this help.",
}

const msgSlowlogCount = "ERR count should be greater than or equal to -1"

// slowlogCommand serves SLOWLOG GET, LEN, RESET and HELP over the
// proxy's own log, with redis-server's replies and errors. Every reply is
// an array, an integer or a status in both protocols, as redis-server's.
func (s *session) slowlogCommand(cmd *Command, args [][]byte) []byte {
	l := &s.srv.slowlog
	b := s.local
	switch sub := cmd.Name[len("slowlog|"):]; {
	case sub == "help" && len(args) == 2:
		b = appendArrayHeader(b, len(slowlogHelp))
		for _, line := range slowlogHelp {
			b = appendSimple(b, line)
		}
		return b
	case sub == "reset" && len(args) == 2:
		l.reset()
		return appendSimple(b, "OK")
	case sub == "len" && len(args) == 2:
		return appendInt(b, int64(l.len()))
	case sub == "get" && len(args) <= 3:
		count := 10
		if len(args) == 3 {
			n, ok := string2ll(args[2])
			if !ok || n < -1 {
				return appendError(b, msgSlowlogCount)
			}
			count = n
		}
		return l.appendGet(b, count)
	}
	return appendError(b, sanitize("ERR unknown subcommand or wrong number of arguments for '"+
		string(cstr(args[1], 128))+"'. Try SLOWLOG HELP."))
}

func (l *slowLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ring)
}

func (l *slowLog) reset() {
	l.mu.Lock()
	clear(l.ring) // let the arguments go
	l.ring = l.ring[:0]
	l.oldest = 0
	l.mu.Unlock()
}

// appendGet appends SLOWLOG GET's reply: up to count entries (all for
// -1), newest first. Each is redis-server 7's six fields; with
// backendFields, three more follow: the request's argument count (an
// integer, where Redis 8.10 puts it, so that clients that read it there
// find one), the node and the microseconds spent waiting for it.
func (l *slowLog) appendGet(b []byte, count int) []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.ring)
	if count < 0 || count > n {
		count = n
	}
	fields := 6
	if l.backendFields {
		fields = 9
	}
	b = appendArrayHeader(b, count)
	for i := range count {
		e := &l.ring[(l.oldest+n-1-i)%n]
		b = appendArrayHeader(b, fields)
		b = appendInt(b, e.id)
		b = appendInt(b, e.unix)
		b = appendInt(b, e.took.Microseconds())
		b = appendArrayHeader(b, len(e.args))
		for _, a := range e.args {
			b = appendBulk(b, a)
		}
		b = appendBulkString(b, e.addr)
		b = appendBulkString(b, e.name)
		if l.backendFields {
			b = appendInt(b, int64(e.argc))
			b = appendBulkString(b, e.node)
			b = appendInt(b, e.backend.Microseconds())
		}
	}
	return b
}
