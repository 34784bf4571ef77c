// Package proxy is slotproxy's client side: it accepts plain Redis clients,
// parses their requests, answers what it can itself, routes the rest through
// a router.Router, and writes the replies back in request order.
//
// proxy never dials a backend: everything it needs from the cluster goes
// through the router.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotproxy/slotproxy/internal/oplog"
	"github.com/slotproxy/slotproxy/router"
)

// Options configure a Server.
type Options struct {
	// Password, when set, must be given with AUTH (or HELLO AUTH) before
	// any other command. Empty means clients need not authenticate,
	// unless there are Users.
	// Reload changes it, Users, MaxClients, MaxOutputBytes and IdleTimeout.
	Password string
	// Users are client accounts besides the default user (users.go).
	Users []User
	// MaxClients bounds the connected clients; a client past it gets
	// "-ERR max number of clients reached" and is disconnected. Zero
	// means 10000.
	MaxClients int
	// MaxOutputBytes bounds the replies a client has not read yet; a
	// client past it is disconnected, as redis-server does past its
	// client-output-buffer-limit. Zero means 128 MiB.
	MaxOutputBytes int
	// IdleParkAfter is how long a client may be idle before its session
	// gives its goroutine up and waits in a shared epoll set; zero means
	// 10s. New clients start that way.
	IdleParkAfter time.Duration
	// IdleTimeout closes the connection of a client that has sent nothing
	// for this long, as redis-server's timeout does: Pub/Sub subscribers
	// and clients blocked in a blocking command are spared, clients in a
	// MULTI or halfway through a command are not. Zero (or less) means
	// never. It needs the epoll set idle clients park in: where there is
	// none, no client is closed for being idle.
	IdleTimeout time.Duration
	// Logger receives connection events; nil means no logs.
	Logger *slog.Logger
	// ConfigSetAllNodes sends CONFIG SET to every node of the cluster,
	// masters and replicas; false refuses it.
	ConfigSetAllNodes bool
	// ScriptCacheBytes bounds the scripts the proxy remembers to load them
	// again on a master that answers NOSCRIPT; zero means 16 MiB.
	ScriptCacheBytes int
	// Version is slotproxy's version, for INFO; "" means "dev".
	Version string
	// ConfigFile is the configuration file's path, for INFO; "" for none.
	ConfigFile string
	// Deny lists the commands refused with an error that names the
	// command policy: names as COMMAND reports them, a subcommand as
	// "config|set", a container for all its subcommands. Nil denies
	// nothing; DefaultDeny is the configuration's default.
	Deny []string
	// NoStats keeps no per-command counts, latencies or byte counts: for
	// a proxy whose metrics no one reads (no metrics.listen).
	NoStats bool
	// SlowlogThreshold is how long a request must take through the proxy
	// to be kept for SLOWLOG GET. Zero means 10ms, redis-server's default;
	// negative keeps none; 1ns keeps every request, as redis-server's
	// slowlog-log-slower-than 0. SetSlowlogThreshold changes it live.
	SlowlogThreshold time.Duration
	// SlowlogMaxLen bounds the entries kept; the oldest gives way. Zero
	// means 128, redis-server's default.
	SlowlogMaxLen int
	// SlowlogBackendFields appends to each SLOWLOG GET entry the request's
	// argument count, the node that served it and the time spent waiting
	// for that node. False gives redis-server 7's six fields: go-redis v9
	// releases older than its Redis 8.10 support read six and leave the
	// rest on the connection.
	SlowlogBackendFields bool
	// TLS, when set, makes every listener Serve is given speak TLS, with
	// the configuration TLS holds when the client connects. A TLS
	// client's session reads and writes through crypto/tls rather than
	// the socket: it never parks, so an idle one keeps its goroutine and
	// crypto/tls's state (about 20 KiB, where a parked plain client costs
	// 1.4 to 4 KiB), and IdleTimeout, which works on parked sessions,
	// does not close it. nil means plain TCP.
	TLS *TLS
}

