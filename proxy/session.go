package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slotproxy/slotproxy/internal/sockio"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

const (
	readBufferSize = 16 << 10
	// maxBatch bounds the commands of one client answered together: a
	// client pipelining more waits for the first replies to be written.
	// (A split command counts once, whatever its number of parts.)
	maxBatch = 1024
	// maxKeptBuffer is the largest buffer a session keeps between batches.
	maxKeptBuffer = 64 << 10
	// closeGrace is how long a closing session waits for its client to
	// read the replies still in its backlog.
	closeGrace = 30 * time.Second
)

// session serves one client connection: it reads every complete command
// already received, answers or routes each, waits for the routed ones, then
// writes all replies in request order with one write.
//
// An idle session holds only this struct, its socket and its goroutine:
// the read and write buffers and the batch state are pooled, taken when
// bytes arrive and given back when the client has been answered.
type session struct {
	srv *Server
	nc  net.Conn
	id  uint64

	rbuf       []byte // nil while idle
	rpos, rend int
	raw        syscall.RawConn       // nil when the connection is not a plain socket
	readFn     func(fd uintptr) bool // s.readReady, made once
	readN      int                   // what readReady read
	readErr    error
	writeFn    func(fd uintptr) bool // s.writeReady, made once
	writeB     []byte                // what writeReady writes
	writeN     int                   // what it wrote
	writeErr   error
	fd         int          // the socket, for the parker; -1 without one
	inEpoll    bool         // the socket is in the parker's set
	parked     atomic.Bool  // waiting in the parker's set, without a goroutine
	idleSince  atomic.Int64 // unix ns when the wait for the client began (parked or not); 0 while busy
	kicked     atomic.Bool  // the sweeper ended that wait so that the session parks

	*batch // nil while idle

	out *backlog // replies the client has not taken yet; nil until it falls behind

	authed bool
	// user is who AUTH said the client is; nil: the default user. Atomic
	// for CLIENT LIST, answered by other sessions.
	user atomic.Pointer[userEntry]
	quit bool // close once this batch is answered
	// http: the client sent POST or Host:, the lines of an HTTP request
	// (a web page making a browser talk to the proxy): the connection is
	// closed without a reply, as redis-server does.
	http  bool
	proto int // the RESP version the client speaks: 2, or 3 after HELLO 3

	// replyMode is CLIENT REPLY's state; replyCmd says the command just
	// handled was CLIENT REPLY.
	replyMode replyMode
	replyCmd  bool

	script []byte // the SCRIPT LOAD command for the next request forwarded

	// held is what the session holds beyond one batch: a transaction, a
	// dedicated backend connection, subscriptions. nil for most sessions,
	// so that the others pay one comparison per command.
	held *held
	// directReplies counts the replies the completion wrote (direct.go).
	directReplies atomic.Uint64
	// The client's bytes read and written and commands answered, for
	// CLIENT LIST and, with those of clients gone, the metrics (stats.go).
	netIn, netOut, cmds atomic.Uint64
	// blockedOn is the dedicated connection a blocking command waits on,
	// for CLIENT UNBLOCK from other sessions.
	blockedOn atomic.Pointer[router.Lease]
	shown     atomic.Pointer[heldShown] // for CLIENT LIST; nil: nothing held

	// What CLIENT LIST and CLIENT INFO show of the session, read by other
	// sessions: set here, copied on write.
	created      int64                      // unix ns
	meta         atomic.Pointer[clientMeta] // nil until the client says something of itself
	lastRun      atomic.Pointer[Command]    // the last command of the last batch, for CLIENT LIST
	lastResolved *Command                   // the last command handled, a subcommand as itself
	killed       atomic.Bool                // CLIENT KILL closed the connection

	// The masters written to since the last WAIT, as bits of shard
	// indexes of waitTable; waitAll when that cannot say it.
	waitTable *slotmap.Table
	waitMask  uint64
	waitAll   bool
}

type replyMode uint8

