package clustertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// WaitHealthy polls until the cluster is settled:
//   - every serving node (not killed, not between Stop and Cont) reports
//     cluster_state:ok;
//   - all serving nodes return the same slot map (CLUSTER SLOTS: ranges,
//     master, replicas), it covers all 16384 slots, and none of its masters
//     is one of this cluster's killed or stopped nodes;
//   - every serving node sees every other one without a fail, pfail,
//     handshake or noaddr flag;
//   - every serving replica has master_link_status:up.
//
// So after killing or stopping a master it returns once a replica has taken
// over and everyone agrees. If ctx has no deadline, 60s applies.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if err := poll(ctx, 100*time.Millisecond, c.checkHealthy); err != nil {
		return fmt.Errorf("clustertest: cluster not healthy: %w", err)
	}
	return nil
}

// checkHealthy returns nil if the cluster is healthy now, else what is not.
func (c *Cluster) checkHealthy(ctx context.Context) error {
	var serving []*Node
	for _, n := range c.Nodes {
		if n.serving() {
			serving = append(serving, n)
		}
	}
	if len(serving) == 0 {
		return errors.New("no node is running")
	}
	var want string
	for _, n := range serving {
		cl := c.Client(n.Addr)
		info, err := cl.ClusterInfo(ctx).Result()
		if err != nil {
			return fmt.Errorf("node %s: CLUSTER INFO: %w", n.Addr, err)
		}
		if !strings.Contains(info, "cluster_state:ok") {
			return fmt.Errorf("node %s: cluster_state is not ok", n.Addr)
		}

		slots, err := cl.ClusterSlots(ctx).Result()
		if err != nil {
			return fmt.Errorf("node %s: CLUSTER SLOTS: %w", n.Addr, err)
		}
		got, err := c.canonicalSlots(slots)
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Addr, err)
		}
		if want == "" {
			want = got
		} else if got != want {
			return fmt.Errorf("nodes %s and %s disagree on the slot map:\n%s\nvs\n%s", serving[0].Addr, n.Addr, want, got)
		}

		nodes, err := cl.ClusterNodes(ctx).Result()
		if err != nil {
			return fmt.Errorf("node %s: CLUSTER NODES: %w", n.Addr, err)
		}
		if err := checkPeers(nodes, serving); err != nil {
			return fmt.Errorf("node %s: %w", n.Addr, err)
		}

		repl, err := cl.Info(ctx, "replication").Result()
		if err != nil {
			return fmt.Errorf("node %s: INFO replication: %w", n.Addr, err)
		}
		if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
			return fmt.Errorf("node %s: replica link to its master is not up", n.Addr)
		}
	}
	return nil
}

// canonicalSlots renders a CLUSTER SLOTS reply so that two nodes with the
// same view render it identically, checking coverage on the way.
func (c *Cluster) canonicalSlots(slots []redis.ClusterSlot) (string, error) {
	slots = slices.Clone(slots)
	sort.Slice(slots, func(i, j int) bool { return slots[i].Start < slots[j].Start })
	var b strings.Builder
	covered := 0
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			return "", fmt.Errorf("slots %d-%d have no node", s.Start, s.End)
		}
		master := s.Nodes[0].Addr
		if n := c.node(master); n != nil && !n.serving() {
			return "", fmt.Errorf("slots %d-%d still on killed or stopped master %s", s.Start, s.End, master)
		}
		replicas := make([]string, 0, len(s.Nodes)-1)
		for _, r := range s.Nodes[1:] {
			replicas = append(replicas, r.Addr)
		}
		sort.Strings(replicas)
		fmt.Fprintf(&b, "%d-%d %s %v\n", s.Start, s.End, master, replicas)
		covered += s.End - s.Start + 1
	}
	if covered != totalSlots {
		return "", fmt.Errorf("slot map covers %d of %d slots", covered, totalSlots)
	}
	return b.String(), nil
}

// checkPeers checks that a CLUSTER NODES reply lists every serving node
// without a flag that says the link to it is not established.
func checkPeers(reply string, serving []*Node) error {
	flagsByAddr := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(reply), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 {
			continue
		}
		flagsByAddr[nodeAddr(f[1])] = f[2]
	}
	for _, n := range serving {
		flags, ok := flagsByAddr[n.Addr]
		if !ok {
			return fmt.Errorf("does not know node %s yet", n.Addr)
		}
		for _, bad := range []string{"fail", "fail?", "handshake", "noaddr"} {
			if slices.Contains(strings.Split(flags, ","), bad) {
				return fmt.Errorf("sees node %s as %s", n.Addr, flags)
			}
		}
	}
	return nil
}

// nodeAddr turns CLUSTER NODES' "ip:port@cport[,hostname]" into "ip:port".
func nodeAddr(field string) string {
	if i := strings.IndexAny(field, "@,"); i >= 0 {
		return field[:i]
	}
	return field
}

// MasterAddrs asks the cluster which nodes are masters now, and returns the
// addresses of those that serve at least one slot, ordered by the lowest
// slot each serves. It asks the serving nodes in turn, with CLUSTER SHARDS,
// falling back to CLUSTER NODES, and answers with the first reply.
func (c *Cluster) MasterAddrs(ctx context.Context) ([]string, error) {
	var errs []error
	for _, n := range c.Nodes {
		if !n.serving() {
			continue
		}
		cl := c.Client(n.Addr)
		shards, err := cl.ClusterShards(ctx).Result()
		if err == nil {
			return mastersFromShards(shards), nil
		}
		errs = append(errs, fmt.Errorf("%s: CLUSTER SHARDS: %w", n.Addr, err))
		nodes, err := cl.ClusterNodes(ctx).Result()
		if err == nil {
			return mastersFromNodes(nodes), nil
		}
		errs = append(errs, fmt.Errorf("%s: CLUSTER NODES: %w", n.Addr, err))
	}
	if len(errs) == 0 {
		return nil, errors.New("clustertest: no node is running")
	}
	return nil, fmt.Errorf("clustertest: no node told its masters: %w", errors.Join(errs...))
}

// masterSlot pairs a master's address with the lowest slot it serves.
type masterSlot struct {
	addr  string
	first int
}

func sortedAddrs(ms []masterSlot) []string {
	sort.Slice(ms, func(i, j int) bool { return ms[i].first < ms[j].first })
	addrs := make([]string, len(ms))
	for i, m := range ms {
		addrs[i] = m.addr
	}
	return addrs
}

func mastersFromShards(shards []redis.ClusterShard) []string {
	var ms []masterSlot
	for _, sh := range shards {
		if len(sh.Slots) == 0 {
			continue
		}
		first := int(sh.Slots[0].Start)
		for _, r := range sh.Slots {
			first = min(first, int(r.Start))
		}
		for _, n := range sh.Nodes {
			if n.Role == "master" {
				ms = append(ms, masterSlot{net.JoinHostPort(n.IP, strconv.FormatInt(n.Port, 10)), first})
			}
		}
	}
	return sortedAddrs(ms)
}

func mastersFromNodes(reply string) []string {
	var ms []masterSlot
	for _, line := range strings.Split(strings.TrimSpace(reply), "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || !slices.Contains(strings.Split(f[2], ","), "master") {
			continue
		}
		first := -1
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue // a slot being imported or migrated, not served
			}
			lo, _, _ := strings.Cut(r, "-")
			s, err := strconv.Atoi(lo)
			if err == nil && (first < 0 || s < first) {
				first = s
			}
		}
		if first >= 0 {
			ms = append(ms, masterSlot{nodeAddr(f[1]), first})
		}
	}
	return sortedAddrs(ms)
}
