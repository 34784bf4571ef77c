package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CPU time of a process is read two ways, before and after each run:
//
//   - /proc/<pid>/task/<tid>/schedstat, first field: nanoseconds on CPU of
//     each thread, summed over the threads. Nanosecond resolution, but a
//     thread that exits during the run takes its time with it.
//   - /proc/<pid>/stat utime+stime: whole process, exited threads included,
//     in clock ticks (getconf CLK_TCK, normally 100, so 10 ms steps).
//
// The schedstat sum is used unless a thread present before the run is gone
// after it; then the run falls back to stat ticks (the report counts those).
// (/proc/<pid>/schedstat alone would cover only the main thread.)

// cpuSample is one process's CPU time at one moment.
type cpuSample struct {
	onCPU   time.Duration // schedstat sum over threads
	tids    []int         // threads read, sorted
	schedOK bool
	ticks   int64 // utime+stime from /proc/<pid>/stat
}

func readCPU(pid int) (cpuSample, error) {
	var s cpuSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces; fields after ")" are fixed.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(f))
	}
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	s.ticks = ut + st

	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return s, nil // stat alone
	}
	s.schedOK = true
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/schedstat", pid, tid))
		if err != nil {
			continue // exited meanwhile: missing from tids, so a later delta falls back
		}
		ns, err := strconv.ParseInt(strings.Fields(string(b) + " x")[0], 10, 64)
		if err != nil {
			s.schedOK = false
			break
		}
		s.onCPU += time.Duration(ns)
		s.tids = append(s.tids, tid)
	}
	slices.Sort(s.tids)
	return s, nil
}

// cpuDelta returns the CPU time spent between a and b, and whether it had to
// fall back to stat ticks.
func cpuDelta(a, b cpuSample, clk int64) (d time.Duration, fellBack bool) {
	if a.schedOK && b.schedOK && subset(a.tids, b.tids) {
		return b.onCPU - a.onCPU, false
	}
	return time.Duration((b.ticks - a.ticks) * int64(time.Second) / clk), true
}

func subset(a, b []int) bool {
	for _, x := range a {
		if _, ok := slices.BinarySearch(b, x); !ok {
			return false
		}
	}
	return true
}

// readCPUs samples several processes (the masters) at once.
func readCPUs(pids []int) ([]cpuSample, error) {
	out := make([]cpuSample, len(pids))
	for i, pid := range pids {
		var err error
		if out[i], err = readCPU(pid); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// sumDelta is cpuDelta summed over processes; fellBack counts fallbacks.
func sumDelta(a, b []cpuSample, clk int64) (total time.Duration, fellBack int) {
	for i := range a {
		d, fb := cpuDelta(a[i], b[i], clk)
		total += d
		if fb {
			fellBack++
		}
	}
	return total, fellBack
}

// rss is a process's resident set, in KiB, from /proc/<pid>/status: VmRSS
// and the two parts that make up nearly all of it. RssAnon is what the
// process allocated (heap, stacks); RssFile is mapped files, mostly its own
// binary's pages, which the kernel shares and may drop. (RssShmem, the rest
// of VmRSS, is none here.)
type rss struct {
	total, anon, file int64
}

// String reads "16.9 MiB (anon 5.6, file 11.3)".
func (r rss) String() string {
	mib := func(kib int64) float64 { return float64(kib) / 1024 }
	return fmt.Sprintf("%.1f MiB (anon %.1f, file %.1f)", mib(r.total), mib(r.anon), mib(r.file))
}

func readRSS(pid int) (rss, error) {
	name := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(name)
	if err != nil {
		return rss{}, err
	}
	return parseRSS(b, name)
}

// parseRSS reads the VmRSS, RssAnon and RssFile lines of a /proc/<pid>/status
// text ("VmRSS:\t   12345 kB"); name is for errors.
func parseRSS(status []byte, name string) (rss, error) {
	var r rss
	want := map[string]*int64{"VmRSS": &r.total, "RssAnon": &r.anon, "RssFile": &r.file}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		dst, ok := want[k]
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return r, fmt.Errorf("%s: empty %s", name, k)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return r, fmt.Errorf("%s: %s: %w", name, k, err)
		}
		*dst = n
		delete(want, k)
	}
	if len(want) > 0 {
		missing := slices.Sorted(maps.Keys(want))
		return r, fmt.Errorf("%s: no %s", name, strings.Join(missing, ", "))
	}
	return r, nil
}

// countFDs returns how many file descriptors a process has open.
func countFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// sysCPU is the machine's CPU time from the first line of /proc/stat, in
// clock ticks: busy is user+nice+system, steal what the hypervisor took.
// irq and softirq are left out: with IRQ time accounting the loopback
// traffic's softirq work done for our own processes lands there, and would
// be counted as someone else's.
type sysCPU struct{ busy, steal int64 }

func readSysCPU() (sysCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return sysCPU{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return sysCPU{}, fmt.Errorf("/proc/stat: unexpected first line %q", line)
	}
	v := make([]int64, 8)
	for i := range v {
		if v[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return sysCPU{}, fmt.Errorf("/proc/stat: %w", err)
		}
	}
	// user nice system idle iowait irq softirq steal
	return sysCPU{busy: v[0] + v[1] + v[2], steal: v[7]}, nil
}

// clockTicks is getconf CLK_TCK, the unit of /proc/<pid>/stat and /proc/stat.
func clockTicks(ctx context.Context) int64 {
	out, err := exec.CommandContext(ctx, "getconf", "CLK_TCK").Output()
	if err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 100
}

// machine describes where the numbers were taken.
type machine struct {
	cpus     int
	model    string
	kernel   string
	loadavg  string // /proc/loadavg at start, before anything is started
	date     time.Time
	redis    string // redis-benchmark --version
	goVer    string
	revision string // git HEAD of the working tree, "+dirty" if modified
	metrics  bool   // the proxy ran with its admin listener (-metrics)
	tls      bool   // clients spoke TLS to the proxy and the standalone server (-tls)
}

func probeMachine(ctx context.Context) machine {
	m := machine{cpus: runtime.NumCPU(), model: "unknown", date: time.Now(), goVer: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.model = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.loadavg = strings.Join(f[:3], " ")
		}
	}
	if out, err := exec.CommandContext(ctx, "redis-benchmark", "--version").Output(); err == nil {
		m.redis = strings.TrimSpace(string(out))
	}
	if out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		m.revision = strings.TrimSpace(string(out))
		if st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
			m.revision += "+dirty"
		}
	}
	return m
}
