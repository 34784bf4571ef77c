// Package clustertest starts real redis-server processes for tests and for
// the local demo: a Redis Cluster on loopback ports (Start, New) or one plain
// server (Standalone).
//
// Every server is a child process of the caller, bound to 127.0.0.1, in a
// directory of its own, and is killed on Close, on t.Cleanup, and by the
// kernel (Pdeathsig) if the test binary itself dies. Nothing here is
// synchronised by sleeping: every wait polls for a condition until a context
// deadline.
//
// The package knows nothing of slotproxy; it needs redis-server and
// redis-cli on PATH (scripts/ensure-redis.sh installs them).
package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// defaultTimeout bounds Start and WaitHealthy when their context has no
// deadline of its own.
const defaultTimeout = 60 * time.Second

// Options says what cluster Start builds. Every field's zero value is usable.
type Options struct {
	// Masters is the number of masters; 0 means 3. With 3 or more the
	// cluster is created by redis-cli --cluster create; with 1 or 2 (which
	// redis-cli refuses) Start assigns the slots and joins the nodes itself.
	Masters int
	// Replicas is the number of replicas per master; 0 means none.
	Replicas int
	// Password, when set, is every node's requirepass and masterauth, and
	// what Client and the creation step authenticate with. "" means no auth.
	Password string
	// BasePort, when set, makes node i listen on BasePort+i (and its cluster
	// bus on BasePort+i+10000); Start fails with ErrPortInUse naming the port
	// if one is taken. 0 means free loopback ports picked at start.
	BasePort int
	// Dir is where node directories (one per port) go. "" means a new temp
	// dir, removed on Close. A Dir that is set is kept; node files of an
	// earlier run in it are overwritten.
	Dir string
	// TLS, when set, makes the nodes speak TLS only (see TLS); nil means
	// plain TCP.
	TLS *TLS
	// NodeTimeout is cluster-node-timeout, which also paces failure
	// detection and failover; 0 means 2s.
	NodeTimeout time.Duration
	// Logf, when set, receives progress lines (t.Logf in tests). nil means
	// silent.
	Logf func(format string, args ...any)
}

func (o Options) withDefaults() (Options, error) {
	if o.Masters < 0 || o.Replicas < 0 || o.NodeTimeout < 0 || o.BasePort < 0 {
		return o, fmt.Errorf("clustertest: negative option in %+v", o)
	}
	if o.Masters == 0 {
		o.Masters = 3
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = 2 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o, nil
}

// Cluster is a running Redis Cluster of child processes.
type Cluster struct {
	// Nodes in creation order: the first Masters nodes were created as
	// masters. Which replica follows which master is redis-cli's choice; ask
	// the cluster (MasterAddrs, CLUSTER SHARDS) rather than assume.
	Nodes []*Node

	opts      Options
	dir       string
	removeDir bool

	mu      sync.Mutex
	clients map[string]*redis.Client // by address, closed on Close
	closed  bool
	removed []*Node // taken out by RemoveNode, still running until Close

	closeOnce sync.Once
	closeErr  error
}

// startAttempts is how many times Start picks new free ports after a node
// could not bind one (another process took it after the probe).
const startAttempts = 3

// Start starts the nodes, creates the cluster and waits until it is healthy
// (see WaitHealthy). If ctx has no deadline, 60s applies. On error,
// everything already started is killed and the temp dir removed.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := withDefaultTimeout(ctx)
	defer cancel()

	server, err := lookTool("redis-server")
	if err != nil {
		return nil, err
	}
	// Creation runs redis-cli: fail before starting anything without it.
	if _, err := lookTool("redis-cli"); err != nil {
		return nil, err
	}

	c := &Cluster{opts: opts, dir: opts.Dir, clients: make(map[string]*redis.Client)}
	if c.dir == "" {
		if c.dir, err = os.MkdirTemp("", "clustertest-"); err != nil {
			return nil, fmt.Errorf("clustertest: %w", err)
		}
		c.removeDir = true
	}

	attempts := startAttempts
	if opts.BasePort != 0 {
		attempts = 1 // fixed ports: retrying would meet the same conflict
	}
	for attempt := 1; ; attempt++ {
		err = c.start(ctx, server)
		if err == nil {
			return c, nil
		}
		if attempt < attempts && errors.Is(err, ErrPortInUse) && ctx.Err() == nil {
			c.opts.Logf("clustertest: attempt %d: %v; retrying on other ports", attempt, err)
			c.killNodes()
			c.Nodes = nil
			continue
		}
		c.Close()
		return nil, err
	}
}

