package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// parkedAfter is how long served connections are left idle before the
// parked figure is read: slotproxy's 10 s idle limit and two sweeps.
const parkedAfter = 15 * time.Second

// memory holds the proxy's resident set sizes. Per-connection figures are
// taken from VmRSS (rss.total).
type memory struct {
	idle      rss // benchmark proxy, ready, before any load
	afterLoad rss // benchmark proxy, 2 s after the last run

	// The connection figures come from a second, fresh proxy process: the
	// benchmark one keeps heap and stacks grown under load, which would
	// blur a per-connection delta either way.
	conns      int
	freshIdle  rss // fresh proxy, ready, nothing connected
	connected  rss // conns idle client connections accepted, nothing sent
	pinged     rss // after one PING/PONG on each of them, idle again
	parked     rss // the same, once the proxy has parked them
	afterClose rss // all closed again
}

// perConnKiB is the VmRSS growth from the fresh idle proxy to at, per
// connection.
func (m memory) perConnKiB(at rss) float64 {
	return float64(at.total-m.freshIdle.total) / float64(m.conns)
}

// idleConnTest starts a fresh proxy and opens cfg.idleConns plain TCP
// connections to it, reading its RSS once all are accepted (its fd count
// says so) and stable; then once more after each connection has done one
// PING, which is what a pooled connection that has served once looks like.
func idleConnTest(ctx context.Context, cfg config, seed, logPath string, mem *memory, logf func(string, ...any)) error {
	p, err := startProxy(ctx, cfg, seed, logPath)
	if err != nil {
		return err
	}
	defer p.stop()
	pid := p.pid()
	mem.conns = cfg.idleConns

	if mem.freshIdle, err = stableRSS(ctx, pid); err != nil {
		return err
	}
	baseFDs, err := countFDs(pid)
	if err != nil {
		return err
	}

	logf("opening %d idle connections to a fresh slotproxy (pid %d)", cfg.idleConns, pid)
	conns, err := dialAll(ctx, p.addr, cfg.idleConns, cfg.certs)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return err
	}
	if err := waitFDs(ctx, pid, func(n int) bool { return n >= baseFDs+len(conns) }); err != nil {
		return fmt.Errorf("waiting for slotproxy to accept %d connections: %w", len(conns), err)
	}
	if mem.connected, err = stableRSS(ctx, pid); err != nil {
		return err
	}

	if err := pingAll(ctx, conns); err != nil {
		return err
	}
	if mem.pinged, err = stableRSS(ctx, pid); err != nil {
		return err
	}
	// slotproxy parks a session idle for 10 s (its goroutine ends) and
	// its sweeper, every 2.5 s, then hands the memory back to the OS.
	if err := sleepCtx(ctx, parkedAfter); err != nil {
		return err
	}
	if mem.parked, err = stableRSS(ctx, pid); err != nil {
		return err
	}

	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if err := waitFDs(ctx, pid, func(n int) bool { return n <= baseFDs+10 }); err != nil {
		return fmt.Errorf("waiting for slotproxy to close the connections: %w", err)
	}
	if mem.afterClose, err = stableRSS(ctx, pid); err != nil {
		return err
	}
	if p.exited() {
		return fmt.Errorf("%w; its log:\n%s", errProxyDied, tail(p.logPath, 2048))
	}
	return nil
}

// dialAll opens n connections with a few dialers at a time, so the listen
// backlog never overflows into SYN retransmits; with certs, each completes
// its TLS handshake.
func dialAll(ctx context.Context, addr string, n int, certs *benchTLS) ([]net.Conn, error) {
	const workers = 32
	conns := make([]net.Conn, n)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	d := net.Dialer{Timeout: 5 * time.Second}
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err == nil {
					c, err = certs.handshake(ctx, c)
				}
				if err != nil {
					errs[w] = fmt.Errorf("connection %d of %d to %s: %w", i+1, n, addr, err)
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	var out []net.Conn
	for _, c := range conns {
		if c != nil {
			out = append(out, c)
		}
	}
	for _, err := range errs {
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// pingAll sends PING on every connection and reads +PONG on each.
func pingAll(ctx context.Context, conns []net.Conn) error {
	const workers = 32
	ping := []byte("*1\r\n$4\r\nPING\r\n")
	want := []byte("+PONG\r\n")
	deadline := time.Now().Add(30 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			buf := make([]byte, len(want))
			for i := w; i < len(conns); i += workers {
				c := conns[i]
				c.SetDeadline(deadline)
				if _, err := c.Write(ping); err != nil {
					errs[w] = fmt.Errorf("PING on idle connection %d: %w", i, err)
					return
				}
				if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, want) {
					errs[w] = fmt.Errorf("PING on idle connection %d: got %q, %v", i, buf, err)
					return
				}
				c.SetDeadline(time.Time{})
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// waitFDs polls the process's open descriptor count until ok says so.
func waitFDs(ctx context.Context, pid int, ok func(int) bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		n, err := countFDs(pid)
		if err != nil {
			return err
		}
		if ok(n) {
			return nil
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return fmt.Errorf("%d descriptors open: %w", n, err)
		}
	}
}

// stableRSS polls the resident set every 200ms until three VmRSS readings
// in a row are within 1% of each other (at most 10s), and returns the last.
func stableRSS(ctx context.Context, pid int) (rss, error) {
	var last []int64
	limit := time.Now().Add(10 * time.Second)
	for {
		v, err := readRSS(pid)
		if err != nil {
			return rss{}, err
		}
		last = append(last, v.total)
		if n := len(last); n >= 3 {
			lo, hi := min(last[n-1], last[n-2], last[n-3]), max(last[n-1], last[n-2], last[n-3])
			if float64(hi-lo) <= 0.01*float64(hi) || time.Now().After(limit) {
				return v, nil
			}
		}
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			return rss{}, err
		}
	}
}
