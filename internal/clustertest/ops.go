package clustertest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
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
	})
	if err != nil {
		return nil, err
	}
	c.Nodes = append(c.Nodes, n)
	if err := n.waitReady(ctx, c.opts.Password); err != nil {
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
