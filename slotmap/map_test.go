package slotmap

import (
	"context"
	"errors"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// mapPoll calls check until it returns "" or timeout passes, then fails
// with what check last said.
func mapPoll(t *testing.T, timeout time.Duration, check func() string) {
	t.Helper()
	clustertest.Eventually(t, timeout, func() error {
		if msg := check(); msg != "" {
			return errors.New(msg)
		}
		return nil
	})
}

// mapRun runs m until the test ends.
func mapRun(t *testing.T, m *Map) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v, want context.Canceled", err)
		}
	})
}

func mapReady(t *testing.T, m *Map, timeout time.Duration) {
	t.Helper()
	select {
	case <-m.Ready():
		return
	default:
	}
	select {
	case <-m.Ready():
	case <-time.After(timeout):
		t.Fatalf("no table published within %v", timeout)
	}
}

// mapDeadAddr returns a loopback address nothing listens on.
func mapDeadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// mapTruth is the cluster's own view: the master and sorted replicas of
// every slot, from CLUSTER SLOTS.
func mapTruth(t *testing.T, c *clustertest.Cluster) (masters [NumSlots]string, replicas map[string][]string) {
	t.Helper()
	slots, err := c.Client(c.Seeds()[0]).ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	replicas = map[string][]string{}
	for _, s := range slots {
		m := s.Nodes[0].Addr
		for slot := s.Start; slot <= s.End; slot++ {
			masters[slot] = m
		}
		for _, r := range s.Nodes[1:] {
			if !slices.Contains(replicas[m], r.Addr) {
				replicas[m] = append(replicas[m], r.Addr)
			}
		}
		slices.Sort(replicas[m])
	}
	return masters, replicas
}

// mapSample is a spread of slots including both ends.
func mapSample() []uint16 {
	s := []uint16{0, 1, NumSlots - 2, NumSlots - 1}
	for slot := 97; slot < NumSlots; slot += 97 {
		s = append(s, uint16(slot))
	}
	return s
}

// TestMap runs against one cluster of 3 masters with a replica each; the
// subtests run in order and leave the cluster as they found it.
func TestMap(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3, Replicas: 1})
	t.Run("Discover", func(t *testing.T) { testDiscover(t, c) })
	t.Run("Replicas", func(t *testing.T) { testReplicas(t, c) })
	t.Run("Patch", func(t *testing.T) { testPatch(t, c) })
	t.Run("RefreshStorm", func(t *testing.T) { testRefreshStorm(t, c) })
	t.Run("DeadSeed", func(t *testing.T) { testDeadSeed(t, c) })
	t.Run("DeadThenLiveSeed", func(t *testing.T) { testDeadThenLiveSeed(t, c) })
}

