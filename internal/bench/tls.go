package main

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// With -tls, the clients speak TLS to slotproxy and, so that the physical
// reference does the same client-side work, to the standalone server; the
// cluster is reached in plaintext, directly and by the proxy. Only the SET
// and GET scenarios run: what TLS costs shows there, per request.

// benchTLS is the certificate the proxy and the standalone server show,
// for 127.0.0.1, and the CA the load generators trust.
type benchTLS struct {
	ca        *clustertest.CA
	cert, key string
}

func newBenchTLS(dir string) (*benchTLS, error) {
	ca, err := clustertest.NewCA(dir, "bench-ca")
	if err != nil {
		return nil, err
	}
	kp, err := ca.Issue("bench-server")
	if err != nil {
		return nil, err
	}
	return &benchTLS{ca: ca, cert: kp.CertFile, key: kp.KeyFile}, nil
}

// clientArgs are redis-benchmark's and redis-cli's options for a TLS
// server; none for a nil t.
func (t *benchTLS) clientArgs() []string {
	if t == nil {
		return nil
	}
	return []string{"--tls", "--cacert", t.ca.CertFile}
}

// clientConfig is the bench's own clients'; nil for a nil t.
func (t *benchTLS) clientConfig() *tls.Config {
	if t == nil {
		return nil
	}
	return &tls.Config{RootCAs: t.ca.Pool, ServerName: "127.0.0.1"}
}

// proxyConfig is the proxy configuration's tls block; "" for a nil t.
func (t *benchTLS) proxyConfig() string {
	if t == nil {
		return ""
	}
	return "tls:\n  cert_file: " + strconv.Quote(t.cert) + "\n  key_file: " + strconv.Quote(t.key) + "\n"
}

// standaloneArgs make redis-server speak TLS only, on port, without
// asking clients for a certificate (the proxy asks for none either).
func (t *benchTLS) standaloneArgs(port int) []string {
	if t == nil {
		return []string{"--port", strconv.Itoa(port)}
	}
	return []string{"--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", t.cert, "--tls-key-file", t.key, "--tls-ca-cert-file", t.ca.CertFile,
		"--tls-auth-clients", "no"}
}

// handshake completes a TLS handshake on nc; with a nil t, nc is returned.
func (t *benchTLS) handshake(ctx context.Context, nc net.Conn) (net.Conn, error) {
	if t == nil {
		return nc, nil
	}
	tc := tls.Client(nc, t.clientConfig())
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return tc, nil
}
