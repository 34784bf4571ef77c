package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// admin is a server started by startAdmin.
type admin struct {
	addr string
	s    *server
	stop func() error // cancels Serve's context and returns what it returned
}

// startAdmin serves reg (NewRegistry's if nil) on a loopback port, with
// the server's limits adjusted by tune; Serve is stopped at cleanup, and
// must return nil then.
func startAdmin(t *testing.T, reg *Registry, tune func(*server)) admin {
	t.Helper()
	if reg == nil {
		reg = NewRegistry()
	}
	return serveAdmin(t, Handler(reg), tune)
}

// serveAdmin is startAdmin for endpoints with options.
func serveAdmin(t *testing.T, h *Admin, tune func(*server)) admin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(h)
	if tune != nil {
		tune(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, ln) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-done:
			case <-time.After(10 * time.Second):
				serveErr = errors.New("serve still running 10s after cancel")
			}
		})
		return serveErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return admin{addr: ln.Addr().String(), s: s, stop: stop}
}

// rawConn is a client connection written by hand, for what net/http's
// client will not send.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// response reads one response to a request with method, and its body.
func (c *rawConn) response(method string) (*http.Response, string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		c.t.Fatalf("reading the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("reading the body: %v", err)
	}
	return resp, string(body)
}

// closed waits up to within for the server to close the connection, and
// returns how long that took and any bytes that came first.
func (c *rawConn) closed(within time.Duration) (time.Duration, string) {
	c.t.Helper()
	start := time.Now()
	c.nc.SetReadDeadline(start.Add(within))
	rest, err := io.ReadAll(c.br)
	if err != nil {
		c.t.Fatalf("connection not closed by the server within %v: %v (read %q)", within, err, rest)
	}
	return time.Since(start), string(rest)
}

