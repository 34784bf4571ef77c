package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/tidwall/resp"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// oneNodeCluster returns the address of a real, healthy cluster of one
// master, which is what the proxy pretends to be, and the clusterSelf that
// makes appendCluster describe that same node.
//
// It is made from a cluster of two masters whose second is killed and
// forgotten, its slots taken over by the first: clustertest cannot build a
// one-node cluster (Options{Masters: 1}) because a node that never met a
// peer does not know its own IP, so its CLUSTER NODES line reads
// ":port@bus" and clustertest's health check, which looks for
// "127.0.0.1:port", never passes. The node left here learnt its IP from its
// peer, as every node of a real cluster has, and brings the history (bus
// message counters, a current epoch of 2) that the comparison normalises.
func oneNodeCluster(t *testing.T) (string, clusterSelf) {
	t.Helper()
	c := clustertest.New(t, clustertest.Options{Masters: 2})
	ctx := t.Context()
	keep, drop := c.Client(c.Nodes[0].Addr), c.Client(c.Nodes[1].Addr)
	id, err := keep.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		t.Fatalf("CLUSTER MYID: %v", err)
	}
	dropID, err := drop.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		t.Fatalf("CLUSTER MYID: %v", err)
	}
	if err := c.Nodes[1].Kill(); err != nil {
		t.Fatal(err)
	}
	// Forgetting a node unassigns its slots.
	if err := keep.ClusterForget(ctx, dropID).Err(); err != nil {
		t.Fatalf("CLUSTER FORGET: %v", err)
	}
	if err := keep.ClusterAddSlotsRange(ctx, slotmap.NumSlots/2, slotmap.NumSlots-1).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	// The node re-evaluates its state in its next cron run; had it marked the
	// dead peer as failing first, it also waits out a rejoin delay.
	clustertest.Eventually(t, 15*time.Second, func() error {
		info, err := keep.ClusterInfo(ctx).Result()
		if err != nil {
			return err
		}
		for _, want := range []string{"cluster_state:ok\r\n", "cluster_known_nodes:1\r\n", "cluster_size:1\r\n"} {
			if !strings.Contains(info, want) {
				return fmt.Errorf("CLUSTER INFO lacks %q: %q", want, info)
			}
		}
		return nil
	})
	return c.Nodes[0].Addr, clusterSelf{ID: id, IP: "127.0.0.1", Port: c.Nodes[0].Port}
}

