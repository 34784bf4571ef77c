package router

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// ErrTLSHandshake is the failure of a dial whose TLS handshake with the
// node failed: a certificate not signed by the configured CA, a name that
// does not match, a node that wants a client certificate...
var ErrTLSHandshake = errors.New("router: backend TLS handshake failed")

// TLSOptions say how the proxy speaks TLS to the cluster's nodes.
type TLSOptions struct {
	// CAFile is a PEM file of the CA certificates that sign the nodes'
	// certificates (redis-server's tls-ca-cert-file); "" means the
	// system's roots.
	CAFile string
	// CertFile and KeyFile are the PEM certificate and key the proxy
	// shows the nodes, which ask for one unless their tls-auth-clients is
	// no. Both or neither; "" shows none.
	CertFile, KeyFile string
	// ServerName is the name each node's certificate must carry, also
	// sent as SNI. "" means the host of the address dialed: the IP a node
	// announces, which its certificate must then list. Clusters whose
	// nodes share one certificate for a DNS name set it.
	ServerName string
}

// TLS dials the nodes over TLS: its Dial goes in router.Options.Dial and
// slotmap.Options.Dial alike. The files are read by NewTLS and again by
// Reload; a reload serves new connections, those open keep their session.
type TLS struct {
	opts   TLSOptions
	dialer net.Dialer
	config atomic.Pointer[tls.Config]
}

// NewTLS reads the files opts names.
func NewTLS(opts TLSOptions) (*TLS, error) {
	if (opts.CertFile == "") != (opts.KeyFile == "") {
		return nil, errors.New("router: TLS: a client certificate needs both a certificate and a key file")
	}
	t := &TLS{opts: opts, dialer: net.Dialer{KeepAlive: 30 * time.Second}}
	if err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Reload reads the files again, for the connections dialed from now on.
// On error the configuration in use stays.
func (t *TLS) Reload() error {
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ServerName: t.opts.ServerName,
		// Full-size records from the first byte: a batch of requests is
		// then one record, and one write, up to 16 KiB. Small first
		// records only help a browser render early.
		DynamicRecordSizingDisabled: true,
	}
	if t.opts.CAFile != "" {
		pool, err := loadCAs(t.opts.CAFile)
		if err != nil {
			return fmt.Errorf("router: TLS: %w", err)
		}
		cfg.RootCAs = pool
	}
	if t.opts.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(t.opts.CertFile, t.opts.KeyFile)
		if err != nil {
			return fmt.Errorf("router: TLS: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	t.config.Store(cfg)
	return nil
}

// Dial connects to the node at addr and completes the TLS handshake
// before ctx ends.
func (t *TLS) Dial(ctx context.Context, addr string) (net.Conn, error) {
	cfg := t.config.Load()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	nc, err := t.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(nc, cfg)
	err = tc.HandshakeContext(ctx)
	if err == nil && tc.ConnectionState().Version == tls.VersionTLS13 {
		err = confirm(ctx, tc)
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w with %s: %w", ErrTLSHandshake, addr, err)
	}
	return tc, nil
}

// confirm waits for a node's first reply, to a PING. Under TLS 1.3 a
// client's handshake is over before the node has checked the client's
// certificate: a node that refuses it (none shown, or one its CA did not
// sign) says so with an alert in place of that reply, or with a reset.
// Here that is a failed dial, which says why; later, it would be a
// connection lost with requests on it, and a write's error would only say
// "connection reset by peer". Any reply will do, -NOAUTH included: the
// authentication is the handshake's business (conn.go).
func confirm(ctx context.Context, tc *tls.Conn) error {
	if d, ok := ctx.Deadline(); ok {
		tc.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { tc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	defer tc.SetDeadline(time.Time{})
	// A write that fails on the reset still leaves the alert, received
	// before it, for the read.
	tc.Write(pingCmd)
	buf := make([]byte, 0, 256)
	for {
		n, err := tc.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if size, serr := ScanReply(buf); serr != nil {
			return serr
		} else if size > 0 {
			if size != len(buf) {
				return fmt.Errorf("%w: bytes after the reply to PING", ErrProtocol)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if len(buf) == cap(buf) {
			return fmt.Errorf("%w: reply to PING too long", ErrProtocol)
		}
	}
}

// loadCAs reads a PEM file of CA certificates.
func loadCAs(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", path)
	}
	return pool, nil
}

// closeNow closes nc at once. A TLS connection's Close first writes a
// close_notify alert, which waits up to 5s for room on a socket that a hung
// node no longer reads: the watchdog that fails such a connection must not
// wait with it. A failed connection has nothing left to say anyway.
func closeNow(nc net.Conn) error {
	if tc, ok := nc.(*tls.Conn); ok {
		return tc.NetConn().Close()
	}
	return nc.Close()
}

// socketOf returns the connection that carries nc: a TLS connection's
// socket, where a peek shows whether the node closed it (its close_notify
// alert, then its FIN, are bytes nothing asked for).
func socketOf(nc net.Conn) net.Conn {
	if tc, ok := nc.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return nc
}
