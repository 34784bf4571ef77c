package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// tlsSetup is a TLS-only cluster and the certificates of the proxy's
// client side: a CA of its own, which signs the proxy's certificate and an
// application's client certificate.
type tlsSetup struct {
	c       *clustertest.Cluster
	nodes   *clustertest.TLS
	ca      *clustertest.CA
	proxy   *clustertest.KeyPair
	app     *clustertest.KeyPair
	tempDir string
}

func newTLSSetup(t *testing.T) *tlsSetup {
	s := &tlsSetup{tempDir: t.TempDir()}
	var err error
	if s.nodes, err = clustertest.NewTLS(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if s.ca, err = clustertest.NewCA(t.TempDir(), "clients-ca"); err != nil {
		t.Fatal(err)
	}
	if s.proxy, err = s.ca.Issue("proxy"); err != nil {
		t.Fatal(err)
	}
	if s.app, err = s.ca.Issue("app"); err != nil {
		t.Fatal(err)
	}
	s.c = clustertest.New(t, clustertest.Options{Masters: 3, TLS: s.nodes})
	return s
}

// start runs a proxy whose listener speaks TLS with topts (the proxy's
// certificate when it names none) and whose backends speak TLS with bopts
// (the nodes' CA and certificate when it names no CA). It waits for the
// slot table when wait is set.
func (s *tlsSetup) start(t *testing.T, opts Options, topts TLSOptions, bopts router.TLSOptions, ropts router.Options, wait bool) (*testProxy, *TLS) {
	t.Helper()
	if topts.CertFile == "" {
		topts.CertFile, topts.KeyFile = s.proxy.CertFile, s.proxy.KeyFile
	}
	if bopts.CAFile == "" {
		bopts = router.TLSOptions{CAFile: s.nodes.CA.CertFile, CertFile: s.nodes.Cert.CertFile, KeyFile: s.nodes.Cert.KeyFile}
	}
	ctls, err := NewTLS(topts)
	if err != nil {
		t.Fatal(err)
	}
	btls, err := router.NewTLS(bopts)
	if err != nil {
		t.Fatal(err)
	}
	slots, err := slotmap.New(slotmap.Options{
		Seeds: s.c.Seeds()[:1], RefreshInterval: time.Second, Dial: btls.Dial, TLS: true, Logger: ropts.Logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.TLS = ctls
	ropts.Dial = btls.Dial
	p := serveProxy(t, slots, opts, ropts)
	if wait {
		p.waitReady(t)
	}
	return p, ctls
}

// clientConfig trusts the clients' CA and, given a key pair, shows it.
func (s *tlsSetup) clientConfig(t *testing.T, kp *clustertest.KeyPair) *tls.Config {
	t.Helper()
	tc := &tls.Config{RootCAs: s.ca.Pool, ServerName: "127.0.0.1"}
	if kp != nil {
		pair, err := tls.LoadX509KeyPair(kp.CertFile, kp.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	return tc
}

func tlsGoRedis(t *testing.T, addr string, tc *tls.Config) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, TLSConfig: tc, MaxRetries: -1, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// tlsConn is one raw TLS connection to the proxy.
type tlsConn struct {
	*tls.Conn
	r *bufio.Reader
}

func dialTLS(t *testing.T, addr string, tc *tls.Config) *tlsConn {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, tc)
	if err != nil {
		t.Fatalf("TLS dial of %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &tlsConn{Conn: c, r: bufio.NewReader(c)}
}

// ping sends PING and returns the reply line, or the error.
func (c *tlsConn) ping() (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return "", err
	}
	return c.r.ReadString('\n')
}

func (c *tlsConn) serial() *big.Int { return c.ConnectionState().PeerCertificates[0].SerialNumber }

// TestTLS runs proxies with TLS on both sides in front of one TLS-only
// cluster.
func TestTLS(t *testing.T) {
	s := newTLSSetup(t)
	t.Run("Clients", func(t *testing.T) { testTLSClients(t, s) })
	t.Run("Mutual", func(t *testing.T) { testTLSMutual(t, s) })
	t.Run("Reload", func(t *testing.T) { testTLSReload(t, s) })
	t.Run("ReloadClientCA", func(t *testing.T) { testTLSReloadClientCA(t, s) })
	t.Run("Limits", func(t *testing.T) { testTLSLimits(t, s) })
	t.Run("UnreadReplies", func(t *testing.T) { testTLSUnreadReplies(t, s) })
	t.Run("SlowReaders", func(t *testing.T) { testTLSSlowReaders(t, s) })
	t.Run("WrongBackendCA", func(t *testing.T) { testTLSWrongBackendCA(t, s) })
}

// testTLSClients: a plain (cluster-unaware) client over TLS uses the whole
// cluster through the proxy, which reaches it over TLS: keys across slots,
// MGET across masters, a pipeline, a large value, a blocking pop and
// Pub/Sub (dedicated backend connections); redis-cli --tls too.
func testTLSClients(t *testing.T, s *tlsSetup) {
	logs := &clustertest.LogBuffer{}
	p, _ := s.start(t, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))}, TLSOptions{}, router.TLSOptions{}, router.Options{}, true)
	ctx := context.Background()
	c := tlsGoRedis(t, p.Addr, s.clientConfig(t, nil))

	keys := make([]string, 20)
	for i := range keys {
		keys[i] = fmt.Sprintf("tls:key:%d", i)
		if err := c.Set(ctx, keys[i], "v"+keys[i], 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", keys[i], err)
		}
	}
	vals, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range vals {
		if v != "v"+keys[i] {
			t.Fatalf("MGET[%d] = %v, want %q", i, v, "v"+keys[i])
		}
	}
	pipe := c.Pipeline()
	var gets []*redis.StringCmd
	for i := range 200 {
		pipe.Incr(ctx, "tls:counter")
		gets = append(gets, pipe.Get(ctx, keys[i%len(keys)]))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	for i, g := range gets {
		if g.Val() != "v"+keys[i%len(keys)] {
			t.Fatalf("pipelined GET %d = %q", i, g.Val())
		}
	}
	if n, err := c.Get(ctx, "tls:counter").Int(); err != nil || n != 200 {
		t.Fatalf("counter after the pipeline: %d, %v", n, err)
	}
	big := strings.Repeat("x", 300<<10)
	if err := c.Set(ctx, "tls:big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "tls:big").Result(); err != nil || got != big {
		t.Fatalf("GET of %d bytes: %d bytes, %v", len(big), len(got), err)
	}
	if _, err := c.BLPop(ctx, 100*time.Millisecond, "tls:nolist").Result(); err != redis.Nil {
		t.Fatalf("BLPOP that times out: %v, want redis.Nil", err)
	}
	sub := c.Subscribe(ctx, "tls:channel")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, "tls:channel", "hello").Err(); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.ReceiveMessage(ctx)
	if err != nil || msg.Payload != "hello" {
		t.Fatalf("message %v, %v", msg, err)
	}

	// The certificate served is the proxy's.
	if got := dialTLS(t, p.Addr, s.clientConfig(t, nil)).serial(); got.Cmp(s.proxy.Cert.SerialNumber) != 0 {
		t.Errorf("served serial %v, want the proxy's %v", got, s.proxy.Cert.SerialNumber)
	}

	for _, tt := range []struct{ args, want string }{
		{"PING", "PONG"},
		{"SET tls:cli hello", "OK"},
		{"GET tls:cli", "hello"},
	} {
		args := append([]string{"--tls", "--cacert", s.ca.CertFile}, strings.Fields(tt.args)...)
		if got := strings.TrimSpace(redisCLI(t, p.Addr, "", args...)); got != tt.want {
			t.Errorf("redis-cli --tls %s: %q, want %q", tt.args, got, tt.want)
		}
	}

	// Plaintext is not served: the bytes are no TLS handshake.
	nc, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	nc.Write([]byte("*1\r\n$4\r\nPING\r\n"))
	if line, err := bufio.NewReader(nc).ReadString('\n'); err == nil || strings.Contains(line, "PONG") {
		t.Errorf("a plaintext PING got %q, %v", line, err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if l := logs.String(); !strings.Contains(l, `msg="client TLS handshake failed"`) || !strings.Contains(l, "does not look like a TLS handshake") {
			return fmt.Errorf("no log of the failed handshake:\n%s", l)
		}
		return nil
	})
}

// testTLSMutual: with a client CA, a client must show a certificate that
// CA signed.
func testTLSMutual(t *testing.T, s *tlsSetup) {
	p, _ := s.start(t, Options{}, TLSOptions{ClientCAFile: s.ca.CertFile}, router.TLSOptions{}, router.Options{}, true)
	ctx := context.Background()

	if err := tlsGoRedis(t, p.Addr, s.clientConfig(t, nil)).Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("PING without a client certificate: %v; want the handshake refused", err)
	}
	// A certificate of another CA (the nodes') is refused too.
	if err := tlsGoRedis(t, p.Addr, s.clientConfig(t, s.nodes.Cert)).Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "tls:") {
		t.Errorf("PING with a certificate of another CA: %v; want the handshake refused", err)
	}
	c := tlsGoRedis(t, p.Addr, s.clientConfig(t, s.app))
	if err := c.Set(ctx, "tls:mutual", "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "tls:mutual").Result(); err != nil || got != "yes" {
		t.Errorf("GET with a client certificate: %q, %v", got, err)
	}
	got := redisCLI(t, p.Addr, "", "--tls", "--cacert", s.ca.CertFile, "--cert", s.app.CertFile, "--key", s.app.KeyFile, "GET", "tls:mutual")
	if strings.TrimSpace(got) != "yes" {
		t.Errorf("redis-cli with a client certificate: %q", got)
	}
}

