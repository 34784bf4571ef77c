package clustertest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The operations of an operator, done with the tool operators use:
// redis-cli --cluster. They change Nodes, so call them from one goroutine.

// cli runs redis-cli with args (and the cluster's password) and returns
// its output.
func (c *Cluster) cli(ctx context.Context, args ...string) (string, error) {
	path, err := lookTool("redis-cli")
	if err != nil {
		return "", err
	}
	if c.opts.Password != "" {
		args = append(args, "-a", c.opts.Password, "--no-auth-warning")
	}
	args = append(args, c.opts.TLS.CLIArgs()...)
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	name := "redis-cli " + args[0] + " " + args[1]
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("clustertest: %s: %w", name, ctx.Err())
	}
	if err != nil {
		return string(out), fmt.Errorf("clustertest: %s: %w; output:\n%s", name, err, tail(string(out), 2048))
	}
	return string(out), nil
}

// AddMaster starts a new node and adds it to the cluster as a master
// without slots (redis-cli --cluster add-node), then waits until every
// serving node knows it.
func (c *Cluster) AddMaster(ctx context.Context) (*Node, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	n, err := c.newNode(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := c.cli(ctx, "--cluster", "add-node", n.Addr, c.anyServing(n).Addr); err != nil {
		return nil, err
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return nil, err
	}
	c.opts.Logf("clustertest: master %s added", n.Addr)
	return n, nil
}

// AddReplica starts a new node and adds it as a replica of the master at
// master (redis-cli --cluster add-node --cluster-slave), then waits until
// it is in sync.
func (c *Cluster) AddReplica(ctx context.Context, master string) (*Node, error) {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	id, err := c.NodeID(ctx, master)
	if err != nil {
		return nil, err
	}
	n, err := c.newNode(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := c.cli(ctx, "--cluster", "add-node", n.Addr, master, "--cluster-slave", "--cluster-master-id", id); err != nil {
		return nil, err
	}
	err = poll(ctx, 50*time.Millisecond, func(ctx context.Context) error {
		info, err := c.Client(n.Addr).Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return fmt.Errorf("replica %s not in sync with %s", n.Addr, master)
		}
		return nil
	})
	if err == nil {
		err = c.WaitHealthy(ctx)
	}
	if err != nil {
		return nil, err
	}
	c.opts.Logf("clustertest: replica %s of %s added", n.Addr, master)
	return n, nil
}

// newNode starts a node on a free port, in cluster mode, not yet part of
// the cluster, and adds it to Nodes.
func (c *Cluster) newNode(ctx context.Context) (*Node, error) {
	server, err := lookTool("redis-server")
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(1, true)
	if err != nil {
		return nil, err
	}
	n, err := startNode(server, nodeConfig{
		port:        ports[0],
		dir:         filepath.Join(c.dir, strconv.Itoa(ports[0])),
		password:    c.opts.Password,
		cluster:     true,
		nodeTimeout: c.opts.NodeTimeout,
		tls:         c.opts.TLS,
	})
	if err != nil {
		return nil, err
	}
	c.Nodes = append(c.Nodes, n)
	return n, n.waitReady(ctx, c.opts.Password)
}

// Rebalance evens out the slots over the masters, empty ones included
// (redis-cli --cluster rebalance --cluster-use-empty-masters).
func (c *Cluster) Rebalance(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if _, err := c.cli(ctx, "--cluster", "rebalance", c.anyServing(nil).Addr, "--cluster-use-empty-masters"); err != nil {
		return err
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return err
	}
	c.opts.Logf("clustertest: slots rebalanced")
	return nil
}

// Failover makes the replica take over its master with CLUSTER FAILOVER
// (the master agrees and hands over without losing writes), and waits
// until the cluster agrees on it.
func (c *Cluster) Failover(ctx context.Context, replica *Node) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	cl := c.Client(replica.Addr)
	// A manual failover that does not complete in time (the replica was
	// not caught up with its master yet) is abandoned by the node: ask
	// again until it takes.
	var asked time.Time
	err := poll(ctx, 50*time.Millisecond, func(ctx context.Context) error {
		role, err := cl.Do(ctx, "ROLE").Slice()
		if err != nil {
			return err
		}
		if len(role) > 0 && role[0] == "master" {
			return nil
		}
		if time.Since(asked) > 2*c.opts.NodeTimeout+time.Second {
			if err := cl.Do(ctx, "CLUSTER", "FAILOVER").Err(); err != nil {
				return fmt.Errorf("CLUSTER FAILOVER on %s: %w", replica.Addr, err)
			}
			asked = time.Now()
		}
		return fmt.Errorf("%s is still a replica", replica.Addr)
	})
	if err == nil {
		err = c.WaitHealthy(ctx)
	}
	if err != nil {
		return err
	}
	c.opts.Logf("clustertest: %s took over by CLUSTER FAILOVER", replica.Addr)
	return nil
}

