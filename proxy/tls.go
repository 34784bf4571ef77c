package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/slotproxy/slotproxy/internal/sockio"
)

// TLSOptions say how clients connect to the proxy over TLS.
type TLSOptions struct {
	// CertFile and KeyFile are the PEM certificate (with its chain) and
	// key the proxy shows its clients. Both are required.
	CertFile, KeyFile string
	// ClientCAFile, when set, is a PEM file of CA certificates: a client
	// must show a certificate signed by one of them (mutual TLS), as with
	// redis-server's tls-auth-clients yes. "" asks clients for none.
	ClientCAFile string
	// MinVersion is the oldest TLS version accepted, tls.VersionTLS12 or
	// tls.VersionTLS13; zero means TLS 1.2.
	MinVersion uint16
	// HandshakeTimeout bounds a client's TLS handshake, counted from the
	// accept: a client that connects and says nothing holds a goroutine
	// and a client slot no longer than that. Zero means 10s.
	HandshakeTimeout time.Duration
}

// TLS is the client listener's TLS configuration, given to a Server in
// Options.TLS. The files are read by NewTLS and again by Reload: a reload
// serves the clients that connect from then on, with a certificate, a
// client CA and session ticket keys of its own, so that no session made
// before it resumes after it (with the certificate or the CA it replaced);
// clients connected before keep their session.
type TLS struct {
	opts    TLSOptions
	current atomic.Pointer[tls.Config]
}

