package metrics

import (
	"bytes"
	"math"
	"os"
	"strconv"
)

// registerProcess adds the process_* families, read from /proc/self at
// scrape time with client_golang's process collector's names and meanings:
//
//	process_cpu_seconds_total      counter  user and system CPU time
//	process_resident_memory_bytes  gauge    resident set size
//	process_virtual_memory_bytes   gauge    virtual memory size
//	process_open_fds               gauge    open file descriptors
//	process_max_fds                gauge    the soft limit on them (+Inf if unlimited)
//	process_start_time_seconds     gauge    start time, seconds since the Unix epoch
//
// Where /proc is missing (not Linux) or unreadable a family emits nothing,
// and is therefore left out of the scrape.
func registerProcess(r *Registry) {
	r.MustRegister("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", Counter,
		func(emit Emit) {
			if st, ok := readSelfStat(); ok {
				emit(float64(st.utime+st.stime) / userHZ)
			}
		})
	r.MustRegister("process_resident_memory_bytes", "Resident memory size in bytes.", Gauge,
		func(emit Emit) {
			if st, ok := readSelfStat(); ok {
				emit(float64(st.rss * uint64(os.Getpagesize())))
			}
		})
	r.MustRegister("process_virtual_memory_bytes", "Virtual memory size in bytes.", Gauge,
		func(emit Emit) {
			if st, ok := readSelfStat(); ok {
				emit(float64(st.vsize))
			}
		})
	r.MustRegister("process_open_fds", "Number of open file descriptors.", Gauge,
		func(emit Emit) {
			// The descriptor reading the directory is counted too, as
			// client_golang counts it.
			if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
				emit(float64(len(fds)))
			}
		})
	r.MustRegister("process_max_fds", "Maximum number of open file descriptors.", Gauge,
		func(emit Emit) {
			if n, ok := readMaxFDs(); ok {
				emit(n)
			}
		})
	// The start time cannot change, and computing it again at each scrape
	// could make it wobble: /proc/stat's btime moves with clock adjustments.
	if start, ok := readStartTime(); ok {
		r.MustRegister("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", Gauge,
			func(emit Emit) { emit(start) })
	}
}

// userHZ is the unit of /proc's clock tick fields: Linux reports them in
// USER_HZ, 100 per second on every architecture, whatever the kernel's HZ.
const userHZ = 100

// selfStat holds the fields of /proc/self/stat that the families use.
type selfStat struct {
	utime, stime uint64 // CPU time, in clock ticks
	starttime    uint64 // clock ticks after boot
	vsize        uint64 // bytes
	rss          uint64 // pages
}

func readSelfStat() (selfStat, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return selfStat{}, false
	}
	return parseSelfStat(b)
}

// parseSelfStat reads proc(5)'s /proc/[pid]/stat. The command name (field
// 2) is in parentheses and may hold spaces and parentheses itself, so the
// fields are counted from the last ')'.
func parseSelfStat(b []byte) (selfStat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return selfStat{}, false
	}
	// f[0] is field 3 (state), so field n is f[n-3].
	f := bytes.Fields(b[i+1:])
	if len(f) < 22 {
		return selfStat{}, false
	}
	var st selfStat
	var ok [5]bool
	st.utime, ok[0] = parseUint(f[14-3])
	st.stime, ok[1] = parseUint(f[15-3])
	st.starttime, ok[2] = parseUint(f[22-3])
	st.vsize, ok[3] = parseUint(f[23-3])
	st.rss, ok[4] = parseUint(f[24-3])
	return st, ok == [5]bool{true, true, true, true, true}
}

// readStartTime is boot time (btime in /proc/stat) plus the process's
// starttime, which counts clock ticks from boot.
func readStartTime() (float64, bool) {
	st, ok := readSelfStat()
	if !ok {
		return 0, false
	}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	for line := range bytes.Lines(b) {
		if rest, found := bytes.CutPrefix(line, []byte("btime ")); found {
			btime, ok := parseUint(bytes.TrimSpace(rest))
			return float64(btime) + float64(st.starttime)/userHZ, ok
		}
	}
	return 0, false
}

// readMaxFDs reads the soft limit of "Max open files" in /proc/self/limits.
func readMaxFDs() (float64, bool) {
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return 0, false
	}
	return parseMaxFDs(b)
}

func parseMaxFDs(b []byte) (float64, bool) {
	for line := range bytes.Lines(b) {
		rest, found := bytes.CutPrefix(line, []byte("Max open files"))
		if !found {
			continue
		}
		f := bytes.Fields(rest) // soft, hard, unit
		if len(f) < 1 {
			return 0, false
		}
		if string(f[0]) == "unlimited" {
			return math.Inf(1), true
		}
		n, ok := parseUint(f[0])
		return float64(n), ok
	}
	return 0, false
}

func parseUint(b []byte) (uint64, bool) {
	n, err := strconv.ParseUint(string(b), 10, 64)
	return n, err == nil
}
