package metrics

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is one Serve call: a small HTTP/1.1 server for a handful of GET
// endpoints scraped every few seconds. It speaks enough of RFC 9112 for
// Prometheus, kubelet probes and curl (keep-alive, HEAD, Content-Length
// framing) and refuses the rest plainly: no request bodies beyond a few
// bytes, no chunked requests, no HTTP/2. Its limits are fields so that
// tests can shorten them.
type server struct {
	admin *Admin
	ctx   context.Context // serve's: ends when the server is to shut down

	headerTimeout time.Duration // from a request's first byte to its last; on a new connection, from accept
	idleTimeout   time.Duration // between requests on a kept-alive connection
	writeTimeout  time.Duration // to write one response to a client that does not read
	lingerTimeout time.Duration // to drain what a client still sends once its connection is to close
	shutdownGrace time.Duration // for responses in progress once ctx ends

	maxConns       int // open connections beyond which new ones are closed at once
	maxHeaderBytes int // request line and headers; the read buffer's size
	maxBodyBytes   int // a request body read and discarded; a longer one gets 413

	mu      sync.Mutex
	conns   map[*adminConn]bool // open connections; true while waiting for a request
	closing bool                // ctx ended: idle connections are closed, busy ones after their response
	wg      sync.WaitGroup      // one per connection goroutine
}

func newServer(a *Admin) *server {
	return &server{
		admin:          a,
		headerTimeout:  5 * time.Second,
		idleTimeout:    60 * time.Second,
		writeTimeout:   10 * time.Second,
		lingerTimeout:  500 * time.Millisecond,
		shutdownGrace:  2 * time.Second,
		maxConns:       64,
		maxHeaderBytes: 8 << 10,
		maxBodyBytes:   4 << 10,
		conns:          make(map[*adminConn]bool),
	}
}

// serve accepts connections on ln until ctx ends or ln fails, then shuts
// the connections down; see Serve.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	s.ctx = ctx
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				s.shutdown()
				return nil
			}
			if !acceptRetryable(err) {
				ln.Close()
				s.shutdown()
				return err
			}
			// Out of descriptors or memory: retrying at once would spin,
			// and the connections already open may free some.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			continue
		}
		backoff = 0
		c := &adminConn{s: s, nc: nc}
		if !s.track(c) {
			nc.Close()
			continue
		}
		go c.serve()
	}
}

// acceptRetryable reports whether an Accept error is a shortage that may
// pass, rather than a listener that will never accept again.
func acceptRetryable(err error) bool {
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// track adds c to the open connections, or reports false when there are
// already maxConns of them: a scraper retries, and refusing costs nothing.
func (s *server) track(c *adminConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.conns) >= s.maxConns {
		return false
	}
	s.conns[c] = true
	s.wg.Add(1)
	return true
}