// setDefaults sets what Live does not: Reload sets the rest.
func (o *Options) setDefaults() {
	if o.IdleParkAfter <= 0 {
		o.IdleParkAfter = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ScriptCacheBytes <= 0 {
		o.ScriptCacheBytes = 16 << 20
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.SlowlogThreshold == 0 {
		o.SlowlogThreshold = defaultSlowlogThreshold
	}
	if o.SlowlogMaxLen <= 0 {
		o.SlowlogMaxLen = defaultSlowlogMaxLen
	}
}

// Server serves Redis clients on any number of listeners.
type Server struct {
	opts   Options
	router *router.Router
	table  atomic.Pointer[Table]

	clients  peakGauge // connected clients
	lastID   atomic.Uint64
	accepted atomic.Int64 // connections accepted, for INFO
	rejected atomic.Int64 // connections refused at max clients
	// connections refused because Shutdown began
	rejectedDraining atomic.Int64

	// What Reload changes (reload.go); read at each use, never from opts.
	accounts    atomic.Pointer[accounts] // clients.password and clients.users (users.go)
	maxClients  atomic.Int64
	maxOutput   atomic.Int64 // bytes
	idleTimeout atomic.Int64 // ns; 0 never
	// refusals limits the lines about refused and cut-off clients: a
	// storm of them must not become a storm of log lines.
	refusals *oplog.Limiter

	scripts *scriptCache
	version atomic.Pointer[string] // the masters' redis_version, for HELLO
	nodeID  string                 // the one node a cluster-aware client sees
	runID   string                 // INFO's run_id
	started time.Time              // for INFO's uptime

	mu        sync.Mutex
	closed    bool
	draining  atomic.Bool // Shutdown began: no new clients, sessions end when idle
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	wg        sync.WaitGroup // one per session, parked or not

	parker    *parker // nil where epoll is not available
	parkedN   atomic.Int64
	stopSweep chan struct{}
	serving   peakGauge // session goroutines running

	pubsub hubRef // the Pub/Sub hub (hub.go)

	stats   *stats  // nil with Options.NoStats
	slowlog slowLog // SLOWLOG (slowlog.go)
	policy  policy  // commands.deny (policy.go)
}

// New returns a Server that routes through rt, with the built-in command
// table until LearnCommands replaces it.
func New(rt *router.Router, opts Options) *Server {
	opts.setDefaults()
	s := &Server{
		opts:      opts,
		router:    rt,
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*session]struct{}),
		scripts:   newScriptCache(opts.ScriptCacheBytes),
		nodeID:    newNodeID(),
		runID:     newNodeID(),
		started:   time.Now(),
		refusals:  oplog.NewLimiter(time.Second, refusalsPerSecond),
	}
	if !opts.NoStats {
		s.stats = newStats()
	}
	s.policy = newPolicy(opts.Deny)
	s.Reload(Live{Password: opts.Password, Users: opts.Users, MaxClients: opts.MaxClients, MaxOutputBytes: opts.MaxOutputBytes, IdleTimeout: opts.IdleTimeout})
	s.table.Store(Builtin())
	s.slowlog.init(opts.SlowlogThreshold, opts.SlowlogMaxLen, opts.SlowlogBackendFields)
	if p, err := newParker(s); err == nil {
		s.parker = p
		s.stopSweep = make(chan struct{})
		go s.sweep(s.stopSweep)
	} else {
		opts.Logger.Warn("idle clients keep a goroutine each: no epoll", "err", err)
	}
	return s
}

func (s *Server) commands() *Table { return s.table.Load() }

// ErrServerClosed is returned by Serve after Close or Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// Serve accepts clients on ln until Close. Temporary accept errors (too many
// open files, for one) are retried with a growing pause.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var pause time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if isTemporary(err) {
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				s.refusals.Log(s.opts.Logger, slog.LevelWarn, "accept", "accept failed, pausing", "err", err, "pause", pause)
				time.Sleep(pause)
				continue
			}
			return err
		}
		pause = 0
		s.start(nc)
	}
}