const (
	replyOn   replyMode = iota
	replyOff            // CLIENT REPLY OFF: no replies until ON
	replySkip           // CLIENT REPLY SKIP: no reply to the next command
)

// batch is the state of answering one batch of commands, reused from batch
// to batch and, through batchPool, from session to session.
type batch struct {
	parsed request
	inline []byte // unquoted words of inline commands
	keys   []int  // scratch for key positions

	entries []entry
	local   []byte            // replies the proxy made itself
	reqs    []*router.Request // reusable requests; the first nreq are in use
	raws    [][]byte          // commands encoded by the proxy, by request
	nreq    int
	fans    []*fanout // reusable split commands; the first nfan are in use
	nfan    int
	wbuf    []byte

	slotParts map[uint16]int32 // scratch for split: slot -> part

	jobs     []job          // jobs with rounds still to run
	jobTable *slotmap.Table // what a job's first round is routed by
	hadJobs  bool           // entries hold jobs to clear
	// cut ends the batch after the command just handled: a job with
	// several rounds runs them before the client's next command.
	cut bool
	// written counts the entries whose replies went to the client
	// before the batch ended (held.go, flushEarlier).
	written int

	// The last command name looked up, as the client spelled it, and what
	// it found in which table: a pipeline mostly repeats one command, and
	// comparing a few bytes is cheaper than lower-casing and hashing them.
	lastName  [16]byte
	lastLen   int
	lastCmd   *Command
	lastTable *Table

	// table is the slot table the whole batch is routed by, so that a
	// table change in the middle of it cannot send a later command to a
	// new owner before an earlier one, sent to the old, follows its MOVED.
	table *slotmap.Table

	// pending counts the routed requests not answered yet, plus one held
	// while the batch is being dispatched; wake has room for the signal
	// that it reached zero.
	pending atomic.Int32
	wake    chan struct{}

	// direct says the completion writes the batch's only reply to the
	// client (direct.go); owner is the session it writes to, spent the
	// read buffer it frees, directErr what the write returned.
	direct    bool
	owner     *session
	spent     []byte
	directErr error

	// timed says the batch is measured, for the stats or the slow log:
	// began is then when its commands were read, and cmdNow the command
	// being handled, for its entry (stats.go).
	timed  bool
	began  time.Time
	cmdNow *Command
}

var batchPool = sync.Pool{New: func() any { return &batch{wake: make(chan struct{}, 1)} }}

// entry is one command of the batch: a routed request, a split command, or
// a local reply.
type entry struct {
	req      *router.Request
	fan      *fanout
	job      job
	off, end int      // local[off:end] when req, fan and job are nil
	mute     bool     // CLIENT REPLY OFF or SKIP: the client gets no reply
	cmd      *Command // what it is counted as; nil: an unknown command
}

func newSession(srv *Server, nc net.Conn, id uint64) *session {
	s := &session{
		srv:     srv,
		nc:      nc,
		id:      id,
		fd:      -1,
		authed:  !srv.authRequired(),
		proto:   2,
		created: time.Now().UnixNano(),
	}
	if sc, ok := nc.(syscall.Conn); ok && isTCP(nc) {
		if raw, err := sc.SyscallConn(); err == nil {
			s.raw = raw
			s.readFn = s.readReady
			s.writeFn = s.writeReady
			raw.Control(func(fd uintptr) { s.fd = int(fd) })
		}
	}
	return s
}

// Complete is called by the router when a request of the batch has its
// reply.
func (b *batch) Complete(r *router.Request) {
	if b.pending.Add(-1) == 0 {
		if b.direct {
			b.writeDirect(r.Reply)
		}
		b.wake <- struct{}{}
	}
}

// serve runs the session until the client is done (an error) or the
// session parks (errPark).
func (s *session) serve() error {
	for {
		n, err := s.answerBatch()
		if err != nil {
			return err
		}
		if s.quit {
			return errQuit
		}
		if n == 0 {
			if err := s.read(); err != nil {
				return err
			}
		}
	}
}

