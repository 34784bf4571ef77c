package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// child is a server the bench runs: slotproxy or the standalone
// redis-server. It runs in its own process group, so that a terminal's
// Ctrl-C reaches the bench, which stops it in order; Pdeathsig kills it if
// the bench dies first.
type child struct {
	cmd     *exec.Cmd
	logPath string // its stdout and stderr

	done     chan struct{} // closed once the process is reaped
	stopOnce sync.Once
}

// startChild starts name with args, logging to logPath.
func startChild(logPath, name string, args ...string) (*child, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to grace, then kills the process group,
// and waits until the process is reaped. Safe to call more than once.
func (c *child) stop(grace time.Duration) {
	c.stopOnce.Do(func() {
		if c.exited() {
			return
		}
		if grace > 0 {
			syscall.Kill(c.pid(), syscall.SIGTERM)
			select {
			case <-c.done:
				return
			case <-time.After(grace):
			}
		}
		syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.done
	})
}

// server is what startRetrying needs of a child server.
type server interface {
	waitReady(ctx context.Context) error
	stop()
	exited() bool
}

// startRetrying starts a server with start and waits until it is ready.
// Ports are probed then released, so another process may take one in
// between: a server that exits at start-up is started again, on new ports.
func startRetrying[S server](ctx context.Context, start func() (S, error)) (S, error) {
	const tries = 3
	var s S
	var err error
	for try := 1; try <= tries; try++ {
		if s, err = start(); err != nil {
			return s, err
		}
		if err = s.waitReady(ctx); err == nil {
			return s, nil
		}
		s.stop()
		if ctx.Err() != nil || !s.exited() {
			break // not a port race: running but unusable, or cancelled
		}
	}
	var zero S
	return zero, err
}