// testTLSReload: replacing the certificate files and reloading serves the
// new certificate to new connections; a connection made before keeps
// working; a reload whose files do not load keeps the certificate in use.
func testTLSReload(t *testing.T, s *tlsSetup) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "proxy.crt"), filepath.Join(dir, "proxy.key")
	clustertest.CopyFile(t, s.proxy.CertFile, certFile)
	clustertest.CopyFile(t, s.proxy.KeyFile, keyFile)
	p, ctls := s.start(t, Options{}, TLSOptions{CertFile: certFile, KeyFile: keyFile}, router.TLSOptions{}, router.Options{}, true)
	// With a session cache: a session resumed across the reload would
	// show the certificate of its first handshake.
	cfg := s.clientConfig(t, nil)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)

	old := dialTLS(t, p.Addr, cfg)
	if line, err := old.ping(); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING: %q, %v", line, err)
	}
	if old.serial().Cmp(s.proxy.Cert.SerialNumber) != 0 {
		t.Fatalf("served serial %v, want %v", old.serial(), s.proxy.Cert.SerialNumber)
	}
	if !dialTLS(t, p.Addr, cfg).ConnectionState().DidResume {
		t.Fatal("no session resumed before the reload: the check after it would prove less")
	}

	renewed, err := s.ca.Issue("proxy-renewed")
	if err != nil {
		t.Fatal(err)
	}
	clustertest.CopyFile(t, renewed.CertFile, certFile)
	clustertest.CopyFile(t, renewed.KeyFile, keyFile)
	if got := dialTLS(t, p.Addr, cfg).serial(); got.Cmp(s.proxy.Cert.SerialNumber) != 0 {
		t.Fatalf("before the reload a new connection sees serial %v, want the old %v", got, s.proxy.Cert.SerialNumber)
	}
	if err := ctls.Reload(); err != nil {
		t.Fatal(err)
	}
	fresh := dialTLS(t, p.Addr, cfg)
	if fresh.serial().Cmp(renewed.Cert.SerialNumber) != 0 || fresh.ConnectionState().DidResume {
		t.Fatalf("after the reload a new connection sees serial %v (resumed: %v), want the renewed %v",
			fresh.serial(), fresh.ConnectionState().DidResume, renewed.Cert.SerialNumber)
	}
	for name, c := range map[string]*tlsConn{"old": old, "new": fresh} {
		if line, err := c.ping(); err != nil || line != "+PONG\r\n" {
			t.Errorf("PING on the %s connection after the reload: %q, %v", name, line, err)
		}
	}

	if err := os.WriteFile(keyFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ctls.Reload(); err == nil {
		t.Error("a reload of a broken key file succeeded")
	}
	if got := dialTLS(t, p.Addr, cfg).serial(); got.Cmp(renewed.Cert.SerialNumber) != 0 {
		t.Errorf("after a failed reload a new connection sees serial %v, want %v still", got, renewed.Cert.SerialNumber)
	}
}

