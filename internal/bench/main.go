// Command bench measures slotproxy side by side with the Redis Cluster it
// fronts and with a standalone redis-server, on one machine, with
// redis-benchmark as the load generator:
//
//	go run ./internal/bench -proxy bin/slotproxy [-rounds 5] [-seconds 3] [-clients 50] [-out bench.md]
//
// It starts a 3-master, 0-replica cluster (internal/clustertest), one plain
// redis-server and the proxy binary as children on free loopback ports, and
// runs every scenario in rounds of three sides taken in turn: the cluster
// directly (redis-benchmark --cluster), the cluster through the proxy, and
// the proxy side's exact load against the standalone server. That last side
// is the physical reference: a server answering the load itself does the
// client-side reads and writes plus the data work, where the proxy does the
// same client-side I/O plus the hop to the masters, so slotproxy's figures
// are printed as ratios to it as well as next to the direct ones.
//
// The report is markdown: medians of throughput, latency percentiles, and
// CPU time per request of the proxy, the masters and the standalone server,
// read from /proc; then the proxy's resident memory (VmRSS, split into
// RssAnon and RssFile) idle, after the load, and per idle client
// connection. make bench runs it; the total wall time ends stderr.
//
// What each figure means and how it is taken is printed under the tables
// and said again where it is measured (procstat.go, loadtime.go,
// scenarios.go, idle.go).
//
// Everything it starts dies with it: on return, on SIGINT/SIGTERM, and, by
// Pdeathsig, if it is killed. It only reads /proc of its own children.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// config is what the flags say.
type config struct {
	proxyBin  string
	rounds    int           // measured runs per scenario and side
	seconds   float64       // target length of one measured run
	clients   int           // redis-benchmark -c
	threads   int           // redis-benchmark --threads, both sides
	keyspace  int           // redis-benchmark -r, and keys pre-populated
	idleConns int           // idle client connections for the memory figure
	out       string        // markdown report file; "" means stdout only
	timeout   time.Duration // bounds the whole program
	metrics   bool          // the proxy serves /metrics (and so keeps its per-command counts)
	tls       bool          // clients speak TLS to the proxy and the standalone server (tls.go)

	certs *benchTLS // with tls: made in the bench's temp dir; nil without
}

func main() {
	start := time.Now()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	// Last on stderr, so that whoever tunes -rounds and -seconds sees it.
	fmt.Fprintf(os.Stderr, "bench: total wall time %v\n", time.Since(start).Round(time.Second))
	if err != nil {
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	fs.StringVar(&cfg.proxyBin, "proxy", "bin/slotproxy", "slotproxy binary to measure")
	fs.IntVar(&cfg.rounds, "rounds", 5, "measured runs per scenario and side (direct, proxy and standalone take turns)")
	fs.Float64Var(&cfg.seconds, "seconds", 3, "target length of one measured run, in seconds (sized from a calibration run)")
	fs.IntVar(&cfg.clients, "clients", 50, "redis-benchmark -c: parallel client connections")
	fs.IntVar(&cfg.threads, "threads", 3, "redis-benchmark --threads on both sides (--cluster uses one per master unless told)")
	fs.IntVar(&cfg.keyspace, "keyspace", 100000, "redis-benchmark -r: random key range; as many keys are pre-populated")
	fs.IntVar(&cfg.idleConns, "idle-conns", 5000, "idle client connections opened to measure memory per connection (0: skip)")
	fs.StringVar(&cfg.out, "out", "", "also write the report to this file")
	fs.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "give up (and clean up) after this long")
	fs.BoolVar(&cfg.metrics, "metrics", true, "run the proxy with its admin listener, which keeps per-command counts and latencies; -metrics=false measures it without")
	fs.BoolVar(&cfg.tls, "tls", false, "clients speak TLS to the proxy and to the standalone server (redis-benchmark --tls); only the SET and GET scenarios run")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case fs.NArg() > 0:
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case cfg.rounds < 1:
		return cfg, errors.New("-rounds must be at least 1")
	case cfg.seconds <= 0:
		return cfg, errors.New("-seconds must be positive")
	case cfg.clients < 3:
		return cfg, errors.New("-clients must be at least 3 (redis-benchmark --cluster needs one per master)")
	case cfg.threads < 0:
		return cfg, errors.New("-threads must not be negative")
	case cfg.keyspace < 10:
		return cfg, errors.New("-keyspace must be at least 10")
	case cfg.idleConns < 0:
		return cfg, errors.New("-idle-conns must not be negative")
	}
	return cfg, nil
}

