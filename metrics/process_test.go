package metrics

import (
	"bufio"
	"math"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseSelfStat(t *testing.T) {
	// A command name with spaces and parentheses, as prctl allows.
	stat := "4242 (evil ) (name) S 1 4242 4242 0 -1 4194560 1200 0 0 0 " +
		"250 130 0 0 20 0 7 0 98765 1527214080 1253 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	st, ok := parseSelfStat([]byte(stat))
	want := selfStat{utime: 250, stime: 130, starttime: 98765, vsize: 1527214080, rss: 1253}
	if !ok || st != want {
		t.Errorf("parseSelfStat = %+v, %v; want %+v", st, ok, want)
	}
	for _, bad := range []string{"", "1 (x) S 1 2 3", "4242 (x) S 1 4242 4242 0 -1 4194560 1200 0 0 0 x 130 0 0 20 0 7 0 98765 1 2"} {
		if st, ok := parseSelfStat([]byte(bad)); ok {
			t.Errorf("parseSelfStat(%q) = %+v, want not ok", bad, st)
		}
	}
}

func TestParseMaxFDs(t *testing.T) {
	const limits = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            %s                 524288               files
Max locked memory         8388608              8388608              bytes
`
	for _, tt := range []struct {
		soft string
		want float64
		ok   bool
	}{
		{"1024", 1024, true},
		{"unlimited", math.Inf(1), true},
		{"lots", 0, false},
	} {
		got, ok := parseMaxFDs([]byte(strings.Replace(limits, "%s", tt.soft, 1)))
		if got != tt.want || ok != tt.ok {
			t.Errorf("soft limit %s: %v, %v; want %v, %v", tt.soft, got, ok, tt.want, tt.ok)
		}
	}
	if _, ok := parseMaxFDs([]byte("Limit Soft Hard Units\n")); ok {
		t.Error("limits without Max open files parsed")
	}
}

// scrapeValues parses a text exposition into series -> value, checking
// that every sample belongs to the family the last TYPE line declared.
func scrapeValues(t *testing.T, text string) map[string]float64 {
	t.Helper()
	values := make(map[string]float64)
	family := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			family, _, _ = strings.Cut(rest, " ")
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		series := line[:i]
		if name, _, _ := strings.Cut(series, "{"); name != family {
			t.Errorf("sample %q under TYPE %s", line, family)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Errorf("sample %q: %v", line, err)
		}
		values[series] = v
	}
	return values
}

// TestBuiltinSeries: NewRegistry's go_* and process_* series are all there
// with values that describe this very process.
func TestBuiltinSeries(t *testing.T) {
	values := scrapeValues(t, string(NewRegistry().appendExposition(nil, false)))
	hour := float64(time.Hour / time.Second)
	now := float64(time.Now().UnixNano()) / 1e9
	for _, tt := range []struct {
		series string
		ok     func(v float64) bool
		want   string
	}{
		{"go_goroutines", func(v float64) bool { return v > 0 }, "> 0"},
		{"go_threads", func(v float64) bool { return v > 0 }, "> 0"},
		{`go_info{version="` + runtime.Version() + `"}`, func(v float64) bool { return v == 1 }, "1"},
		{"go_memstats_heap_alloc_bytes", func(v float64) bool { return v > 0 }, "> 0"},
		{"go_memstats_heap_inuse_bytes", func(v float64) bool { return v >= values["go_memstats_heap_alloc_bytes"] }, ">= heap_alloc"},
		{"go_memstats_heap_sys_bytes", func(v float64) bool { return v >= values["go_memstats_heap_inuse_bytes"] }, ">= heap_inuse"},
		{"go_memstats_sys_bytes", func(v float64) bool { return v >= values["go_memstats_heap_sys_bytes"] }, ">= heap_sys"},
		{"go_gc_cycles_total", func(v float64) bool { return v >= 0 }, ">= 0"},
		{"process_cpu_seconds_total", func(v float64) bool { return v >= 0 && v < hour }, "in [0, 1h)"},
		{"process_resident_memory_bytes", func(v float64) bool { return v > 1<<20 }, "> 1 MiB"},
		{"process_virtual_memory_bytes", func(v float64) bool { return v >= values["process_resident_memory_bytes"] }, ">= resident"},
		{"process_open_fds", func(v float64) bool { return v > 0 && v <= values["process_max_fds"] }, "in (0, max_fds]"},
		{"process_max_fds", func(v float64) bool { return v > 0 }, "> 0"},
		{"process_start_time_seconds", func(v float64) bool { return v > now-hour && v <= now+1 }, "within the last hour"},
	} {
		v, ok := values[tt.series]
		if !ok {
			t.Errorf("%s missing", tt.series)
			continue
		}
		if !tt.ok(v) {
			t.Errorf("%s = %v, want %s", tt.series, v, tt.want)
		}
	}
	if len(values) != 14 {
		t.Errorf("%d series, want the 14 built-in ones: %v", len(values), values)
	}
}