func (s *server) untrack(c *adminConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// setIdle records whether c waits for a request. It reports false once the
// server is closing, when c must close instead of starting or awaiting
// another request.
func (s *server) setIdle(c *adminConn, idle bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = idle
	return true
}

func (s *server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// shutdown closes the idle connections at once, gives the busy ones
// shutdownGrace to finish their response, closes what is left, and
// returns once every connection goroutine has.
func (s *server) shutdown() {
	s.mu.Lock()
	s.closing = true
	var idle []net.Conn
	for c, isIdle := range s.conns {
		if isIdle {
			idle = append(idle, c.nc)
		}
	}
	s.mu.Unlock()
	for _, nc := range idle {
		nc.Close()
	}

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	grace := time.NewTimer(s.shutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
		return
	case <-grace.C:
	}
	s.mu.Lock()
	var busy []net.Conn
	for c := range s.conns {
		busy = append(busy, c.nc)
	}
	s.mu.Unlock()
	for _, nc := range busy {
		nc.Close()
	}
	<-done
}

// maxKeptBody is the largest response buffer a connection keeps for its
// next response.
const maxKeptBody = 1 << 20

// adminConn is one client connection, served by its own goroutine.
type adminConn struct {
	s    *server
	nc   net.Conn
	br   *bufio.Reader
	req  request
	head []byte // the response's status line and headers, reused
	body []byte // the response's body, reused
}

// serve answers requests on c until the client closes, a request asks to
// close, a limit is hit or the server closes.
func (c *adminConn) serve() {
	s := c.s
	defer s.untrack(c)
	defer c.nc.Close()
	c.br = bufio.NewReaderSize(c.nc, s.maxHeaderBytes)
	// A new connection has headerTimeout for its whole first request, so
	// that one that sends nothing, or a byte at a time, is cut as soon
	// as one that stalls midway.
	c.nc.SetReadDeadline(time.Now().Add(s.headerTimeout))
	for first := true; ; first = false {
		if !first {
			c.nc.SetReadDeadline(time.Now().Add(s.idleTimeout))
		}
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !s.setIdle(c, false) {
			return
		}
		if !first {
			c.nc.SetReadDeadline(time.Now().Add(s.headerTimeout))
		}

		var resp response
		keepAlive := false
		if err := c.readRequest(); err != nil {
			var perr *protocolError
			if !errors.As(err, &perr) {
				return // a timeout or a client gone: nobody to answer
			}
			resp = errorResponse(perr.status, c.body[:0])
		} else {
			// Most responses take microseconds; a CPU profile takes the
			// seconds it was asked for. The write deadline is set after.
			resp = s.admin.respond(s.ctx, &c.req, c.body[:0])
			keepAlive = c.req.keepAlive && !s.isClosing()
		}
		if !c.writeResponse(resp, keepAlive) {
			return
		}
		if !keepAlive {
			c.lingerClose()
			return
		}
		if !s.setIdle(c, true) {
			return
		}
	}
}

// writeResponse writes resp with its framing headers; the body is left out
// for HEAD. It reports whether the write succeeded.
func (c *adminConn) writeResponse(resp response, keepAlive bool) bool {
	h := c.head[:0]
	h = append(h, "HTTP/1.1 "...)
	h = strconv.AppendInt(h, int64(resp.status), 10)
	h = append(h, ' ')
	h = append(h, statusText(resp.status)...)
	h = append(h, "\r\nDate: "...)
	h = time.Now().UTC().AppendFormat(h, "Mon, 02 Jan 2006 15:04:05 GMT")
	h = append(h, "\r\nContent-Type: "...)
	h = append(h, resp.contentType...)
	h = append(h, "\r\nContent-Length: "...)
	h = strconv.AppendInt(h, int64(len(resp.body)), 10)
	if resp.allow {
		h = append(h, "\r\nAllow: GET, HEAD"...)
	}
	switch {
	case !keepAlive:
		h = append(h, "\r\nConnection: close"...)
	case !c.req.http11:
		// HTTP/1.0 closes unless the response says otherwise.
		h = append(h, "\r\nConnection: keep-alive"...)
	}
	h = append(h, "\r\n\r\n"...)
	c.head, c.body = h, resp.body[:0]
	if cap(c.body) > maxKeptBody {
		// A goroutine dump of a busy proxy runs to megabytes; the
		// scrapes that follow on this connection need a fraction of it.
		c.body = nil
	}

	bufs := net.Buffers{h}
	if c.req.method != "HEAD" {
		bufs = append(bufs, resp.body)
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.writeTimeout))
	// One writev: headers and body leave in the same segment when they fit.
	_, err := bufs.WriteTo(c.nc)
	return err == nil
}

// lingerClose tells the client with a FIN that nothing more comes, and
// reads what it still sends for a moment before the caller closes c:
// closing with unread bytes would make the kernel send a reset, which can
// destroy the response before the client reads it (a 400 for a request it
// is still sending, say).
func (c *adminConn) lingerClose() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		c.nc.SetReadDeadline(time.Now().Add(c.s.lingerTimeout))
		io.Copy(io.Discard, io.LimitReader(c.nc, 64<<10))
	}
}

// request is what the endpoints need of a request, plus its framing.
type request struct {
	method    string
	path      string // the target's path, without the query
	query     string // what followed the path's ?, not decoded
	http11    bool   // HTTP/1.1 or a later 1.x, rather than HTTP/1.0
	keepAlive bool   // the connection may serve another request after this one
	accept    string // the Accept header's values, joined by commas
}

func (r *request) getOrHead() bool { return r.method == "GET" || r.method == "HEAD" }

// protocolError is a request the server answers with an error status and
// then closes the connection after: its framing can no longer be trusted.
type protocolError struct {
	status int
}

func (e *protocolError) Error() string {
	return "metrics: " + strconv.Itoa(e.status) + " " + statusText(e.status)
}