// run is the whole program. Every child it starts is stopped before it
// returns, whatever the outcome.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }

	for _, tool := range []string{"redis-benchmark", "redis-cli", "redis-server"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not on PATH (scripts/ensure-redis.sh installs it): %w", tool, err)
		}
	}
	if st, err := os.Stat(cfg.proxyBin); err != nil || st.IsDir() {
		return fmt.Errorf("proxy binary %q not found (make build makes bin/slotproxy)", cfg.proxyBin)
	}
	// Children inherit the limit: the proxy holds every idle connection.
	if err := raiseNoFile(uint64(cfg.idleConns) + 4096); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	tmp, err := os.MkdirTemp("", "slotproxy-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if cfg.tls {
		if cfg.certs, err = newBenchTLS(tmp); err != nil {
			return err
		}
	}

	machine := probeMachine(ctx)
	machine.metrics = cfg.metrics
	machine.tls = cfg.tls
	clk := clockTicks(ctx)

	logf("starting a 3-master cluster")
	cluster, err := clustertest.Start(ctx, clustertest.Options{Masters: 3})
	if err != nil {
		return err
	}
	defer cluster.Close()
	var masterPIDs []int
	for _, n := range cluster.Nodes {
		masterPIDs = append(masterPIDs, n.PID())
	}
	seed := cluster.Seeds()[0]

	prefixes, manyTags, err := directPrefixes(ctx, cluster, cfg)
	if err != nil {
		return err
	}
	logf("pre-populating %d keys for each of %q (%d-byte values)", cfg.keyspace, append([]string{keyPrefix}, prefixes...), valueSize)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Seeds(), DisableIdentity: true})
	err = populate(ctx, cc, append([]string{keyPrefix}, prefixes...), cfg.keyspace)
	cc.Close()
	if err != nil {
		return err
	}
	if n, err := keyCount(ctx, cluster); err == nil {
		logf("%d keys in the cluster", n)
	}

	ref, err := startStandalone(ctx, cfg.certs, filepath.Join(tmp, "standalone"), filepath.Join(tmp, "standalone.log"))
	if err != nil {
		return err
	}
	defer ref.stop()
	// The keys the proxy side reads and writes, so that its GETs hit here
	// too.
	logf("pre-populating %d keys %s:<n> in a standalone redis-server on %s (pid %d)", cfg.keyspace, keyPrefix, ref.addr, ref.pid())
	if err := populate(ctx, ref.client, []string{keyPrefix}, cfg.keyspace); err != nil {
		return err
	}

	proxy, err := startProxy(ctx, cfg, seed, filepath.Join(tmp, "proxy.log"))
	if err != nil {
		return err
	}
	defer proxy.stop()
	logf("cluster %v (pids %v), slotproxy on %s (pid %d)", cluster.Seeds(), masterPIDs, proxy.addr, proxy.pid())

	var mem memory
	if mem.idle, err = stableRSS(ctx, proxy.pid()); err != nil {
		return err
	}

	r := &runner{cfg: cfg, cluster: cluster, proxy: proxy, standalone: ref, masterPIDs: masterPIDs, clk: clk, logf: logf}
	var results []scenarioResult
	for _, sc := range scenarios() {
		if cfg.tls && sc.test == "" {
			continue // MGET and MSET: -tls measures what TLS adds per request
		}
		res, err := r.scenario(ctx, sc)
		if err != nil {
			return err
		}
		results = append(results, res)
	}

	// Let the runtime settle (GC, idle connections to backends), then read.
	if err := sleepCtx(ctx, 2*time.Second); err != nil {
		return err
	}
	if mem.afterLoad, err = readRSS(proxy.pid()); err != nil {
		return err
	}
	proxy.stop()
	ref.stop()

	if cfg.idleConns > 0 {
		if err := idleConnTest(ctx, cfg, seed, filepath.Join(tmp, "proxy-idle.log"), &mem, logf); err != nil {
			return err
		}
	}

	rep := report{cfg: cfg, machine: machine, results: results, mem: mem, cpuFallbacks: r.cpuFallbacks, noLoadWindow: r.noLoadWindow,
		directPrefixes: prefixes, manyTags: manyTags}
	text := rep.markdown()
	fmt.Fprint(stdout, text)
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, []byte(text), 0o644); err != nil {
			return err
		}
		logf("report written to %s", cfg.out)
	}
	return nil
}

// raiseNoFile lifts RLIMIT_NOFILE to at least want (and to the hard limit
// when that is higher). Calling syscall.Setrlimit also stops os/exec from
// restoring the original soft limit in children, which is the point: the
// proxy child must accept thousands of connections.
func raiseNoFile(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Max < want {
		lim.Max = want // root may raise the hard limit
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE to %d (needed for the idle connections; try -idle-conns 0 or ulimit -n): %w", want, err)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
