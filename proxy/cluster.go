package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/slotproxy/slotproxy/slotmap"
)

// A cluster-aware client (go-redis ClusterClient, JedisCluster, Lettuce)
// that connects to the proxy asks CLUSTER SLOTS, SHARDS or NODES before
// anything else. The proxy answers as a healthy cluster of ONE node: itself,
// at the address the client connected to, master of every slot, with no
// replicas. The client then sends every command to the proxy, which routes
// it, and never learns of the masters behind it, whose addresses may not
// even be reachable from where the client runs. The replies have the exact
// shape redis-server 7.0 gives, so that any client library parses them.

// clusterSelf is the node a cluster-aware client sees: the proxy, at the address the client connected to.
type clusterSelf struct {
	ID   string // 40 lower-case hex characters, stable for the life of the process
	IP   string // the local IP of the client's connection
	Port int    // the local port of the client's connection
}

// newNodeID returns a random node ID in the form redis-server gives its
// own: 40 lower-case hex characters.
func newNodeID() string {
	var id [20]byte
	// crypto/rand.Read never fails: where the OS source does, the program
	// crashes instead of returning.
	rand.Read(id[:])
	return hex.EncodeToString(id[:])
}

// clusterEpoch is the one node's config epoch and the cluster's current
// epoch. 1, not 0: a cluster created by redis-cli gives each master a
// distinct epoch from 1, and 0 is what a node shows before it was ever
// given one.
const clusterEpoch = 1

// clusterArgs is, for each subcommand the proxy answers, how many
// arguments it takes after its name: redis-server's arity for the
// subcommand, less two.
var clusterArgs = map[string]int{
	"count-failure-reports": 1,
	"help":                  0,
	"info":                  0,
	"keyslot":               1,
	"links":                 0,
	"myid":                  0,
	"nodes":                 0,
	"replicas":              1,
	"shards":                0,
	"slaves":                1,
	"slots":                 0,
}

// clusterRefused lists the subcommands that change a node's slots, epochs
// or peers. On the one node a client sees they would mean nothing (the
// proxy is not a node), and passing them to a master would let a client
// reconfigure the real cluster through a proxy meant to hide it.
var clusterRefused = map[string]bool{
	"addslots":         true,
	"addslotsrange":    true,
	"bumpepoch":        true,
	"delslots":         true,
	"delslotsrange":    true,
	"failover":         true,
	"flushslots":       true,
	"forget":           true,
	"meet":             true,
	"replicate":        true,
	"reset":            true,
	"saveconfig":       true,
	"set-config-epoch": true,
	"setslot":          true,
}

// appendCluster appends the proxy's reply to CLUSTER <sub> args..., encoded in RESP proto (2 or 3).
// sub is the lower-case subcommand name; args are the arguments after it. ok is false for
// subcommands the proxy does not answer itself (countkeysinslot and getkeysinslot, which the
// caller routes to the slot's master), and then b is returned unchanged.
//
// A refused subcommand is refused whatever its arguments. Any other
// subcommand the proxy does not know, MYSHARDID (7.2) among them, gets
// redis-server 7.0's unknown-subcommand error, naming sub as given.
func appendCluster(b []byte, sub string, args [][]byte, self clusterSelf, proto int) (out []byte, ok bool) {
	switch sub {
	case "countkeysinslot", "getkeysinslot":
		return b, false
	}
	if clusterRefused[sub] {
		return appendError(b, "ERR slotproxy: CLUSTER "+strings.ToUpper(sub)+
			" is not allowed: this proxy presents the whole cluster as one node"), true
	}
	n, known := clusterArgs[sub]
	if !known {
		return appendError(b, unknownSubcommand("cluster", []byte(sub))), true
	}
	if len(args) != n {
		return appendError(b, wrongArity("cluster|"+sub)), true
	}
	switch sub {
	case "slots":
		b = appendClusterSlots(b, self, proto)
	case "shards":
		b = appendClusterShards(b, self, proto)
	case "nodes":
		b = appendVerbatim(b, clusterNodeLine(self), proto)
	case "info":
		b = appendVerbatim(b, clusterInfo, proto)
	case "myid":
		b = appendBulkString(b, self.ID)
	case "keyslot":
		b = appendInt(b, int64(slotmap.Slot(args[0])))
	case "replicas", "slaves":
		if string(args[0]) != self.ID {
			return appendError(b, unknownNode(args[0])), true
		}
		b = appendArrayHeader(b, 0)
	case "count-failure-reports":
		if string(args[0]) != self.ID {
			return appendError(b, unknownNode(args[0])), true
		}
		// Nobody else is in the cluster to report the one node failing.
		b = appendInt(b, 0)
	case "links":
		// Links are to other nodes over the cluster bus; there are none.
		b = appendArrayHeader(b, 0)
	case "help":
		b = appendArrayHeader(b, len(clusterHelp))
		for _, line := range clusterHelp {
			b = appendSimple(b, line)
		}
	}
	return b, true
}

// unknownNode is redis-server's error for a node ID it does not know. Node
// IDs are matched exactly, as redis-server does: an upper-case spelling of
// the proxy's ID is another node.
func unknownNode(id []byte) string {
	return sanitize("ERR Unknown node " + string(id))
}

