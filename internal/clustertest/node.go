package clustertest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// killWait bounds how long Kill waits for a SIGKILLed process to be reaped.
const killWait = 10 * time.Second

// Node is one redis-server child process.
type Node struct {
	Addr string // "127.0.0.1:port"
	Port int
	Dir  string // the node's working dir: redis.conf, redis.log, nodes.conf

	tls *TLS // nil: plain TCP

	proc    atomic.Pointer[process] // the latest process: Restart starts another
	stopped atomic.Bool             // between Stop and Cont; WaitHealthy skips such a node
}

// process is one run of a node's redis-server.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
}

// nodeConfig is what one generated redis.conf says.
type nodeConfig struct {
	port        int
	dir         string
	password    string
	cluster     bool
	nodeTimeout time.Duration
	tls         *TLS // nil: plain TCP on port
}

func (cfg nodeConfig) render() string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("bind 127.0.0.1")
	if cfg.tls != nil {
		cfg.tls.render(line, cfg.port)
	} else {
		line("port %d", cfg.port)
	}
	line("daemonize no")
	line("dir %s", confQuote(cfg.dir))
	line("logfile %s", confQuote(filepath.Join(cfg.dir, "redis.log")))
	line("appendonly no")
	line(`save ""`)
	// Tests want replicas in sync at once: 7.0's default waits 5s for more
	// replicas before starting a diskless sync.
	line("repl-diskless-sync-delay 0")
	// Lets tests simulate slow or hung servers with DEBUG SLEEP; only from
	// loopback connections, which are the only ones there are.
	line("enable-debug-command local")
	if cfg.password != "" {
		line("requirepass %s", confQuote(cfg.password))
		line("masterauth %s", confQuote(cfg.password))
	}
	if cfg.cluster {
		line("cluster-enabled yes")
		line("cluster-config-file nodes.conf")
		line("cluster-node-timeout %d", cfg.nodeTimeout.Milliseconds())
		// A replica always tries to take over a failed master, however long
		// its link was down: failover tests must not depend on timing.
		line("cluster-replica-validity-factor 0")
	}
	return b.String()
}

