package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// report is everything printed at the end.
type report struct {
	cfg          config
	machine      machine
	results      []scenarioResult
	mem          memory
	cpuFallbacks int
	noLoadWindow int // runs whose req/s is redis-benchmark's own
	// directPrefixes are the key prefixes redis-benchmark --cluster was
	// seen to use, pre-populated; manyTags says why there are none.
	directPrefixes []string
	manyTags       string
}

// median of f over runs; runs is never empty where it is called.
func median(runs []runResult, f func(runResult) float64) float64 {
	v := make([]float64, len(runs))
	for i, r := range runs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if n := len(v); n%2 == 1 {
		return v[n/2]
	} else {
		return (v[n/2-1] + v[n/2]) / 2
	}
}

// noisyCPUs is how much CPU other processes may take, on median over a
// scenario's runs, before its line is marked as measured on a busy machine.
const noisyCPUs = 0.25

func rps(r runResult) float64        { return r.rps }
func others(r runResult) float64     { return r.others }
func p50(r runResult) float64        { return r.p50 }
func p99(r runResult) float64        { return r.p99 }
func proxyUs(r runResult) float64    { return r.perReq(r.proxyCPU) }
func backendUs(r runResult) float64  { return r.perReq(r.backendCPU) }
func hitPercent(r runResult) float64 { return 100 * r.hitRatio() }

// sideCell formats one side's median, or says why there is none.
func sideCell(runs []runResult, errText string, f func(runResult) float64, format string) string {
	switch {
	case errText != "":
		return "errors"
	case len(runs) == 0:
		return "—"
	default:
		return fmt.Sprintf(format, median(runs, f))
	}
}