// Restart starts again a node that exited (Kill, Term), on its own dir:
// it rejoins the cluster with the state it had, a former master as a
// replica of whoever replaced it. It waits until the cluster is healthy.
func (c *Cluster) Restart(ctx context.Context, n *Node) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	if !n.exited() {
		return fmt.Errorf("clustertest: restart of %s, which is running", n.Addr)
	}
	server, err := lookTool("redis-server")
	if err != nil {
		return err
	}
	if err := n.spawn(server); err != nil {
		return err
	}
	if err := n.waitReady(ctx, c.opts.Password); err != nil {
		return err
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return err
	}
	c.opts.Logf("clustertest: %s restarted", n.Addr)
	return nil
}

// WaitReplicas waits until every master lists Options.Replicas replicas
// in its ROLE, each in sync: a healthy cluster's replicas may not have
// connected yet.
func (c *Cluster) WaitReplicas(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	return poll(ctx, 50*time.Millisecond, func(ctx context.Context) error {
		masters, err := c.MasterAddrs(ctx)
		if err != nil {
			return err
		}
		for _, m := range masters {
			rs, err := c.Replicas(ctx, m)
			if err != nil {
				return err
			}
			if len(rs) < c.opts.Replicas {
				return fmt.Errorf("master %s has %d replicas, want %d", m, len(rs), c.opts.Replicas)
			}
			for _, r := range rs {
				info, err := c.Client(r.Addr).Info(ctx, "replication").Result()
				if err != nil {
					return err
				}
				if !strings.Contains(info, "master_link_status:up") || !strings.Contains(info, "master_sync_in_progress:0") {
					return fmt.Errorf("replica %s not in sync with %s", r.Addr, m)
				}
			}
		}
		return nil
	})
}

// Replicas returns the nodes that replicate the master at master, as its
// ROLE lists them.
func (c *Cluster) Replicas(ctx context.Context, master string) ([]*Node, error) {
	role, err := c.Client(master).Do(ctx, "ROLE").Slice()
	if err != nil {
		return nil, fmt.Errorf("clustertest: ROLE on %s: %w", master, err)
	}
	if len(role) != 3 || role[0] != "master" {
		return nil, fmt.Errorf("clustertest: %s is not a master: %v", master, role)
	}
	list, _ := role[2].([]any)
	var out []*Node
	for _, r := range list {
		f, _ := r.([]any)
		if len(f) < 2 {
			continue
		}
		if n := c.node(fmt.Sprint(f[0]) + ":" + fmt.Sprint(f[1])); n != nil {
			out = append(out, n)
		}
	}
	return out, nil
}

// Reshard moves count slots from the master at from to the master at to
// (redis-cli --cluster reshard), keys and all, and waits until the
// cluster agrees on the result.
func (c *Cluster) Reshard(ctx context.Context, from, to string, count int) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	fromID, err := c.NodeID(ctx, from)
	if err != nil {
		return err
	}
	toID, err := c.NodeID(ctx, to)
	if err != nil {
		return err
	}
	if _, err := c.cli(ctx, "--cluster", "reshard", from,
		"--cluster-from", fromID, "--cluster-to", toID,
		"--cluster-slots", strconv.Itoa(count), "--cluster-yes"); err != nil {
		return err
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return err
	}
	c.opts.Logf("clustertest: %d slots moved from %s to %s", count, from, to)
	return nil
}

// RemoveNode takes the node out of the cluster (redis-cli --cluster
// del-node; a master must hold no slots). The process keeps running, as
// it does for an operator, and leaves Nodes; it is still stopped by
// Close.
func (c *Cluster) RemoveNode(ctx context.Context, n *Node) error {
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()
	id, err := c.NodeID(ctx, n.Addr)
	if err != nil {
		return err
	}
	other := c.anyServing(n)
	if _, err := c.cli(ctx, "--cluster", "del-node", other.Addr, id); err != nil {
		return err
	}
	for i, m := range c.Nodes {
		if m == n {
			c.Nodes = append(c.Nodes[:i:i], c.Nodes[i+1:]...)
			break
		}
	}
	c.mu.Lock()
	c.removed = append(c.removed, n)
	c.mu.Unlock()
	if err := c.WaitHealthy(ctx); err != nil {
		return err
	}
	c.opts.Logf("clustertest: node %s removed", n.Addr)
	return nil
}

// OtherClients counts the client connections of the node at addr but the
// one Client(addr) asks on: for a test, those of the proxy in front.
func (c *Cluster) OtherClients(ctx context.Context, addr string) (int, error) {
	list, err := c.Client(addr).ClientList(ctx).Result()
	if err != nil {
		return 0, fmt.Errorf("clustertest: CLIENT LIST on %s: %w", addr, err)
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		if line != "" && !strings.Contains(line, "cmd=client|list") {
			n++
		}
	}
	return n, nil
}

// NodeID returns the cluster node ID of the node at addr.
func (c *Cluster) NodeID(ctx context.Context, addr string) (string, error) {
	id, err := c.Client(addr).Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return "", fmt.Errorf("clustertest: CLUSTER MYID on %s: %w", addr, err)
	}
	return id, nil
}

// anyServing returns a serving node other than but.
func (c *Cluster) anyServing(but *Node) *Node {
	for _, n := range c.Nodes {
		if n != but && n.serving() {
			return n
		}
	}
	return c.Nodes[0]
}
