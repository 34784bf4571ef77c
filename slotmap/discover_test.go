package slotmap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/internal/respenc"
)

// fromShards and fromSlots keep the cases of TestFromShards and
// TestFromSlots (map_test.go), written in go-redis's structures when
// discovery went through go-redis: each case is encoded as the RESP2 reply
// a Redis 7 node sends, read back with replyReader and built into a table
// as fetch does.
func fromShards(shards []redis.ClusterShard, from string) (*Table, error) {
	reply := arrayV()
	for _, sh := range shards {
		slots := arrayV()
		for _, r := range sh.Slots {
			slots.array = append(slots.array, intV(r.Start), intV(r.End))
		}
		nodes := arrayV()
		for _, n := range sh.Nodes {
			node := arrayV(bulkV("id"), bulkV(n.ID), bulkV("port"), intV(n.Port))
			if n.TLSPort != 0 {
				node.array = append(node.array, bulkV("tls-port"), intV(n.TLSPort))
			}
			node.array = append(node.array, bulkV("ip"), bulkV(n.IP), bulkV("endpoint"), bulkV(n.Endpoint))
			if n.Hostname != "" {
				node.array = append(node.array, bulkV("hostname"), bulkV(n.Hostname))
			}
			node.array = append(node.array, bulkV("role"), bulkV(n.Role),
				bulkV("replication-offset"), intV(n.ReplicationOffset), bulkV("health"), bulkV(n.Health))
			nodes.array = append(nodes.array, node)
		}
		reply.array = append(reply.array, arrayV(bulkV("slots"), slots, bulkV("nodes"), nodes))
	}
	return tableFromShards(reread(reply), from, false)
}

func fromSlots(slots []redis.ClusterSlot, from string) (*Table, error) {
	reply := arrayV()
	for _, s := range slots {
		entry := arrayV(intV(int64(s.Start)), intV(int64(s.End)))
		for _, n := range s.Nodes {
			host, port, err := net.SplitHostPort(n.Addr)
			p, perr := strconv.ParseInt(port, 10, 64)
			if err != nil || perr != nil {
				// No port to send: a node entry a server could not form.
				entry.array = append(entry.array, arrayV(bulkV(n.Addr)))
				continue
			}
			entry.array = append(entry.array, arrayV(bulkV(host), intV(p), bulkV(n.ID)))
		}
		reply.array = append(reply.array, entry)
	}
	return tableFromSlots(reread(reply), from)
}

// reread passes v through the wire format.
func reread(v value) value {
	got, err := newReplyReader(bytes.NewReader(appendValue(nil, v))).read()
	if err != nil {
		panic(err) // appendValue and replyReader disagree: TestReplyReader says more
	}
	return got
}

// nodeCall sends one command to addr on a connection of its own and
// returns the reply, failing t on an error reply.
func nodeCall(t *testing.T, addr string, args ...string) value {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(respenc.AppendCommand(nil, args...)); err != nil {
		t.Fatal(err)
	}
	v, err := newReplyReader(conn).read()
	if err != nil {
		t.Fatalf("%s %v: %v", addr, args, err)
	}
	if v.kind == kindError {
		t.Fatalf("%s %v: %s", addr, args, v.str)
	}
	return v
}

