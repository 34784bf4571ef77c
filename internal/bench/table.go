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

func rps(r runResult) float64          { return r.rps }
func others(r runResult) float64       { return r.others }
func p50(r runResult) float64          { return r.p50 }
func p99(r runResult) float64          { return r.p99 }
func proxyUs(r runResult) float64      { return r.perReq(r.proxyCPU) }
func backendUs(r runResult) float64    { return r.perReq(r.backendCPU) }
func standaloneUs(r runResult) float64 { return r.perReq(r.standaloneCPU) }
func hitPercent(r runResult) float64   { return 100 * r.hitRatio() }

// cell formats the side's median of f, or says why there is none.
func (sr sideResult) cell(f func(runResult) float64, format string) string {
	switch {
	case sr.err != "":
		return "errors"
	case len(sr.runs) == 0:
		return "—"
	default:
		return fmt.Sprintf(format, median(sr.runs, f))
	}
}

// ratio formats num/den as "0.87×"; "—" when there is no denominator.
func ratio(num, den float64) string {
	if den <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", num/den)
}

// ratioCell is the ratio of a's median of fa to b's median of fb, or "—"
// when either side has no figures.
func ratioCell(a sideResult, fa func(runResult) float64, b sideResult, fb func(runResult) float64) string {
	if !a.ok() || !b.ok() {
		return "—"
	}
	return ratio(median(a.runs, fa), median(b.runs, fb))
}