// testTLSReloadClientCA: after a reload to another client CA, a client
// whose certificate only the old CA signed is refused, even when it holds
// a session ticket from before the reload.
func testTLSReloadClientCA(t *testing.T, s *tlsSetup) {
	caFile := filepath.Join(t.TempDir(), "client-ca.pem")
	clustertest.CopyFile(t, s.ca.CertFile, caFile)
	p, ctls := s.start(t, Options{}, TLSOptions{ClientCAFile: caFile, MinVersion: tls.VersionTLS13}, router.TLSOptions{}, router.Options{}, true)

	cfg := s.clientConfig(t, s.app)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	first := dialTLS(t, p.Addr, cfg)
	if line, err := first.ping(); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING: %q, %v", line, err)
	}
	// Before the reload a second connection resumes with the ticket
	// (which arrives with the first reply).
	if c := dialTLS(t, p.Addr, cfg); !c.ConnectionState().DidResume {
		t.Fatal("no session resumed before the reload: the check below would prove nothing")
	}

	clustertest.CopyFile(t, s.nodes.CA.CertFile, caFile) // a CA that did not sign s.app
	if err := ctls.Reload(); err != nil {
		t.Fatal(err)
	}
	// Under TLS 1.3 the refusal of a client certificate comes after the
	// client's handshake, with the first read.
	c, err := tls.Dial("tcp", p.Addr, cfg)
	if err == nil {
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("*1\r\n$4\r\nPING\r\n"))
		_, err = bufio.NewReader(c).ReadString('\n')
	}
	if err == nil {
		t.Fatalf("a client certificate of the CA reloaded away was accepted (resumed: %v)", c.ConnectionState().DidResume)
	}
	if line, err := first.ping(); err != nil || line != "+PONG\r\n" {
		t.Errorf("PING on the connection made before the reload: %q, %v", line, err)
	}
	ok := dialTLS(t, p.Addr, s.clientConfig(t, s.nodes.Cert))
	if line, err := ok.ping(); err != nil || line != "+PONG\r\n" {
		t.Errorf("PING with a certificate of the new CA: %q, %v", line, err)
	}
}

