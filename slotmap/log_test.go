package slotmap

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// TestChangeLine: a reshard and a failover in one refresh make one log
// line that says which masters gained and lost how many slots, which came
// and which went.
func TestChangeLine(t *testing.T) {
	build := func(as ...Assignment) *Table {
		t.Helper()
		tab, err := BuildTable(as)
		if err != nil {
			t.Fatal(err)
		}
		return tab
	}
	a, b, c, d := Node{Addr: "10.0.0.1:7000"}, Node{Addr: "10.0.0.2:7000"}, Node{Addr: "10.0.0.3:7000"}, Node{Addr: "10.0.0.4:7000"}
	old := build(
		Assignment{Master: a, Ranges: []SlotRange{{0, 5460}}},
		Assignment{Master: b, Ranges: []SlotRange{{5461, 10922}}},
		Assignment{Master: c, Replicas: []Node{d}, Ranges: []SlotRange{{10923, 16383}}},
	)
	// 100 slots from a to b; c failed and its replica d took over.
	next := build(
		Assignment{Master: a, Ranges: []SlotRange{{100, 5460}}},
		Assignment{Master: b, Ranges: []SlotRange{{0, 99}, {5461, 10922}}},
		Assignment{Master: d, Ranges: []SlotRange{{10923, 16383}}},
	)
	logs := &clustertest.LogBuffer{}
	m := Static(old)
	m.opts.Logger = logs.Logger()
	m.publish(next, "10.0.0.2:7000")

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines, want 1:\n%s", len(lines), logs)
	}
	for _, want := range []string{
		`msg="slot table changed"`,
		"slots_moved=5561",
		`slot_changes="10.0.0.1:7000=-100 10.0.0.2:7000=+100 10.0.0.3:7000=-5461 10.0.0.4:7000=+5461"`,
		"masters_added=10.0.0.4:7000",
		"masters_removed=10.0.0.3:7000",
		"masters=3 replicas=0 slots_covered=16384",
	} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("the line lacks %s:\n%s", want, lines[0])
		}
	}

	// A replica added, no slot moved: one line, without slot changes.
	logs2 := &clustertest.LogBuffer{}
	m.opts.Logger = logs2.Logger()
	m.publish(build(
		Assignment{Master: a, Ranges: []SlotRange{{100, 5460}}},
		Assignment{Master: b, Replicas: []Node{c}, Ranges: []SlotRange{{0, 99}, {5461, 10922}}},
		Assignment{Master: d, Ranges: []SlotRange{{10923, 16383}}},
	), "10.0.0.2:7000")
	line := strings.TrimSpace(logs2.String())
	if strings.Count(line, "\n") != 0 || !strings.Contains(line, "slots_moved=0") || !strings.Contains(line, "replicas=1") ||
		strings.Contains(line, "slot_changes") || strings.Contains(line, "masters_added") {
		t.Errorf("a replica added logged:\n%s", line)
	}
}

// TestSetRefreshInterval: a map started with an hour between refreshes
// refreshes every 50ms once told so, while it runs. Then the whole
// cluster dies: the refreshes, every 50ms and on demand, all fail, and
// the log says so once, not once a refresh.
func TestSetRefreshInterval(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	logs := &clustertest.LogBuffer{}
	m, err := New(Options{Seeds: c.Seeds()[:1], RefreshInterval: time.Hour, MinRefreshGap: 10 * time.Millisecond,
		DialTimeout: 100 * time.Millisecond, Logger: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	mapRun(t, m)
	mapReady(t, m, 30*time.Second)
	before := mapShardsCalls(t, c)
	m.SetRefreshInterval(50 * time.Millisecond)
	clustertest.Eventually(t, 10*time.Second, func() error {
		if n := mapShardsCalls(t, c) - before; n < 5 {
			return fmt.Errorf("%d refreshes since the interval became 50ms", n)
		}
		return nil
	})

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	const failed = `msg="slot table refresh failed"`
	clustertest.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(logs.String(), failed) {
			return fmt.Errorf("no refresh failure logged after the cluster died")
		}
		return nil
	})
	// A second of failing refreshes, periodic and asked for (a router
	// asks for one at each request to a dead master).
	end := time.Now().Add(time.Second)
	for tick := time.NewTicker(5 * time.Millisecond); time.Now().Before(end); <-tick.C {
		m.Refresh("test")
	}
	if n := strings.Count(logs.String(), failed); n != 1 {
		t.Errorf("%d refresh failure lines in a second, want 1:\n%s", n, logs)
	}
}