var errQuit = errors.New("proxy: client quit")

// read appends what the client sent next to the read buffer. With nothing
// buffered, the buffer goes back to the pool while the client is idle. A
// partial command stays, moved to the front, and the buffer doubles when a
// single command does not fit.
func (s *session) read() error {
	if s.handedOver() {
		err := s.readAfterDirect()
		if err == errPark {
			// The wait began with the command in flight; idle is from
			// its reply, written by now.
			s.idleSince.Store(time.Now().UnixNano())
		}
		return err
	}
	if s.rpos == s.rend {
		s.rpos, s.rend = 0, 0
		s.releaseBuffers()
		if s.raw != nil {
			return s.readIdle()
		}
		if tc, ok := s.nc.(*tls.Conn); ok {
			return s.readIdleTLS(tc)
		}
		s.rbuf = getBuffer()
	} else if s.rend == len(s.rbuf) {
		if s.batch != nil {
			s.parsed.forgetPartial()
		}
		if s.rpos > 0 {
			s.rend = copy(s.rbuf, s.rbuf[s.rpos:s.rend])
			s.rpos = 0
		} else {
			nb := make([]byte, 2*len(s.rbuf))
			copy(nb, s.rbuf[:s.rend])
			putBuffer(s.rbuf)
			s.rbuf = nb
		}
	}
	if s.raw == nil {
		n, err := s.nc.Read(s.rbuf[s.rend:])
		s.rend += n
		s.countIn(n)
		return err
	}
	// A client may stop in the middle of a command: it is idle as well,
	// and its session parks, with the part received, until more comes
	// or the idle timeout closes it.
	s.idleSince.Store(time.Now().UnixNano())
	n, err := s.nc.Read(s.rbuf[s.rend:])
	s.rend += n
	s.countIn(n)
	if err != nil && s.kickedRead(err) {
		return errPark
	}
	s.idleSince.Store(0)
	return err
}

// readIdle waits for the client without holding a buffer: the runtime's
// poller calls readReady when the socket may be readable, and a buffer is
// taken from the pool only for a read that finds bytes.
func (s *session) readIdle() error {
	s.readN, s.readErr = 0, nil
	s.idleSince.Store(time.Now().UnixNano())
	err := s.raw.Read(s.readFn)
	if err != nil && s.kickedRead(err) {
		return errPark // idle still, since then: for the idle timeout
	}
	s.idleSince.Store(0)
	if err != nil {
		return err
	}
	s.rend = s.readN
	s.countIn(s.readN)
	if s.readErr != nil {
		return s.readErr
	}
	if s.readN == 0 {
		return io.EOF
	}
	return nil
}

// readReady is readIdle's callback; false asks the poller to wait.
func (s *session) readReady(fd uintptr) bool {
	buf := getBuffer()
	n, err := sockio.Read(fd, buf)
	switch err {
	case syscall.EAGAIN:
		putBuffer(buf)
		return false
	case nil:
		s.rbuf, s.readN = buf, n
	default:
		putBuffer(buf)
		s.readErr = err
	}
	return true
}

// releaseBuffers gives an idle session's buffers and batch state back to
// their pools.
func (s *session) releaseBuffers() {
	if s.rbuf != nil {
		if cap(s.rbuf) != readBufferSize && s.batch != nil {
			s.forgetArgs()
		}
		putBuffer(s.rbuf)
		s.rbuf = nil
	}
	if s.batch != nil {
		if s.wbuf != nil {
			putBuffer(s.wbuf)
			s.wbuf = nil
		}
		s.lastCmd, s.lastTable = nil, nil // no old command table kept alive in the pool
		// A client that hung up halfway through a command leaves where
		// its parse stopped; the next session to take this batch must
		// not resume there, in its own bytes.
		s.parsed.forgetPartial()
		batchPool.Put(s.batch)
		s.batch = nil
	}
}

