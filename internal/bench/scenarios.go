package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// valueSize is the value length of every write (redis-benchmark -d, and the
// literal value of the MSET scenario).
const valueSize = 32

// side says where redis-benchmark points.
type side int

// Every round runs the sides in this order.
const (
	direct     side = iota // redis-benchmark --cluster against node 0
	viaProxy               // plain redis-benchmark against slotproxy
	standalone             // the proxy's load against one plain redis-server
	numSides
)

func (s side) String() string {
	switch s {
	case direct:
		return "direct"
	case viaProxy:
		return "proxy"
	default:
		return "standalone"
	}
}

// scenario is one line of the table.
type scenario struct {
	name     string
	pipeline int // redis-benchmark -P; 1 means none
	// test is a built-in redis-benchmark test (-t). Under --cluster its key
	// is key:{tag}:__rand_int__, plain it is key:__rand_int__.
	test string
	// proxyCmd and directCmd replace test with a command line; the
	// standalone side runs proxyCmd, as a plain server takes cross-slot
	// MGET/MSET as slotproxy does. In directCmd,
	// redis-benchmark --cluster replaces every "{tag}" with one hash tag of a
	// slot its connection's node owns, the same for all keys of a request:
	// that is the only way its cluster mode can run a custom command.
	proxyCmd, directCmd []string
	// sample is one concrete form of the command, sent through the proxy
	// with redis-cli before any run: an error reply marks the proxy side as
	// "errors" without running it (redis-benchmark would exit on it anyway).
	sample []string
	reads  bool // report the keyspace hit ratio
}

func scenarios() []scenario {
	value := strings.Repeat("v", valueSize)
	multi := func(cmd, key string, withValue bool) []string {
		out := []string{cmd}
		for range 10 {
			out = append(out, key)
			if withValue {
				out = append(out, value)
			}
		}
		return out
	}
	var mgetSample, msetSample []string
	mgetSample = append(mgetSample, "MGET")
	msetSample = append(msetSample, "MSET")
	for i := range 10 { // key:000000000000..9 span 10 different slots
		mgetSample = append(mgetSample, benchKey(i))
		msetSample = append(msetSample, benchKey(i), value)
	}
	return []scenario{
		{name: "SET", pipeline: 1, test: "set", sample: []string{"SET", benchKey(1), value}},
		{name: "GET", pipeline: 1, test: "get", sample: []string{"GET", benchKey(1)}, reads: true},
		{name: "SET -P 16", pipeline: 16, test: "set", sample: []string{"SET", benchKey(1), value}},
		{name: "GET -P 16", pipeline: 16, test: "get", sample: []string{"GET", benchKey(1)}, reads: true},
		{
			name:      "MGET 10 keys (direct: 1 slot, a floor)",
			pipeline:  1,
			proxyCmd:  multi("MGET", "key:__rand_int__", false),
			directCmd: multi("MGET", "key:{tag}:__rand_int__", false),
			sample:    mgetSample,
			reads:     true,
		},
		{
			name:      "MSET 10 keys (direct: 1 slot, a floor)",
			pipeline:  1,
			proxyCmd:  multi("MSET", "key:__rand_int__", true),
			directCmd: multi("MSET", "key:{tag}:__rand_int__", true),
			sample:    msetSample,
		},
	}
}

// short is the name without its parenthesised remark.
func (sc scenario) short() string { return strings.SplitN(sc.name, " (", 2)[0] }

// args builds redis-benchmark's command line: the standalone side's is the
// proxy side's but for the port.
func (sc scenario) args(s side, cfg config, port, n int) []string {
	a := []string{
		"-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-c", strconv.Itoa(cfg.clients),
		"-n", strconv.Itoa(n),
		"-d", strconv.Itoa(valueSize),
		"-r", strconv.Itoa(cfg.keyspace),
		"--csv",
	}
	if cfg.threads > 0 {
		a = append(a, "--threads", strconv.Itoa(cfg.threads))
	}
	if sc.pipeline > 1 {
		a = append(a, "-P", strconv.Itoa(sc.pipeline))
	}
	if s == direct {
		a = append(a, "--cluster")
	} else {
		a = append(a, cfg.certs.clientArgs()...)
	}
	switch {
	case sc.test != "":
		a = append(a, "-t", sc.test)
	case s == direct:
		a = append(a, sc.directCmd...)
	default:
		a = append(a, sc.proxyCmd...)
	}
	return a
}