// confQuote quotes s the way redis.conf's parser (sdssplitargs) reads it.
func confQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`)
	return `"` + r.Replace(s) + `"`
}

// startNode writes the node's redis.conf and starts redis-server on it. It
// does not wait for the server to answer: see waitReady.
func startNode(server string, cfg nodeConfig) (*Node, error) {
	if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return nil, fmt.Errorf("clustertest: %w", err)
	}
	// A reused Dir may hold a previous run's cluster state, which would make
	// the node refuse to join a new cluster.
	for _, name := range []string{"nodes.conf", "dump.rdb", "redis.log", "stdout.log"} {
		if err := os.Remove(filepath.Join(cfg.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("clustertest: %w", err)
		}
	}
	conf := filepath.Join(cfg.dir, "redis.conf")
	if err := os.WriteFile(conf, []byte(cfg.render()), 0o644); err != nil {
		return nil, fmt.Errorf("clustertest: %w", err)
	}
	n := &Node{Addr: loopback(cfg.port), Port: cfg.port, Dir: cfg.dir, tls: cfg.tls}
	if err := n.spawn(server); err != nil {
		return nil, err
	}
	return n, nil
}

// spawn starts redis-server on the node's redis.conf, keeping whatever
// cluster state its dir holds.
func (n *Node) spawn(server string) error {
	// redis-server writes to stdout only before it opens its logfile (for
	// example a config error); keep that too.
	out, err := os.OpenFile(filepath.Join(n.Dir, "stdout.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("clustertest: %w", err)
	}
	defer out.Close()

	cmd := exec.Command(server, filepath.Join(n.Dir, "redis.conf"))
	cmd.Dir = n.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	// Setpgid: a terminal's Ctrl-C goes to our caller, which decides; Kill
	// signals the whole group, so a fork child (RDB for a full sync) dies too.
	// Pdeathsig: the server dies with the test binary even when that binary
	// is killed (go test -timeout). The signal is tied to the OS thread that
	// forked, which Go's runtime keeps alive unless a goroutine exits while
	// locked to it; nothing here locks threads.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("clustertest: starting redis-server on port %d: %w", n.Port, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	n.proc.Store(p)
	go p.reap()
	return nil
}

func (p *process) reap() {
	p.cmd.Wait()
	close(p.done)
}

// PID returns the redis-server process id.
func (n *Node) PID() int { return n.proc.Load().cmd.Process.Pid }

// exited reports whether the process has ended (killed or crashed).
func (n *Node) exited() bool {
	select {
	case <-n.proc.Load().done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL to the node (and any fork child of it) and waits until
// the process is gone. Killing a node that has already exited returns nil.
func (n *Node) Kill() error {
	if n.exited() {
		return nil
	}
	if err := n.signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-n.proc.Load().done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("clustertest: node %s (pid %d) still running %v after SIGKILL", n.Addr, n.PID(), killWait)
	}
}

// Term sends SIGTERM, as an operator's restart does, and waits until the
// process is gone.
func (n *Node) Term() error {
	if err := n.signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-n.proc.Load().done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("clustertest: node %s (pid %d) still running %v after SIGTERM", n.Addr, n.PID(), killWait)
	}
}

// Stop sends SIGSTOP: the node keeps its sockets but answers nothing, like a
// hung host. WaitHealthy leaves a stopped node out until Cont.
func (n *Node) Stop() error {
	if err := n.signal(syscall.SIGSTOP); err != nil {
		return err
	}
	n.stopped.Store(true)
	return nil
}

// Cont sends SIGCONT to a node stopped with Stop.
func (n *Node) Cont() error {
	if err := n.signal(syscall.SIGCONT); err != nil {
		return err
	}
	n.stopped.Store(false)
	return nil
}

// signal sends sig to the node's process group (its pgid is its pid, see
// Setpgid in startNode).
func (n *Node) signal(sig syscall.Signal) error {
	if n.exited() {
		return fmt.Errorf("clustertest: node %s (pid %d) has exited", n.Addr, n.PID())
	}
	if err := syscall.Kill(-n.PID(), sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil // exited meanwhile; reap closes done
		}
		return fmt.Errorf("clustertest: %v to node %s (pid %d): %w", sig, n.Addr, n.PID(), err)
	}
	return nil
}

// serving reports whether the node should answer: running and not stopped.
func (n *Node) serving() bool { return !n.exited() && !n.stopped.Load() }

// waitReady polls until the node answers. If the process exits first,
// the error carries the end of its log, and wraps ErrPortInUse when it could
// not bind a port.
func (n *Node) waitReady(ctx context.Context, password string) error {
	// Short timeouts: whatever else may be listening on the port must not
	// hold up noticing that our process exited.
	client := redis.NewClient(&redis.Options{
		Addr:            n.Addr,
		Password:        password,
		TLSConfig:       n.tls.ClientConfig(),
		DialTimeout:     500 * time.Millisecond,
		ReadTimeout:     500 * time.Millisecond,
		WriteTimeout:    500 * time.Millisecond,
		MaxRetries:      -1,
		DisableIdentity: true,
	})
	defer client.Close()
	want := "process_id:" + strconv.Itoa(n.PID()) + "\r\n"
	err := poll(ctx, 20*time.Millisecond, func(ctx context.Context) error {
		if n.exited() {
			return errExited
		}
		// INFO rather than PING: the answer must come from our process, not
		// from another server that took the port first (then ours exits
		// with "Address already in use" in a moment).
		info, err := client.Info(ctx, "server").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, want) {
			return fmt.Errorf("port %d answered by another process", n.Port)
		}
		return nil
	})
	if err == nil {
		return nil
	}
	if n.exited() {
		tail := n.logTail()
		if strings.Contains(tail, "Address already in use") {
			return fmt.Errorf("%w: redis-server on port %d could not bind its port (or, in a cluster, bus port %d); log:\n%s", ErrPortInUse, n.Port, n.Port+busPortOffset, tail)
		}
		return fmt.Errorf("clustertest: redis-server on port %d exited at start-up; log:\n%s", n.Port, tail)
	}
	return fmt.Errorf("clustertest: redis-server on port %d is not answering: %w; log:\n%s", n.Port, err, n.logTail())
}

var errExited = errors.New("clustertest: process exited")

// logTail returns the last lines of the node's redis.log and of anything it
// printed before opening it.
func (n *Node) logTail() string { return n.logTailN(2048) }

// logTailN is logTail with at most max bytes of each file.
func (n *Node) logTailN(max int64) string {
	var b strings.Builder
	for _, name := range []string{"stdout.log", "redis.log"} {
		if t := fileTail(filepath.Join(n.Dir, name), max); t != "" {
			fmt.Fprintf(&b, "--- %s\n%s", filepath.Join(n.Dir, name), t)
			if !strings.HasSuffix(t, "\n") {
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}

// fileTail returns up to max bytes from the end of a file, starting at a
// line boundary, or "" if it cannot be read.
func fileTail(path string, max int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := st.Size() - max
	if off < 0 {
		off = 0
	}
	buf, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return ""
	}
	s := string(buf)
	if off > 0 {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}

// newClient returns a single-node client for harness and test use. It does
// not retry: a test sees every failed command as it happened. A nil tc
// means plain TCP.
func newClient(addr, password string, tc *tls.Config) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            addr,
		Password:        password,
		TLSConfig:       tc,
		DialTimeout:     time.Second,
		ReadTimeout:     3 * time.Second,
		WriteTimeout:    3 * time.Second,
		MaxRetries:      -1,
		DisableIdentity: true, // CLIENT SETINFO is 7.2+
	})
}

// poll calls check every interval until it returns nil or ctx ends. The error
// then wraps both ctx's error and what check last said was wrong.
func poll(ctx context.Context, interval time.Duration, check func(context.Context) error) error {
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if errors.Is(err, errExited) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