// forgetArgs drops the batch's references into a read buffer grown for a
// big command, which is about to be left to the GC: the arguments parsed
// last (and those of longer commands before them, past the length of the
// slice) would otherwise keep it alive for as long as the batch is reused
// from the pool.
func (s *session) forgetArgs() {
	clear(s.parsed.args[:cap(s.parsed.args)])
	s.parsed.args = s.parsed.args[:0]
	s.parsed.raw = nil
}

var bufferPool = sync.Pool{New: func() any { return new([readBufferSize]byte) }}

func getBuffer() []byte { return bufferPool.Get().(*[readBufferSize]byte)[:] }

// putBuffer pools b if it is one of the pool's own buffers; a buffer grown
// for a big command is left to the GC.
func putBuffer(b []byte) {
	if cap(b) == readBufferSize {
		bufferPool.Put((*[readBufferSize]byte)(b[:readBufferSize]))
	}
}

func isTCP(nc net.Conn) bool {
	_, ok := nc.(*net.TCPConn)
	return ok
}

// answerBatch handles every complete command in the read buffer, waits for
// the routed ones and writes all replies at once. It returns how many
// commands it handled; a protocol error is answered, then returned.
func (s *session) answerBatch() (int, error) {
	if s.rpos == s.rend {
		return 0, nil
	}
	if s.batch == nil {
		s.batch = batchPool.Get().(*batch)
	}
	var protoErr error
	handled := 0
	s.table = s.srv.router.Table()
	s.pending.Store(1)
	s.timed = s.srv.stats != nil || s.srv.slowlog.on()
	if s.timed {
		s.began = time.Now()
	}
	for len(s.entries) < maxBatch && !s.quit && !s.cut {
		s.parsed.unauth = !s.authed
		n, err := parseRequest(s.rbuf[s.rpos:s.rend], &s.parsed, &s.inline)
		if err != nil {
			protoErr = err
			break
		}
		if n == 0 {
			break
		}
		s.rpos += n
		handled++
		if len(s.parsed.args) > 0 {
			n, prev := len(s.entries), s.replyMode
			s.cmdNow = nil
			s.handle(s.parsed.args, s.parsed.raw)
			if prev|s.replyMode != replyOn || s.replyCmd {
				s.muteReplies(n, prev)
			}
			if s.timed {
				for i := n; i < len(s.entries); i++ {
					s.entries[i].cmd = s.cmdNow
				}
			}
		}
	}
	if s.lastResolved != nil {
		s.lastRun.Store(s.lastResolved)
	}
	direct := s.canWriteDirect(protoErr)
	if direct {
		if cap(s.rbuf) != readBufferSize {
			s.forgetArgs() // before the batch is the completion's
		}
		// Handed over to the completion (direct.go), with the buffer the
		// command is still being sent from.
		s.owner = s
		s.spent, s.rbuf = s.rbuf, nil
		s.rpos, s.rend = 0, 0
		s.direct = true
	}
	if s.pending.Add(-1) != 0 {
		if direct {
			return handled, nil
		}
		<-s.wake
	}
	if direct { // the reply was there first: written here, as for any batch
		s.direct, s.owner = false, nil
		s.rbuf, s.spent = s.spent, nil
	}
	if len(s.jobs) > 0 {
		s.runJobs()
	}
	if s.http {
		s.resetBatch()
		return handled, errCrossProtocol
	}

	s.appendReplies()
	if protoErr != nil {
		s.wbuf = appendError(s.wbuf, "ERR "+protoErr.Error())
		s.srv.closedBy(closedProtocolError)
	}
	var err error
	if len(s.wbuf) > 0 {
		err = s.write(s.wbuf)
	}
	s.resetBatch()
	if err != nil {
		return handled, err
	}
	return handled, protoErr
}