// start runs one attempt: ports, processes, creation, health.
func (c *Cluster) start(ctx context.Context, server string) error {
	o := c.opts
	n := o.Masters * (1 + o.Replicas)
	var ports []int
	var err error
	if o.BasePort != 0 {
		ports, err = fixedPorts(o.BasePort, n, true)
	} else {
		ports, err = freePorts(n, true)
	}
	if err != nil {
		return err
	}

	began := time.Now()
	for _, p := range ports {
		node, err := startNode(server, nodeConfig{
			port:        p,
			dir:         filepath.Join(c.dir, strconv.Itoa(p)),
			password:    o.Password,
			cluster:     true,
			nodeTimeout: o.NodeTimeout,
			tls:         o.TLS,
		})
		if err != nil {
			return err
		}
		c.Nodes = append(c.Nodes, node)
	}
	for _, node := range c.Nodes {
		if err := node.waitReady(ctx, o.Password); err != nil {
			return err
		}
	}
	o.Logf("clustertest: %d redis-server processes up in %v (ports %v, dir %s)", n, time.Since(began).Round(time.Millisecond), ports, c.dir)

	began = time.Now()
	if o.Masters >= 3 {
		err = c.createWithCLI(ctx)
	} else {
		err = c.createByHand(ctx)
	}
	if err == nil {
		err = c.WaitHealthy(ctx)
	}
	if err != nil {
		return c.withLogs(err)
	}
	o.Logf("clustertest: cluster of %d masters x %d replicas healthy in %v", o.Masters, o.Replicas, time.Since(began).Round(time.Millisecond))
	return nil
}

// withLogs appends the end of every node's log to err: a cluster that does
// not form is explained by what its nodes said, and the temp dir holding the
// logs is gone once Start has failed.
func (c *Cluster) withLogs(err error) error {
	var b strings.Builder
	for _, n := range c.Nodes {
		fmt.Fprintf(&b, "\nnode %s (pid %d):\n%s", n.Addr, n.PID(), n.logTailN(1024))
	}
	return fmt.Errorf("%w%s", err, b.String())
}

// Close kills every node (SIGKILL, then waits for each), closes the clients
// handed out by Client and removes the temp dir if Start made one. It is
// safe to call more than once; later calls return the first call's result.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		errs := []error{c.killNodes()}
		c.mu.Lock()
		c.closed = true
		clients := c.clients
		c.clients = nil
		c.mu.Unlock()
		for _, cl := range clients {
			cl.Close() // errors closing a client to a killed node say nothing
		}
		if c.removeDir {
			errs = append(errs, os.RemoveAll(c.dir))
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// killNodes kills every node, all of them even when one fails.
func (c *Cluster) killNodes() error {
	var errs []error
	c.mu.Lock()
	nodes := append(c.Nodes[:len(c.Nodes):len(c.Nodes)], c.removed...)
	c.mu.Unlock()
	for _, n := range nodes {
		errs = append(errs, n.Kill())
	}
	return errors.Join(errs...)
}

// Seeds returns the addresses of all nodes, dead or alive, in creation order.
func (c *Cluster) Seeds() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// Password returns Options.Password.
func (c *Cluster) Password() string { return c.opts.Password }

// Client returns a plain (non-cluster) go-redis client to one node,
// authenticated when Password is set, over TLS when the cluster speaks it. It is shared per address and closed on
// Close; do not close it yourself. It does not retry a failed command.
func (c *Cluster) Client(addr string) *redis.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients[addr]; ok {
		return cl
	}
	cl := newClient(addr, c.opts.Password, c.opts.TLS.ClientConfig())
	if c.closed {
		cl.Close() // every command on it reports "redis: client is closed"
		return cl
	}
	c.clients[addr] = cl
	return cl
}

// node returns the node listening on addr, or nil.
func (c *Cluster) node(addr string) *Node {
	for _, n := range c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

func withDefaultTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, defaultTimeout)
}

func lookTool(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("clustertest: %s not found on PATH (scripts/ensure-redis.sh installs it): %w", name, err)
	}
	return path, nil
}
