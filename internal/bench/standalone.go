package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The standalone side is one plain redis-server answering the same load as
// the proxy: the physical reference for what a server spends on the
// client-side reads and writes plus the data work, with no hop behind it.
// clustertest.Standalone wants a *testing.T, so the bench starts its own,
// the way clustertest starts its nodes: a child in its own process group,
// killed with the bench (Pdeathsig) and on return.

// standaloneProc is the reference redis-server running as a child.
type standaloneProc struct {
	*child
	addr   string
	port   int
	client *redis.Client
}

// startStandalone starts redis-server on a free loopback port and waits
// until it answers as itself.
func startStandalone(ctx context.Context, certs *benchTLS, dir, logPath string) (*standaloneProc, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return startRetrying(ctx, func() (*standaloneProc, error) {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		// The cluster nodes' persistence settings (clustertest's
		// redis.conf), so neither side pays for snapshots or an AOF.
		args := append(certs.standaloneArgs(ports[0]),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", dir)
		c, err := startChild(logPath, "redis-server", args...)
		if err != nil {
			return nil, err
		}
		return &standaloneProc{
			child: c,
			addr:  loopback(ports[0]),
			port:  ports[0],
			client: redis.NewClient(&redis.Options{
				Addr:            loopback(ports[0]),
				TLSConfig:       certs.clientConfig(),
				DialTimeout:     time.Second,
				ReadTimeout:     3 * time.Second,
				WriteTimeout:    3 * time.Second,
				MaxRetries:      -1,
				DisableIdentity: true, // CLIENT SETINFO is 7.2+
			}),
		}, nil
	})
}

// waitReady polls INFO until the server that answers is ours: another
// process may have taken the probed port, and then ours exits shortly.
func (s *standaloneProc) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, proxyReadyTimeout)
	defer cancel()
	want := "process_id:" + strconv.Itoa(s.pid()) + "\r\n"
	var last error
	for {
		if s.exited() {
			return fmt.Errorf("standalone redis-server exited at start-up (%v); its log:\n%s", s.cmd.ProcessState, tail(s.logPath, 2048))
		}
		info, err := s.client.Info(ctx, "server").Result()
		switch {
		case err != nil:
			last = err
		case !strings.Contains(info, want):
			last = fmt.Errorf("port %d answered by another process", s.port)
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("standalone redis-server on %s not answering after %v: %v; its log:\n%s", s.addr, proxyReadyTimeout, last, tail(s.logPath, 2048))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop kills the server: it has no data to keep.
func (s *standaloneProc) stop() {
	s.client.Close()
	s.child.stop(0)
}

var errStandaloneDied = errors.New("the standalone redis-server exited during the benchmark")