// readRequest reads one request into c.req: request line, headers, and any
// body (discarded, since no endpoint takes one).
func (c *adminConn) readRequest() error {
	c.req = request{}
	budget := c.s.maxHeaderBytes
	readLine := func(tooLong int) (string, error) {
		line, err := c.br.ReadSlice('\n')
		if len(line) > budget || errors.Is(err, bufio.ErrBufferFull) {
			return "", &protocolError{tooLong}
		}
		if err != nil {
			return "", err
		}
		budget -= len(line)
		line = line[:len(line)-1]
		// RFC 9112 lets a recipient take a bare LF as the line end.
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		return string(line), nil
	}

	// Empty lines before a request line are ignored, as RFC 9112 asks of
	// a server, for clients that send a CRLF after a POST body.
	var line string
	for line == "" {
		var err error
		if line, err = readLine(414); err != nil {
			return err
		}
	}
	if err := c.req.parseRequestLine(line); err != nil {
		return err
	}

	var hosts, contentLength int
	var sawLength, transferEncoding, connClose, connKeepAlive bool
	for {
		line, err := readLine(431)
		if err != nil {
			return err
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		// No whitespace before the colon (RFC 9112 makes that a 400 for
		// the smuggling it allows), and no obsolete line folding.
		if !ok || !isToken(name) {
			return &protocolError{400}
		}
		value = strings.Trim(value, " \t")
		if !validFieldValue(value) {
			return &protocolError{400}
		}
		switch strings.ToLower(name) {
		case "host":
			hosts++
		case "content-length":
			n, err := strconv.Atoi(value)
			if err != nil || !isDigit(value[0]) || sawLength && n != contentLength {
				return &protocolError{400}
			}
			sawLength, contentLength = true, n
		case "transfer-encoding":
			transferEncoding = true
		case "connection":
			for opt := range strings.SplitSeq(value, ",") {
				switch strings.ToLower(strings.TrimSpace(opt)) {
				case "close":
					connClose = true
				case "keep-alive":
					connKeepAlive = true
				}
			}
		case "accept":
			if c.req.accept != "" {
				c.req.accept += ","
			}
			c.req.accept += value
		}
	}
	// RFC 9112 makes Host mandatory in HTTP/1.1, and exactly one.
	if c.req.http11 && hosts != 1 || hosts > 1 {
		return &protocolError{400}
	}
	if transferEncoding {
		// A chunked body would have to be parsed to find the next
		// request; no endpoint takes a body, so none is accepted.
		return &protocolError{501}
	}
	if contentLength > c.s.maxBodyBytes {
		return &protocolError{413}
	}
	if _, err := c.br.Discard(contentLength); err != nil {
		return err
	}
	if c.req.http11 {
		c.req.keepAlive = !connClose
	} else {
		c.req.keepAlive = connKeepAlive && !connClose
	}
	return nil
}

// parseRequestLine reads "METHOD target HTTP/1.x". The target is taken in
// origin form (/metrics?x) or absolute form (http://host/metrics), which
// RFC 9112 requires servers to accept.
func (r *request) parseRequestLine(line string) error {
	method, rest, ok1 := strings.Cut(line, " ")
	target, version, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !isToken(method) || target == "" || strings.ContainsAny(target, " \t") {
		return &protocolError{400}
	}
	switch {
	case version == "HTTP/1.0":
	case len(version) == len("HTTP/1.1") && strings.HasPrefix(version, "HTTP/1.") && isDigit(version[7]):
		// A later 1.x is answered as 1.1, the highest this server knows.
		r.http11 = true
	case len(version) == len("HTTP/2.0") && strings.HasPrefix(version, "HTTP/") &&
		isDigit(version[5]) && version[6] == '.' && isDigit(version[7]):
		return &protocolError{505}
	default:
		return &protocolError{400}
	}
	r.method = method

	if scheme, rest, ok := strings.Cut(target, "://"); ok && (strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")) {
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			target = rest[i:]
		} else {
			target = "/"
		}
	}
	if target != "*" && target[0] != '/' {
		return &protocolError{400}
	}
	r.path, r.query, _ = strings.Cut(target, "?")
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isToken reports whether s is an RFC 9110 token: a method or header name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// validFieldValue rejects control characters other than tab in a header
// value; a bare CR or a NUL is a classic request smuggling vector.
func validFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// statusText is the reason phrase of the statuses this server sends.
func statusText(status int) string {
	switch status {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 409:
		return "Conflict"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status " + strconv.Itoa(status)
}