// testTLSLimits: a client past max_clients is dropped before its handshake,
// as redis-server drops a TLS client; one that never completes its
// handshake is closed after the handshake timeout and frees its slot.
func testTLSLimits(t *testing.T, s *tlsSetup) {
	p, _ := s.start(t, Options{MaxClients: 1}, TLSOptions{HandshakeTimeout: 300 * time.Millisecond}, router.TLSOptions{}, router.Options{}, true)
	cfg := s.clientConfig(t, nil)

	silent, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	silent.SetDeadline(start.Add(10 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a client silent in its handshake: read %v; want the proxy to close it", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("closed after %v, before the handshake timeout", d)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if n := p.Server.Clients(); n != 0 {
			return fmt.Errorf("%d clients after the silent one was closed", n)
		}
		return nil
	})

	first := dialTLS(t, p.Addr, cfg)
	if line, err := first.ping(); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING: %q, %v", line, err)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	if c, err := tls.DialWithDialer(d, "tcp", p.Addr, cfg); err == nil {
		c.Close()
		t.Error("a second client got its handshake past max_clients 1")
	}
}

// testTLSUnreadReplies: a client that sends a pipeline too long for the
// sockets' buffers before it reads a reply (go-redis and Jedis pipelines
// do) gets every reply: the proxy goes on reading while the replies wait,
// as for a plain client.
func testTLSUnreadReplies(t *testing.T, s *tlsSetup) {
	p, _ := s.start(t, Options{MaxOutputBytes: 64 << 20}, TLSOptions{}, router.TLSOptions{}, router.Options{}, true)
	value := strings.Repeat("v", 100)
	if err := tlsGoRedis(t, p.Addr, s.clientConfig(t, nil)).Set(context.Background(), "tls:pipe", value, 0).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 300000 // 9 MB of requests, 32 MB of replies
	get := []byte("*2\r\n$3\r\nGET\r\n$8\r\ntls:pipe\r\n")
	reply := "$100\r\n" + value + "\r\n"
	c := dialTLS(t, p.Addr, s.clientConfig(t, nil))
	c.SetDeadline(time.Now().Add(60 * time.Second))
	// QUIT ends the session while most replies still wait: they are
	// written before the connection is closed.
	if _, err := c.Write(append(bytes.Repeat(get, n), "*1\r\n$4\r\nQUIT\r\n"...)); err != nil {
		t.Fatalf("writing %d GETs before reading: %v", n, err)
	}
	// Once QUIT is answered, the session waits for its client to read.
	clustertest.Eventually(t, 30*time.Second, func() error {
		p.Server.mu.Lock()
		defer p.Server.mu.Unlock()
		if len(p.Server.sessions) < 2 { // this one, and the go-redis client's
			t.Fatal("the session ended before its client read its replies")
		}
		for sess := range p.Server.sessions {
			if sess.cmds.Load() == n+1 {
				return nil
			}
		}
		return errors.New("QUIT not answered yet")
	})
	buf := make([]byte, len(reply))
	for i := range n {
		if _, err := io.ReadFull(c.r, buf); err != nil || string(buf) != reply {
			t.Fatalf("reply %d: %q, %v", i, buf, err)
		}
	}
	if line, err := c.r.ReadString('\n'); err != nil || line != "+OK\r\n" {
		t.Fatalf("QUIT: %q, %v", line, err)
	}
	if b, err := c.r.ReadByte(); err != io.EOF {
		t.Errorf("after QUIT: %q, %v; want the connection closed", b, err)
	}
}