// TestClusterRepliesMatchRedis compares, byte for byte in RESP2 and RESP3,
// what a real 7.0 node of a one-master cluster replies to each CLUSTER
// subcommand the proxy answers with what appendCluster gives for that
// node's ID and address, errors included.
//
// Only these fields are normalised, in both replies, because they describe
// a real node's history rather than the cluster's shape:
//   - NODES ping-sent and pong-received: times in ms, which a node reports
//     for its peers (0 for itself, as here, but not in general);
//   - NODES config epoch and INFO cluster_current_epoch and
//     cluster_my_epoch: a real cluster's epochs count its failovers and
//     slot moves, the proxy always says 1 (TestClusterGolden pins that);
//   - NODES cluster bus port: the real node's is its cluster-port setting,
//     the proxy's is port+10000, and no client dials it;
//   - INFO cluster_stats_messages_*: counts of bus messages, which depend
//     on the peers and on time.
//
// NODES and INFO are compared on their text, so that normalising cannot
// break their length headers; both replies' framing is checked before.
func TestClusterRepliesMatchRedis(t *testing.T) {
	addr, self := oneNodeCluster(t)
	other := strings.Repeat("e", 40)
	tests := []struct {
		sub  string
		args []string
	}{
		{"slots", nil},
		{"shards", nil},
		{"nodes", nil},
		{"info", nil},
		{"myid", nil},
		{"links", nil},
		{"keyslot", []string{"foo"}},
		{"keyslot", []string{"{user1}.following"}},
		{"keyslot", []string{""}},
		{"replicas", []string{self.ID}},
		{"slaves", []string{self.ID}},
		{"replicas", []string{other}},
		{"slaves", []string{"not-an-id"}},
		{"replicas", []string{strings.ToUpper(self.ID)}},
		{"count-failure-reports", []string{self.ID}},
		{"count-failure-reports", []string{other}},
		{"count-failure-reports", []string{"a\r\nb"}},
		// Wrong argument counts and unknown subcommands: redis-server's texts.
		{"slots", []string{"x"}},
		{"shards", []string{"x"}},
		{"nodes", []string{"x"}},
		{"info", []string{"x"}},
		{"myid", []string{"x"}},
		{"links", []string{"x"}},
		{"help", []string{"x"}},
		{"keyslot", nil},
		{"keyslot", []string{"a", "b"}},
		{"replicas", nil},
		{"slaves", []string{self.ID, "x"}},
		{"count-failure-reports", nil},
		{"myshardid", nil},
		{"no-such-thing", []string{"x"}},
	}
	for _, proto := range []int{2, 3} {
		t.Run("RESP"+strconv.Itoa(proto), func(t *testing.T) {
			conn := dialRESP(t, addr)
			if proto == 3 {
				if hello := conn.do("HELLO", "3"); !strings.HasPrefix(hello, "%") {
					t.Fatalf("HELLO 3: %q", hello)
				}
			}
			for _, tt := range tests {
				name := strings.TrimSpace("CLUSTER " + strings.ToUpper(tt.sub) + " " + strings.Join(tt.args, " "))
				want := conn.do(append([]string{"CLUSTER", tt.sub}, tt.args...)...)
				out, ok := appendCluster(nil, tt.sub, byteArgs(tt.args), self, proto)
				if !ok {
					t.Errorf("%s: ok = false", name)
					continue
				}
				if n, err := router.ScanReply(out); n != len(out) || err != nil {
					t.Errorf("%s: not one RESP value (%d of %d bytes, %v): %q", name, n, len(out), err, out)
					continue
				}
				w, g := normaliseCluster(t, tt.sub, want), normaliseCluster(t, tt.sub, string(out))
				if w != g {
					t.Errorf("%s:\n\tredis-server: %q\n\tproxy:        %q", name, w, g)
				}
			}
		})
	}
}

func byteArgs(args []string) [][]byte {
	b := make([][]byte, len(args))
	for i, a := range args {
		b[i] = []byte(a)
	}
	return b
}

var busPort = regexp.MustCompile(`@\d+`)

// normaliseCluster rewrites the fields listed on TestClusterRepliesMatchRedis.
// A NODES or INFO reply becomes its type byte and its normalised text.
func normaliseCluster(t *testing.T, sub, reply string) string {
	t.Helper()
	if sub != "nodes" && sub != "info" || reply[0] == '-' {
		return reply
	}
	text, typ := verbatimText(t, reply)
	var out []string
	for line := range strings.Lines(text) {
		switch sub {
		case "nodes":
			f := strings.Fields(line)
			if len(f) < 8 {
				t.Fatalf("CLUSTER NODES line %q: too few fields", line)
			}
			f[1] = busPort.ReplaceAllString(f[1], "@<bus>")
			f[4], f[5], f[6] = "<ping-sent>", "<pong-recv>", "<epoch>"
			line = strings.Join(f, " ") + "\n"
		case "info":
			k, _, _ := strings.Cut(line, ":")
			switch {
			case k == "cluster_stats_messages_sent" || k == "cluster_stats_messages_received":
				line = k + ":<n>\r\n"
			case strings.HasPrefix(k, "cluster_stats_messages_"):
				continue // per-type counters: present only once messages of the type were counted
			case k == "cluster_current_epoch" || k == "cluster_my_epoch":
				line = k + ":<epoch>\r\n"
			}
		}
		out = append(out, line)
	}
	return typ + " " + strings.Join(out, "")
}

