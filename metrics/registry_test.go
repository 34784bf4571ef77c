package metrics

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// fixedRegistry has one family of each kind the formats treat apart: a
// counter, gauges with labels needing escapes, a HELP needing escapes, a
// family that emits nothing and one emitting a sample with a bad label.
// They are registered out of order, to see them written sorted.
func fixedRegistry(t *testing.T) *Registry {
	t.Helper()
	r := &Registry{}
	for _, f := range []struct {
		name, help string
		typ        Type
		collect    func(Emit)
	}{
		{"zz_last", "Written last.", Gauge, func(emit Emit) { emit(-1.5) }},
		{"app_requests_total", `Requests "served", by path\code` + "\nsecond line.", Counter, func(emit Emit) {
			emit(3, Label{"path", `/a"b\c` + "\nd"}, Label{"code", "200"})
			emit(1e21, Label{"path", "/"}, Label{"code", "500"})
		}},
		{"app_silent", "Emits nothing, so is left out.", Gauge, func(Emit) {}},
		{"app_bad_label", "One sample with a bad label name, one good.", Gauge, func(emit Emit) {
			emit(1, Label{"0bad", "x"})
			emit(2, Label{"__reserved", "x"})
			emit(3, Label{"dup", "x"}, Label{"dup", "y"})
			emit(4, Label{"good", ""})
		}},
		{"app_values", "Float formatting.", Gauge, func(emit Emit) {
			for _, v := range []struct {
				k string
				v float64
			}{
				{"inf", math.Inf(1)}, {"ninf", math.Inf(-1)}, {"nan", math.NaN()},
				{"int", 1048576}, {"negzero", math.Copysign(0, -1)}, {"frac", 0.25},
				{"time", 1796060448.95}, {"tiny", 1.5e-7}, {"max_exact", 1<<53 - 1},
			} {
				emit(v.v, Label{"v", v.k})
			}
		}},
	} {
		if err := r.Register(f.name, f.help, f.typ, f.collect); err != nil {
			t.Fatalf("Register(%s): %v", f.name, err)
		}
	}
	return r
}

const fixedValues = `app_values{v="inf"} +Inf
app_values{v="ninf"} -Inf
app_values{v="nan"} NaN
app_values{v="int"} 1048576
app_values{v="negzero"} 0
app_values{v="frac"} 0.25
app_values{v="time"} 1796060448.95
app_values{v="tiny"} 1.5e-07
app_values{v="max_exact"} 9007199254740991
`

func TestRegistryText(t *testing.T) {
	got := string(fixedRegistry(t).appendExposition(nil, false))
	want := `# HELP app_bad_label One sample with a bad label name, one good.
# TYPE app_bad_label gauge
app_bad_label{good=""} 4
# HELP app_requests_total Requests "served", by path\\code\nsecond line.
# TYPE app_requests_total counter
app_requests_total{path="/a\"b\\c\nd",code="200"} 3
app_requests_total{path="/",code="500"} 1e+21
# HELP app_values Float formatting.
# TYPE app_values gauge
` + fixedValues + `# HELP zz_last Written last.
# TYPE zz_last gauge
zz_last -1.5
`
	if got != want {
		t.Errorf("text exposition:\n%s\nwant:\n%s", got, want)
	}
}

// TestRegistryOpenMetrics: the same families in OpenMetrics differ in the
// counter's family name, the HELP's quotes, and the closing # EOF.
func TestRegistryOpenMetrics(t *testing.T) {
	got := string(fixedRegistry(t).appendExposition(nil, true))
	want := `# HELP app_bad_label One sample with a bad label name, one good.
# TYPE app_bad_label gauge
app_bad_label{good=""} 4
# HELP app_requests Requests \"served\", by path\\code\nsecond line.
# TYPE app_requests counter
app_requests_total{path="/a\"b\\c\nd",code="200"} 3
app_requests_total{path="/",code="500"} 1e+21
# HELP app_values Float formatting.
# TYPE app_values gauge
` + fixedValues + `# HELP zz_last Written last.
# TYPE zz_last gauge
zz_last -1.5
# EOF
`
	if got != want {
		t.Errorf("OpenMetrics exposition:\n%s\nwant:\n%s", got, want)
	}
}

func TestRegistryEmpty(t *testing.T) {
	var r Registry
	if got := string(r.appendExposition(nil, false)); got != "" {
		t.Errorf("empty registry, text: %q", got)
	}
	if got := string(r.appendExposition(nil, true)); got != "# EOF\n" {
		t.Errorf("empty registry, OpenMetrics: %q", got)
	}
}

func TestRegisterRejects(t *testing.T) {
	r := &Registry{}
	r.MustRegister("dup_total", "", Counter, func(Emit) {})
	r.MustRegister("clash", "", Gauge, func(Emit) {})
	nop := func(Emit) {}
	for _, tt := range []struct {
		name    string
		typ     Type
		collect func(Emit)
		want    string
	}{
		{"", Gauge, nop, "invalid metric name"},
		{"9lives", Gauge, nop, "invalid metric name"},
		{"has-dash", Gauge, nop, "invalid metric name"},
		{"rule:colon", Gauge, nop, "invalid metric name"},
		{"requests", Counter, nop, "ends in _total"},
		{"_total", Counter, nop, "ends in _total"},
		{"errors_total", Gauge, nop, "_total is for counters"},
		{"untyped", 0, nop, "unknown"},
		{"no_collect", Gauge, nil, "nil collect"},
		{"dup_total", Counter, nop, "name clashes"},
		{"dup", Gauge, nop, "name clashes"},           // dup_total's OpenMetrics family
		{"clash_total", Counter, nop, "name clashes"}, // its family would be clash
	} {
		err := r.Register(tt.name, "help", tt.typ, tt.collect)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Register(%q, %v): %v, want an error containing %q", tt.name, tt.typ, err, tt.want)
		}
		if strings.Contains(tt.want, "clashes") && !errors.Is(err, errDuplicate) {
			t.Errorf("Register(%q): %v is not errDuplicate", tt.name, err)
		}
	}
	if got := strings.Count(string(r.appendExposition(nil, false)), "# TYPE"); got != 0 {
		t.Errorf("families that emit nothing were written: %d TYPE lines", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("MustRegister of a bad name did not panic")
		}
	}()
	r.MustRegister("bad name", "", Gauge, nop)
}

// TestRegistryConcurrent registers families while others scrape, for the
// race detector: scrapes see a whole table, old or new.
func TestRegistryConcurrent(t *testing.T) {
	r := NewRegistry()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 50 {
			name := "extra_" + string(rune('a'+i%26)) + string(rune('a'+i/26))
			r.MustRegister(name, "x", Gauge, func(emit Emit) { emit(float64(i)) })
		}
	}()
	for {
		out := r.appendExposition(nil, true)
		if !strings.HasSuffix(string(out), "# EOF\n") {
			t.Fatalf("scrape does not end in # EOF: %.200q", out)
		}
		select {
		case <-done:
			if got := strings.Count(string(r.appendExposition(nil, false)), "\nextra_"); got != 50 {
				t.Errorf("%d extra_ samples after 50 registrations", got)
			}
			return
		default:
		}
	}
}