func (s *Server) start(nc net.Conn) {
	s.accepted.Add(1)
	if s.clients.add(1) > s.maxClients.Load() {
		s.clients.add(-1)
		s.rejected.Add(1)
		s.noteRefused("client refused", "max_clients", nc, "max_clients", s.maxClients.Load())
		// A TLS client is refused before its handshake, as redis-server
		// does: it sees the connection closed, not the error, which it
		// could only read once the handshake spent the CPU that the
		// limit is there to save.
		if s.opts.TLS == nil {
			nc.Write(appendError(nil, msgMaxClients))
		}
		nc.Close()
		return
	}
	var tc *tls.Conn
	if s.opts.TLS != nil {
		tc = tls.Server(s.newTLSSocket(nc), s.opts.TLS.current.Load())
		nc = tc
	}
	sess := newSession(s, nc, s.lastID.Add(1))
	s.debugClient("client connected", sess)
	s.mu.Lock()
	if s.closed || s.draining.Load() {
		s.mu.Unlock()
		s.rejectedDraining.Add(1)
		s.clients.add(-1)
		nc.Close()
		return
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	if tc != nil {
		go s.handshakeTLSClient(sess, tc)
		return
	}
	// A new client gets a goroutine once it sends something.
	if s.parker == nil || !s.parker.park(sess) {
		go s.serveClient(sess)
	}
}

// serveClient runs one session until it ends or parks; its own function so
// stack traces name it.
func (s *Server) serveClient(sess *session) {
	s.serving.add(1)
	defer s.serving.add(-1)
	if s.draining.Load() {
		// Resumed by the parker after Shutdown set the deadlines: one
		// may have been cleared in between.
		sess.nc.SetReadDeadline(drainDeadline)
	}
	var err error
	for {
		err = sess.serve()
		if err != errPark || s.draining.Load() {
			break
		}
		if s.parker != nil && s.parker.park(sess) {
			return // resumed by the parker on a new goroutine
		}
	}
	var perr protocolError
	if errors.As(err, &perr) {
		s.noteRefused("client disconnected", "protocol_error", sess.nc, "err", err)
	}
	s.debugClient("client closed", sess)
	if s.parker != nil {
		s.parker.forget(sess)
	}
	sess.close()
	s.mu.Lock()
	delete(s.sessions, sess)
	if st := s.stats; st != nil {
		st.goneIn.Add(sess.netIn.Load())
		st.goneOut.Add(sess.netOut.Load())
	}
	s.mu.Unlock()
	s.clients.add(-1)
	s.wg.Done()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed || s.draining.Load()
}

// Clients returns the number of connected clients.
func (s *Server) Clients() int { return int(s.clients.cur.Load()) }

// Close stops the listeners and disconnects every client at once. Replies
// not written yet are lost; Shutdown is the gentle way.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	lns := make([]net.Listener, 0, len(s.listeners))
	for ln := range s.listeners {
		lns = append(lns, ln)
	}
	conns := make([]net.Conn, 0, len(s.sessions))
	for sess := range s.sessions {
		conns = append(conns, sess.nc)
	}
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	for _, nc := range conns {
		nc.Close()
	}
	if s.parker != nil {
		s.parker.close() // parked sessions resume and end on their closed socket
	}
	s.wg.Wait()
	s.pubsub.close() // after the sessions, which unsubscribed as they ended
	if s.stopSweep != nil {
		close(s.stopSweep)
	}
	return nil
}

// LearnCommands asks a master for its COMMAND table, through the router,
// and merges it over the built-in one, so commands of newer servers and of
// modules are routed by their real key positions. Call it once the slot map
// is ready: without a table the request fails at once.
func (s *Server) LearnCommands(ctx context.Context) error {
	reply, err := s.ask(ctx, []byte("*1\r\n$7\r\nCOMMAND\r\n"))
	if err != nil {
		return err
	}
	if len(reply) > 0 && reply[0] == '-' {
		return errors.New("proxy: COMMAND: " + string(reply[1:len(reply)-2]))
	}
	live, err := ParseCommandReply(reply)
	if err != nil {
		return err
	}
	s.table.Store(withProxyCommands(Builtin().Merge(live)))

	// HELLO names the server version: the backends'.
	reply, err = s.ask(ctx, []byte("*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n"))
	if err != nil {
		return err
	}
	if v, ok := parseValue(reply); ok && !v.isError() {
		for _, line := range strings.Split(string(v.str), "\r\n") {
			if ver, ok := strings.CutPrefix(line, "redis_version:"); ok {
				s.version.Store(&ver)
			}
		}
	}
	return nil
}

// ask sends one read-only command of the proxy's own to any master and
// waits for its reply, or for ctx.
func (s *Server) ask(ctx context.Context, raw []byte) ([]byte, error) {
	w := &waiter{done: make(chan struct{})}
	req := &router.Request{Raw: raw, Slot: router.NoSlot, ReadOnly: true, Done: w}
	s.router.Do(req, nil)
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-w.done:
	}
	return req.Reply, nil
}

// serverVersion is the version HELLO reports: the masters' when known.
func (s *Server) serverVersion() string {
	if v := s.version.Load(); v != nil {
		return *v
	}
	return redisVersion
}

// waiter is a Completer for the proxy's own one-off requests.
type waiter struct{ done chan struct{} }

func (w *waiter) Complete(*router.Request) { close(w.done) }