// NewTLS reads the files opts names.
func NewTLS(opts TLSOptions) (*TLS, error) {
	if opts.CertFile == "" || opts.KeyFile == "" {
		return nil, errors.New("proxy: TLS needs a certificate and a key file")
	}
	if opts.MinVersion == 0 {
		opts.MinVersion = tls.VersionTLS12
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	t := &TLS{opts: opts}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Reload reads the files again, for the clients that connect from now on.
// On error the configuration in use stays.
func (t *TLS) Reload() error {
	pair, err := tls.LoadX509KeyPair(t.opts.CertFile, t.opts.KeyFile)
	if err != nil {
		return fmt.Errorf("proxy: TLS: %w", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{pair},
		MinVersion:   t.opts.MinVersion,
		// A batch of replies is one record, and one write, up to 16 KiB
		// from the first byte: small first records only help a browser
		// render early.
		DynamicRecordSizingDisabled: true,
	}
	if t.opts.ClientCAFile != "" {
		pem, err := os.ReadFile(t.opts.ClientCAFile)
		if err != nil {
			return fmt.Errorf("proxy: TLS: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("proxy: TLS: %s: no PEM certificate in it", t.opts.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	t.current.Store(cfg)
	return nil
}

// handshakeTLSClient completes a client's TLS handshake, within the
// handshake timeout, then has the client served as any other; its own
// function so that stack traces name it. A handshake that fails leaves the
// session to end on its first read, which returns the handshake's error.
//
// The session runs on a goroutine of its own: the handshake's calls grow
// this one's stack, which an idle session would otherwise keep (a proxy
// that allocates nothing per request seldom runs the GC that shrinks it).
func (s *Server) handshakeTLSClient(sess *session, tc *tls.Conn) {
	tc.SetDeadline(time.Now().Add(s.opts.TLS.opts.HandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		s.handshakeFailed(tc.RemoteAddr(), err)
		tc.Close()
	} else {
		tc.SetWriteDeadline(time.Time{})
		sess.clearReadDeadline()
	}
	go s.serveClient(sess)
}

// handshakeFailed logs a client's failed handshake: at debug level when the
// client hung up without a word, as load balancers' TCP health checks do.
func (s *Server) handshakeFailed(remote net.Addr, err error) {
	if errors.Is(err, io.EOF) {
		s.opts.Logger.Debug("client TLS handshake failed", "remote", remote, "err", err)
		return
	}
	s.opts.Logger.Info("client TLS handshake failed", "remote", remote, "err", err)
}

// readIdleTLS is readIdle for a TLS client: it waits for the client's next
// bytes with one byte of buffer, and takes a read buffer from the pool only
// once they have come, so that an idle TLS client does not hold 16 KiB.
// crypto/tls keeps the rest of the record that byte came in, which the
// next read returns at once; a client that sent that byte alone is waited
// for with the buffer, as any client halfway through a command.
func (s *session) readIdleTLS(tc *tls.Conn) error {
	var first [1]byte
	n, err := 0, error(nil)
	for n == 0 && err == nil {
		n, err = tc.Read(first[:])
	}
	if n == 0 {
		return err
	}
	s.rbuf = getBuffer()
	s.rbuf[0] = first[0]
	m, err := tc.Read(s.rbuf[1:])
	s.rend = 1 + m
	s.countIn(1 + m)
	return err
}

// tlsSocket is the socket under a TLS client's crypto/tls connection.
// crypto/tls hands it each record and waits until it has taken it: a
// session waiting so for a client that does not read would stop reading
// that client, and a client that sends more than the sockets hold before
// it reads (go-redis and Jedis pipelines do) would wait for the session:
// neither would ever move; Pub/Sub messages, written from the hub's
// goroutines, would wait too. So, as the backlog does for a plain client
// (output.go), a write gives the socket what it takes at once and leaves
// the rest to a goroutine of the socket's own; past
// Options.MaxOutputBytes waiting, the client is disconnected. Reads go
// through as they are.
//
// crypto/tls calls Write with its output lock held, so writes come one at
// a time; mu orders them with the flushing goroutine.
type tlsSocket struct {
	*net.TCPConn
	srv *Server
	raw syscall.RawConn

	writeFn  func(fd uintptr) bool // t.writeReady, made once
	writeB   []byte
	writeN   int
	writeErr error

	mu      sync.Mutex
	buf     []byte        // records waiting, in order
	writing bool          // flush owns the socket's writes
	done    chan struct{} // closed when the last flush started returns
	err     error         // a write failed, or errSlowClient; final
}

// newTLSSocket returns nc ready to carry a TLS client's connection; a
// connection that is not a TCP socket is returned as it is.
func (s *Server) newTLSSocket(nc net.Conn) net.Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nc
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nc
	}
	t := &tlsSocket{TCPConn: tc, srv: s, raw: raw}
	t.writeFn = t.writeReady
	return t
}

func (t *tlsSocket) Write(b []byte) (int, error) {
	limit := t.srv.opts.MaxOutputBytes
	t.mu.Lock()
	switch {
	case t.err != nil:
		t.mu.Unlock()
		return 0, t.err
	case t.writing:
		if len(t.buf)+len(b) > limit {
			t.mu.Unlock()
			return 0, t.overLimit()
		}
		t.buf = append(t.buf, b...)
		t.mu.Unlock()
		return len(b), nil
	}
	t.mu.Unlock()
	t.writeB, t.writeN, t.writeErr = b, 0, nil
	err := t.raw.Write(t.writeFn)
	n := t.writeN
	t.writeB = nil
	if err == nil {
		err = t.writeErr
	}
	if err != nil || n == len(b) {
		return n, err
	}
	if len(b)-n > limit {
		return n, t.overLimit()
	}
	t.mu.Lock()
	t.buf = append(t.buf[:0], b[n:]...)
	t.writing = true
	t.done = make(chan struct{})
	done := t.done
	t.mu.Unlock()
	go t.flush(done)
	return len(b), nil
}

// writeReady is Write's callback: one attempt that does not wait.
func (t *tlsSocket) writeReady(fd uintptr) bool {
	t.writeN, t.writeErr = sockio.Write(fd, t.writeB)
	if t.writeErr == syscall.EAGAIN {
		t.writeErr = nil
	}
	return true
}

// flush writes what waits until nothing does, or a write fails, then
// closes done. (Not t.done: once writing is false, the next flush may have
// its own.)
func (t *tlsSocket) flush(done chan struct{}) {
	defer close(done)
	var out []byte
	for {
		t.mu.Lock()
		if len(t.buf) == 0 || t.err != nil {
			// Caught up: the buffers, grown for the client's lag, go to
			// the GC rather than stay with an idle connection.
			t.buf = nil
			t.writing = false
			t.mu.Unlock()
			return
		}
		out, t.buf = t.buf, out[:0]
		t.mu.Unlock()
		if _, err := t.TCPConn.Write(out); err != nil {
			t.mu.Lock()
			if t.err == nil { // overLimit's, which closed the socket, stays
				t.err = err
			}
			t.mu.Unlock()
		}
	}
}

// overLimit disconnects a client whose replies waiting passed the limit.
func (t *tlsSocket) overLimit() error {
	t.mu.Lock()
	t.err = errSlowClient
	t.mu.Unlock()
	t.srv.closedBy(closedOutputLimit)
	t.srv.opts.Logger.Warn("client disconnected", "reason", "output_limit",
		"remote", t.RemoteAddr(), "limit_bytes", t.srv.opts.MaxOutputBytes)
	t.TCPConn.Close()
	return errSlowClient
}

// drainTLS gives a TLS client whose session is ending closeGrace to take
// the replies still waiting, as close does for a plain client's backlog.
func drainTLS(nc net.Conn) {
	tc, ok := nc.(*tls.Conn)
	if !ok {
		return
	}
	t, ok := tc.NetConn().(*tlsSocket)
	if !ok {
		return
	}
	t.mu.Lock()
	writing, done := t.writing, t.done
	t.mu.Unlock()
	if writing {
		t.SetWriteDeadline(time.Now().Add(closeGrace))
		<-done
	}
}
