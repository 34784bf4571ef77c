package proxy

// redis-benchmark through the proxy: the stock load generator must run to
// the end without a single error reply, pipelined or not, and what it wrote
// must be on the cluster afterwards.

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// benchTests are the redis-benchmark tests run, by the names its output
// gives them.
var benchTests = []string{"SET", "GET", "INCR", "LPUSH", "HSET"}

var benchResult = regexp.MustCompile(`^(\w+): ([0-9.]+) requests per second`)

// runRedisBenchmark runs redis-benchmark against addr with args and checks
// its exit status and output. redis-benchmark 7.0 exits non-zero at the
// first error reply and prints "Error from server: ..."; a refused or lost
// connection it reports and may retry forever, hence the timeout.
func runRedisBenchmark(t *testing.T, addr string, args ...string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	all := append([]string{"-h", host, "-p", port, "-t", "set,get,incr,lpush,hset", "-q"}, args...)
	cmd := exec.CommandContext(ctx, "redis-benchmark", all...)
	began := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(began)
	if ctx.Err() != nil {
		t.Fatalf("redis-benchmark %v did not finish within 60s; output:\n%s", all, out)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		t.Errorf("redis-benchmark %v exited with %d", all, exit.ExitCode())
	case err != nil:
		t.Fatalf("redis-benchmark %v: %v", all, err)
	}

	// The progress lines end in '\r', the results in '\n'.
	lines := strings.FieldsFunc(string(out), func(r rune) bool { return r == '\n' || r == '\r' })
	seen := map[string]bool{}
	var results []string
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if strings.Contains(line, "ERR") || strings.Contains(line, "Error") || strings.Contains(line, "error") {
			t.Errorf("redis-benchmark %v: %q", all, line)
		}
		if m := benchResult.FindStringSubmatch(line); m != nil {
			if rps, err := strconv.ParseFloat(m[2], 64); err != nil || rps <= 0 {
				t.Errorf("redis-benchmark %v: %q", all, line)
			}
			seen[m[1]] = true
			results = append(results, line)
		}
	}
	for _, name := range benchTests {
		if !seen[name] {
			t.Errorf("redis-benchmark %v: no %q requests per second line in its output:\n%s", all, name, out)
		}
	}
	t.Logf("redis-benchmark %s (%v):\n\t%s", strings.Join(args, " "), took.Round(time.Millisecond), strings.Join(results, "\n\t"))
}

func TestRedisBenchmark(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})

	// The stock key names (key:__rand_int__, counter:__rand_int__, mylist,
	// myhash) are single keys: each test loads one master.
	t.Run("Pipelined", func(t *testing.T) {
		runRedisBenchmark(t, p.Addr, "-P", "16", "-n", "20000")
	})
	// With -r the keys are random, so every master gets traffic from the
	// 50 clients at once.
	t.Run("Pipelined50ClientsRandomKeys", func(t *testing.T) {
		runRedisBenchmark(t, p.Addr, "-c", "50", "-r", "100000", "-P", "16", "-n", "20000")
	})
	t.Run("NotPipelined", func(t *testing.T) {
		runRedisBenchmark(t, p.Addr, "-n", "5000")
	})
	if t.Failed() {
		return
	}

	// What the runs wrote is on the cluster, counted exactly: no command
	// was lost or applied twice.
	ctx := t.Context()
	owners := slotOwners(t, c)
	direct := func(key string) string { return owners[slotmap.Slot([]byte(key))] }
	if n, err := c.Client(direct("counter:__rand_int__")).Get(ctx, "counter:__rand_int__").Int(); err != nil || n != 20000+5000 {
		t.Errorf("counter:__rand_int__ after the runs without -r: %d, %v; want %d INCRs", n, err, 20000+5000)
	}
	if n, err := c.Client(direct("mylist")).LLen(ctx, "mylist").Result(); err != nil || n != 20000+20000+5000 {
		t.Errorf("LLEN mylist: %d, %v; want %d LPUSHes", n, err, 20000+20000+5000)
	}
	if n, err := c.Client(direct("key:__rand_int__")).StrLen(ctx, "key:__rand_int__").Result(); err != nil || n != 3 {
		t.Errorf("STRLEN key:__rand_int__: %d, %v; want 3 (-d 3, the default)", n, err)
	}
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range masters {
		if n, err := c.Client(m).DBSize(ctx).Result(); err != nil || n < 100 {
			t.Errorf("DBSIZE on %s after the -r run: %d, %v; the random keys did not reach every master", m, n, err)
		}
	}
}
