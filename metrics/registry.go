package metrics

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Type is a metric family's type: the two that Register takes. Histograms
// have their own RegisterHistogram.
type Type uint8

const (
	// Counter is a value that only goes up (or resets to zero when the
	// process restarts). Its name must end in _total.
	Counter Type = iota + 1
	// Gauge is a value that goes up and down.
	Gauge

	// histogramType is the type of RegisterHistogram's families.
	histogramType
)

func (t Type) String() string {
	switch t {
	case Counter:
		return "counter"
	case Gauge:
		return "gauge"
	case histogramType:
		return "histogram"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Label is one label of a sample. Names must match [a-zA-Z_][a-zA-Z0-9_]*
// and not start with "__"; values are any UTF-8 text (they are escaped when
// written).
type Label struct {
	Name, Value string
}

// Emit hands one sample of the family being collected to the registry.
// It is valid only during the collect call it was passed to.
type Emit func(value float64, labels ...Label)

// Registry holds metric families and writes them out when scraped. A
// family's samples are read by its collect function at scrape time, so the
// components being measured only keep the counters they already need
// (typically atomics) and the hot path pays nothing for being observed.
//
// The zero Registry is empty and ready to use; NewRegistry is one with the
// Go runtime and process families already in it.
type Registry struct {
	mu       sync.Mutex                // serialises Register
	families atomic.Pointer[[]*family] // sorted by name; replaced whole by Register

	// scrapeMu serialises scrapes, so that a collect function never runs
	// concurrently with itself and may keep scratch state without locking.
	scrapeMu sync.Mutex
	snap     histogramSnapshot // where the scrape holding scrapeMu reads a histogram
}

// EmitHistogram hands the histogram of one label set of the family being
// collected to the registry, which reads it at once. It is valid only
// during the collect call it was passed to.
type EmitHistogram func(h *Histogram, labels ...Label)

type family struct {
	name      string // the sample name, with _total for a counter; a histogram's samples add suffixes
	help      string
	typ       Type
	collect   func(Emit)          // a counter's or a gauge's
	histogram func(EmitHistogram) // a histogram's
}

// NewRegistry returns a registry holding the Go runtime and process
// families (go_* and process_*, listed in process.go and goruntime.go).
func NewRegistry() *Registry {
	r := &Registry{}
	registerGoRuntime(r)
	registerProcess(r)
	return r
}

// Register adds a family named name, of type typ, whose samples collect
// emits each time the registry is scraped. collect runs on the scraping
// goroutine, never concurrently with another scrape of r; it must not block
// (a scrape waits for it, and so does the next), and should emit each label
// set at most once. A family that emits nothing is left out of the scrape.
//
// name must match [a-zA-Z_][a-zA-Z0-9_]* (colons are for recording rules,
// not exporters); a counter's ends in _total and a gauge's does not, so
// that both formats can name the family. Registering a name twice, or a
// counter and a gauge that would share an OpenMetrics family name (x_total
// and x), is an error.
func (r *Registry) Register(name, help string, typ Type, collect func(Emit)) error {
	if !validName(name, false) {
		return fmt.Errorf("metrics: invalid metric name %q", name)
	}
	switch typ {
	case Counter:
		if !strings.HasSuffix(name, "_total") || name == "_total" {
			return fmt.Errorf("metrics: counter %q: a counter's name ends in _total", name)
		}
	case Gauge:
		if strings.HasSuffix(name, "_total") {
			return fmt.Errorf("metrics: gauge %q: _total is for counters", name)
		}
	default:
		return fmt.Errorf("metrics: %s: unknown %v", name, typ)
	}
	if collect == nil {
		return fmt.Errorf("metrics: %s: nil collect function", name)
	}
	return r.add(&family{name: name, help: help, typ: typ, collect: collect})
}

// RegisterHistogram adds a histogram family named name, whose histograms
// collect emits each time the registry is scraped, on the terms of
// Register. Its samples are name_bucket, name_sum and name_count; name ends
// in _seconds, since a Histogram records durations in seconds, and must not
// clash with another family's names or samples. The label name le is the
// buckets' own: a histogram emitted with it is left out.
func (r *Registry) RegisterHistogram(name, help string, collect func(EmitHistogram)) error {
	if !validName(name, false) {
		return fmt.Errorf("metrics: invalid metric name %q", name)
	}
	if !strings.HasSuffix(name, "_seconds") || name == "_seconds" {
		return fmt.Errorf("metrics: histogram %q: a latency histogram's name ends in _seconds", name)
	}
	if collect == nil {
		return fmt.Errorf("metrics: %s: nil collect function", name)
	}
	return r.add(&family{name: name, help: help, typ: histogramType, histogram: collect})
}

// MustRegisterHistogram is RegisterHistogram for families a program cannot
// run without, as MustRegister is.
func (r *Registry) MustRegisterHistogram(name, help string, collect func(EmitHistogram)) {
	if err := r.RegisterHistogram(name, help, collect); err != nil {
		panic(err)
	}
}

// add inserts f in name order, unless one of its names is taken.
func (r *Registry) add(f *family) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var old []*family
	if p := r.families.Load(); p != nil {
		old = *p
	}
	for _, g := range old {
		if f.clashes(g) {
			return fmt.Errorf("metrics: %s: %w with %s", f.name, errDuplicate, g.name)
		}
	}
	i, _ := slices.BinarySearchFunc(old, f.name, func(g *family, name string) int { return strings.Compare(g.name, name) })
	fams := slices.Insert(slices.Clone(old), i, f)
	r.families.Store(&fams)
	return nil
}

var errDuplicate = errors.New("name clashes")

// MustRegister is Register for families a program cannot run without; it
// panics on the errors Register returns, all of which are programming
// mistakes caught by the first test that builds the registry.
func (r *Registry) MustRegister(name, help string, typ Type, collect func(Emit)) {
	if err := r.Register(name, help, typ, collect); err != nil {
		panic(err)
	}
}

// familyName is the name OpenMetrics gives the family: a counter's without
// its _total, which only its samples carry.
func (f *family) familyName() string {
	if f.typ == Counter {
		return strings.TrimSuffix(f.name, "_total")
	}
	return f.name
}

// clashes reports whether f and g share a family or sample name, which
// would make a scrape ambiguous: x_total and x (a counter's OpenMetrics
// family name), or a gauge x_seconds_count and a histogram x_seconds.
func (f *family) clashes(g *family) bool {
	for _, a := range f.names() {
		if slices.Contains(g.names(), a) {
			return true
		}
	}
	return false
}

func (f *family) names() []string {
	switch f.typ {
	case Counter:
		return []string{f.name, f.familyName()}
	case histogramType:
		return []string{f.name, f.name + "_bucket", f.name + "_sum", f.name + "_count"}
	}
	return []string{f.name}
}

// validName reports whether s is a metric name or, with label set, a label
// name; labels starting with __ are reserved for Prometheus itself.
func validName(s string, label bool) bool {
	if s == "" || label && strings.HasPrefix(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