// verbatimText returns the text of a bulk string ("$") or of a verbatim
// string of format txt ("="), after checking its length header.
func verbatimText(t *testing.T, reply string) (text, typ string) {
	t.Helper()
	header, body, ok := strings.Cut(reply, "\r\n")
	if !ok || len(header) < 2 || !strings.HasSuffix(body, "\r\n") {
		t.Fatalf("not a bulk or verbatim string: %q", reply)
	}
	body = strings.TrimSuffix(body, "\r\n")
	if n, err := strconv.Atoi(header[1:]); err != nil || n != len(body) {
		t.Fatalf("length header %q for %d bytes: %q", header, len(body), reply)
	}
	switch header[0] {
	case '$':
		return body, "$"
	case '=':
		if !strings.HasPrefix(body, "txt:") {
			t.Fatalf("verbatim string not of format txt: %q", reply)
		}
		return body[len("txt:"):], "="
	}
	t.Fatalf("not a bulk or verbatim string: %q", reply)
	return "", ""
}

// TestClusterGolden pins the values the comparison with redis-server
// normalises, and the address the proxy puts in every reply.
func TestClusterGolden(t *testing.T) {
	self := clusterSelf{ID: strings.Repeat("ab", 20), IP: "10.1.2.3", Port: 5000}
	reply := func(sub string, proto int) string {
		out, ok := appendCluster(nil, sub, nil, self, proto)
		if !ok {
			t.Fatalf("CLUSTER %s: ok = false", sub)
		}
		return string(out)
	}
	line := self.ID + " 10.1.2.3:5000@15000 myself,master - 0 0 1 connected 0-16383\n"
	if got, want := reply("nodes", 2), "$"+strconv.Itoa(len(line))+"\r\n"+line+"\r\n"; got != want {
		t.Errorf("CLUSTER NODES, RESP2: got %q, want %q", got, want)
	}
	if got, want := reply("nodes", 3), "="+strconv.Itoa(len(line)+4)+"\r\ntxt:"+line+"\r\n"; got != want {
		t.Errorf("CLUSTER NODES, RESP3: got %q, want %q", got, want)
	}
	info, _ := verbatimText(t, reply("info", 2))
	for _, field := range []string{"cluster_state:ok", "cluster_slots_assigned:16384", "cluster_slots_ok:16384",
		"cluster_known_nodes:1", "cluster_size:1", "cluster_current_epoch:1", "cluster_my_epoch:1",
		"cluster_stats_messages_sent:0", "cluster_stats_messages_received:0"} {
		if !strings.Contains("\r\n"+info, "\r\n"+field+"\r\n") {
			t.Errorf("CLUSTER INFO lacks %q: %q", field, info)
		}
	}
	if text, typ := verbatimText(t, reply("info", 3)); text != info || typ != "=" {
		t.Errorf("CLUSTER INFO, RESP3: %q %q, want the RESP2 text as a verbatim string", typ, text)
	}
	slots := "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$8\r\n10.1.2.3\r\n:5000\r\n$40\r\n" + self.ID + "\r\n"
	if got := reply("slots", 2); got != slots+"*0\r\n" {
		t.Errorf("CLUSTER SLOTS, RESP2: %q", got)
	}
	if got := reply("slots", 3); got != slots+"%0\r\n" {
		t.Errorf("CLUSTER SLOTS, RESP3: %q", got)
	}

	// The bus port of a client port past 55535 would not be a port.
	high := clusterSelf{ID: self.ID, IP: "::1", Port: 60000}
	out, _ := appendCluster(nil, "nodes", nil, high, 2)
	if !bytes.Contains(out, []byte(" ::1:60000@0 myself,master ")) {
		t.Errorf("CLUSTER NODES on port 60000: %q", out)
	}
}

