package router_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// oneMaster is a slot table in which the master at addr serves every slot.
func oneMaster(t *testing.T, addr string) *slotmap.Map {
	t.Helper()
	table, err := slotmap.BuildTable([]slotmap.Assignment{{
		Master: slotmap.Node{Addr: addr},
		Ranges: []slotmap.SlotRange{{Start: 0, End: slotmap.NumSlots - 1}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return slotmap.Static(table)
}

// TestDialFailureLogLimited sends requests for two seconds to a master
// whose port refuses connections: the router dials it again and again,
// and the log says so in one line, not one per dial.
func TestDialFailureLogLimited(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now: every dial is refused

	logs := &clustertest.LogBuffer{}
	var dials atomic.Int64
	d := &net.Dialer{}
	rt := router.New(oneMaster(t, dead), router.Options{
		ConnsPerNode: 4,
		RetryTimeout: 2 * time.Second,
		Logger:       slog.New(slog.NewTextHandler(logs, nil)),
		Dial: func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			return d.DialContext(ctx, "tcp", addr)
		},
	})
	defer rt.Close()

	// Requests of several clients (one per connection), each retried
	// until the retry timeout: the router keeps dialing meanwhile.
	var calls []*rtCall
	for a := range uint32(16) {
		calls = append(calls, rtSendAs(rt, a, rtCmd("GET", "k"), rtSlot("k"), true))
	}
	for _, c := range calls {
		reply, _ := c.wait(t, 10*time.Second)
		if !strings.HasPrefix(reply, "-"+router.MsgUnreachable) || !strings.Contains(reply, "connection refused") {
			t.Errorf("reply from a refusing master: %q", reply)
		}
	}
	n := dials.Load()
	lines := logs.Lines("backend dial failed")
	t.Logf("%d dials, %d log lines", n, len(lines))
	if n < 4 {
		t.Fatalf("only %d dials in 2s: the test did not make the router fail often enough to show the limit", n)
	}
	// One line per node per 10s: 2s of failures make one, two if a
	// slow machine stretched the test past a period.
	if len(lines) < 1 || len(lines) > 2 {
		t.Errorf("%d dials logged %d \"backend dial failed\" lines, want 1 or 2:\n%s", n, len(lines), logs)
	}
	for _, l := range lines {
		if !strings.Contains(l, "node="+dead) || !strings.Contains(l, "connection refused") {
			t.Errorf("the line does not say which node and why: %s", l)
		}
	}
}

// TestDialAuthFailureLog: a node that refuses the router's password is
// logged with its reply, and the password is not in the log.
func TestDialAuthFailureLog(t *testing.T) {
	const wrong = "not-the-password-7f3a"
	n := clustertest.Standalone(t, "the-right-one")
	logs := &clustertest.LogBuffer{}
	rt := router.New(oneMaster(t, n.Addr), router.Options{
		Password:     wrong,
		RetryTimeout: 300 * time.Millisecond,
		Logger:       slog.New(slog.NewTextHandler(logs, nil)),
	})
	defer rt.Close()
	reply, _ := rtSend(rt, rtCmd("GET", "k"), rtSlot("k"), true).wait(t, 10*time.Second)
	if !strings.Contains(reply, "WRONGPASS") || strings.Contains(reply, wrong) {
		t.Errorf("reply: %q", reply)
	}
	lines := logs.Lines("backend dial failed")
	if len(lines) != 1 || !strings.Contains(lines[0], "WRONGPASS") || !strings.Contains(lines[0], "node="+n.Addr) {
		t.Errorf("want one dial failure line with the node's WRONGPASS reply:\n%s", logs)
	}
	if strings.Contains(logs.String(), wrong) {
		t.Errorf("the password is in the log:\n%s", logs)
	}
}