// TestFetch runs fetch against a real cluster of 3 masters with a replica
// each, checking the table against what the nodes say of themselves.
func TestFetch(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3, Replicas: 1})
	ctx := context.Background()
	m, err := New(Options{Seeds: c.Seeds()})
	if err != nil {
		t.Fatal(err)
	}
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(masters)
	ids := map[string]string{}
	for _, addr := range c.Seeds() {
		ids[addr] = nodeCall(t, addr, "CLUSTER", "MYID").str
	}

	var tab *Table
	// A replica that has not replicated a byte yet is "loading" and left
	// out; a write to every master hurries it (see testReplicas).
	mapPoll(t, 20*time.Second, func() string {
		for _, addr := range masters {
			nodeCall(t, addr, "FLUSHALL")
		}
		if tab, err = m.fetch(ctx, c.Seeds()[0]); err != nil {
			return err.Error()
		}
		if tab.Replicas() != 3 {
			return strconv.Itoa(tab.Replicas()) + " replicas, want 3"
		}
		return ""
	})
	if n := len(tab.Shards()); n != 3 {
		t.Fatalf("%d shards, want 3: %+v", n, tab.Shards())
	}
	if tab.Covered() != NumSlots {
		t.Errorf("%d slots covered, want %d", tab.Covered(), NumSlots)
	}
	truth, replicas := mapTruth(t, c)
	var got []string
	for _, s := range tab.Shards() {
		got = append(got, s.Master.Addr)
		if s.Master.ID != ids[s.Master.Addr] {
			t.Errorf("master %s: ID %q, CLUSTER MYID says %q", s.Master.Addr, s.Master.ID, ids[s.Master.Addr])
		}
		var rs []string
		for _, r := range s.Replicas {
			rs = append(rs, r.Addr)
			if r.ID != ids[r.Addr] {
				t.Errorf("replica %s: ID %q, CLUSTER MYID says %q", r.Addr, r.ID, ids[r.Addr])
			}
		}
		slices.Sort(rs)
		if !slices.Equal(rs, replicas[s.Master.Addr]) {
			t.Errorf("master %s: replicas %v, CLUSTER SLOTS says %v", s.Master.Addr, rs, replicas[s.Master.Addr])
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, masters) {
		t.Errorf("masters %v, the cluster says %v", got, masters)
	}
	if !sameAsTruth(tab, truth) {
		t.Errorf("slot owners differ from CLUSTER SLOTS: %s", tab)
	}

	t.Run("EveryNode", func(t *testing.T) {
		// Replicas answer too, and every node describes the same cluster.
		// A node learns a replica's offset, hence its health, by gossip:
		// it may still call one "loading" for a moment.
		for _, addr := range c.Seeds() {
			mapPoll(t, 10*time.Second, func() string {
				other, err := m.fetch(ctx, addr)
				if err != nil {
					return addr + ": " + err.Error()
				}
				if d := tab.diff(other); d != 0 || other.Replicas() != 3 {
					return fmt.Sprintf("%s: %d slots differ, %d replicas: %s", addr, d, other.Replicas(), other)
				}
				return ""
			})
		}
	})

	t.Run("ClusterSlots", func(t *testing.T) {
		// A node that does not know CLUSTER SHARDS, as before Redis 7: the
		// real node is asked CLUSTER SHARDX instead and refuses it with
		// its own "unknown subcommand" error.
		seed := c.Seeds()[0]
		old := forwardTo(t, seed, nil, func(b []byte) []byte {
			return bytes.ReplaceAll(b, []byte("SHARDS"), []byte("SHARDX"))
		})
		before := clusterCalls(t, seed, "slots")
		slotsTab, err := m.fetch(ctx, old)
		if err != nil {
			t.Fatal(err)
		}
		if n := clusterCalls(t, seed, "slots") - before; n != 1 {
			t.Errorf("%d CLUSTER SLOTS calls on %s, want 1", n, seed)
		}
		if d := tab.diff(slotsTab); d != 0 || len(slotsTab.Shards()) != 3 || slotsTab.Covered() != NumSlots {
			t.Errorf("from CLUSTER SLOTS: %d slots differ, %d shards, %d covered: %s", d, len(slotsTab.Shards()), slotsTab.Covered(), slotsTab)
		}
		for _, s := range slotsTab.Shards() {
			if s.Master.ID != ids[s.Master.Addr] {
				t.Errorf("master %s: ID %q, want %q", s.Master.Addr, s.Master.ID, ids[s.Master.Addr])
			}
			var rs []string
			for _, r := range s.Replicas {
				rs = append(rs, r.Addr)
			}
			slices.Sort(rs)
			if !slices.Equal(rs, replicas[s.Master.Addr]) {
				t.Errorf("master %s: replicas %v, want %v", s.Master.Addr, rs, replicas[s.Master.Addr])
			}
		}
	})
}