// appendReplies appends to wbuf the replies of the entries not written yet.
func (s *session) appendReplies() {
	if s.written == len(s.entries) {
		// Nothing to write, as when only part of a command has come:
		// no write buffer taken for it.
		return
	}
	if s.wbuf == nil {
		s.wbuf = getBuffer()[:0]
	}
	var took time.Duration
	if s.timed {
		took = time.Since(s.began)
	}
	for i := s.written; i < len(s.entries); i++ {
		e := &s.entries[i]
		off := len(s.wbuf)
		switch {
		case e.mute:
		case e.req != nil:
			s.wbuf = append(s.wbuf, e.req.Reply...)
		case e.fan != nil:
			s.wbuf = e.fan.appendMerged(s.wbuf)
		case e.job != nil:
			s.wbuf = e.job.appendReply(s, s.wbuf)
		default:
			s.wbuf = append(s.wbuf, s.local[e.off:e.end]...)
		}
		if s.timed {
			reply := s.wbuf[off:]
			if e.mute && e.req != nil {
				reply = e.req.Reply
			}
			s.account(e, reply, took)
		}
	}
	s.written = len(s.entries)
}

func (s *session) resetBatch() {
	if s.hadJobs {
		clear(s.entries) // no job's replies kept alive in the pool
		s.hadJobs = false
	}
	s.cut = false
	s.written = 0
	s.entries = s.entries[:0]
	s.local = s.local[:0]
	for _, r := range s.reqs[:s.nreq] {
		r.Raw = nil
		r.Script = nil
		if cap(r.Reply) > maxKeptBuffer {
			r.Reply = nil
		}
	}
	s.nreq = 0
	s.nfan = 0
	s.table = nil
	s.wbuf = s.wbuf[:0]
	if cap(s.wbuf) > maxKeptBuffer {
		s.wbuf = nil
	}
	if cap(s.local) > maxKeptBuffer {
		s.local = nil
	}
}

// reply records a reply the proxy made itself, appended to local by the
// caller between off and the current end.
func (s *session) replyLocal(off int) {
	s.entries = append(s.entries, entry{off: off, end: len(s.local)})
}

// replyError is out of line: inlined at each of its many call sites, it
// made the frames of handle and answerLocal, on every session's stack,
// hundreds of bytes bigger.
//
//go:noinline
func (s *session) replyError(msg string) {
	off := len(s.local)
	s.local = appendError(s.local, msg)
	s.replyLocal(off)
}

// nextRequest returns a request from the session's pool, and the storage
// for a command the proxy encodes for it, emptied.
func (s *session) nextRequest() (*router.Request, []byte) {
	if s.nreq == len(s.reqs) {
		s.reqs = append(s.reqs, &router.Request{Done: s.batch})
		s.raws = append(s.raws, nil)
	}
	i := s.nreq
	s.nreq++
	r := s.reqs[i]
	r.Affinity = uint32(s.id)
	r.RESP3 = s.proto == 3
	return r, s.raws[i][:0]
}

// forward routes a command to the master serving slot. raw is nil for an
// inline command, which is encoded here. idempotent marks a write that may
// be sent twice (resend.go).
func (s *session) forward(args [][]byte, raw []byte, slot int, readOnly, idempotent bool) {
	r, buf := s.nextRequest()
	if raw == nil {
		raw = appendCommand(buf, args)
		s.raws[s.nreq-1] = raw
	}
	r.Raw = raw
	r.Slot = slot
	r.ReadOnly = readOnly
	r.Idempotent = idempotent
	if s.script != nil {
		r.Script, s.script = s.script, nil
	}
	if !readOnly {
		s.wrote(slot)
	}
	s.entries = append(s.entries, entry{req: r})
	s.pending.Add(1)
	s.srv.router.Do(r, s.table)
}

// close closes the connection once the backlog, if any, has been written,
// and gives the buffers back.
func (s *session) close() {
	s.settleDirect()
	s.releaseHeld()
	if s.out != nil {
		// The client is gone or done sending; it gets a while to take the
		// replies still waiting, not forever.
		s.nc.SetWriteDeadline(time.Now().Add(closeGrace))
		s.out.done.Wait()
	}
	drainTLS(s.nc)
	s.nc.Close()
	s.releaseBuffers()
}