func (rep report) markdown() string {
	var b strings.Builder
	m := rep.machine
	cfg := rep.cfg
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }

	p("## slotproxy vs. the cluster it fronts (make bench)")
	p("")
	p("| scenario | direct req/s | slotproxy req/s (ratio) | p50 direct / proxy (ms) | p99 direct / proxy (ms) | proxy CPU µs/req | backend CPU µs/req via proxy | backend CPU µs/req direct |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|")
	var noisy []string
	for _, res := range rep.results {
		d, x := res.direct, res.proxy
		name := res.sc.name
		if runs := slices.Concat(d, x); len(runs) > 0 && median(runs, others) > noisyCPUs {
			name += " †"
			noisy = append(noisy, fmt.Sprintf("%s %.2f", res.sc.short(), median(runs, others)))
		}
		proxyRPS := sideCell(x, res.proxyErr, rps, "%.0f")
		if res.proxyErr == "" && len(x) > 0 && res.directErr == "" && len(d) > 0 {
			proxyRPS += fmt.Sprintf(" (%.2f×)", median(x, rps)/median(d, rps))
		}
		p("| %s | %s | %s | %s / %s | %s / %s | %s | %s | %s |",
			name,
			sideCell(d, res.directErr, rps, "%.0f"),
			proxyRPS,
			sideCell(d, res.directErr, p50, "%.3f"), sideCell(x, res.proxyErr, p50, "%.3f"),
			sideCell(d, res.directErr, p99, "%.3f"), sideCell(x, res.proxyErr, p99, "%.3f"),
			sideCell(x, res.proxyErr, proxyUs, "%.2f"),
			sideCell(x, res.proxyErr, backendUs, "%.2f"),
			sideCell(d, res.directErr, backendUs, "%.2f"))
	}
	p("")

	for _, res := range rep.results {
		if res.proxyErr != "" {
			p("- **errors** (%s, proxy): `%s %s ...` answered `%s`; no proxy figures are reported for it.", res.sc.short(), res.sc.sample[0], res.sc.sample[1], res.proxyErr)
		}
		if res.directErr != "" {
			p("- **errors** (%s, direct): %s", res.sc.short(), res.directErr)
		}
	}
	if len(noisy) > 0 {
		p("- † Other processes used more than %.2f CPUs (median over the runs) while this scenario ran: %s. Its figures say more about the machine than about the proxy; run again when it is quiet.", noisyCPUs, strings.Join(noisy, ", "))
	}
	p("- Medians of %d run(s) per side, direct and proxy runs alternating, each sized to about %gs (`-n` from a calibration run, not counted, then from the previous run of the same side). "+
		"Load: `redis-benchmark -c %d -d %d -r %d --threads %d --csv` [`-P 16`]; direct adds `--cluster -p <node 0>`, proxy `-p <slotproxy>`. "+
		"`--cluster` runs one thread per master by itself; the proxy side is given the same threads so the load generator is the same.",
		cfg.rounds, cfg.seconds, cfg.clients, valueSize, cfg.keyspace, cfg.threads)
	window := "every run had one"
	if rep.noLoadWindow > 0 {
		window = fmt.Sprintf("%d run(s) had none and use redis-benchmark's own req/s", rep.noLoadWindow)
	}
	p("- req/s: `-n` divided by the time the masters carried the run's load (their main threads' CPU time sampled every %v; the window runs from the first to the last interval in which they used more than %.0f%% of a CPU, up to %v before redis-benchmark exits, as closing its connections busies them too; %s). "+
		"redis-benchmark's own `rps` (in the table of every run) is timed up to the 250 ms tick at which `--threads` stops, so it reads up to 8%% slow on a 3 s run, by chance on either side. "+
		"p50, p99: redis-benchmark's `--csv` columns `p50_latency_ms`, `p99_latency_ms`. A request is one command: an MGET of 10 keys is one request.", loadTick, 100*busyShare, loadTick, window)
	fallback := "no fallback was needed"
	if rep.cpuFallbacks > 0 {
		fallback = fmt.Sprintf("%d process-runs fell back to `/proc/<pid>/stat` utime+stime (clock ticks) because a thread exited mid-run", rep.cpuFallbacks)
	}
	p("- CPU µs/req: CPU time over the whole redis-benchmark run divided by `-n`; from `/proc/<pid>/task/*/schedstat` first field (ns on CPU) summed over threads, read before and after (%s). Backend = the 3 masters summed.", fallback)
	if len(rep.directPrefixes) > 0 {
		p("- Keys: through the proxy `key:<n>` (n: 12 digits below -r); under `--cluster` redis-benchmark writes `key:{tag}:<n>`. "+
			"Its 7.0.15 used one hash tag per master for whole runs (%s: each master's first slot; found by a probe run and SCAN), "+
			"so every `<n>` was pre-populated under all of these prefixes (%d-byte values): reads hit and SETs overwrite on both sides, "+
			"but the direct traffic of each master goes to one slot.", "`"+strings.Join(rep.directPrefixes, "`, `")+"`", valueSize)
	} else {
		p("- Keys: through the proxy `key:<n>`, pre-populated, so proxy reads hit and proxy SETs overwrite. Under `--cluster` redis-benchmark writes `key:{tag}:<n>` "+
			"and drew a tag per request (%s): that keyspace (16384 tags × -r) cannot be pre-populated, so direct reads mostly miss and direct SETs mostly create keys.", rep.manyTags)
	}
	p("- MGET/MSET 10 keys: through the proxy `MGET key:__rand_int__ ×10` (10 random keys across slots, split over the 3 masters); direct `MGET key:{tag}:__rand_int__ ×10` under `--cluster` (the 10 keys share one hash tag: one slot, one master, one command). " +
		"redis-benchmark 7.0's `--cluster` runs a custom command only with `{tag}` in its keys (without it every reply is MOVED and it exits), so the direct figure is a floor, not the same work.")
	var hits []string
	for _, res := range rep.results {
		if !res.sc.reads {
			continue
		}
		hits = append(hits, fmt.Sprintf("%s %s direct / %s proxy", res.sc.short(),
			sideCell(res.direct, res.directErr, hitPercent, "%.0f%%"), sideCell(res.proxy, res.proxyErr, hitPercent, "%.0f%%")))
	}
	if len(hits) > 0 {
		p("- Keyspace hit ratio (INFO `keyspace_hits`/`keyspace_misses` on the masters, per key read): %s.", strings.Join(hits, "; "))
	}
	var otherCPUs, steal []float64
	for _, res := range rep.results {
		for _, r := range slices.Concat(res.direct, res.proxy) {
			otherCPUs = append(otherCPUs, r.others)
			steal = append(steal, r.steal)
		}
	}
	if len(otherCPUs) > 0 {
		busy := ""
		if mean(otherCPUs) > 0.1 {
			busy = " **The machine was shared with other work: read the figures as noisy.**"
		}
		p("- Other load: processes not started by the bench used %.2f CPUs on average during the measured runs (max %.2f), the hypervisor stole %.2f (from `/proc/stat` user+nice+system minus ours).%s",
			mean(otherCPUs), slices.Max(otherCPUs), mean(steal), busy)
	}
	p("")

	mib := func(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
	p("Memory (slotproxy VmRSS from `/proc/<pid>/status`):")
	p("")
	p("- idle, before any load: %s", mib(rep.mem.idleKiB))
	p("- after all load (read 2 s after the last run): %s", mib(rep.mem.afterLoadKiB))
	if rep.mem.conns > 0 {
		n := float64(rep.mem.conns)
		p("- %d idle client connections (plain TCP connects by the bench, nothing sent; read once the proxy holds them all and RSS is stable), on a freshly started proxy: %s idle → %s: **%.1f KiB per connection**",
			rep.mem.conns, mib(rep.mem.freshIdleKiB), mib(rep.mem.connectedKiB), float64(rep.mem.connectedKiB-rep.mem.freshIdleKiB)/n)
		p("- the same connections after one PING each (as a pooled connection that has served once): %s: %.1f KiB per connection; %v later, parked again: %s: **%.1f KiB per connection**; after closing them all: %s",
			mib(rep.mem.pingedKiB), float64(rep.mem.pingedKiB-rep.mem.freshIdleKiB)/n,
			parkedAfter, mib(rep.mem.parkedKiB), float64(rep.mem.parkedKiB-rep.mem.freshIdleKiB)/n, mib(rep.mem.afterCloseKiB))
	}
	p("")
	rev := m.revision
	if rev == "" {
		rev = "unknown"
	}
	p("Machine: %d CPUs (nproc), %s, Linux %s, load average %s at start; %s, %s, slotproxy at %s; %s.",
		m.cpus, m.model, m.kernel, m.loadavg, m.redis, m.goVer, rev, m.date.Format(time.RFC3339))
	p("")

	p("<details><summary>Every measured run</summary>")
	p("")
	p("| scenario | round | side | -n | load s | req/s | redis-benchmark req/s | p50 ms | p99 ms | proxy µs/req | backend µs/req | redis-benchmark µs/req | hits | other CPUs |")
	p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, res := range rep.results {
		runs := slices.Concat(res.direct, res.proxy)
		slices.SortStableFunc(runs, func(a, b runResult) int { return a.round - b.round })
		for _, r := range runs {
			px, hit := "—", "—"
			if r.side == viaProxy {
				px = fmt.Sprintf("%.2f", proxyUs(r))
			}
			if h := r.hitRatio(); res.sc.reads && h >= 0 {
				hit = fmt.Sprintf("%.0f%%", 100*h)
			}
			load := "—"
			if r.load > 0 {
				load = fmt.Sprintf("%.3f", r.load.Seconds())
			}
			p("| %s | %d | %s | %d | %s | %.0f | %.0f | %.3f | %.3f | %s | %.2f | %.2f | %s | %.2f |",
				res.sc.name, r.round, r.side, r.n, load, r.rps, r.benchRPS, r.p50, r.p99, px, backendUs(r), r.perReq(r.benchCPU), hit, r.others)
		}
	}
	p("")
	p("</details>")
	return b.String()
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
