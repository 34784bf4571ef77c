package router_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// tlsEnv is a TLS-only cluster and a slot map that discovers it over TLS.
type tlsEnv struct {
	c     *clustertest.Cluster
	certs *clustertest.TLS
	slots *slotmap.Map
}

func tlsStart(t *testing.T) *tlsEnv {
	certs, err := clustertest.NewTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := clustertest.New(t, clustertest.Options{Masters: 3, NodeTimeout: 20 * time.Second, TLS: certs})
	dialer, err := router.NewTLS(router.TLSOptions{CAFile: certs.CA.CertFile, CertFile: certs.Cert.CertFile, KeyFile: certs.Cert.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	slots := rtSlots(t, slotmap.Options{Seeds: c.Seeds()[:1], RefreshInterval: time.Second, Dial: dialer.Dial, TLS: true})
	return &tlsEnv{c: c, certs: certs, slots: slots}
}

// TestTLSBackends: discovery, shared connections and dedicated ones all
// speak TLS to a cluster that speaks nothing else, and keep their batching
// and framing across TLS records.
func TestTLSBackends(t *testing.T) {
	e := tlsStart(t)
	for _, s := range e.slots.Table().Shards() {
		if !slices.Contains(e.c.Seeds(), s.Master.Addr) {
			t.Fatalf("the slot map over TLS lists master %s, not a node's TLS port (%v)", s.Master.Addr, e.c.Seeds())
		}
	}
	dialer, err := router.NewTLS(router.TLSOptions{CAFile: e.certs.CA.CertFile, CertFile: e.certs.Cert.CertFile, KeyFile: e.certs.Cert.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	rt := router.New(e.slots, router.Options{ConnsPerNode: 1, Dial: dialer.Dial})
	t.Cleanup(rt.Close)

	// Keys on every master, each written then read back.
	for i := range 30 {
		k, v := "tls:"+strconv.Itoa(i), "value-"+strconv.Itoa(i)
		if got := rtDo(t, rt, false, "SET", k, v); got != "+OK\r\n" {
			t.Fatalf("SET %s: %q", k, got)
		}
		if got := rtDo(t, rt, true, "GET", k); got != rtBulk(v) {
			t.Fatalf("GET %s: %q", k, got)
		}
	}

	// A value of several 16 KiB records each way.
	big := strings.Repeat("0123456789abcdef", 20000)
	if got := rtDo(t, rt, false, "SET", "tls:big", big); got != "+OK\r\n" {
		t.Fatalf("SET of %d bytes: %q", len(big), got)
	}
	if got := rtDo(t, rt, true, "GET", "tls:big"); got != rtBulk(big) {
		t.Fatalf("GET of %d bytes: %d bytes back", len(big), len(got))
	}

	// Many requests in flight at once share each connection's batches;
	// every reply reaches its own request.
	calls := make([]*rtCall, 500)
	for i := range calls {
		k := "tls:" + strconv.Itoa(i%30)
		calls[i] = rtSendAs(rt, uint32(i), rtCmd("GET", k), rtSlot(k), true)
	}
	for i, c := range calls {
		if got, _ := c.wait(t, 10*time.Second); got != rtBulk("value-"+strconv.Itoa(i%30)) {
			t.Fatalf("request %d: %q", i, got)
		}
	}

	// A dedicated connection: a round trip, then, once the node has closed
	// it while idle, it is not handed out again.
	node := e.c.Nodes[0].Addr
	l, err := rt.Lease(node, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Write(rtCmd("PING")); err != nil {
		t.Fatal(err)
	}
	if reply, err := l.Read(false); err != nil || string(reply) != "+PONG\r\n" {
		t.Fatalf("PING on a TLS lease: %q, %v", reply, err)
	}
	id := l.ID
	l.Release()
	if err := e.c.Client(node).ClientKillByFilter(context.Background(), "ID", strconv.FormatInt(id, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		l, err := rt.Lease(node, false)
		if err != nil {
			return err
		}
		defer l.Release()
		if l.ID == id {
			return errors.New("a TLS lease the node closed was handed out again")
		}
		return nil
	})
}

// TestTLSBackendWrongCA: nodes whose certificate the configured CA did not
// sign are refused, with a log line and a client error that say why; a
// reload that brings the right CA lets the next dial through.
func TestTLSBackendWrongCA(t *testing.T) {
	e := tlsStart(t)
	other, err := clustertest.NewCA(t.TempDir(), "other-ca")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "backend-ca.pem")
	clustertest.CopyFile(t, other.CertFile, caFile)
	dialer, err := router.NewTLS(router.TLSOptions{CAFile: caFile, CertFile: e.certs.Cert.CertFile, KeyFile: e.certs.Cert.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	logs := &clustertest.LogBuffer{}
	rt := router.New(e.slots, router.Options{
		Dial:         dialer.Dial,
		RetryTimeout: 300 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(logs, nil)),
	})
	t.Cleanup(rt.Close)

	got := rtDo(t, rt, false, "SET", "tls:k", "v")
	const why = "tls: failed to verify certificate: x509: certificate signed by unknown authority"
	if !strings.HasPrefix(got, "-"+router.MsgUnreachable+router.ErrTLSHandshake.Error()+" with 127.0.0.1:") || !strings.Contains(got, why) {
		t.Errorf("SET through a router that does not trust the nodes: %q", got)
	}
	if l := logs.String(); !strings.Contains(l, `msg="backend dial failed"`) || !strings.Contains(l, why) {
		t.Errorf("log:\n%s\nwant a backend dial failure saying %q", l, why)
	}

	clustertest.CopyFile(t, e.certs.CA.CertFile, caFile)
	if err := dialer.Reload(); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if got := rtDo(t, rt, false, "SET", "tls:k", "v"); got != "+OK\r\n" {
			return errors.New("SET after the reload: " + got)
		}
		return nil
	})

	// A reload whose files do not load keeps what works.
	if err := os.WriteFile(caFile, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := dialer.Reload(); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("reload of a file without a certificate: %v", err)
	}
	if nc, err := dialer.Dial(context.Background(), e.c.Nodes[1].Addr); err != nil {
		t.Errorf("dial after a failed reload: %v", err)
	} else {
		nc.Close()
	}
}

// TestTLSBackendDialErrors: what a dial says for each way a TLS setup can
// be wrong, checked against real nodes.
func TestTLSBackendDialErrors(t *testing.T) {
	e := tlsStart(t)
	addr := e.c.Nodes[0].Addr
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		opts router.TLSOptions
		want string
	}{
		{"name not in the certificate", router.TLSOptions{CAFile: e.certs.CA.CertFile, CertFile: e.certs.Cert.CertFile, KeyFile: e.certs.Cert.KeyFile, ServerName: "redis.example"},
			"x509: certificate is valid for localhost, not redis.example"},
		{"system roots", router.TLSOptions{CertFile: e.certs.Cert.CertFile, KeyFile: e.certs.Cert.KeyFile},
			"x509: certificate signed by unknown authority"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dialer, err := router.NewTLS(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			nc, err := dialer.Dial(ctx, addr)
			if err == nil {
				nc.Close()
				t.Fatal("dial succeeded")
			}
			if !errors.Is(err, router.ErrTLSHandshake) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("dial: %v; want %v saying %q", err, router.ErrTLSHandshake, tt.want)
			}
		})
	}

	// The nodes ask for a client certificate (tls-auth-clients yes). Under
	// TLS 1.3 the node refuses its absence after the client's handshake is
	// over, in place of the first reply: the dial waits for one, so the
	// refusal is still a failed dial that says why, never a write's
	// "connection reset by peer".
	dialer, err := router.NewTLS(router.TLSOptions{CAFile: e.certs.CA.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	rt := router.New(e.slots, router.Options{Dial: dialer.Dial, RetryTimeout: 300 * time.Millisecond})
	t.Cleanup(rt.Close)
	if got := rtDo(t, rt, true, "GET", "tls:k"); !strings.HasPrefix(got, "-"+router.MsgUnreachable+router.ErrTLSHandshake.Error()) || !strings.HasSuffix(got, "remote error: tls: certificate required\r\n") {
		t.Errorf("GET without a client certificate: %q", got)
	}

	if _, err := router.NewTLS(router.TLSOptions{CertFile: e.certs.Cert.CertFile}); err == nil {
		t.Error("NewTLS took a certificate without its key")
	}
	if _, err := router.NewTLS(router.TLSOptions{CAFile: filepath.Join(t.TempDir(), "none.pem")}); err == nil {
		t.Error("NewTLS took a CA file that does not exist")
	}
}