func get(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n" }

// TestAdminWithHTTPClient: what Prometheus, kubelet and curl see.
func TestAdminWithHTTPClient(t *testing.T) {
	a := startAdmin(t, nil, nil)
	client := &http.Client{Timeout: 5 * time.Second}
	do := func(method, path, accept string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+a.addr+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		return resp, string(body)
	}

	resp, body := do("GET", "/healthz", "")
	if resp.StatusCode != 200 || body != "ok\n" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("/healthz: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
		t.Errorf("/healthz Date %q: %v", resp.Header.Get("Date"), err)
	}

	resp, body = do("GET", "/metrics?debug=1", "")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != textContentType ||
		!strings.Contains(body, "\n# TYPE go_gc_cycles_total counter\n") || strings.Contains(body, "# EOF") {
		t.Errorf("/metrics: %d %q\n%.300s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp.ContentLength != int64(len(body)) {
		t.Errorf("/metrics Content-Length %d, body %d bytes", resp.ContentLength, len(body))
	}

	// Prometheus 2.x's scrape Accept header.
	const promAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
	resp, body = do("GET", "/metrics", promAccept)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != openMetricsContentType ||
		!strings.Contains(body, "\n# TYPE go_gc_cycles counter\ngo_gc_cycles_total ") || !strings.HasSuffix(body, "\n# EOF\n") {
		t.Errorf("/metrics as OpenMetrics: %d %q\n%.300s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}

	resp, body = do("HEAD", "/metrics", "")
	if resp.StatusCode != 200 || resp.ContentLength <= 0 || body != "" || resp.Header.Get("Content-Type") != textContentType {
		t.Errorf("HEAD /metrics: %d, Content-Length %d, body %q", resp.StatusCode, resp.ContentLength, body)
	}
	resp, body = do("HEAD", "/healthz", "")
	if resp.StatusCode != 200 || resp.ContentLength != 3 || body != "" {
		t.Errorf("HEAD /healthz: %d, Content-Length %d, body %q", resp.StatusCode, resp.ContentLength, body)
	}

	for _, path := range []string{"/", "/metrics/", "/healthz/x", "/METRICS", "/readyz/", "/debug/pprof/", "/debug/pprof/heap"} {
		if resp, body := do("GET", path, ""); resp.StatusCode != 404 || body != "404 Not Found\n" {
			t.Errorf("GET %s: %d %q, want 404", path, resp.StatusCode, body)
		}
	}
	for _, method := range []string{"POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
			resp, _ := do(method, path, "")
			if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("%s %s: %d, Allow %q; want 405 with Allow: GET, HEAD", method, path, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
	}
}

func TestNegotiate(t *testing.T) {
	const (
		text  = formatText
		om    = formatOpenMetrics
		proto = formatProtobuf
	)
	for _, tt := range []struct {
		accept string
		want   format
	}{
		{"", text},
		{"*/*", text},
		{"text/plain", text},
		{"application/openmetrics-text", om},
		{"Application/OpenMetrics-Text; Version=1.0.0", om},
		{`application/openmetrics-text; version="1.0.0"; charset=utf-8`, om},
		{"application/openmetrics-text;version=0.0.1", text},
		{"application/openmetrics-text;version=2.0.0", text},
		{"application/openmetrics-text;q=0", text},
		{"application/openmetrics-text;q=0.5,text/plain;version=0.0.4", text},
		{"text/plain;version=0.0.4;q=0.5,application/openmetrics-text;q=0.6", om},
		{"text/plain;q=0.5,application/openmetrics-text;q=0.5", text}, // first wins a tie
		{"application/openmetrics-text;q=0.5,*/*;q=0.5", om},
		{"text/plain;version=9.9,application/openmetrics-text;q=0.1", om},
		{"application/json", text},
		// Prometheus 3's default, which asks for escaping it need not get.
		{"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1", om},
		// Prometheus 2.42 with --enable-feature=native-histograms.
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", proto},
		{`Application/Vnd.Google.Protobuf; proto="io.prometheus.client.MetricFamily"; encoding=delimited`, proto},
		// Only the delimited binary stream of MetricFamily messages.
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text", text},
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=compact-text,application/openmetrics-text;q=0.1", om},
		{"application/vnd.google.protobuf;encoding=delimited", text},
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5,application/openmetrics-text;q=0.6", om},
	} {
		if got := negotiate(tt.accept); got != tt.want {
			t.Errorf("negotiate(%q) = %v, want %v", tt.accept, got, tt.want)
		}
	}
}

// TestAdminKeepAlive: HTTP/1.1 keeps the connection unless asked not to,
// HTTP/1.0 closes it unless asked to keep it, pipelined requests are
// answered in order, and HEAD's missing body does not shift the next
// response.
func TestAdminKeepAlive(t *testing.T) {
	a := startAdmin(t, nil, nil)

	c := dialRaw(t, a.addr)
	for i := range 2 {
		c.send(get("/healthz"))
		if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok\n" || resp.Close {
			t.Fatalf("request %d on one connection: %d %q, close %v", i, resp.StatusCode, body, resp.Close)
		}
	}
	c.send("HEAD /metrics HTTP/1.1\r\nHost: test\r\n\r\n" + get("/healthz") + get("/nope"))
	if resp, body := c.response("HEAD"); resp.StatusCode != 200 || resp.ContentLength <= 0 || body != "" {
		t.Errorf("pipelined HEAD: %d, Content-Length %d", resp.StatusCode, resp.ContentLength)
	}
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("GET after HEAD: %d %q", resp.StatusCode, body)
	}
	if resp, _ := c.response("GET"); resp.StatusCode != 404 {
		t.Errorf("third pipelined request: %d, want 404", resp.StatusCode)
	}
	c.send("GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: Close\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 200 || !resp.Close {
		t.Errorf("Connection: close: %d, response says close: %v", resp.StatusCode, resp.Close)
	}
	if _, rest := c.closed(5 * time.Second); rest != "" {
		t.Errorf("after Connection: close, %q", rest)
	}

	c = dialRaw(t, a.addr)
	c.send("GET /healthz HTTP/1.0\r\n\r\n")
	if resp, _ := c.response("GET"); resp.StatusCode != 200 || !resp.Close {
		t.Errorf("HTTP/1.0: %d, close %v", resp.StatusCode, resp.Close)
	}
	c.closed(5 * time.Second)

	c = dialRaw(t, a.addr)
	for range 2 {
		c.send("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		resp, body := c.response("GET")
		if resp.StatusCode != 200 || body != "ok\n" || resp.Header.Get("Connection") != "keep-alive" {
			t.Fatalf("HTTP/1.0 keep-alive: %d %q, Connection %q", resp.StatusCode, body, resp.Header.Get("Connection"))
		}
	}

	// A body is read and thrown away, so the next request is found.
	c = dialRaw(t, a.addr)
	c.send("POST /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\nhello world" + get("/healthz"))
	if resp, _ := c.response("POST"); resp.StatusCode != 405 {
		t.Errorf("POST with a body: %d, want 405", resp.StatusCode)
	}
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("GET after a POST body: %d %q", resp.StatusCode, body)
	}

	// Absolute form, a bare LF line end and empty lines before the request.
	c = dialRaw(t, a.addr)
	c.send("\r\nGET http://test/healthz?x HTTP/1.1\nHost: test\n\n")
	if resp, body := c.response("GET"); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("absolute-form request: %d %q", resp.StatusCode, body)
	}
}

// TestAdminBadRequests: a request the server cannot trust gets an error
// status, and the connection is closed after it.
func TestAdminBadRequests(t *testing.T) {
	a := startAdmin(t, nil, nil)
	big := strings.Repeat("x", 9<<10)
	for _, tt := range []struct {
		name, req string
		status    int
	}{
		{"garbage", "GARBAGE\r\n\r\n", 400},
		{"HTTP/0.9", "GET /metrics\r\n\r\n", 400},
		{"unknown protocol", "GET /metrics SPDY/3\r\nHost: test\r\n\r\n", 400},
		{"two spaces", "GET  /metrics HTTP/1.1\r\nHost: test\r\n\r\n", 400},
		{"target not a path", "GET metrics HTTP/1.1\r\nHost: test\r\n\r\n", 400},
		{"no Host", "GET /metrics HTTP/1.1\r\n\r\n", 400},
		{"two Hosts", "GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"space before colon", "GET /metrics HTTP/1.1\r\nHost : test\r\n\r\n", 400},
		{"no colon", "GET /metrics HTTP/1.1\r\nHost: test\r\nnocolon\r\n\r\n", 400},
		{"folded header", "GET /metrics HTTP/1.1\r\nHost: test\r\nX-A: a\r\n b\r\n\r\n", 400},
		{"CR in a value", "GET /metrics HTTP/1.1\r\nHost: test\r\nX-A: a\rb\r\n\r\n", 400},
		{"bad Content-Length", "GET /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: 1x\r\n\r\n", 400},
		{"signed Content-Length", "GET /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: +1\r\n\r\n", 400},
		{"negative Content-Length", "GET /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: -0\r\n\r\n", 400},
		{"two Content-Lengths", "GET /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
		{"chunked body", "POST /metrics HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501},
		{"large body", "POST /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\n\r\n", 413},
		{"HTTP/2", "GET /metrics HTTP/2.0\r\nHost: test\r\n\r\n", 505},
		{"long request line", "GET /" + big + " HTTP/1.1\r\nHost: test\r\n\r\n", 414},
		{"long header", "GET /metrics HTTP/1.1\r\nHost: test\r\nX-Big: " + big + "\r\n\r\n", 431},
		{"many headers", "GET /metrics HTTP/1.1\r\nHost: test\r\n" + strings.Repeat("X-Many: 0123456789012345678901234567890123456789\r\n", 200) + "\r\n", 431},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, a.addr)
			c.send(tt.req)
			resp, body := c.response("GET")
			want := strconv.Itoa(tt.status) + " "
			if resp.StatusCode != tt.status || !resp.Close || !strings.HasPrefix(body, want) {
				t.Errorf("%d %q, Connection: close %v; want %d", resp.StatusCode, body, resp.Close, tt.status)
			}
			c.closed(5 * time.Second)
		})
	}
}

// TestAdminTimeouts: a client that sends part of a request and stalls is
// cut after the header timeout, and an idle kept-alive connection after
// the idle timeout; the server stays fine for others meanwhile.
func TestAdminTimeouts(t *testing.T) {
	const headerTimeout, idleTimeout = 300 * time.Millisecond, 600 * time.Millisecond
	a := startAdmin(t, nil, func(s *server) {
		s.headerTimeout, s.idleTimeout = headerTimeout, idleTimeout
	})
	for _, tt := range []struct {
		name, sent string
		after      time.Duration
	}{
		{"silent", "", headerTimeout},
		{"half a request line", "GET /met", headerTimeout},
		{"headers unfinished", "GET /metrics HTTP/1.1\r\nHost: test\r\n", headerTimeout},
		{"body unfinished", "POST /metrics HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\nabc", headerTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, a.addr)
			start := time.Now()
			if tt.sent != "" {
				c.send(tt.sent)
			}
			c.closed(5 * time.Second)
			if took := time.Since(start); took < tt.after {
				t.Errorf("cut after %v, before the %v timeout", took, tt.after)
			}
		})
	}

	// A request within the header timeout of the last one is served; then
	// the idle timeout, not the header one, applies.
	c := dialRaw(t, a.addr)
	c.send(get("/healthz"))
	c.response("GET")
	start := time.Now()
	c.closed(5 * time.Second)
	if took := time.Since(start); took < idleTimeout-50*time.Millisecond {
		t.Errorf("idle connection cut after %v, before the %v idle timeout", took, idleTimeout)
	}
}