// TestClusterTable covers what the comparison with redis-server cannot:
// subcommands the proxy refuses or leaves to the masters, and KEYSLOT
// against the cluster spec's hash tag rules.
func TestClusterTable(t *testing.T) {
	self := clusterSelf{ID: newNodeID(), IP: "127.0.0.1", Port: 5000}
	refused := func(name string) string {
		return "-ERR slotproxy: CLUSTER " + name + " is not allowed: this proxy presents the whole cluster as one node\r\n"
	}
	tests := []struct {
		sub  string
		args []string
		want string // "" for ok = false
	}{
		{"keyslot", []string{"foo"}, ":12182\r\n"},
		{"keyslot", []string{"{user1000}.following"}, ":3443\r\n"},
		{"keyslot", []string{"{user1000}.followers"}, ":3443\r\n"},
		{"keyslot", []string{"foo{}{bar}"}, ":" + strconv.Itoa(int(slotmap.CRC16([]byte("foo{}{bar}"))%16384)) + "\r\n"},
		{"keyslot", []string{"foo{{bar}}zap"}, ":" + strconv.Itoa(int(slotmap.CRC16([]byte("{bar"))%16384)) + "\r\n"},
		{"keyslot", []string{"123456789"}, ":12739\r\n"}, // CRC16 check value 0x31C3
		{"keyslot", nil, "-ERR wrong number of arguments for 'cluster|keyslot' command\r\n"},
		{"keyslot", []string{"a", "b"}, "-ERR wrong number of arguments for 'cluster|keyslot' command\r\n"},
		{"myid", []string{"x"}, "-ERR wrong number of arguments for 'cluster|myid' command\r\n"},
		{"replicas", []string{self.ID}, "*0\r\n"},
		{"replicas", []string{"x\ny"}, "-ERR Unknown node x y\r\n"},
		{"count-failure-reports", []string{self.ID}, ":0\r\n"},
		{"myshardid", nil, "-ERR unknown subcommand 'myshardid'. Try CLUSTER HELP.\r\n"},
		{"countkeysinslot", []string{"1"}, ""},
		{"getkeysinslot", []string{"1", "10"}, ""},
		{"addslots", []string{"1"}, refused("ADDSLOTS")},
		{"addslotsrange", []string{"1", "2"}, refused("ADDSLOTSRANGE")},
		{"delslots", []string{"1"}, refused("DELSLOTS")},
		{"delslotsrange", []string{"1", "2"}, refused("DELSLOTSRANGE")},
		{"flushslots", nil, refused("FLUSHSLOTS")},
		{"failover", []string{"takeover"}, refused("FAILOVER")},
		{"forget", []string{self.ID}, refused("FORGET")},
		{"meet", []string{"127.0.0.1", "7000"}, refused("MEET")},
		{"replicate", []string{self.ID}, refused("REPLICATE")},
		{"reset", []string{"hard"}, refused("RESET")},
		{"saveconfig", nil, refused("SAVECONFIG")},
		{"setslot", []string{"1", "stable"}, refused("SETSLOT")},
		{"set-config-epoch", []string{"5"}, refused("SET-CONFIG-EPOCH")},
		{"bumpepoch", nil, refused("BUMPEPOCH")},
		// Refused whatever the arguments: none of them could make it allowed.
		{"setslot", nil, refused("SETSLOT")},
	}
	for _, proto := range []int{2, 3} {
		for _, tt := range tests {
			name := fmt.Sprintf("RESP%d CLUSTER %s %q", proto, tt.sub, tt.args)
			prefix := []byte("prefix")
			out, ok := appendCluster(prefix, tt.sub, byteArgs(tt.args), self, proto)
			if !bytes.HasPrefix(out, []byte("prefix")) {
				t.Errorf("%s: did not append: %q", name, out)
				continue
			}
			if tt.want == "" {
				if ok || len(out) != len(prefix) {
					t.Errorf("%s: ok = %v, out %q; want the command left to the caller", name, ok, out)
				}
				continue
			}
			if got := string(out[len(prefix):]); !ok || got != tt.want {
				t.Errorf("%s: ok = %v, got %q, want %q", name, ok, got, tt.want)
			}
		}
	}
}

