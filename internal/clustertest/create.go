package clustertest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// totalSlots is the size of the Redis Cluster key space.
const totalSlots = 16384

// createWithCLI runs redis-cli --cluster create over all nodes; redis-cli
// makes the first Masters addresses masters and spreads the rest as their
// replicas.
func (c *Cluster) createWithCLI(ctx context.Context) error {
	args := []string{"--cluster", "create"}
	args = append(args, c.Seeds()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(c.opts.Replicas), "--cluster-yes")
	if _, err := c.cli(ctx, args...); err != nil {
		return err
	}
	c.opts.Logf("clustertest: redis-cli --cluster create done")
	return nil
}

// createByHand builds a cluster of 1 or 2 masters, which redis-cli refuses
// to create: each master takes an equal share of the slots, every node meets
// the first, and replica i follows master i mod Masters.
func (c *Cluster) createByHand(ctx context.Context) error {
	o := c.opts
	masters := c.Nodes[:o.Masters]
	for i, m := range masters {
		cl := c.Client(m.Addr)
		// Distinct config epochs, as redis-cli sets them, so that the nodes
		// need not resolve a collision before they agree.
		if err := cl.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("clustertest: CLUSTER SET-CONFIG-EPOCH on %s: %w", m.Addr, err)
		}
		first, last := i*totalSlots/o.Masters, (i+1)*totalSlots/o.Masters-1
		if err := cl.ClusterAddSlotsRange(ctx, first, last).Err(); err != nil {
			return fmt.Errorf("clustertest: CLUSTER ADDSLOTSRANGE %d %d on %s: %w", first, last, m.Addr, err)
		}
	}
	seed := c.Client(c.Nodes[0].Addr)
	for _, n := range c.Nodes[1:] {
		if err := seed.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(n.Port)).Err(); err != nil {
			return fmt.Errorf("clustertest: CLUSTER MEET %s from %s: %w", n.Addr, c.Nodes[0].Addr, err)
		}
	}
	ids := make([]string, len(masters))
	for i, m := range masters {
		id, err := c.Client(m.Addr).Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return fmt.Errorf("clustertest: CLUSTER MYID on %s: %w", m.Addr, err)
		}
		ids[i] = id
	}
	for i, r := range c.Nodes[o.Masters:] {
		cl := c.Client(r.Addr)
		id := ids[i%o.Masters]
		// The replica may not have heard of its master yet ("Unknown node"):
		// gossip spreads the MEETs within a few hundred milliseconds.
		err := poll(ctx, 50*time.Millisecond, func(ctx context.Context) error {
			return cl.ClusterReplicate(ctx, id).Err()
		})
		if err != nil {
			return fmt.Errorf("clustertest: CLUSTER REPLICATE %s on %s: %w", id, r.Addr, err)
		}
	}
	c.opts.Logf("clustertest: %d-master cluster assembled by hand", o.Masters)
	return nil
}

// tail returns at most max bytes from the end of s.
func tail(s string, max int) string {
	if len(s) <= max {
		return s
	}
	s = s[len(s)-max:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}
