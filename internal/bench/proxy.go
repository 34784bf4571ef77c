package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	proxyReadyTimeout = 30 * time.Second
	proxyStopGrace    = 5 * time.Second
)

// proxyProc is the slotproxy binary running as a child.
type proxyProc struct {
	*child
	addr  string // client address, 127.0.0.1:port
	port  int
	certs *benchTLS // nil: plain TCP
}

// startProxy starts bin on free loopback ports in front of seed and waits
// until a client can use it: PING answers PONG and a SET then GET through it
// round-trips.
func startProxy(ctx context.Context, cfg config, seed, logPath string) (*proxyProc, error) {
	return startRetrying(ctx, func() (*proxyProc, error) {
		ports, err := freePorts(2)
		if err != nil {
			return nil, err
		}
		args := []string{"-listen", loopback(ports[0]), "-seeds", seed}
		file := cfg.certs.proxyConfig()
		if cfg.metrics {
			args = append(args, "-metrics-listen", loopback(ports[1]))
		} else {
			// A configuration without an admin listener: the proxy then
			// keeps no per-command counts.
			file += "metrics:\n  listen: \"\"\n"
		}
		if file != "" {
			path := filepath.Join(filepath.Dir(logPath), "proxy.yaml")
			if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
				return nil, err
			}
			args = append(args, "-config", path)
		}
		c, err := startChild(logPath, cfg.proxyBin, args...)
		if err != nil {
			return nil, err
		}
		return &proxyProc{child: c, addr: loopback(ports[0]), port: ports[0], certs: cfg.certs}, nil
	})
}

// waitReady polls with redis-cli, the way a person would check it by hand.
func (p *proxyProc) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, proxyReadyTimeout)
	defer cancel()
	const key, val = "bench:ready", "ok-through-slotproxy"
	check := func() error {
		if out, err := p.cli(ctx, "PING"); err != nil || out != "PONG" {
			return fmt.Errorf("PING: %q %v", out, err)
		}
		if out, err := p.cli(ctx, "SET", key, val); err != nil || out != "OK" {
			return fmt.Errorf("SET: %q %v", out, err)
		}
		if out, err := p.cli(ctx, "GET", key); err != nil || out != val {
			return fmt.Errorf("GET: %q %v", out, err)
		}
		return nil
	}
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("slotproxy exited at start-up (%v); its log:\n%s", p.cmd.ProcessState, tail(p.logPath, 2048))
		}
		if last = check(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("slotproxy on %s not usable after %v: %v; its log:\n%s", p.addr, proxyReadyTimeout, last, tail(p.logPath, 2048))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// cli runs one redis-cli command against the proxy and returns its output,
// trimmed. --no-raw keeps redis-cli's "(error) " prefix on error replies
// even though stdout is not a terminal.
func (p *proxyProc) cli(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	full := append([]string{"--no-raw", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port)}, p.certs.clientArgs()...)
	full = append(full, args...)
	out, err := exec.CommandContext(ctx, "redis-cli", full...).CombinedOutput()
	s := strings.TrimSpace(string(out))
	s = strings.TrimPrefix(s, `"`) // --no-raw quotes bulk strings
	s = strings.TrimSuffix(s, `"`)
	return s, err
}

// stop sends SIGTERM, then SIGKILL after a grace period.
func (p *proxyProc) stop() { p.child.stop(proxyStopGrace) }

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("probing for a free port: %w", err)
		}
		held = append(held, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// tail returns up to max bytes from the end of a file.
func tail(path string, max int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

var errProxyDied = errors.New("slotproxy exited during the benchmark")
