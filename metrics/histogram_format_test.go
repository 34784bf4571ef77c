package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// histogramRegistry has a histogram family beside a counter and a gauge:
// one label set with observations in three classic buckets (one on a
// bound, one past the last), one empty, and two emits that must be left
// out (an le label, a nil histogram).
func histogramRegistry(t *testing.T) *Registry {
	t.Helper()
	get, set := NewHistogram(), NewHistogram()
	for _, d := range []time.Duration{40 * time.Microsecond, time.Millisecond, time.Millisecond, 3 * time.Second, 20 * time.Second} {
		get.Observe(d)
	}
	r := &Registry{}
	r.MustRegister("app_requests_total", "Requests.", Counter, func(emit Emit) { emit(3, Label{"code", "200"}) })
	r.MustRegister("app_up", "Up.", Gauge, func(emit Emit) { emit(1) })
	r.MustRegisterHistogram("app_latency_seconds", `Latency "of" commands\.`, func(emit EmitHistogram) {
		emit(get, Label{"cmd", "get"}, Label{"path", "a\"b"})
		emit(get, Label{"le", "1"})
		emit(nil, Label{"cmd", "nil"})
		emit(set, Label{"cmd", "set"}, Label{"path", ""})
	})
	r.MustRegisterHistogram("app_silent_seconds", "Emits nothing.", func(EmitHistogram) {})
	return r
}

// The buckets of histogramRegistry's get histogram, as both text formats
// write them but for the le values.
func histogramBuckets(les [len(classicBounds) + 1]string, labels string, counts [len(classicBounds) + 1]int) string {
	var b strings.Builder
	for i, le := range les {
		b.WriteString("app_latency_seconds_bucket{" + labels + `le="` + le + `"} `)
		b.WriteString(string(appendFloat(nil, float64(counts[i]))) + "\n")
	}
	return b.String()
}

var (
	getCounts = [len(classicBounds) + 1]int{1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4, 5}
	setCounts [len(classicBounds) + 1]int
)

func TestHistogramText(t *testing.T) {
	got := string(histogramRegistry(t).appendExposition(nil, false))
	want := `# HELP app_latency_seconds Latency "of" commands\\.
# TYPE app_latency_seconds histogram
` + histogramBuckets(leText, `cmd="get",path="a\"b",`, getCounts) +
		`app_latency_seconds_sum{cmd="get",path="a\"b"} 23.00204
app_latency_seconds_count{cmd="get",path="a\"b"} 5
` + histogramBuckets(leText, `cmd="set",path="",`, setCounts) +
		`app_latency_seconds_sum{cmd="set",path=""} 0
app_latency_seconds_count{cmd="set",path=""} 0
# HELP app_requests_total Requests.
# TYPE app_requests_total counter
app_requests_total{code="200"} 3
# HELP app_up Up.
# TYPE app_up gauge
app_up 1
`
	if got != want {
		t.Errorf("text exposition:\n%s\nwant:\n%s", got, want)
	}
	// The le values themselves, spelt out once.
	const les = "5e-05 0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf"
	if got := strings.Join(leText[:], " "); got != les {
		t.Errorf("text le values:\n%s\nwant\n%s", got, les)
	}
}

func TestHistogramOpenMetrics(t *testing.T) {
	got := string(histogramRegistry(t).appendExposition(nil, true))
	want := `# HELP app_latency_seconds Latency \"of\" commands\\.
# TYPE app_latency_seconds histogram
` + histogramBuckets(leOpenMetrics, `cmd="get",path="a\"b",`, getCounts) +
		`app_latency_seconds_sum{cmd="get",path="a\"b"} 23.00204
app_latency_seconds_count{cmd="get",path="a\"b"} 5
` + histogramBuckets(leOpenMetrics, `cmd="set",path="",`, setCounts) +
		`app_latency_seconds_sum{cmd="set",path=""} 0
app_latency_seconds_count{cmd="set",path=""} 0
# HELP app_requests Requests.
# TYPE app_requests counter
app_requests_total{code="200"} 3
# HELP app_up Up.
# TYPE app_up gauge
app_up 1
# EOF
`
	if got != want {
		t.Errorf("OpenMetrics exposition:\n%s\nwant:\n%s", got, want)
	}
	const les = "5e-05 0.0001 0.00025 0.0005 0.001 0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1.0 2.5 5.0 10.0 +Inf"
	if got := strings.Join(leOpenMetrics[:], " "); got != les {
		t.Errorf("OpenMetrics le values:\n%s\nwant\n%s", got, les)
	}
}

func TestRegisterHistogramRejects(t *testing.T) {
	r := &Registry{}
	r.MustRegisterHistogram("taken_seconds", "", func(EmitHistogram) {})
	r.MustRegister("gauge_seconds", "", Gauge, func(Emit) {})
	r.MustRegister("count_seconds_count", "", Gauge, func(Emit) {})
	r.MustRegister("ops_seconds_sum_total", "", Counter, func(Emit) {})
	nop := func(EmitHistogram) {}
	for _, tt := range []struct {
		name    string
		collect func(EmitHistogram)
		want    string
	}{
		{"", nop, "invalid metric name"},
		{"bad-name_seconds", nop, "invalid metric name"},
		{"latency", nop, "ends in _seconds"},
		{"_seconds", nop, "ends in _seconds"},
		{"requests_total", nop, "ends in _seconds"},
		{"latency_seconds_bucket", nop, "ends in _seconds"},
		{"latency_seconds_count", nop, "ends in _seconds"},
		{"latency_seconds_sum", nop, "ends in _seconds"},
		{"no_collect_seconds", nil, "nil collect"},
		{"taken_seconds", nop, "name clashes"},
		{"gauge_seconds", nop, "name clashes"},
		{"count_seconds", nop, "name clashes"}, // its _count sample is a gauge's name
		{"ops_seconds", nop, "name clashes"},   // its _sum sample is a counter's OpenMetrics family
	} {
		err := r.RegisterHistogram(tt.name, "help", tt.collect)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("RegisterHistogram(%q): %v, want an error containing %q", tt.name, err, tt.want)
		}
		if strings.Contains(tt.want, "clashes") && !errors.Is(err, errDuplicate) {
			t.Errorf("RegisterHistogram(%q): %v is not errDuplicate", tt.name, err)
		}
	}
	// And the other way: a counter or gauge whose name a histogram's
	// samples took.
	for _, name := range []string{"taken_seconds_bucket", "taken_seconds_count", "taken_seconds_sum"} {
		if err := r.Register(name, "", Gauge, func(Emit) {}); !errors.Is(err, errDuplicate) {
			t.Errorf("Register(%q) beside the histogram taken_seconds: %v, want a clash", name, err)
		}
	}
	if err := r.Register("taken_seconds_sum_total", "", Counter, func(Emit) {}); !errors.Is(err, errDuplicate) {
		t.Errorf("Register(taken_seconds_sum_total): %v, want a clash", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustRegisterHistogram of a bad name did not panic")
		}
	}()
	r.MustRegisterHistogram("latency", "", nop)
}
