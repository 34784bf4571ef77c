package slotmap

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/slotproxy/slotproxy/internal/oplog"
	"github.com/slotproxy/slotproxy/internal/respenc"
)

// fetch asks the node at addr for the cluster's slot layout: CLUSTER SHARDS
// (Redis 7) first, CLUSTER SLOTS when the node does not know it.
//
// It speaks RESP2 itself on one connection per call rather than through a
// client library: discovery runs every few seconds in a process meant to
// stay small, and a library would bring its pools and goroutines into the
// binary for three commands. Options.Dial makes the connection, TLS or not.
func (m *Map) fetch(ctx context.Context, addr string) (*Table, error) {
	deadline := time.Now().Add(m.opts.DialTimeout + m.opts.ReadTimeout)
	dctx, cancel := context.WithTimeout(ctx, m.opts.DialTimeout)
	conn, err := m.opts.Dial(dctx, addr)
	cancel()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	// A cancelled ctx (shutdown) ends the exchange now rather than at the
	// deadline.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	t, err := m.exchange(conn, addr)
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return t, err
}

// exchange authenticates on conn when a password is set, then asks for the
// layout and builds the table; from is the node's address.
func (m *Map) exchange(conn net.Conn, from string) (*Table, error) {
	var req []byte
	auth := m.opts.Password != ""
	if auth && m.opts.Username != "" {
		req = respenc.AppendCommand(req, "AUTH", m.opts.Username, m.opts.Password)
	} else if auth {
		req = respenc.AppendCommand(req, "AUTH", m.opts.Password)
	}
	// AUTH and CLUSTER SHARDS share one write and one round trip; if AUTH
	// is refused, the reply to CLUSTER SHARDS (NOAUTH) is never read.
	req = respenc.AppendCommand(req, "CLUSTER", "SHARDS")
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}

	rr := newReplyReader(conn)
	if auth {
		v, err := rr.read()
		if err != nil {
			return nil, fmt.Errorf("reading the AUTH reply: %w", err)
		}
		if v.kind == kindError {
			// A node with AUTH renamed away quotes the password back.
			return nil, fmt.Errorf("AUTH refused: %w", replyError(oplog.Scrub(v.str, m.opts.Password)))
		}
	}
	shards, err := rr.read()
	if err != nil {
		return nil, fmt.Errorf("reading the CLUSTER SHARDS reply: %w", err)
	}
	if shards.kind != kindError {
		return tableFromShards(shards, from, m.opts.TLS)
	}
	if err := replyError(shards.str); !isUnknownCommand(err) {
		return nil, fmt.Errorf("CLUSTER SHARDS: %w", err)
	}

	if _, err := conn.Write(respenc.AppendCommand(nil, "CLUSTER", "SLOTS")); err != nil {
		return nil, err
	}
	slots, err := rr.read()
	if err != nil {
		return nil, fmt.Errorf("reading the CLUSTER SLOTS reply: %w", err)
	}
	if slots.kind == kindError {
		return nil, fmt.Errorf("CLUSTER SLOTS: %w", replyError(slots.str))
	}
	return tableFromSlots(slots, from)
}

// isUnknownCommand reports whether err is a server's refusal of a command or
// subcommand it does not implement (Redis before 7 has no CLUSTER SHARDS).
func isUnknownCommand(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "unknown subcommand") || strings.Contains(s, "unknown command")
}

// tableFromShards builds a table from a CLUSTER SHARDS reply: an array of
// shards, each (RESP2 having no maps) a flat array of names and values:
// "slots" a flat array of start, end pairs, "nodes" an array of nodes, each
// itself a flat array of names and values. tls picks each node's tls-port
// over its plaintext port.
func tableFromShards(reply value, from string, tls bool) (*Table, error) {
	if reply.kind != kindArray {
		return nil, fmt.Errorf("%w: CLUSTER SHARDS replied with %s, not an array", ErrBadTopology, reply.kind)
	}
	b := newBuilder()
	for i, sh := range reply.array {
		var slots, nodes []value
		err := forFields(sh, func(name string, v value) bool {
			switch name {
			case "slots":
				slots = v.array
				return v.kind == kindArray
			case "nodes":
				nodes = v.array
				return v.kind == kindArray
			}
			return true
		})
		if err != nil {
			return nil, fmt.Errorf("shard %d: %w", i, err)
		}
		if len(slots) == 0 {
			continue // a master without slots serves nothing yet
		}
		ranges, err := slotRanges(slots)
		if err != nil {
			return nil, fmt.Errorf("shard %d: %w", i, err)
		}
		var master Node
		var replicas []Node
		for j, nv := range nodes {
			n, err := readShardNode(nv)
			if err != nil {
				return nil, fmt.Errorf("shard %d, node %d: %w", i, j, err)
			}
			port := n.port
			if tls && n.tlsPort != 0 || port == 0 {
				port = n.tlsPort
			}
			node := Node{ID: n.id, Addr: nodeAddr(n.ip, n.endpoint, port, from)}
			switch {
			case n.role == "master":
				master = node
			case n.health == "online":
				replicas = append(replicas, node)
			}
		}
		if err := b.add(master, replicas, ranges); err != nil {
			return nil, err
		}
	}
	return b.table(), nil
}

// shardNode is what discovery uses of a node in a CLUSTER SHARDS reply.
type shardNode struct {
	id, ip, endpoint, role, health string
	port, tlsPort                  int64
}