func TestClusterHelp(t *testing.T) {
	out, ok := appendCluster(nil, "help", nil, clusterSelf{}, 3)
	if !ok {
		t.Fatal("ok = false")
	}
	v, _, err := resp.NewReader(bytes.NewReader(out)).ReadValue()
	if err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	lines := v.Array()
	if len(lines) != len(clusterHelp) || !strings.HasPrefix(lines[0].String(), "CLUSTER <subcommand>") ||
		lines[len(lines)-2].String() != "HELP" {
		t.Errorf("CLUSTER HELP: %q", out)
	}
	for _, sub := range []string{"SLOTS", "SHARDS", "NODES", "KEYSLOT", "COUNTKEYSINSLOT"} {
		if !bytes.Contains(out, []byte("+"+sub)) {
			t.Errorf("CLUSTER HELP does not list %s: %q", sub, out)
		}
	}
}

func TestNewNodeID(t *testing.T) {
	valid := regexp.MustCompile(`^[0-9a-f]{40}$`)
	a, b := newNodeID(), newNodeID()
	if !valid.MatchString(a) || !valid.MatchString(b) {
		t.Errorf("not 40 lower-case hex characters: %q, %q", a, b)
	}
	if a == b {
		t.Errorf("two IDs alike: %q", a)
	}
}

// clusterFace is a server that answers CLUSTER with appendCluster and
// nothing else of note: what a cluster-aware client library sees of the
// proxy before the session wires the command in. It gives each connection
// the clusterSelf the proxy would: the local end of that connection.
type clusterFace struct {
	ln   net.Listener
	gets atomic.Int64 // GETs received: the client followed the topology to us
	wg   sync.WaitGroup
	mu   sync.Mutex
	conn []net.Conn
	id   string
}

func startClusterFace(t *testing.T) *clusterFace {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &clusterFace{ln: ln, id: newNodeID()}
	f.wg.Go(f.accept)
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conn {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *clusterFace) accept() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conn = append(f.conn, c)
		f.mu.Unlock()
		f.wg.Go(func() { f.serve(c) })
	}
}

func (f *clusterFace) serve(c net.Conn) {
	local := c.LocalAddr().(*net.TCPAddr)
	self := clusterSelf{ID: f.id, IP: local.IP.String(), Port: local.Port}
	rd := resp.NewReader(c)
	proto := 2
	for {
		v, _, _, err := rd.ReadMultiBulk()
		if err != nil {
			return
		}
		args := v.Array()
		if len(args) == 0 {
			continue
		}
		var out []byte
		switch name := strings.ToLower(args[0].String()); {
		case name == "hello" && len(args) >= 2:
			proto, _ = strconv.Atoi(args[1].String())
			out = appendMapHeader(out, 3, proto)
			out = appendBulkString(out, "server")
			out = appendBulkString(out, "redis")
			out = appendBulkString(out, "version")
			out = appendBulkString(out, redisVersion)
			out = appendBulkString(out, "proto")
			out = appendInt(out, int64(proto))
		case name == "cluster" && len(args) >= 2:
			rest := make([][]byte, len(args)-2)
			for i, a := range args[2:] {
				rest[i] = a.Bytes()
			}
			var ok bool
			out, ok = appendCluster(out, strings.ToLower(args[1].String()), rest, self, proto)
			if !ok {
				out = appendError(out, "ERR routed to a master")
			}
		case name == "get":
			f.gets.Add(1)
			out = appendNull(out, proto)
		case name == "ping":
			out = appendSimple(out, "PONG")
		case name == "command":
			// ClusterClient asks which commands are read-only: redis-server
			// 7.0.15's own answer, which the command table is built from.
			out = append(out, builtinReply...)
		default:
			out = appendError(out, unknownCommand(byteArgs(stringArgs(args))))
		}
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}

func stringArgs(vs []resp.Value) []string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return s
}