// runResult is one redis-benchmark run and what the processes spent on it.
type runResult struct {
	side  side
	round int // 0: calibration
	n     int // requests (redis-benchmark -n)
	wall  time.Duration

	rps      float64       // n / load, or benchRPS when no load window was seen
	load     time.Duration // how long the servers carried the run (loadtime.go)
	benchRPS float64       // redis-benchmark --csv rps, timed to its 250 ms tick
	p50, p99 float64       // redis-benchmark --csv p50_latency_ms, p99_latency_ms

	// Every process is read in every run; outside the runs that load it,
	// the figure is its idle cost (and counts as ours, not as others).
	proxyCPU      time.Duration // slotproxy, whole run
	backendCPU    time.Duration // the masters, summed
	standaloneCPU time.Duration // the standalone redis-server
	benchCPU      time.Duration // redis-benchmark itself (rusage)
	others        float64       // CPUs used by processes not ours, on average over the run
	steal         float64       // CPUs taken by the hypervisor, on average

	hits, misses int64 // keyspace_hits/misses deltas on the side's servers

	err error // error replies or a failed run: the figures above are not valid
}

func (r runResult) perReq(d time.Duration) float64 {
	return float64(d.Nanoseconds()) / 1e3 / float64(r.n)
}

// hitRatio is hits/(hits+misses), or -1 when nothing was read.
func (r runResult) hitRatio() float64 {
	if r.hits+r.misses == 0 {
		return -1
	}
	return float64(r.hits) / float64(r.hits+r.misses)
}

// sideResult is one side of a scenario.
type sideResult struct {
	n    int         // -n of the side's next run
	runs []runResult // measured runs that succeeded
	err  string      // set: the side is reported as "errors"
}

// ok says the side has figures to report.
func (sr sideResult) ok() bool { return sr.err == "" && len(sr.runs) > 0 }

// scenarioResult holds every run of a scenario, by side.
type scenarioResult struct {
	sc   scenario
	side [numSides]sideResult
}

// runner runs redis-benchmark with the processes' CPU time read around it.
type runner struct {
	cfg          config
	cluster      *clustertest.Cluster
	proxy        *proxyProc
	standalone   *standaloneProc
	masterPIDs   []int
	clk          int64
	logf         func(format string, args ...any)
	cpuFallbacks int // process-runs whose CPU came from stat ticks
	noLoadWindow int // runs whose req/s is redis-benchmark's own (no load window seen)
}

// scenario calibrates each side, then runs rounds of direct, proxy and
// standalone runs in turn, so that a slow spell of the machine falls on all
// sides alike. Its error is fatal (cancelled, a server or the proxy died); a
// side that fails is marked in the result instead.
func (r *runner) scenario(ctx context.Context, sc scenario) (scenarioResult, error) {
	res := scenarioResult{sc: sc}
	px := &res.side[viaProxy]
	out, err := r.proxy.cli(ctx, sc.sample...)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if err != nil || strings.HasPrefix(out, "(error)") {
		px.err = firstLine(strings.TrimPrefix(out, "(error) "))
		if px.err == "" {
			px.err = fmt.Sprint(err)
		}
		r.logf("%s: proxy answers %s %s... with an error: %s; proxy side not run", sc.name, sc.sample[0], sc.sample[1], px.err)
	}

	for s := range numSides {
		sr := &res.side[s]
		if sr.err != "" {
			continue
		}
		if sr.n, sr.err, err = r.calibrate(ctx, sc, s); err != nil {
			return res, err
		}
	}

	for round := 1; round <= r.cfg.rounds; round++ {
		for s := range numSides {
			sr := &res.side[s]
			if sr.err != "" {
				continue
			}
			rr, err := r.run(ctx, sc, s, sr.n, round)
			if err != nil {
				return res, err
			}
			if rr.err != nil {
				sr.err = rr.err.Error()
				r.logf("%s round %d %s: %v", sc.name, round, s, rr.err)
				continue
			}
			r.logf("%s", rr.line(sc))
			sr.runs = append(sr.runs, rr)
			// The next run of this side is sized from this one: a
			// calibration taken while the machine was busy elsewhere
			// would otherwise leave every round far from cfg.seconds.
			sr.n = r.size(sc, rr.rps)
		}
	}
	return res, nil
}

// calibrate sizes -n for a run of about cfg.seconds from short runs (which
// also warm the connections up), growing them until one lasts at least
// calibrationTime by redis-benchmark's own clock: a very short run's rate is
// dragged down by connecting its clients. errText is set when the side
// fails.
func (r *runner) calibrate(ctx context.Context, sc scenario, s side) (n int, errText string, err error) {
	const calibrationTime = 0.3 // seconds
	unit := r.cfg.clients * sc.pipeline
	n = unit * 20
	var rr runResult
	for try := 0; ; try++ {
		if rr, err = r.run(ctx, sc, s, n, 0); err != nil {
			return 0, "", err
		}
		if rr.err != nil {
			r.logf("%s calibration %s: %v", sc.name, s, rr.err)
			return 0, rr.err.Error(), nil
		}
		if float64(n)/rr.rps >= calibrationTime || try == 4 {
			break
		}
		n = max(n*4, int(rr.rps*calibrationTime*1.5)/unit*unit)
	}
	return r.size(sc, rr.rps), "", nil
}