// clusterCalls reads how many times addr ran CLUSTER <sub>.
func clusterCalls(t *testing.T, addr, sub string) int {
	t.Helper()
	info := nodeCall(t, addr, "INFO", "commandstats").str
	m := regexp.MustCompile(`cmdstat_cluster\|` + sub + `:calls=(\d+)`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestFetchAuth runs fetch against a real cluster whose nodes require a
// password. (A lone master would do, but clustertest cannot tell when one
// is healthy: it learns its own IP only by meeting another node.)
func TestFetchAuth(t *testing.T) {
	const password = "fetch-s3cret"
	c := clustertest.New(t, clustertest.Options{Masters: 1, Replicas: 1, Password: password})
	seed := c.Seeds()[0] // created as the master
	ctx := context.Background()
	fetch := func(username, password string) (*Table, error) {
		m, err := New(Options{Seeds: []string{seed}, Username: username, Password: password})
		if err != nil {
			t.Fatal(err)
		}
		return m.fetch(ctx, seed)
	}

	for _, user := range []string{"", "default"} {
		tab, err := fetch(user, password)
		if err != nil {
			t.Fatalf("user %q, right password: %v", user, err)
		}
		if len(tab.Shards()) != 1 || tab.Covered() != NumSlots || tab.Master(0) != seed {
			t.Errorf("user %q: %d shards, %d covered, slot 0 on %q", user, len(tab.Shards()), tab.Covered(), tab.Master(0))
		}
	}

	for _, tc := range []struct{ user, password, want string }{
		{"", "wrong", "AUTH refused: WRONGPASS invalid username-password pair"},
		{"default", "wrong", "AUTH refused: WRONGPASS invalid username-password pair"},
		{"nobody", password, "AUTH refused: WRONGPASS invalid username-password pair"},
		{"", "", "CLUSTER SHARDS: NOAUTH Authentication required."},
	} {
		tab, err := fetch(tc.user, tc.password)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("user %q, password %q: %v, %v; want an error with %q", tc.user, tc.password, tab, err, tc.want)
		}
		var re replyError
		if !errors.As(err, &re) {
			t.Errorf("user %q, password %q: %v does not carry the server's reply", tc.user, tc.password, err)
		}
	}
}

// TestFetchStandalone: a server without cluster support gives its error,
// not a table.
func TestFetchStandalone(t *testing.T) {
	n := clustertest.Standalone(t, "")
	m, err := New(Options{Seeds: []string{n.Addr}})
	if err != nil {
		t.Fatal(err)
	}
	tab, err := m.fetch(context.Background(), n.Addr)
	const want = "CLUSTER SHARDS: ERR This instance has cluster support disabled"
	if err == nil || err.Error() != want {
		t.Errorf("fetch = %v, %v; want error %q", tab, err, want)
	}
	if err := m.RefreshNow(context.Background()); !errors.Is(err, ErrNoSeed) || !strings.Contains(err.Error(), want) {
		t.Errorf("RefreshNow = %v, want ErrNoSeed with %q", err, want)
	}
	if m.Table() != nil {
		t.Errorf("a table from a standalone server: %s", m.Table())
	}
}

// TestFetchHungNode: a node that accepts but never answers (SIGSTOP) costs
// a fetch at most its timeouts, and no more than its context allows.
func TestFetchHungNode(t *testing.T) {
	n := clustertest.Standalone(t, "")
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	defer n.Cont()

	m, err := New(Options{Seeds: []string{n.Addr}, DialTimeout: 100 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err = m.fetch(context.Background(), n.Addr)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("fetch from a hung node: %v, want a timeout", err)
	}
	if took := time.Since(began); took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("fetch from a hung node took %v, want about 300ms", took)
	}

	m, err = New(Options{Seeds: []string{n.Addr}, DialTimeout: time.Minute, ReadTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	began = time.Now()
	_, err = m.fetch(ctx, n.Addr)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("fetch with an expiring context: %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("fetch outlived its context by %v", took)
	}
}
