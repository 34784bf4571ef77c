package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// The standalone side is one plain redis-server answering the same load as
// the proxy: the physical reference for what a server spends on the
// client-side reads and writes plus the data work, with no hop behind it.
// clustertest.Standalone wants a *testing.T, so the bench starts its own,
// the way clustertest starts its nodes: a child in its own process group,
// killed with the bench (Pdeathsig) and on return.

const standaloneStartTries = 3

// standaloneProc is the reference redis-server running as a child.
type standaloneProc struct {
	cmd     *exec.Cmd
	addr    string
	port    int
	logPath string // its stdout and stderr: redis-server logs there
	client  *redis.Client

	done     chan struct{} // closed once the process is reaped
	stopOnce sync.Once
}

// startStandalone starts redis-server on a free loopback port and waits
// until it answers as itself. Like startProxy it retries on new ports when
// the server exits at start-up (another process took the probed port).
func startStandalone(ctx context.Context, dir, logPath string) (*standaloneProc, error) {
	var err error
	for try := 1; try <= standaloneStartTries; try++ {
		var s *standaloneProc
		if s, err = startStandaloneOnce(dir, logPath); err != nil {
			return nil, err
		}
		if err = s.waitReady(ctx); err == nil {
			return s, nil
		}
		s.stop()
		if ctx.Err() != nil || !s.exited() {
			break
		}
	}
	return nil, err
}

func startStandaloneOnce(dir, logPath string) (*standaloneProc, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	// The cluster nodes' persistence settings (clustertest's redis.conf),
	// so neither side pays for snapshots or an AOF.
	cmd := exec.Command("redis-server",
		"--port", strconv.Itoa(ports[0]),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting redis-server: %w", err)
	}
	s := &standaloneProc{
		cmd:     cmd,
		addr:    loopback(ports[0]),
		port:    ports[0],
		logPath: logPath,
		client: redis.NewClient(&redis.Options{
			Addr:            loopback(ports[0]),
			DialTimeout:     time.Second,
			ReadTimeout:     3 * time.Second,
			WriteTimeout:    3 * time.Second,
			MaxRetries:      -1,
			DisableIdentity: true, // CLIENT SETINFO is 7.2+
		}),
		done: make(chan struct{}),
	}
	go func() {
		cmd.Wait()
		close(s.done)
	}()
	return s, nil
}

func (s *standaloneProc) pid() int { return s.cmd.Process.Pid }

func (s *standaloneProc) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
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

// stop kills the server (no data to keep) and waits until it is reaped.
// Safe to call more than once.
func (s *standaloneProc) stop() {
	s.stopOnce.Do(func() {
		s.client.Close()
		if !s.exited() {
			syscall.Kill(-s.pid(), syscall.SIGKILL)
			<-s.done
		}
	})
}

var errStandaloneDied = errors.New("the standalone redis-server exited during the benchmark")
