package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// TestReload changes each live setting of a running server and checks
// it with real clients, against one cluster.
func TestReload(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	t.Run("Password", func(t *testing.T) { testReloadPassword(t, c) })
	t.Run("MaxClients", func(t *testing.T) { testReloadMaxClients(t, c) })
	t.Run("IdleTimeout", func(t *testing.T) { testReloadIdleTimeout(t, c) })
	t.Run("MaxOutputBytes", func(t *testing.T) { testReloadMaxOutput(t, c) })
}

// testReloadPassword: the password changes as redis-server's requirepass
// does under CONFIG SET (checked against redis-server 7.0): clients keep
// the authentication they have, AUTH takes the new password only, and a
// client that could not run commands can once the password is removed.
func testReloadPassword(t *testing.T, c *clustertest.Cluster) {
	const noAuth, wrongPass = "-" + msgNoAuth + "\r\n", "-" + msgWrongPass + "\r\n"
	p := startProxy(t, c, Options{Password: "old-pw"}, router.Options{})
	authed := limitsDial(t, p.Addr)
	authed.roundTrip("+OK\r\n", "AUTH", "old-pw")

	p.Server.Reload(Live{Password: "new-pw"})
	authed.roundTrip("+OK\r\n", "SET", "reload:k", "v")

	fresh := limitsDial(t, p.Addr)
	fresh.roundTrip(noAuth, "GET", "reload:k")
	fresh.roundTrip(wrongPass, "AUTH", "old-pw")
	fresh.roundTrip(wrongPass, "AUTH", "default", "old-pw")
	fresh.roundTrip("+OK\r\n", "AUTH", "default", "new-pw")
	fresh.roundTrip("$1\r\nv\r\n", "GET", "reload:k")

	// Connected while a password is required, never authenticated:
	// free to run commands once the password is removed.
	waiting := limitsDial(t, p.Addr)
	waiting.roundTrip(noAuth, "GET", "reload:k")
	helloing := limitsDial(t, p.Addr)
	helloing.roundTrip(noAuth, "GET", "reload:k")
	p.Server.Reload(Live{})
	waiting.roundTrip("$1\r\nv\r\n", "GET", "reload:k")
	helloing.send("HELLO", "2")
	if line, err := helloing.rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "*") {
		t.Errorf("HELLO 2 once the password is removed: %q, %v", line, err)
	}
	open := limitsDial(t, p.Addr)
	open.roundTrip("-"+msgNoPasswordSet+"\r\n", "AUTH", "anything")
	open.roundTrip("$1\r\nv\r\n", "GET", "reload:k")

	// Connected while no password was set: stays free when one is.
	p.Server.Reload(Live{Password: "third-pw"})
	open.roundTrip("$1\r\nv\r\n", "GET", "reload:k")
	authed.roundTrip("$1\r\nv\r\n", "GET", "reload:k")
	limitsDial(t, p.Addr).roundTrip(noAuth, "GET", "reload:k")
	// RESET puts a client back to what a new one is.
	open.roundTrip("+RESET\r\n", "RESET")
	open.roundTrip(noAuth, "GET", "reload:k")
}

// testReloadMaxClients: a lower bound refuses new clients, with
// redis-server's error and a log line, and keeps those connected; a
// higher one admits them again. INFO shows the bound in force.
func testReloadMaxClients(t *testing.T, c *clustertest.Cluster) {
	logs := &clustertest.LogBuffer{}
	p := startProxy(t, c, Options{MaxClients: 10, Logger: logs.Logger()}, router.Options{})
	first, second := limitsDial(t, p.Addr), limitsDial(t, p.Addr)
	first.roundTrip("+PONG\r\n", "PING")
	second.roundTrip("+PONG\r\n", "PING")

	p.Server.Reload(Live{MaxClients: 1})
	third := limitsDial(t, p.Addr)
	if err := third.expect("-" + msgMaxClients + "\r\n"); err != nil {
		t.Fatalf("a client past the new max clients: %v", err)
	}
	if _, err := third.closedAfter(5 * time.Second); err != nil {
		t.Errorf("the refused client's connection: %v", err)
	}
	first.roundTrip("+PONG\r\n", "PING")
	second.roundTrip("+PONG\r\n", "PING")
	if !strings.Contains(logs.String(), `msg="client refused" reason=max_clients`) ||
		!strings.Contains(logs.String(), "max_clients=1") {
		t.Errorf("no log line for the refused client:\n%s", logs)
	}
	info, err := p.client(t, "").Info(context.Background(), "clients").Result()
	if err == nil {
		t.Errorf("a third client ran INFO past max clients 1: %.100q", info)
	}
	// Room for one more than the two and the client asking INFO.
	p.Server.Reload(Live{MaxClients: 4})
	info, err = p.client(t, "").Info(context.Background(), "clients").Result()
	if err != nil || !strings.Contains(info, "\r\nmaxclients:4\r\n") {
		t.Errorf("INFO clients after max clients became 4: %v\n%s", err, info)
	}
	limitsDial(t, p.Addr).roundTrip("+PONG\r\n", "PING")
}

// testReloadIdleTimeout: a proxy started without an idle timeout closes
// an idle client once Reload sets one.
func testReloadIdleTimeout(t *testing.T, c *clustertest.Cluster) {
	logs := &clustertest.LogBuffer{}
	p := startProxy(t, c, Options{IdleParkAfter: 200 * time.Millisecond, Logger: logs.Logger()}, router.Options{})
	idle := limitsDial(t, p.Addr)
	idle.roundTrip("+PONG\r\n", "PING")
	p.Server.Reload(Live{IdleTimeout: 300 * time.Millisecond})
	if _, err := idle.closedAfter(10 * time.Second); err != nil {
		t.Fatalf("an idle client after the idle timeout became 300ms: %v", err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(logs.String(), `msg="client disconnected" reason=idle_timeout`) {
			return errorString("no idle_timeout line in the log")
		}
		return nil
	})
}

// testReloadMaxOutput: a client that pipelines GETs of a big value
// without reading is disconnected past the output limit Reload set.
func testReloadMaxOutput(t *testing.T, c *clustertest.Cluster) {
	logs := &clustertest.LogBuffer{}
	p := startProxy(t, c, Options{Logger: logs.Logger()}, router.Options{})
	value := strings.Repeat("x", 512<<10)
	limitsDial(t, p.Addr).roundTrip("+OK\r\n", "SET", "reload:big", value)

	p.Server.Reload(Live{MaxOutputBytes: 1 << 20})
	slow := limitsDial(t, p.Addr)
	// 40 replies of 512 KiB: 20 MiB, far past the new limit and the
	// socket buffers, far below the 128 MiB it replaced.
	var pipeline []byte
	for range 40 {
		pipeline = append(pipeline, ptEncode("GET", "reload:big")...)
	}
	slow.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	slow.nc.Write(pipeline)
	clustertest.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(logs.String(), `reason=output_limit`) || !strings.Contains(logs.String(), "limit_bytes=1048576") {
			return errorString("no output_limit line with limit_bytes=1048576 in the log")
		}
		return nil
	})
}

type errorString string

func (e errorString) Error() string { return string(e) }