// size is -n for a run of about cfg.seconds at rps: a whole number of
// pipelines for every client, and at least ten of them.
func (r *runner) size(sc scenario, rps float64) int {
	unit := r.cfg.clients * sc.pipeline
	return max(int(rps*r.cfg.seconds)/unit*unit, unit*10)
}

// run runs redis-benchmark once. Its error is fatal; a failed run (error
// replies, non-zero exit, timeout) is reported in runResult.err.
func (r *runner) run(ctx context.Context, sc scenario, s side, n, round int) (runResult, error) {
	rr := runResult{side: s, round: round, n: n}
	// loaded are the servers that do the data work of this side's requests:
	// the load window is timed on them and their hit ratio read.
	port, loaded := r.proxy.port, r.masterPIDs
	stats := r.masterClients()
	switch s {
	case direct:
		port = r.cluster.Nodes[0].Port
	case standalone:
		port, loaded = r.standalone.port, []int{r.standalone.pid()}
		stats = []*redis.Client{r.standalone.client}
	}
	args := sc.args(s, r.cfg, port, n)

	// Generous: a run is sized to cfg.seconds, but a calibration run on a
	// slow side, or a stalled proxy, must still end.
	limit := 20*time.Second + time.Duration(5*r.cfg.seconds*float64(time.Second))
	runCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()

	h0, m0, err := keyspace(ctx, stats)
	if err != nil {
		return rr, err
	}
	sys0, err := readSysCPU()
	if err != nil {
		return rr, err
	}
	p0, err := readCPU(r.proxy.pid())
	if err != nil {
		return rr, r.proxyGone(err)
	}
	b0, err := readCPUs(r.masterPIDs)
	if err != nil {
		return rr, err
	}
	s0, err := readCPU(r.standalone.pid())
	if err != nil {
		return rr, r.standaloneGone(err)
	}

	cmd := exec.CommandContext(runCtx, "redis-benchmark", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	sampler := startLoadSampler(loaded)
	start := time.Now()
	runErr := cmd.Run()
	exited := time.Now()
	rr.wall = exited.Sub(start)
	load, loadOK := sampler.window(exited)

	p1, err := readCPU(r.proxy.pid())
	if err != nil {
		return rr, r.proxyGone(err)
	}
	b1, err := readCPUs(r.masterPIDs)
	if err != nil {
		return rr, err
	}
	s1, err := readCPU(r.standalone.pid())
	if err != nil {
		return rr, r.standaloneGone(err)
	}
	sys1, err := readSysCPU()
	if err != nil {
		return rr, err
	}
	if ctx.Err() != nil {
		return rr, ctx.Err()
	}
	if r.proxy.exited() {
		return rr, r.proxyGone(nil)
	}
	if r.standalone.exited() {
		return rr, r.standaloneGone(nil)
	}
	h1, m1, err := keyspace(ctx, stats)
	if err != nil {
		return rr, err
	}

	var fbp, fbb, fbs int
	rr.proxyCPU, fbp = sumDelta([]cpuSample{p0}, []cpuSample{p1}, r.clk)
	rr.backendCPU, fbb = sumDelta(b0, b1, r.clk)
	rr.standaloneCPU, fbs = sumDelta([]cpuSample{s0}, []cpuSample{s1}, r.clk)
	r.cpuFallbacks += fbp + fbb + fbs
	if cmd.ProcessState != nil {
		rr.benchCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	tick := float64(time.Second) / float64(r.clk)
	busy := time.Duration(float64(sys1.busy-sys0.busy) * tick)
	rr.others = max(0, (busy-rr.proxyCPU-rr.backendCPU-rr.standaloneCPU-rr.benchCPU).Seconds()/rr.wall.Seconds())
	rr.steal = float64(sys1.steal-sys0.steal) * tick / float64(time.Second) / rr.wall.Seconds()
	rr.hits, rr.misses = h1-h0, m1-m0

	// redis-benchmark exits non-zero on the first error reply it gets
	// ("Error from server: ..."), except MOVED/ASK under --cluster, which
	// make it reload the slots and carry on.
	errText := strings.TrimSpace(stderr.String())
	switch {
	case runCtx.Err() != nil:
		rr.err = fmt.Errorf("redis-benchmark still running after %v, killed", limit)
	case runErr != nil || strings.Contains(errText, "Error"):
		if errText == "" {
			errText = fmt.Sprint(runErr)
		}
		rr.err = fmt.Errorf("%s", firstLine(strings.TrimPrefix(errText, "Error from server: ")))
	default:
		rr.benchRPS, rr.p50, rr.p99, rr.err = parseCSV(stdout.String())
		rr.rps = rr.benchRPS
		if loadOK {
			rr.load = load
			rr.rps = float64(n) / load.Seconds()
		} else {
			r.noLoadWindow++
		}
	}
	return rr, nil
}

func (r *runner) proxyGone(err error) error {
	return fmt.Errorf("%w (%v, %v); its log:\n%s", errProxyDied, r.proxy.cmd.ProcessState, err, tail(r.proxy.logPath, 2048))
}

func (r *runner) standaloneGone(err error) error {
	state := "still running"
	if r.standalone.exited() { // ProcessState is set by the reaper
		state = r.standalone.cmd.ProcessState.String()
	}
	return fmt.Errorf("%w (%s, %v); its log:\n%s", errStandaloneDied, state, err, tail(r.standalone.logPath, 2048))
}

// masterClients are the cluster's shared clients to its masters.
func (r *runner) masterClients() []*redis.Client {
	out := make([]*redis.Client, len(r.cluster.Nodes))
	for i, n := range r.cluster.Nodes {
		out[i] = r.cluster.Client(n.Addr)
	}
	return out
}

// keyspace sums keyspace_hits and keyspace_misses (INFO stats) over
// servers.
func keyspace(ctx context.Context, servers []*redis.Client) (hits, misses int64, err error) {
	for _, c := range servers {
		info, err := c.Info(ctx, "stats").Result()
		if err != nil {
			return 0, 0, fmt.Errorf("INFO stats on %s: %w", c.Options().Addr, err)
		}
		for line := range strings.SplitSeq(info, "\n") {
			k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
			x, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "keyspace_hits":
				hits += x
			case "keyspace_misses":
				misses += x
			}
		}
	}
	return hits, misses, nil
}

// parseCSV reads redis-benchmark 7's --csv output: a header line
// "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",
// "p95_latency_ms","p99_latency_ms","max_latency_ms" and one row per test.
// Under --cluster the node list is printed before it.
func parseCSV(out string) (rps, p50, p99 float64, err error) {
	i := strings.Index(out, `"test",`)
	if i < 0 {
		return 0, 0, 0, fmt.Errorf("no CSV header in redis-benchmark output: %q", firstLine(out))
	}
	recs, err := csv.NewReader(strings.NewReader(out[i:])).ReadAll()
	if err != nil || len(recs) < 2 {
		return 0, 0, 0, fmt.Errorf("no CSV row in redis-benchmark output (%v): %q", err, out[i:])
	}
	col := map[string]int{}
	for j, name := range recs[0] {
		col[name] = j
	}
	get := func(name string) (float64, error) {
		j, ok := col[name]
		if !ok || j >= len(recs[1]) {
			return 0, fmt.Errorf("redis-benchmark CSV has no %s column: %v", name, recs[0])
		}
		return strconv.ParseFloat(recs[1][j], 64)
	}
	if rps, err = get("rps"); err != nil {
		return
	}
	if p50, err = get("p50_latency_ms"); err != nil {
		return
	}
	p99, err = get("p99_latency_ms")
	return
}

// line is the progress line for a run.
func (rr runResult) line(sc scenario) string {
	s := fmt.Sprintf("%s round %d %s: n=%d %.0f req/s (redis-benchmark: %.0f) p50 %.3f p99 %.3f ms; CPU µs/req: ",
		sc.name, rr.round, rr.side, rr.n, rr.rps, rr.benchRPS, rr.p50, rr.p99)
	if rr.side == standalone {
		s += fmt.Sprintf("standalone %.2f", rr.perReq(rr.standaloneCPU))
	} else {
		s += fmt.Sprintf("backend %.2f", rr.perReq(rr.backendCPU))
	}
	s += fmt.Sprintf(", redis-benchmark %.2f", rr.perReq(rr.benchCPU))
	if rr.side == viaProxy {
		s += fmt.Sprintf(", proxy %.2f", rr.perReq(rr.proxyCPU))
	}
	if h := rr.hitRatio(); sc.reads && h >= 0 {
		s += fmt.Sprintf("; hits %.0f%%", 100*h)
	}
	return s + fmt.Sprintf("; others %.2f CPUs", rr.others)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}
