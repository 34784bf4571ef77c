package proxy

import (
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// TestRefusalLogs: each client the proxy refuses or cuts off gets a log
// line with the reason, until a storm of them: then the lines per second
// are bounded. No backend is needed: all of it happens before routing.
func TestRefusalLogs(t *testing.T) {
	table, err := slotmap.BuildTable([]slotmap.Assignment{
		{Master: slotmap.Node{Addr: "127.0.0.1:1"}, Ranges: []slotmap.SlotRange{{Start: 0, End: slotmap.NumSlots - 1}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &clustertest.LogBuffer{}
	p := serveProxy(t, slotmap.Static(table), Options{Logger: logs.Logger()}, router.Options{})
	count := func(s string) int { return strings.Count(logs.String(), s) }

	junk := limitsDial(t, p.Addr)
	if _, err := junk.nc.Write([]byte("*1\r\n$x\r\n")); err != nil { // a bulk length that is not a number
		t.Fatal(err)
	}
	if err := junk.expect("-ERR Protocol error: invalid bulk length\r\n"); err != nil {
		t.Fatal(err)
	}
	web := limitsDial(t, p.Addr)
	if _, err := web.nc.Write([]byte("POST / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*limitsConn{junk, web} {
		if _, err := c.closedAfter(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{
		`level=INFO msg="client disconnected" reason=protocol_error remote=127.0.0.1:`,
		`err="Protocol error: invalid bulk length"`,
		`level=WARN msg="client sent an HTTP request line (POST or Host:), as a cross-protocol attack from a web page would; connection closed" reason=http`,
	} {
		if count(want) != 1 {
			t.Errorf("want one %s line:\n%s", want, logs)
		}
	}

	// A storm of clients past max clients.
	stay := limitsDial(t, p.Addr)
	stay.roundTrip("+PONG\r\n", "PING")
	p.Server.Reload(Live{MaxClients: 1})
	start := time.Now()
	const storm = 200
	for range storm {
		c := limitsDial(t, p.Addr)
		if err := c.expect("-" + msgMaxClients + "\r\n"); err != nil {
			t.Fatal(err)
		}
		c.nc.Close()
	}
	elapsed := time.Since(start)
	lines := count(`msg="client refused" reason=max_clients`)
	t.Logf("%d clients refused in %v: %d lines", storm, elapsed.Round(time.Millisecond), lines)
	if most := refusalsPerSecond * (int(elapsed/time.Second) + 1); lines < refusalsPerSecond || lines > most {
		t.Errorf("%d refused clients in %v made %d lines, want %d to %d", storm, elapsed, lines, refusalsPerSecond, most)
	}
	stay.roundTrip("+PONG\r\n", "PING")
}
