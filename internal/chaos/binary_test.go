package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// The storm tests run the slotproxy binary, so that its memory and CPU
// are read from /proc apart from the clients', and each process has its
// own descriptor limit for 10,000 connections.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// slotproxyBinary builds cmd/slotproxy once per test binary, as make build
// does.
func slotproxyBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "chaos-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "slotproxy")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", binPath, "../../cmd/slotproxy")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proxyProcess is a running slotproxy binary.
type proxyProcess struct {
	addr, admin string
	cmd         *exec.Cmd
	log         *strings.Builder
}

// startBinary runs slotproxy in front of c until the test ends.
func startBinary(t *testing.T, c *clustertest.Cluster) *proxyProcess {
	t.Helper()
	addr, admin := clustertest.FreeAddr(t), clustertest.FreeAddr(t)
	cfg := filepath.Join(t.TempDir(), "proxy.yaml")
	yaml := fmt.Sprintf("listen: %q\ncluster:\n  seeds: [%q]\n  password: %q\nmetrics:\n  listen: %q\nclients:\n  max_clients: 20000\n", addr, c.Seeds()[0], password, admin)
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &proxyProcess{addr: addr, admin: admin, log: &strings.Builder{}}
	p.cmd = exec.Command(slotproxyBinary(t), "-config", cfg)
	p.cmd.Stderr = &lockedWriter{w: p.log}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		if t.Failed() {
			t.Logf("slotproxy's log:\n%s", p.log)
		}
	})
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DisableIdentity: true})
	defer rdb.Close()
	clustertest.Eventually(t, 20*time.Second, func() error {
		return rdb.Set(context.Background(), "chaos:ready", "1", 0).Err()
	})
	return p
}

// returnMemory has the proxy give its free memory back to the OS, as it
// does after many clients left: 64 clients connect, PING and hang up, and
// the next sweep collects garbage and returns it (go_gc_cycles_total
// moves). It then returns the proxy's RSS.
func (p *proxyProcess) returnMemory(t *testing.T) (rssKiB int) {
	t.Helper()
	gcs := p.metric(t, "go_gc_cycles_total")
	conns := make([]net.Conn, 64)
	for i := range conns {
		nc, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := ping(nc, bufio.NewReaderSize(nc, 16)); err != nil {
			t.Fatal(err)
		}
		conns[i] = nc
	}
	for _, nc := range conns {
		nc.Close()
	}
	clustertest.Eventually(t, 15*time.Second, func() error {
		if n := p.metric(t, "go_gc_cycles_total"); n == gcs {
			return fmt.Errorf("no garbage collection since %v cycles", gcs)
		}
		return nil
	})
	return p.rssKiB(t)
}

// steadyGoroutines returns the proxy's goroutine count once two reads in
// a row agree.
func (p *proxyProcess) steadyGoroutines(t *testing.T) int {
	t.Helper()
	n := p.goroutines(t)
	clustertest.Eventually(t, 10*time.Second, func() error {
		prev := n
		if n = p.goroutines(t); n != prev {
			return fmt.Errorf("goroutines moving: %d, then %d", prev, n)
		}
		return nil
	})
	return n
}

// goroutines reads go_goroutines from the proxy's /metrics.
func (p *proxyProcess) goroutines(t *testing.T) int {
	t.Helper()
	return int(p.metric(t, "go_goroutines"))
}

// metric reads one unlabelled series from the proxy's /metrics, with a
// plain HTTP/1.0 request.
func (p *proxyProcess) metric(t *testing.T, name string) float64 {
	t.Helper()
	nc, err := net.DialTimeout("tcp", p.admin, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(nc, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", p.admin)
	body, err := io.ReadAll(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s %q", name, v)
			}
			return n
		}
	}
	t.Fatalf("no %s in /metrics:\n%.300s", name, body)
	return 0
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// rssKiB and cpu read the proxy process's resident memory and CPU time.
func (p *proxyProcess) rssKiB(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

func (p *proxyProcess) cpu(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the command name, which ends with ')': utime and stime
	// are the 14th and 15th fields of the whole line.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
}