func (rep report) markdown() string {
	var b strings.Builder
	m := rep.machine
	cfg := rep.cfg
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }

	// A scenario measured while other processes were busy is marked in
	// both tables.
	marks := make([]string, len(rep.results))
	var noisy []string
	for i, res := range rep.results {
		var runs []runResult
		for _, sr := range res.side {
			runs = append(runs, sr.runs...)
		}
		if len(runs) > 0 && median(runs, others) > noisyCPUs {
			marks[i] = " †"
			noisy = append(noisy, fmt.Sprintf("%s %.2f", res.sc.short(), median(runs, others)))
		}
	}

	p("## slotproxy vs. the cluster it fronts (make bench)")
	p("")
	if m.tls {
		p("**Clients over TLS (`-tls`)**: redis-benchmark speaks TLS (`--tls --cacert`) to slotproxy and to the standalone server, the direct side plaintext to the masters; slotproxy reaches the masters in plaintext. So `proxy CPU / standalone` compares two servers that both pay for the clients' TLS, and the direct columns a cluster that pays for none.")
		p("")
	}
	p("| scenario | direct req/s | slotproxy req/s (ratio) | p50 direct / proxy (ms) | p99 direct / proxy (ms) | proxy CPU µs/req | standalone redis-server CPU µs/req | proxy CPU / standalone | backend CPU µs/req via proxy | backend CPU µs/req direct | masters via proxy / direct |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i, res := range rep.results {
		d, x, s := res.side[direct], res.side[viaProxy], res.side[standalone]
		proxyRPS := x.cell(rps, "%.0f")
		if x.ok() && d.ok() {
			proxyRPS += " (" + ratio(median(x.runs, rps), median(d.runs, rps)) + ")"
		}
		p("| %s | %s | %s | %s / %s | %s / %s | %s | %s | %s | %s | %s | %s |",
			res.sc.name+marks[i],
			d.cell(rps, "%.0f"),
			proxyRPS,
			d.cell(p50, "%.3f"), x.cell(p50, "%.3f"),
			d.cell(p99, "%.3f"), x.cell(p99, "%.3f"),
			x.cell(proxyUs, "%.2f"),
			s.cell(standaloneUs, "%.2f"),
			ratioCell(x, proxyUs, s, standaloneUs),
			x.cell(backendUs, "%.2f"),
			d.cell(backendUs, "%.2f"),
			ratioCell(x, backendUs, d, backendUs))
	}
	p("")
	p("### slotproxy vs. a standalone redis-server (the physical reference)")
	p("")
	p("| scenario | standalone req/s | slotproxy req/s | ratio | p50 standalone / proxy (ms) | p99 standalone / proxy (ms) | standalone CPU µs/req | proxy CPU µs/req | ratio |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i, res := range rep.results {
		x, s := res.side[viaProxy], res.side[standalone]
		// The name's remark is about the direct side, absent here.
		p("| %s | %s | %s | %s | %s / %s | %s / %s | %s | %s | %s |",
			res.sc.short()+marks[i],
			s.cell(rps, "%.0f"), x.cell(rps, "%.0f"), ratioCell(x, rps, s, rps),
			s.cell(p50, "%.3f"), x.cell(p50, "%.3f"),
			s.cell(p99, "%.3f"), x.cell(p99, "%.3f"),
			s.cell(standaloneUs, "%.2f"), x.cell(proxyUs, "%.2f"), ratioCell(x, proxyUs, s, standaloneUs))
	}
	p("")

	for _, res := range rep.results {
		if e := res.side[viaProxy].err; e != "" {
			p("- **errors** (%s, proxy): `%s %s ...` answered `%s`; no proxy figures are reported for it.", res.sc.short(), res.sc.sample[0], res.sc.sample[1], e)
		}
		for _, s := range []side{direct, standalone} {
			if e := res.side[s].err; e != "" {
				p("- **errors** (%s, %s): %s", res.sc.short(), s, e)
			}
		}
	}
	if len(noisy) > 0 {
		p("- † Other processes used more than %.2f CPUs (median over the runs) while this scenario ran: %s. Its figures say more about the machine than about the proxy; run again when it is quiet.", noisyCPUs, strings.Join(noisy, ", "))
	}
	p("- **The physical reference.** The standalone side is one plain redis-server (`--save '' --appendonly no`, holding the proxy side's keys) given exactly the proxy side's load. " +
		"A redis-server answering the load itself does one read and one write per client request plus the data work; a proxy does the same client-side I/O plus the backend hop. " +
		"So slotproxy's CPU per request at ≤ 1× the standalone server's (`proxy CPU / standalone`) means the hop costs no more than the data work.")
	p("- Medians of %d run(s) per side, each round running direct, proxy and standalone in turn, each run sized to about %gs (`-n` from a calibration run, not counted, then from the previous run of the same side). "+
		"Load: `redis-benchmark -c %d -d %d -r %d --threads %d --csv` [`-P 16`]; direct adds `--cluster -p <node 0>`, proxy `-p <slotproxy>`, standalone `-p <standalone redis-server>` with the proxy side's arguments otherwise. "+
		"`--cluster` runs one thread per master by itself; the other sides are given the same threads so the load generator is the same.",
		cfg.rounds, cfg.seconds, cfg.clients, valueSize, cfg.keyspace, cfg.threads)
	window := "every run had one"
	if rep.noLoadWindow > 0 {
		window = fmt.Sprintf("%d run(s) had none and use redis-benchmark's own req/s", rep.noLoadWindow)
	}
	p("- req/s: `-n` divided by the time the servers carried the run's load (the main threads' CPU time of the masters, or on the standalone side of the standalone server, sampled every %v; the window runs from the first to the last interval in which they used more than %.0f%% of a CPU, up to %v before redis-benchmark exits, as closing its connections busies them too; %s). "+
		"redis-benchmark's own `rps` (in the table of every run) is timed up to the 250 ms tick at which `--threads` stops, so it reads up to 8%% slow on a 3 s run, by chance on any side. "+
		"p50, p99: redis-benchmark's `--csv` columns `p50_latency_ms`, `p99_latency_ms`. A request is one command: an MGET of 10 keys is one request.", loadTick, 100*busyShare, loadTick, window)
	fallback := "no fallback was needed"
	if rep.cpuFallbacks > 0 {
		fallback = fmt.Sprintf("%d process-runs fell back to `/proc/<pid>/stat` utime+stime (clock ticks) because a thread exited mid-run", rep.cpuFallbacks)
	}
	p("- CPU µs/req: CPU time over the whole redis-benchmark run divided by `-n`; from `/proc/<pid>/task/*/schedstat` first field (ns on CPU) summed over threads, read before and after (%s). "+
		"Backend = the 3 masters summed; standalone = the standalone redis-server, read as the proxy is. "+
		"`masters via proxy / direct` is the masters' CPU per request when slotproxy feeds them over that when redis-benchmark `--cluster` does.", fallback)
	if len(rep.directPrefixes) > 0 {
		p("- Keys: through the proxy and on the standalone server `key:<n>` (n: 12 digits below -r); under `--cluster` redis-benchmark writes `key:{tag}:<n>`. "+
			"Its 7.0.15 used one hash tag per master for whole runs (%s: each master's first slot; found by a probe run and SCAN), "+
			"so every `<n>` was pre-populated under all of these prefixes in the cluster, and as `key:<n>` in the standalone server (%d-byte values): reads hit and SETs overwrite on every side, "+
			"but the direct traffic of each master goes to one slot.", "`"+strings.Join(rep.directPrefixes, "`, `")+"`", valueSize)
	} else {
		p("- Keys: through the proxy and on the standalone server `key:<n>`, pre-populated in both, so their reads hit and their SETs overwrite. Under `--cluster` redis-benchmark writes `key:{tag}:<n>` "+
			"and drew a tag per request (%s): that keyspace (16384 tags × -r) cannot be pre-populated, so direct reads mostly miss and direct SETs mostly create keys.", rep.manyTags)
	}
	if !m.tls {
		p("- MGET/MSET 10 keys: through the proxy `MGET key:__rand_int__ ×10` (10 random keys across slots, split over the 3 masters), the same command on the standalone server (one server holds every key); direct `MGET key:{tag}:__rand_int__ ×10` under `--cluster` (the 10 keys share one hash tag: one slot, one master, one command). " +
			"redis-benchmark 7.0's `--cluster` runs a custom command only with `{tag}` in its keys (without it every reply is MOVED and it exits), so the direct figure is a floor, not the same work.")
	}
	var hits []string
	for _, res := range rep.results {
		if !res.sc.reads {
			continue
		}
		hits = append(hits, fmt.Sprintf("%s %s direct / %s proxy / %s standalone", res.sc.short(),
			res.side[direct].cell(hitPercent, "%.0f%%"), res.side[viaProxy].cell(hitPercent, "%.0f%%"), res.side[standalone].cell(hitPercent, "%.0f%%")))
	}
	if len(hits) > 0 {
		p("- Keyspace hit ratio (INFO `keyspace_hits`/`keyspace_misses` on the servers the side loads, per key read): %s.", strings.Join(hits, "; "))
	}
	var otherCPUs, steal []float64
	for _, res := range rep.results {
		for _, sr := range res.side {
			for _, r := range sr.runs {
				otherCPUs = append(otherCPUs, r.others)
				steal = append(steal, r.steal)
			}
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

	mem := rep.mem
	p("Memory (slotproxy's resident set from `/proc/<pid>/status`: VmRSS, and in brackets its RssAnon and RssFile parts in MiB; RssFile is mostly the binary's own pages, shared and reclaimable. Per-connection figures are VmRSS growth):")
	p("")
	p("- idle, before any load: %s", mem.idle)
	p("- after all load (read 2 s after the last run): %s", mem.afterLoad)
	if mem.conns > 0 {
		how := "plain TCP connects by the bench, nothing sent"
		if m.tls {
			how = "TLS connections by the bench, handshake done, nothing sent; a TLS client's session never parks, so it keeps its goroutine throughout"
		}
		p("- %d idle client connections (%s; read once the proxy holds them all and RSS is stable), on a freshly started proxy: %s idle → %s: **%.1f KiB per connection**",
			mem.conns, how, mem.freshIdle, mem.connected, mem.perConnKiB(mem.connected))
		p("- the same connections after one PING each (as a pooled connection that has served once): %s: %.1f KiB per connection; %v later, parked again: %s: **%.1f KiB per connection**; after closing them all: %s",
			mem.pinged, mem.perConnKiB(mem.pinged), parkedAfter, mem.parked, mem.perConnKiB(mem.parked), mem.afterClose)
	}
	p("")
	rev := m.revision
	if rev == "" {
		rev = "unknown"
	}
	metrics := "on (/metrics served, commands counted)"
	if !m.metrics {
		metrics = "off (no admin listener, no per-command counts)"
	}
	p("Machine: %d CPUs (nproc), %s, Linux %s, load average %s at start; %s, %s, slotproxy at %s, metrics %s; %s.",
		m.cpus, m.model, m.kernel, m.loadavg, m.redis, m.goVer, rev, metrics, m.date.Format(time.RFC3339))
	p("")

	p("<details><summary>Every measured run</summary>")
	p("")
	p("| scenario | round | side | -n | load s | req/s | redis-benchmark req/s | p50 ms | p99 ms | proxy µs/req | backend µs/req | standalone µs/req | redis-benchmark µs/req | hits | other CPUs |")
	p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, res := range rep.results {
		var runs []runResult
		for _, sr := range res.side {
			runs = append(runs, sr.runs...)
		}
		// Rounds in order, each in the order its sides ran.
		slices.SortStableFunc(runs, func(a, b runResult) int { return a.round - b.round })
		for _, r := range runs {
			// Each run shows the CPU of the processes it loaded; the
			// others' idle cost is left out.
			px, be, sa, hit := "—", "—", "—", "—"
			switch r.side {
			case viaProxy:
				px = fmt.Sprintf("%.2f", proxyUs(r))
				be = fmt.Sprintf("%.2f", backendUs(r))
			case direct:
				be = fmt.Sprintf("%.2f", backendUs(r))
			case standalone:
				sa = fmt.Sprintf("%.2f", standaloneUs(r))
			}
			if h := r.hitRatio(); res.sc.reads && h >= 0 {
				hit = fmt.Sprintf("%.0f%%", 100*h)
			}
			load := "—"
			if r.load > 0 {
				load = fmt.Sprintf("%.3f", r.load.Seconds())
			}
			p("| %s | %d | %s | %d | %s | %.0f | %.0f | %.3f | %.3f | %s | %s | %s | %.2f | %s | %.2f |",
				res.sc.name, r.round, r.side, r.n, load, r.rps, r.benchRPS, r.p50, r.p99, px, be, sa, r.perReq(r.benchCPU), hit, r.others)
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