// testTLSSlowReaders: a TLS client that never reads its replies, and a
// TLS subscriber that never reads its messages, are disconnected past
// max_output_bytes; meanwhile another subscriber gets every message.
func testTLSSlowReaders(t *testing.T, s *tlsSetup) {
	logs := &clustertest.LogBuffer{}
	p, _ := s.start(t, Options{MaxOutputBytes: 1 << 20, Logger: slog.New(slog.NewTextHandler(logs, nil))},
		TLSOptions{}, router.TLSOptions{}, router.Options{}, true)
	ctx := context.Background()
	cfg := s.clientConfig(t, nil)
	value := strings.Repeat("v", 1000)
	if err := tlsGoRedis(t, p.Addr, cfg).Set(ctx, "tls:slow", value, 0).Err(); err != nil {
		t.Fatal(err)
	}

	// GETs without a read: the proxy closes the connection, and the
	// client's writes fail, once the replies waiting pass 1 MiB.
	deaf := dialTLS(t, p.Addr, cfg)
	deaf.SetDeadline(time.Now().Add(30 * time.Second))
	get := bytes.Repeat([]byte("*2\r\n$3\r\nGET\r\n$8\r\ntls:slow\r\n"), 1000)
	var err error
	for sent := 0; err == nil && sent < 100<<20; sent += len(get) {
		_, err = deaf.Write(get)
	}
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a client that never reads wrote 100 MB of GETs: %v", err)
	}

	// A subscriber that reads and one that does not.
	reader := tlsGoRedis(t, p.Addr, cfg).Subscribe(ctx, "tls:news")
	defer reader.Close()
	if _, err := reader.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	silent := dialTLS(t, p.Addr, cfg)
	silent.SetDeadline(time.Now().Add(30 * time.Second))
	silent.Write([]byte("*2\r\n$9\r\nSUBSCRIBE\r\n$8\r\ntls:news\r\n"))
	if line, err := silent.r.ReadString('\n'); err != nil || line != "*3\r\n" {
		t.Fatalf("SUBSCRIBE: %q, %v", line, err)
	}
	pub := tlsGoRedis(t, p.Addr, cfg)
	// 20 MB: more than the sockets between the proxy and the silent
	// subscriber hold, whatever their buffers grew to.
	const n = 20000
	messages := reader.Channel(redis.WithChannelSize(n))
	for i := 0; i < n; i += 1000 {
		_, err := pub.Pipelined(ctx, func(p redis.Pipeliner) error {
			for range 1000 {
				p.Publish(ctx, "tls:news", value)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("PUBLISH %d...: %v", i, err)
		}
	}
	for i := range n {
		select {
		case m := <-messages:
			if m.Payload != value {
				t.Fatalf("message %d: %d bytes", i, len(m.Payload))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the reading subscriber got %d of %d messages", i, n)
		}
	}
	clustertest.Eventually(t, 10*time.Second, func() error {
		if c := strings.Count(logs.String(), `reason=output_limit`); c < 2 {
			return fmt.Errorf("%d clients disconnected for their output, want 2:\n%s", c, logs)
		}
		return nil
	})
}

// testTLSWrongBackendCA: a proxy that does not trust the nodes' CA
// discovers nothing; its log says why, and clients get CLUSTERDOWN.
func testTLSWrongBackendCA(t *testing.T, s *tlsSetup) {
	logs := &clustertest.LogBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	p, _ := s.start(t, Options{Logger: logger}, TLSOptions{},
		router.TLSOptions{CAFile: s.ca.CertFile, CertFile: s.nodes.Cert.CertFile, KeyFile: s.nodes.Cert.KeyFile},
		router.Options{Logger: logger}, false)
	const why = "x509: certificate signed by unknown authority"
	clustertest.Eventually(t, 10*time.Second, func() error {
		if l := logs.String(); !strings.Contains(l, `msg="cluster discovery failed, retrying"`) || !strings.Contains(l, why) ||
			!strings.Contains(l, router.ErrTLSHandshake.Error()) {
			return fmt.Errorf("log:\n%s\nwant a discovery failure saying %q", l, why)
		}
		return nil
	})
	err := tlsGoRedis(t, p.Addr, s.clientConfig(t, nil)).Get(context.Background(), "tls:k").Err()
	if err == nil || err.Error() != router.MsgNoTable {
		t.Errorf("GET: %v; want %q", err, router.MsgNoTable)
	}
}

// TestTLSSocket: the socket under a TLS client's connection takes every
// write at once, delivers the bytes in order across many rounds of
// falling behind and catching up, and refuses writes once more than the
// output limit waits.
func TestTLSSocket(t *testing.T) {
	srv := &Server{opts: Options{MaxOutputBytes: 4 << 20}}
	srv.opts.setDefaults()
	near, far := clustertest.TCPPair(t)
	sock, ok := srv.newTLSSocket(far).(*tlsSocket)
	if !ok {
		t.Fatal("a TCP connection got no tlsSocket")
	}

	// Rounds of: nobody reads until the socket is full and the flushing
	// goroutine holds the rest; then the reader takes everything written
	// so far, and the goroutine ends, caught up.
	const chunk = 64 << 10
	var want, got bytes.Buffer
	for round := range 5 {
		for i := 0; ; i++ {
			b := bytes.Repeat([]byte{byte(round*16 + i)}, chunk)
			want.Write(b)
			if n, err := sock.Write(b); n != chunk || err != nil {
				t.Fatalf("round %d, write %d: %d, %v", round, i, n, err)
			}
			sock.mu.Lock()
			behind := sock.writing
			sock.mu.Unlock()
			if behind {
				break
			}
		}
		near.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.CopyN(&got, near, int64(want.Len()-got.Len())); err != nil {
			t.Fatalf("round %d: reading: %v", round, err)
		}
		clustertest.Eventually(t, 10*time.Second, func() error {
			sock.mu.Lock()
			defer sock.mu.Unlock()
			if sock.writing || sock.buf != nil {
				return errors.New("the flushing goroutine is still on after the reader caught up")
			}
			return nil
		})
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("the reader got %d bytes, not the %d written, in order", got.Len(), want.Len())
	}

	// Nobody reads any more: past 4 MiB waiting, writes fail.
	var err error
	for sent := 0; err == nil && sent < 64<<20; sent += chunk {
		_, err = sock.Write(make([]byte, chunk))
	}
	if err != errSlowClient {
		t.Fatalf("writes to a client that does not read: %v, want errSlowClient", err)
	}
	if _, err := sock.Write([]byte("x")); err != errSlowClient {
		t.Errorf("a write after the limit: %v, want errSlowClient", err)
	}
}

// benchProxyTLS is benchProxyOver(b, true) with TLS on both sides: the
// client's connection and the in-memory masters' speak it over loopback
// TCP.
func benchProxyTLS(b *testing.B) net.Conn {
	b.Helper()
	ca, err := clustertest.NewCA(b.TempDir(), "ca")
	if err != nil {
		b.Fatal(err)
	}
	kp, err := ca.Issue("server")
	if err != nil {
		b.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(kp.CertFile, kp.KeyFile)
	if err != nil {
		b.Fatal(err)
	}
	serverCfg := &tls.Config{Certificates: []tls.Certificate{pair}}
	clientCfg := &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}
	table, err := slotmap.BuildTable([]slotmap.Assignment{
		{Master: slotmap.Node{Addr: "m0:1"}, Ranges: []slotmap.SlotRange{{Start: 0, End: 5460}}},
		{Master: slotmap.Node{Addr: "m1:1"}, Ranges: []slotmap.SlotRange{{Start: 5461, End: 10922}}},
		{Master: slotmap.Node{Addr: "m2:1"}, Ranges: []slotmap.SlotRange{{Start: 10923, End: 16383}}},
	})
	if err != nil {
		b.Fatal(err)
	}
	rt := router.New(slotmap.Static(table), router.Options{
		Dial: func(ctx context.Context, _ string) (net.Conn, error) {
			near, far := clustertest.TCPPair(b)
			go memBackend(tls.Server(far, serverCfg))
			tc := tls.Client(near, clientCfg)
			return tc, tc.HandshakeContext(ctx)
		},
	})
	ptls, err := NewTLS(TLSOptions{CertFile: kp.CertFile, KeyFile: kp.KeyFile})
	if err != nil {
		b.Fatal(err)
	}
	srv := New(rt, Options{TLS: ptls})
	near, far := clustertest.TCPPair(b)
	srv.start(far)
	client := tls.Client(near, clientCfg)
	b.Cleanup(func() {
		client.Close()
		srv.Close()
		rt.Close()
	})
	return client
}

// GET and SET with TLS on both sides: what TLS adds to the TCP figures.
func BenchmarkSessionGETTLS(b *testing.B) {
	roundTrips(b, benchProxyTLS(b), benchCommands(1, "GET key:%d"), 1)
}

func BenchmarkSessionSETTLS(b *testing.B) {
	roundTrips(b, benchProxyTLS(b), benchCommands(1, "SET key:%d "+strings.Repeat("x", 32)), 1)
}

func BenchmarkSessionGETPipeline16TLS(b *testing.B) {
	roundTrips(b, benchProxyTLS(b), benchCommands(16, "GET key:%d"), 16)
}
