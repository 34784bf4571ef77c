package clustertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// newTimeout bounds New and Standalone.
const newTimeout = 60 * time.Second

// New starts a cluster for a test: Start with a 60s deadline, t.Fatal on
// error, Close on t.Cleanup. A nil opts.Logf becomes t.Logf. When the test
// has failed, the cleanup logs the end of every node's redis.log first.
func New(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(t.Context(), newTimeout)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("clustertest: starting cluster: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes {
				t.Logf("clustertest: node %s (pid %d):\n%s", n.Addr, n.PID(), n.logTail())
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("clustertest: closing cluster: %v", err)
		}
	})
	return c
}

// Standalone starts one plain (non-cluster) redis-server on a free loopback
// port, with requirepass when password is set, and waits until it answers.
// t.Cleanup kills it; its directory is a t.TempDir.
func Standalone(t testing.TB, password string) *Node {
	t.Helper()
	n, err := startStandalone(t.Context(), t.TempDir(), password)
	if err != nil {
		t.Fatalf("clustertest: starting standalone redis-server: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("clustertest: standalone %s (pid %d):\n%s", n.Addr, n.PID(), n.logTail())
		}
		if err := n.Kill(); err != nil {
			t.Errorf("clustertest: %v", err)
		}
	})
	return n
}

func startStandalone(ctx context.Context, dir, password string) (*Node, error) {
	ctx, cancel := context.WithTimeout(ctx, newTimeout)
	defer cancel()
	server, err := lookTool("redis-server")
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		ports, err := freePorts(1, false)
		if err != nil {
			return nil, err
		}
		n, err := startNode(server, nodeConfig{
			port:     ports[0],
			dir:      filepath.Join(dir, strconv.Itoa(ports[0])),
			password: password,
		})
		if err != nil {
			return nil, err
		}
		err = n.waitReady(ctx, password)
		if err == nil {
			return n, nil
		}
		if kerr := n.Kill(); kerr != nil {
			err = errors.Join(err, kerr)
		}
		if attempt >= startAttempts || !errors.Is(err, ErrPortInUse) || ctx.Err() != nil {
			return nil, fmt.Errorf("%w (attempt %d)", err, attempt)
		}
	}
}

// Eventually calls check every 20ms until it returns nil, and fails t with
// check's last error once timeout has passed. Tests use it to wait for a
// condition instead of sleeping for a guessed time.
func Eventually(t testing.TB, timeout time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TCPPair returns both ends of a fresh loopback TCP connection, closed when
// the test ends: for tests of socket code that need no Redis behind it.
func TCPPair(t testing.TB) (near, far *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}