func testDiscover(t *testing.T, c *clustertest.Cluster) {
	logs := &clustertest.LogBuffer{}
	m, err := New(Options{Seeds: c.Seeds()[:1], Logger: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	if m.Table() != nil {
		t.Fatal("a table before any discovery")
	}
	select {
	case <-m.Ready():
		t.Fatal("Ready before any discovery")
	default:
	}
	if err := m.RefreshNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	mapReady(t, m, 0)
	tab := m.Table()
	if n := len(tab.Shards()); n != 3 {
		t.Errorf("%d shards, want 3", n)
	}
	if tab.Covered() != NumSlots {
		t.Errorf("%d slots covered, want %d", tab.Covered(), NumSlots)
	}
	masters, err := c.MasterAddrs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range tab.Shards() {
		got = append(got, s.Master.Addr)
		if s.Master.ID == "" {
			t.Errorf("master %s without its node ID", s.Master.Addr)
		}
	}
	slices.Sort(got)
	slices.Sort(masters)
	if !slices.Equal(got, masters) {
		t.Errorf("masters %v, the cluster says %v", got, masters)
	}
	truth, _ := mapTruth(t, c)
	for _, slot := range mapSample() {
		if got := tab.Master(slot); got != truth[slot] {
			t.Errorf("slot %d: master %q, CLUSTER SLOTS says %q", slot, got, truth[slot])
		}
		if i := tab.ShardIndex(slot); i < 0 || tab.Shards()[i].Master.Addr != truth[slot] {
			t.Errorf("slot %d: shard index %d does not name %s", slot, i, truth[slot])
		}
	}
	if !strings.Contains(logs.String(), "slot table discovered") {
		t.Errorf("no \"slot table discovered\" log line:\n%s", logs)
	}
}

// testReplicas: each master's replica is in the table. A replica that has
// not replicated a byte yet is left out (CLUSTER SHARDS says "loading",
// CLUSTER SLOTS omits it) and may be reported later; on an idle master
// that lasts until the next replication ping (10s), so a write to every
// master hurries it.
func testReplicas(t *testing.T, c *clustertest.Cluster) {
	ctx := context.Background()
	m, err := New(Options{Seeds: c.Seeds()})
	if err != nil {
		t.Fatal(err)
	}
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mapPoll(t, 20*time.Second, func() string {
		for _, addr := range masters {
			if err := c.Client(addr).Do(ctx, "FLUSHALL").Err(); err != nil {
				return "FLUSHALL on " + addr + ": " + err.Error()
			}
		}
		if err := m.RefreshNow(ctx); err != nil {
			return err.Error()
		}
		tab := m.Table()
		_, want := mapTruth(t, c)
		if tab.Replicas() != 3 {
			return "replicas: " + strconv.Itoa(tab.Replicas()) + ", want 3"
		}
		for _, s := range tab.Shards() {
			var got []string
			for _, r := range s.Replicas {
				got = append(got, r.Addr)
				if r.ID == "" {
					return "replica " + r.Addr + " without its node ID"
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want[s.Master.Addr]) {
				return "master " + s.Master.Addr + ": replicas " + strings.Join(got, ",") +
					", CLUSTER SLOTS says " + strings.Join(want[s.Master.Addr], ",")
			}
		}
		return ""
	})
}

// testPatch: a MOVED patch changes exactly its slot at once, and the
// refresh it triggers restores what the cluster says.
func testPatch(t *testing.T, c *clustertest.Cluster) {
	logs := &clustertest.LogBuffer{}
	m, err := New(Options{Seeds: c.Seeds()[:1], RefreshInterval: time.Hour, Logger: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	mapRun(t, m)
	mapReady(t, m, 30*time.Second)
	truth, _ := mapTruth(t, c)

	for _, tc := range []struct {
		name string
		slot uint16
		addr func(before *Table) string
	}{
		{"known master", 100, func(before *Table) string {
			for _, s := range before.Shards() {
				if s.Master.Addr != before.Master(100) {
					return s.Master.Addr
				}
			}
			return ""
		}},
		{"unknown node", NumSlots - 1, func(*Table) string { return mapDeadAddr(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := m.Table()
			addr := tc.addr(before)
			m.Patch(tc.slot, addr)
			after := m.Table()
			if after == before {
				// The refresh may already have replaced the patch: only
				// then may Master(slot) be right again.
				t.Log("patched table already replaced by a refresh")
			} else if got := after.Master(tc.slot); got != addr && sameAsTruth(after, truth) {
				// A refresh replaced the patch between Patch and Table.
				t.Log("patched table already replaced by a refresh")
			} else {
				if got != addr {
					t.Fatalf("after Patch(%d, %s): master %s", tc.slot, addr, got)
				}
				if d := before.diff(after); d != 1 {
					t.Errorf("Patch changed %d slots, want 1", d)
				}
				if before.Master(tc.slot) != truth[tc.slot] {
					t.Errorf("Patch modified the table it replaced")
				}
			}
			mapPoll(t, 5*time.Second, func() string {
				tab := m.Table()
				if got := tab.Master(tc.slot); got != truth[tc.slot] {
					return "slot " + strconv.Itoa(int(tc.slot)) + " still on " + got
				}
				if len(tab.Shards()) != 3 {
					return "shards: " + strconv.Itoa(len(tab.Shards()))
				}
				return ""
			})
		})
	}
	if !strings.Contains(logs.String(), "slot table changed") {
		t.Errorf("no \"slot table changed\" log line after the refresh undid a patch:\n%s", logs)
	}
}

// mapShardsCalls sums CLUSTER SHARDS calls over the cluster's nodes, from
// INFO commandstats: the map logs nothing for a refresh that changes
// nothing, so its refreshes are counted where they land.
func mapShardsCalls(t *testing.T, c *clustertest.Cluster) int {
	t.Helper()
	re := regexp.MustCompile(`cmdstat_cluster\|shards:calls=(\d+)`)
	total := 0
	for _, addr := range c.Seeds() {
		info, err := c.Client(addr).Info(context.Background(), "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		if m := re.FindStringSubmatch(info); m != nil {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
	}
	return total
}

// testRefreshStorm: 1000 Refresh calls from 10 goroutines are coalesced
// into a few refreshes.
func testRefreshStorm(t *testing.T, c *clustertest.Cluster) {
	const gap = 100 * time.Millisecond
	m, err := New(Options{Seeds: c.Seeds()[:1], RefreshInterval: time.Hour, MinRefreshGap: gap})
	if err != nil {
		t.Fatal(err)
	}
	mapRun(t, m)
	mapReady(t, m, 30*time.Second)
	before := mapShardsCalls(t, c)

	began := time.Now()
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				m.Refresh("storm " + strconv.Itoa(g) + "/" + strconv.Itoa(i))
			}
		}()
	}
	wg.Wait()
	storm := time.Since(began)

	// At most one refresh per gap while the storm lasted, plus the one
	// left pending at its end and one in flight at its start.
	limit := int(storm/gap) + 2
	var refreshes int
	mapPoll(t, 5*time.Second, func() string {
		refreshes = mapShardsCalls(t, c) - before
		if refreshes < 1 {
			return "no refresh after the storm"
		}
		return ""
	})
	// Watch a few gaps more: nothing else may come.
	for end := time.Now().Add(3 * gap); time.Now().Before(end); time.Sleep(gap / 4) {
		if refreshes = mapShardsCalls(t, c) - before; refreshes > limit {
			t.Fatalf("1000 Refresh calls in %v caused %d refreshes, want at most %d", storm, refreshes, limit)
		}
	}
	t.Logf("1000 Refresh calls from 10 goroutines in %v: %d refreshes", storm, refreshes)
}

// testDeadSeed: with only a dead seed, Run keeps retrying with a warning
// per round and publishes nothing; once the seed answers, it publishes.
func testDeadSeed(t *testing.T, c *clustertest.Cluster) {
	seed := newMapSeed(t, c.Seeds()[0])
	logs := &clustertest.LogBuffer{}
	m, err := New(Options{Seeds: []string{seed.addr}, RefreshInterval: 200 * time.Millisecond, Logger: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	mapRun(t, m)
	mapPoll(t, 10*time.Second, func() string {
		if n := strings.Count(logs.String(), "cluster discovery failed, retrying"); n < 3 {
			return strconv.Itoa(n) + " discovery warnings, want 3"
		}
		return ""
	})
	if !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("discovery failures not logged as warnings:\n%s", logs)
	}
	select {
	case <-m.Ready():
		t.Fatal("Ready with a dead seed")
	default:
	}
	if m.Table() != nil {
		t.Fatal("a table with a dead seed")
	}
	seed.alive.Store(true)
	mapReady(t, m, 10*time.Second)
	if m.Table().Covered() != NumSlots {
		t.Errorf("covered %d", m.Table().Covered())
	}
}

// testDeadThenLiveSeed: a dead first seed does not stop the live second.
func testDeadThenLiveSeed(t *testing.T, c *clustertest.Cluster) {
	logs := &clustertest.LogBuffer{}
	m, err := New(Options{Seeds: []string{mapDeadAddr(t), c.Seeds()[1]}, Logger: logs.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	mapRun(t, m)
	mapReady(t, m, 10*time.Second)
	if len(m.Table().Shards()) != 3 {
		t.Errorf("%d shards", len(m.Table().Shards()))
	}
	if !strings.Contains(logs.String(), "slot table discovered") {
		t.Errorf("no discovery log line:\n%s", logs)
	}
}

// mapSeed is a TCP forwarder to a live node that refuses service (accepts
// and closes at once) until alive is set: a seed that comes up late.
type mapSeed struct {
	addr  string
	alive atomic.Bool
}

func newMapSeed(t *testing.T, target string) *mapSeed {
	s := &mapSeed{}
	s.addr = forwardTo(t, target, s.alive.Load, nil)
	return s
}

// forwardTo listens on a loopback port and forwards each connection to
// target until t ends. A connection admit refuses is closed at once;
// rewrite, when set, edits what the client sends on its way. Requests here
// are a few dozen bytes written at once, so a rewrite never sees a name
// split across two reads.
func forwardTo(t *testing.T, target string, admit func() bool, rewrite func([]byte) []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			if admit != nil && !admit() {
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); copyRewriting(out, in, rewrite) }()
			go func() { defer wg.Done(); copyRewriting(in, out, nil) }()
		}
	}()
	return ln.Addr().String()
}

// copyRewriting copies src to dst, through rewrite when it is set, until
// either side fails, then closes dst.
func copyRewriting(dst, src net.Conn, rewrite func([]byte) []byte) {
	defer dst.Close()
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			b := buf[:n]
			if rewrite != nil {
				b = rewrite(b)
			}
			if _, werr := dst.Write(b); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestNewNeedsSeeds(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without seeds: no error")
	}
}

// mapShard builds a CLUSTER SHARDS entry.
func mapShard(ranges [][2]int64, nodes ...redis.Node) redis.ClusterShard {
	sh := redis.ClusterShard{Nodes: nodes}
	for _, r := range ranges {
		sh.Slots = append(sh.Slots, redis.SlotRange{Start: r[0], End: r[1]})
	}
	return sh
}

func mapNode(id, ip string, port int64, role, health string) redis.Node {
	return redis.Node{ID: id, IP: ip, Endpoint: ip, Port: port, Role: role, Health: health}
}

func TestFromShards(t *testing.T) {
	shards := []redis.ClusterShard{
		mapShard([][2]int64{{0, 5460}},
			mapNode("m1", "10.0.0.1", 7000, "master", "online"),
			mapNode("r1", "10.0.0.4", 7003, "replica", "online"),
			mapNode("r1b", "10.0.0.7", 7006, "replica", "loading"), // still syncing: dropped
		),
		mapShard([][2]int64{{5461, 10922}},
			mapNode("r2", "10.0.0.5", 7004, "replica", "failed"), // dropped
			mapNode("m2", "10.0.0.2", 7001, "master", "online"),
		),
		mapShard([][2]int64{{10923, 12000}, {12001, 16383}}, // two ranges
			redis.Node{ID: "m3", IP: "", Endpoint: "", Port: 7002, Role: "master", Health: "online"}, // address unknown to itself
			redis.Node{ID: "r3", IP: "?", Endpoint: "10.0.0.6", Port: 7005, Role: "replica", Health: "online"},
		),
		mapShard(nil, mapNode("m4", "10.0.0.8", 7007, "master", "online")), // no slots yet: not a shard
	}
	tab, err := fromShards(shards, "10.0.0.3:7000")
	if err != nil {
		t.Fatal(err)
	}
	want := []Shard{
		{Master: Node{"m1", "10.0.0.1:7000"}, Replicas: []Node{{"r1", "10.0.0.4:7003"}}},
		{Master: Node{"m2", "10.0.0.2:7001"}},
		{Master: Node{"m3", "10.0.0.3:7002"}, Replicas: []Node{{"r3", "10.0.0.6:7005"}}},
	}
	if len(tab.Shards()) != len(want) {
		t.Fatalf("shards %+v, want %+v", tab.Shards(), want)
	}
	for i, s := range tab.Shards() {
		if s.Master != want[i].Master || !slices.Equal(s.Replicas, want[i].Replicas) {
			t.Errorf("shard %d = %+v, want %+v", i, s, want[i])
		}
	}
	if tab.Covered() != NumSlots || tab.Replicas() != 2 {
		t.Errorf("covered %d, replicas %d", tab.Covered(), tab.Replicas())
	}
	for slot, want := range map[uint16]string{0: "10.0.0.1:7000", 5460: "10.0.0.1:7000", 5461: "10.0.0.2:7001", 12000: "10.0.0.3:7002", 16383: "10.0.0.3:7002"} {
		if got := tab.Master(slot); got != want {
			t.Errorf("slot %d: %s, want %s", slot, got, want)
		}
	}
	if got := tab.String(); got != "10.0.0.1:7000=5461 10.0.0.2:7001=5462 10.0.0.3:7002=5461" {
		t.Errorf("String() = %q", got)
	}

	// A master listed in two shard entries is one shard.
	tab, err = fromShards([]redis.ClusterShard{
		mapShard([][2]int64{{0, 99}}, mapNode("m1", "h", 1, "master", "online"), mapNode("r1", "h", 2, "replica", "online")),
		mapShard([][2]int64{{200, 299}}, mapNode("m1", "h", 1, "master", "online"), mapNode("r1", "h", 2, "replica", "online")),
	}, "h:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Shards()) != 1 || tab.Covered() != 200 || tab.Replicas() != 1 {
		t.Errorf("merged: shards %+v, covered %d", tab.Shards(), tab.Covered())
	}
	if tab.Master(150) != "" || tab.ShardIndex(150) != -1 {
		t.Errorf("uncovered slot 150: master %q, index %d", tab.Master(150), tab.ShardIndex(150))
	}

	for name, shards := range map[string][]redis.ClusterShard{
		"start after end": {mapShard([][2]int64{{10, 5}}, mapNode("m", "h", 1, "master", "online"))},
		"end past 16383":  {mapShard([][2]int64{{0, 16384}}, mapNode("m", "h", 1, "master", "online"))},
		"negative start":  {mapShard([][2]int64{{-1, 5}}, mapNode("m", "h", 1, "master", "online"))},
		"no master":       {mapShard([][2]int64{{0, 5}}, mapNode("r", "h", 1, "replica", "online"))},
	} {
		if _, err := fromShards(shards, "h:1"); !errors.Is(err, ErrBadTopology) {
			t.Errorf("%s: err = %v, want ErrBadTopology", name, err)
		}
	}
}

func TestFromSlots(t *testing.T) {
	node := func(id, addr string) redis.ClusterNode { return redis.ClusterNode{ID: id, Addr: addr} }
	tab, err := fromSlots([]redis.ClusterSlot{
		{Start: 0, End: 99, Nodes: []redis.ClusterNode{node("m1", "10.0.0.1:7000"), node("r1", "10.0.0.4:7003")}},
		{Start: 100, End: 8000, Nodes: []redis.ClusterNode{node("m2", ":7001")}}, // the sender's host
		{Start: 8001, End: 16000, Nodes: []redis.ClusterNode{node("m1", "10.0.0.1:7000"), node("r1", "10.0.0.4:7003")}},
		{Start: 16001, End: 16383, Nodes: []redis.ClusterNode{node("m3", "[::1]:7002"), node("r3", "[::1]:7005"), node("r3b", "[::1]:7006")}},
	}, "10.0.0.9:7000")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tab.Shards()); n != 3 {
		t.Fatalf("%d shards, want 3 (m1 listed twice is one): %+v", n, tab.Shards())
	}
	want := []Shard{
		{Master: Node{"m1", "10.0.0.1:7000"}, Replicas: []Node{{"r1", "10.0.0.4:7003"}}},
		{Master: Node{"m2", "10.0.0.9:7001"}},
		{Master: Node{"m3", "[::1]:7002"}, Replicas: []Node{{"r3", "[::1]:7005"}, {"r3b", "[::1]:7006"}}},
	}
	for i, s := range tab.Shards() {
		if s.Master != want[i].Master || !slices.Equal(s.Replicas, want[i].Replicas) {
			t.Errorf("shard %d = %+v, want %+v", i, s, want[i])
		}
	}
	if tab.Covered() != NumSlots {
		t.Errorf("covered %d", tab.Covered())
	}
	for slot, want := range map[uint16]string{99: "10.0.0.1:7000", 100: "10.0.0.9:7001", 8001: "10.0.0.1:7000", 16383: "[::1]:7002"} {
		if got := tab.Master(slot); got != want {
			t.Errorf("slot %d: %s, want %s", slot, got, want)
		}
	}

	for name, slots := range map[string][]redis.ClusterSlot{
		"no nodes":        {{Start: 0, End: 5}},
		"bad address":     {{Start: 0, End: 5, Nodes: []redis.ClusterNode{node("m", "nohostport")}}},
		"start after end": {{Start: 9, End: 5, Nodes: []redis.ClusterNode{node("m", "h:1")}}},
		"end past 16383":  {{Start: 0, End: 20000, Nodes: []redis.ClusterNode{node("m", "h:1")}}},
	} {
		if _, err := fromSlots(slots, "h:1"); !errors.Is(err, ErrBadTopology) {
			t.Errorf("%s: err = %v, want ErrBadTopology", name, err)
		}
	}
}

func mapTable(t *testing.T) *Table {
	t.Helper()
	b := newBuilder()
	for i, r := range []SlotRange{{0, 5460}, {5461, 10922}, {10923, 16000}} {
		if err := b.add(Node{Addr: "m" + strconv.Itoa(i) + ":1"}, []Node{{Addr: "r" + strconv.Itoa(i) + ":1"}}, []SlotRange{r}); err != nil {
			t.Fatal(err)
		}
	}
	return b.table() // slots 16001-16383 uncovered
}

func TestTableWithSlot(t *testing.T) {
	tab := mapTable(t)
	covered := tab.Covered()

	// To a known master: the same shards, one slot moved, the original
	// untouched.
	nt := tab.withSlot(42, "m1:1")
	if nt.Master(42) != "m1:1" || tab.Master(42) != "m0:1" {
		t.Errorf("slot 42: new %s, old %s", nt.Master(42), tab.Master(42))
	}
	if len(nt.Shards()) != 3 || nt.Covered() != covered || nt.Replicas() != 3 {
		t.Errorf("shards %d, covered %d, replicas %d", len(nt.Shards()), nt.Covered(), nt.Replicas())
	}
	if d := tab.diff(nt); d != 1 {
		t.Errorf("diff = %d, want 1", d)
	}

	// To an unknown node: a new shard, without replicas.
	nt2 := nt.withSlot(43, "new:1")
	if len(nt2.Shards()) != 4 || len(nt.Shards()) != 3 || nt2.Master(43) != "new:1" {
		t.Errorf("new shard: %d shards (before %d), slot 43 on %s", len(nt2.Shards()), len(nt.Shards()), nt2.Master(43))
	}
	if s := nt2.Shards()[3]; s.Master.Addr != "new:1" || len(s.Replicas) != 0 {
		t.Errorf("new shard %+v", s)
	}
	if d := tab.diff(nt2); d != 2 {
		t.Errorf("diff = %d, want 2", d)
	}

	// An uncovered slot becomes covered.
	nt3 := tab.withSlot(16383, "m2:1")
	if nt3.Covered() != covered+1 || tab.Covered() != covered || nt3.Master(16383) != "m2:1" {
		t.Errorf("covered %d (was %d), slot 16383 on %q", nt3.Covered(), covered, nt3.Master(16383))
	}
	if tab.Master(16383) != "" {
		t.Errorf("original table changed: slot 16383 on %q", tab.Master(16383))
	}
}

func TestTableDiff(t *testing.T) {
	a, b := mapTable(t), mapTable(t)
	if d := a.diff(b); d != 0 {
		t.Errorf("equal tables: diff %d", d)
	}
	c := b.withSlot(1, "m2:1").withSlot(2, "m2:1").withSlot(16001, "m2:1")
	if d1, d2 := a.diff(c), c.diff(a); d1 != 3 || d2 != 3 {
		t.Errorf("diff = %d and %d, want 3 both ways", d1, d2)
	}
	// Same addresses under other shard indexes are no difference.
	bld := newBuilder()
	for i, r := range []SlotRange{{10923, 16000}, {5461, 10922}, {0, 5460}} {
		bld.add(Node{Addr: "m" + strconv.Itoa(2-i) + ":1"}, nil, []SlotRange{r})
	}
	if d := a.diff(bld.table()); d != 0 {
		t.Errorf("reordered shards: diff %d", d)
	}
}

// TestPatchSlotOutOfRange: Patch takes a uint16, and Table.Master and
// ShardIndex accept any uint16 (they mask it); Patch must not crash the
// process on a slot >= NumSlots either.
//
// BUG (slotmap/table.go withSlot, lines 133 and 136): withSlot indexes
// nt.slots[slot] without the mask, so Patch(20000, addr) panics with
// "index out of range [20000] with length 16384" whenever the masked slot
// (3616) is not already on addr.
func TestPatchSlotOutOfRange(t *testing.T) {
	m, err := New(Options{Seeds: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	m.current.Store(mapTable(t))
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("Patch(20000, ...) panicked: %v", r)
		}
	}()
	m.Patch(20000, "m2:1")
}

// sameAsTruth reports whether t maps every slot as truth does: a table
// from a refresh rather than a patch.
func sameAsTruth(t *Table, truth [NumSlots]string) bool {
	for slot := range NumSlots {
		if t.Master(uint16(slot)) != truth[slot] {
			return false
		}
	}
	return true
}

// TestRefreshSkipsNodeThatLeft: a node taken out of the cluster by
// redis-cli --cluster del-node is reset and sees no slot at all. A refresh
// that asks it first must not publish its empty view, but the full table
// another node gives.
func TestRefreshSkipsNodeThatLeft(t *testing.T) {
	ctx := t.Context()
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	n, err := c.AddMaster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveNode(ctx, n); err != nil {
		t.Fatal(err)
	}
	m, err := New(Options{Seeds: []string{n.Addr, c.Seeds()[0]}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.RefreshNow(ctx); err != nil {
		t.Fatal(err)
	}
	if got := m.Table().Covered(); got != NumSlots {
		t.Fatalf("the table covers %d slots, want %d (the removed node's empty view was taken)", got, NumSlots)
	}
}
