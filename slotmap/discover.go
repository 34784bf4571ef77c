package slotmap

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// fetch asks the node at addr for the cluster's slot layout: CLUSTER SHARDS
// (Redis 7) first, CLUSTER SLOTS when the node does not know it.
func (m *Map) fetch(ctx context.Context, addr string) (*Table, error) {
	c := redis.NewClient(&redis.Options{
		Addr:            addr,
		Username:        m.opts.Username,
		Password:        m.opts.Password,
		DialTimeout:     m.opts.DialTimeout,
		ReadTimeout:     m.opts.ReadTimeout,
		WriteTimeout:    m.opts.ReadTimeout,
		PoolSize:        1,
		MaxRetries:      -1,
		Protocol:        2,
		DisableIdentity: true,
		TLSConfig:       m.opts.TLSConfig,
	})
	defer c.Close()

	shards, err := c.ClusterShards(ctx).Result()
	if err == nil {
		return fromShards(shards, addr)
	}
	if !isUnknownCommand(err) {
		return nil, err
	}
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, err
	}
	return fromSlots(slots, addr)
}

// isUnknownCommand reports whether err is a server's refusal of a command or
// subcommand it does not implement (Redis before 7 has no CLUSTER SHARDS).
func isUnknownCommand(err error) bool {
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "unknown subcommand") || strings.Contains(s, "unknown command")
}

func fromShards(shards []redis.ClusterShard, from string) (*Table, error) {
	b := newBuilder()
	for _, sh := range shards {
		if len(sh.Slots) == 0 {
			continue // a master without slots serves nothing yet
		}
		var master Node
		var replicas []Node
		for _, n := range sh.Nodes {
			node := Node{ID: n.ID, Addr: nodeAddr(n.IP, n.Endpoint, n.Port, from)}
			switch {
			case n.Role == "master":
				master = node
			case n.Health == "online":
				replicas = append(replicas, node)
			}
		}
		ranges := make([]SlotRange, len(sh.Slots))
		for i, r := range sh.Slots {
			ranges[i] = SlotRange{int(r.Start), int(r.End)}
		}
		if err := b.add(master, replicas, ranges); err != nil {
			return nil, err
		}
	}
	return b.table(), nil
}

func fromSlots(slots []redis.ClusterSlot, from string) (*Table, error) {
	b := newBuilder()
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			return nil, fmt.Errorf("%w: slots %d-%d without a master", ErrBadTopology, s.Start, s.End)
		}
		nodes := make([]Node, len(s.Nodes))
		for i, n := range s.Nodes {
			host, port, err := net.SplitHostPort(n.Addr)
			if err != nil {
				return nil, fmt.Errorf("%w: address %q", ErrBadTopology, n.Addr)
			}
			p, _ := strconv.ParseInt(port, 10, 64)
			nodes[i] = Node{ID: n.ID, Addr: nodeAddr(host, "", p, from)}
		}
		if err := b.add(nodes[0], nodes[1:], []SlotRange{{s.Start, s.End}}); err != nil {
			return nil, err
		}
	}
	return b.table(), nil
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
