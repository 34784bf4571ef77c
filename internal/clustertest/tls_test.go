package clustertest

import (
	"bufio"
	"crypto/tls"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A TLS cluster speaks TLS only, on every node's one port, announces that
// port as its tls-port, and takes nothing in plaintext.
func TestClusterTLS(t *testing.T) {
	certs, err := NewTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := New(t, Options{Masters: 3, Replicas: 1, TLS: certs})
	ctx := t.Context()

	cl := c.Client(c.Nodes[0].Addr)
	if err := cl.Set(ctx, "{tls}key", "v", 0).Err(); err != nil && !strings.HasPrefix(err.Error(), "MOVED") {
		t.Fatalf("SET over TLS: %v", err)
	}
	shards, err := cl.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards {
		for _, n := range sh.Nodes {
			if n.Port != 0 || c.node("127.0.0.1:"+strconv.FormatInt(n.TLSPort, 10)) == nil {
				t.Errorf("node %s announces port %d, tls-port %d; want no port and one of %v", n.ID, n.Port, n.TLSPort, c.Seeds())
			}
		}
	}

	// The certificate the node shows is the one made for it, for 127.0.0.1.
	conn, err := tls.Dial("tcp", c.Nodes[0].Addr, certs.ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := conn.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(certs.Cert.Cert.SerialNumber) != 0 {
		t.Errorf("node shows serial %v, want %v", got, certs.Cert.Cert.SerialNumber)
	}
	conn.Close()

	// Plaintext gets no reply: the node waits for a TLS record, then hangs up.
	raw, err := net.Dial("tcp", c.Nodes[0].Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	raw.Write([]byte("PING\r\n"))
	if line, err := bufio.NewReader(raw).ReadString('\n'); err == nil {
		t.Errorf("a plaintext PING got %q", line)
	}

	// redis-cli with the options CLIArgs gives.
	args := append(certs.CLIArgs(), "-p", strconv.Itoa(c.Nodes[0].Port), "PING")
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "PONG" {
		t.Errorf("redis-cli %v: %q, %v", args, out, err)
	}
}