// TestAdminMaxConns: connections beyond the limit are closed at once,
// without a response, and accepted again once one closes.
func TestAdminMaxConns(t *testing.T) {
	a := startAdmin(t, nil, func(s *server) { s.maxConns = 2 })
	var held []*rawConn
	for range 2 {
		c := dialRaw(t, a.addr)
		c.send(get("/healthz"))
		if resp, _ := c.response("GET"); resp.StatusCode != 200 {
			t.Fatalf("connection within the limit: %d", resp.StatusCode)
		}
		held = append(held, c)
	}
	over := dialRaw(t, a.addr)
	if _, rest := over.closed(5 * time.Second); rest != "" {
		t.Errorf("connection over the limit got %q", rest)
	}
	held[0].nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc, err := net.DialTimeout("tcp", a.addr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(nc, get("/healthz"))
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
		nc.Close()
		if err == nil && resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection accepted 5s after one of the %d closed: %v", len(held), err)
		}
	}
}

// TestAdminConcurrentScrapes: scrapes from many clients at once all
// succeed, and each is a whole exposition.
func TestAdminConcurrentScrapes(t *testing.T) {
	a := startAdmin(t, nil, nil)
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 20},
	}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				resp, err := client.Get("http://" + a.addr + "/metrics")
				if err != nil {
					errs <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 ||
					!strings.HasPrefix(string(body), "# HELP go_gc_cycles_total ") ||
					!strings.Contains(string(body), "\nprocess_virtual_memory_bytes ") {
					errs <- fmt.Errorf("goroutine %d request %d: %d %v %.100q", g, i, resp.StatusCode, err, body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// blockingRegistry has a family whose collect function tells started that
// a scrape is under way and waits for release.
func blockingRegistry() (reg *Registry, started, release chan struct{}) {
	reg = &Registry{}
	started, release = make(chan struct{}, 1), make(chan struct{})
	reg.MustRegister("slow", "Blocks the scrape.", Gauge, func(emit Emit) {
		started <- struct{}{}
		<-release
		emit(1)
	})
	return reg, started, release
}

// TestAdminShutdown: when the context ends, the listener closes, idle
// connections are closed at once, a response in progress is finished (with
// Connection: close), and Serve returns nil.
func TestAdminShutdown(t *testing.T) {
	reg, started, release := blockingRegistry()
	a := startAdmin(t, reg, nil)

	idle := dialRaw(t, a.addr)
	idle.send(get("/healthz"))
	idle.response("GET")
	busy := dialRaw(t, a.addr)
	busy.send(get("/metrics"))
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		t.Fatal("the scrape never started")
	}

	stopped := make(chan error, 1)
	go func() { stopped <- a.stop() }()
	if _, rest := idle.closed(5 * time.Second); rest != "" {
		t.Errorf("idle connection got %q at shutdown", rest)
	}
	// The listener is closed before idle connections are.
	if nc, err := net.DialTimeout("tcp", a.addr, time.Second); err == nil {
		nc.Close()
		t.Error("the listener still accepts after shutdown began")
	}
	close(release)
	resp, body := busy.response("GET")
	if resp.StatusCode != 200 || body != "# HELP slow Blocks the scrape.\n# TYPE slow gauge\nslow 1\n" || !resp.Close {
		t.Errorf("response in progress at shutdown: %d %q, close %v", resp.StatusCode, body, resp.Close)
	}
	busy.closed(5 * time.Second)
	if err := <-stopped; err != nil {
		t.Errorf("Serve returned %v after cancel, want nil", err)
	}
}

// TestAdminShutdownGrace: a connection that has begun a request but will
// not finish it is waited for, up to the grace period, then closed; Serve
// still returns nil.
func TestAdminShutdownGrace(t *testing.T) {
	const grace = 300 * time.Millisecond
	a := startAdmin(t, nil, func(s *server) { s.shutdownGrace = grace })
	stalled := dialRaw(t, a.addr)
	stalled.send("GET /metrics HTTP/1.1\r\n")
	clustertest.Eventually(t, 5*time.Second, func() error {
		if !a.busyConns(1) {
			return errors.New("the server has not seen the request begin")
		}
		return nil
	})
	start := time.Now()
	if err := a.stop(); err != nil {
		t.Errorf("Serve returned %v, want nil", err)
	}
	if took := time.Since(start); took < grace || took > 5*time.Second {
		t.Errorf("Serve returned %v after cancel, want the %v grace", took, grace)
	}
	if _, rest := stalled.closed(time.Second); rest != "" {
		t.Errorf("stalled connection got %q", rest)
	}
}

// busyConns reports whether the server has n connections in a request.
func (a admin) busyConns(n int) bool {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	busy := 0
	for _, idle := range a.s.conns {
		if !idle {
			busy++
		}
	}
	return busy == n
}