// appendClusterSlots encodes CLUSTER SLOTS: one range of every slot, served
// by the one master, with an empty map of networking metadata (7.0 fills it
// only when the node announces a hostname).
func appendClusterSlots(b []byte, self clusterSelf, proto int) []byte {
	b = appendArrayHeader(b, 1)
	b = appendArrayHeader(b, 3)
	b = appendInt(b, 0)
	b = appendInt(b, slotmap.NumSlots-1)
	b = appendArrayHeader(b, 4)
	b = appendBulkString(b, self.IP)
	b = appendInt(b, int64(self.Port))
	b = appendBulkString(b, self.ID)
	return appendMapHeader(b, 0, proto)
}

// appendClusterShards encodes CLUSTER SHARDS: one shard of every slot,
// whose one node is the master. The fields and their order are 7.0's for a
// node without TLS or an announced hostname.
func appendClusterShards(b []byte, self clusterSelf, proto int) []byte {
	b = appendArrayHeader(b, 1)
	b = appendMapHeader(b, 2, proto)
	b = appendBulkString(b, "slots")
	b = appendArrayHeader(b, 2)
	b = appendInt(b, 0)
	b = appendInt(b, slotmap.NumSlots-1)
	b = appendBulkString(b, "nodes")
	b = appendArrayHeader(b, 1)
	b = appendMapHeader(b, 7, proto)
	b = appendBulkString(b, "id")
	b = appendBulkString(b, self.ID)
	b = appendBulkString(b, "port")
	b = appendInt(b, int64(self.Port))
	b = appendBulkString(b, "ip")
	b = appendBulkString(b, self.IP)
	// With the default cluster-preferred-endpoint-type, the endpoint a
	// client should use is the IP.
	b = appendBulkString(b, "endpoint")
	b = appendBulkString(b, self.IP)
	b = appendBulkString(b, "role")
	b = appendBulkString(b, "master")
	// A master's offset only moves once it has a replication backlog,
	// which a master without replicas never creates.
	b = appendBulkString(b, "replication-offset")
	b = appendInt(b, 0)
	b = appendBulkString(b, "health")
	return appendBulkString(b, "online")
}

// clusterNodeLine is CLUSTER NODES: one line, for the node itself. Its own
// ping-sent and pong-received times are 0, as a node shows for itself.
func clusterNodeLine(self clusterSelf) string {
	// The cluster bus port is, by default, the client port + 10000. Clients
	// never dial it, but some parse it: past 65535, 0 is a valid number
	// where port+10000 would not be.
	bus := self.Port + 10000
	if bus > 65535 {
		bus = 0
	}
	var b strings.Builder
	b.WriteString(self.ID)
	b.WriteByte(' ')
	b.WriteString(self.IP)
	b.WriteByte(':')
	b.WriteString(strconv.Itoa(self.Port))
	b.WriteByte('@')
	b.WriteString(strconv.Itoa(bus))
	b.WriteString(" myself,master - 0 0 ")
	b.WriteString(strconv.Itoa(clusterEpoch))
	b.WriteString(" connected 0-")
	b.WriteString(strconv.Itoa(slotmap.NumSlots - 1))
	b.WriteByte('\n')
	return b.String()
}

// clusterInfo is CLUSTER INFO for a healthy cluster of one node. With no
// peer, no message ever crosses the cluster bus, so 7.0 lists only the two
// totals, both 0, and no per-type counters.
var clusterInfo = "cluster_state:ok\r\n" +
	"cluster_slots_assigned:" + strconv.Itoa(slotmap.NumSlots) + "\r\n" +
	"cluster_slots_ok:" + strconv.Itoa(slotmap.NumSlots) + "\r\n" +
	"cluster_slots_pfail:0\r\n" +
	"cluster_slots_fail:0\r\n" +
	"cluster_known_nodes:1\r\n" +
	"cluster_size:1\r\n" +
	"cluster_current_epoch:" + strconv.Itoa(clusterEpoch) + "\r\n" +
	"cluster_my_epoch:" + strconv.Itoa(clusterEpoch) + "\r\n" +
	"cluster_stats_messages_sent:0\r\n" +
	"cluster_stats_messages_received:0\r\n" +
	"total_cluster_links_buffer_limit_exceeded:0\r\n"

// clusterHelp is CLUSTER HELP: what the proxy answers, in the layout of
// redis-server's help replies (a header, then each subcommand followed by
// its description, then HELP).
var clusterHelp = []string{
	"CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
	"COUNT-FAILURE-REPORTS <node-id>",
	"    Always 0: no other node can see this one fail.",
	"COUNTKEYSINSLOT <slot>",
	"    Number of keys in <slot>, asked of the master that owns it.",
	"GETKEYSINSLOT <slot> <count>",
	"    Up to <count> key names in <slot>, asked of the master that owns it.",
	"INFO",
	"    State of the cluster as clients see it: one node, every slot assigned.",
	"KEYSLOT <key>",
	"    The hash slot of <key>.",
	"LINKS",
	"    Cluster bus links to other nodes: none.",
	"MYID",
	"    The ID of this node, the proxy.",
	"NODES",
	"    The node list, in nodes.conf format: this node alone, master of every slot.",
	"REPLICAS <node-id>",
	"    Replicas of <node-id>: none.",
	"SHARDS",
	"    One shard, every slot, served by this node.",
	"SLOTS",
	"    One slot range, every slot, served by this node.",
	"Slot assignment, failover and membership subcommands are refused: this",
	"proxy presents the whole cluster behind it as one node.",
	"HELP",
	"    Prints this help.",
}