func readShardNode(v value) (shardNode, error) {
	var n shardNode
	err := forFields(v, func(name string, v value) bool {
		ok := true
		switch name {
		case "id":
			n.id, ok = v.text()
		case "ip":
			n.ip, ok = v.text()
		case "endpoint":
			n.endpoint, ok = v.text()
		case "role":
			n.role, ok = v.text()
		case "health":
			n.health, ok = v.text()
		case "port":
			n.port, ok = v.int, v.kind == kindInt
		case "tls-port":
			n.tlsPort, ok = v.int, v.kind == kindInt
		}
		return ok
	})
	return n, err
}

// forFields calls set with each name and value of a flat array of names
// and values, which is how RESP2 carries a map. set reports whether the
// value has the type its name calls for; names it does not know are for
// newer servers and must be accepted.
func forFields(v value, set func(name string, v value) bool) error {
	if v.kind != kindArray {
		return fmt.Errorf("%w: want an array of names and values, got %s", ErrBadTopology, v.kind)
	}
	if len(v.array)%2 != 0 {
		return fmt.Errorf("%w: %d elements cannot be names and values", ErrBadTopology, len(v.array))
	}
	for i := 0; i < len(v.array); i += 2 {
		name, ok := v.array[i].text()
		if !ok {
			return fmt.Errorf("%w: field name is %s, not a string", ErrBadTopology, v.array[i].kind)
		}
		if !set(name, v.array[i+1]) {
			return fmt.Errorf("%w: field %q is %s", ErrBadTopology, name, v.array[i+1].kind)
		}
	}
	return nil
}

// slotRanges reads a flat array of start, end pairs.
func slotRanges(flat []value) ([]SlotRange, error) {
	if len(flat)%2 != 0 {
		return nil, fmt.Errorf("%w: odd number of slot bounds (%d)", ErrBadTopology, len(flat))
	}
	ranges := make([]SlotRange, 0, len(flat)/2)
	for i := 0; i < len(flat); i += 2 {
		start, err := slotNumber(flat[i])
		if err != nil {
			return nil, err
		}
		end, err := slotNumber(flat[i+1])
		if err != nil {
			return nil, err
		}
		ranges = append(ranges, SlotRange{start, end})
	}
	return ranges, nil
}

// slotNumber reads one slot bound. The range itself is checked where the
// table is built; this only keeps an int64 from wrapping in an int.
func slotNumber(v value) (int, error) {
	if v.kind != kindInt {
		return 0, fmt.Errorf("%w: slot bound is %s, not an integer", ErrBadTopology, v.kind)
	}
	if v.int < -1 || v.int > NumSlots {
		return 0, fmt.Errorf("%w: slot %d", ErrBadTopology, v.int)
	}
	return int(v.int), nil
}

// tableFromSlots builds a table from a CLUSTER SLOTS reply: an array of
// ranges, each start, end, then the master and its replicas as
// [host, port, id, ...] (the id since Redis 4, more fields since 7).
func tableFromSlots(reply value, from string) (*Table, error) {
	if reply.kind != kindArray {
		return nil, fmt.Errorf("%w: CLUSTER SLOTS replied with %s, not an array", ErrBadTopology, reply.kind)
	}
	b := newBuilder()
	for i, s := range reply.array {
		if s.kind != kindArray || len(s.array) < 2 {
			return nil, fmt.Errorf("%w: slot entry %d is not start, end, nodes", ErrBadTopology, i)
		}
		ranges, err := slotRanges(s.array[:2])
		if err != nil {
			return nil, fmt.Errorf("slot entry %d: %w", i, err)
		}
		r := ranges[0]
		if len(s.array) == 2 {
			return nil, fmt.Errorf("%w: slots %d-%d without a master", ErrBadTopology, r.Start, r.End)
		}
		nodes := make([]Node, 0, len(s.array)-2)
		for _, nv := range s.array[2:] {
			n, err := readSlotsNode(nv, from)
			if err != nil {
				return nil, fmt.Errorf("slots %d-%d: %w", r.Start, r.End, err)
			}
			nodes = append(nodes, n)
		}
		if err := b.add(nodes[0], nodes[1:], ranges); err != nil {
			return nil, err
		}
	}
	return b.table(), nil
}

// readSlotsNode reads one [host, port, id, ...] node of CLUSTER SLOTS. The
// host is null (or "?") when the node does not know its own endpoint.
func readSlotsNode(v value, from string) (Node, error) {
	if v.kind != kindArray || len(v.array) < 2 {
		return Node{}, fmt.Errorf("%w: node is not [host, port, ...]", ErrBadTopology)
	}
	host, ok := v.array[0].text()
	if !ok {
		return Node{}, fmt.Errorf("%w: node host is %s", ErrBadTopology, v.array[0].kind)
	}
	port := v.array[1]
	if port.kind != kindInt {
		return Node{}, fmt.Errorf("%w: node port is %s", ErrBadTopology, port.kind)
	}
	var id string
	if len(v.array) > 2 {
		if id, ok = v.array[2].text(); !ok {
			return Node{}, fmt.Errorf("%w: node id is %s", ErrBadTopology, v.array[2].kind)
		}
	}
	return Node{ID: id, Addr: nodeAddr(host, "", port.int, from)}, nil
}

// nodeAddr picks the address to dial for a node. A node that does not know
// its own IP announces an empty one (or "?"): it is then reachable at the
// host the answer came from, as cluster clients assume.
func nodeAddr(ip, endpoint string, port int64, from string) string {
	host := ip
	if host == "" || host == "?" {
		host = endpoint
	}
	if host == "" || host == "?" {
		host, _, _ = net.SplitHostPort(from)
	}
	return net.JoinHostPort(host, strconv.FormatInt(port, 10))
}