// TestClusterRepliesParseWithGoRedis has go-redis, in RESP2 and RESP3, parse
// the proxy's CLUSTER replies into its typed results, and a go-redis
// ClusterClient find the one node from them and send it a command.
func TestClusterRepliesParseWithGoRedis(t *testing.T) {
	f := startClusterFace(t)
	addr := f.ln.Addr().(*net.TCPAddr)
	noMaint := func() *maintnotifications.Config {
		return &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	}
	for _, proto := range []int{2, 3} {
		t.Run("RESP"+strconv.Itoa(proto), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			c := redis.NewClient(&redis.Options{Addr: addr.String(), Protocol: proto, MaxRetries: -1,
				DisableIdentity: true, MaintNotificationsConfig: noMaint()})
			defer c.Close()

			slots, err := c.ClusterSlots(ctx).Result()
			if err != nil {
				t.Fatalf("ClusterSlots: %v", err)
			}
			if len(slots) != 1 || slots[0].Start != 0 || slots[0].End != 16383 || len(slots[0].Nodes) != 1 ||
				slots[0].Nodes[0].Addr != addr.String() || slots[0].Nodes[0].ID != f.id {
				t.Errorf("ClusterSlots: %+v", slots)
			}

			shards, err := c.ClusterShards(ctx).Result()
			if err != nil {
				t.Fatalf("ClusterShards: %v", err)
			}
			want := redis.Node{ID: f.id, Endpoint: "127.0.0.1", IP: "127.0.0.1", Port: int64(addr.Port),
				Role: "master", ReplicationOffset: 0, Health: "online"}
			if len(shards) != 1 || len(shards[0].Slots) != 1 || shards[0].Slots[0] != (redis.SlotRange{Start: 0, End: 16383}) ||
				len(shards[0].Nodes) != 1 || shards[0].Nodes[0] != want {
				t.Errorf("ClusterShards: %+v, want one shard of slots 0-16383 with node %+v", shards, want)
			}

			nodes, err := c.ClusterNodes(ctx).Result()
			if err != nil {
				t.Fatalf("ClusterNodes: %v", err)
			}
			wantLine := fmt.Sprintf("%s 127.0.0.1:%d@%d myself,master - 0 0 1 connected 0-16383\n", f.id, addr.Port, addr.Port+10000)
			if addr.Port+10000 > 65535 {
				wantLine = strings.Replace(wantLine, "@"+strconv.Itoa(addr.Port+10000), "@0", 1)
			}
			if nodes != wantLine {
				t.Errorf("ClusterNodes: %q, want %q", nodes, wantLine)
			}

			info, err := c.ClusterInfo(ctx).Result()
			if err != nil {
				t.Fatalf("ClusterInfo: %v", err)
			}
			if !strings.HasPrefix(info, "cluster_state:ok\r\n") {
				t.Errorf("ClusterInfo: %q", info)
			}

			if err := c.Do(ctx, "CLUSTER", "SETSLOT", "1", "STABLE").Err(); err == nil ||
				!strings.Contains(err.Error(), "CLUSTER SETSLOT is not allowed") {
				t.Errorf("CLUSTER SETSLOT: %v", err)
			}
		})
	}

	// A ClusterClient reads the topology and sends the key's command to the
	// node it names, which must be the address it dialled.
	for _, proto := range []int{2, 3} {
		t.Run("ClusterClientRESP"+strconv.Itoa(proto), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr.String()}, Protocol: proto,
				MaxRedirects: -1, DisableIdentity: true, MaintNotificationsConfig: noMaint()})
			defer cc.Close()
			before := f.gets.Load()
			for _, key := range []string{"a", "b", "{user1}.x", "zzz"} {
				if err := cc.Get(ctx, key).Err(); !errors.Is(err, redis.Nil) {
					t.Errorf("GET %s: %v, want redis.Nil", key, err)
				}
			}
			if got := f.gets.Load() - before; got != 4 {
				t.Errorf("%d GETs reached the node, want 4", got)
			}
		})
	}
}
