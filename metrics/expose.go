package metrics

import (
	"math"
	"strconv"
	"strings"
)

// The two exposition formats /metrics answers in, as Content-Type values.
const (
	textContentType        = "text/plain; version=0.0.4; charset=utf-8"
	openMetricsContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"
)

// appendExposition appends every family's HELP, TYPE and samples to b, in
// the Prometheus text format 0.0.4 or, with openMetrics, in OpenMetrics
// 1.0.0. The formats differ only in a counter's family name (OpenMetrics
// drops _total from HELP and TYPE), in HELP escaping double quotes, in how
// a bucket's le is spelt (1 or 1.0), and in OpenMetrics' closing # EOF.
func (r *Registry) appendExposition(b []byte, openMetrics bool) []byte {
	w := &expositionWriter{b: b, openMetrics: openMetrics}
	r.scrape(w)
	if openMetrics {
		w.b = append(w.b, "# EOF\n"...)
	}
	return w.b
}

// formatWriter writes a scrape in one exposition format.
type formatWriter interface {
	// beginFamily starts f, and endFamily ends it, or takes it back out
	// when nothing was emitted between them.
	beginFamily(f *family)
	endFamily()
	emit(value float64, labels ...Label)
	emitHistogram(h *Histogram, labels ...Label)
	// snapshot is where emitHistogram reads a histogram into.
	setSnapshot(s *histogramSnapshot)
}

// scrape collects every family into w.
func (r *Registry) scrape(w formatWriter) {
	r.scrapeMu.Lock()
	defer r.scrapeMu.Unlock()
	w.setSnapshot(&r.snap)
	emit, emitHistogram := w.emit, w.emitHistogram
	if p := r.families.Load(); p != nil {
		for _, f := range *p {
			w.beginFamily(f)
			if f.histogram != nil {
				f.histogram(emitHistogram)
			} else {
				f.collect(emit)
			}
			w.endFamily()
		}
	}
}

// expositionWriter is one scrape in one of the two text formats.
type expositionWriter struct {
	b           []byte
	openMetrics bool
	snap        *histogramSnapshot
	f           *family // the family being collected
	header      int     // where f begins in b
	samples     int     // label sets written for f so far
}

func (w *expositionWriter) setSnapshot(s *histogramSnapshot) { w.snap = s }

func (w *expositionWriter) beginFamily(f *family) {
	w.f, w.header, w.samples = f, len(w.b), 0
	name := f.name
	if w.openMetrics {
		name = f.familyName()
	}
	w.b = append(w.b, "# HELP "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ' ')
	w.b = appendEscaped(w.b, f.help, w.openMetrics)
	w.b = append(w.b, "\n# TYPE "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, f.typ.String()...)
	w.b = append(w.b, '\n')
}

func (w *expositionWriter) endFamily() {
	if w.samples == 0 {
		w.b = w.b[:w.header]
	}
}

// emit writes one sample line. A sample whose label names are invalid or
// repeated is left out: one bad sample must not make the whole scrape
// unparseable, and label names are constants in the code that a test of
// its collector catches.
func (w *expositionWriter) emit(value float64, labels ...Label) {
	if !validLabels(labels, false) {
		return
	}
	w.samples++
	w.appendSample("", labels, "", value)
}

// emitHistogram writes the classic histogram's lines: the cumulative
// buckets, +Inf last, then _sum and _count. The native buckets have no
// place in either text format.
func (w *expositionWriter) emitHistogram(h *Histogram, labels ...Label) {
	if h == nil || !validLabels(labels, true) {
		return
	}
	w.samples++
	s := w.snap
	h.snapshot(s)
	les := &leText
	if w.openMetrics {
		les = &leOpenMetrics
	}
	var cumulative uint64
	for i, le := range les {
		cumulative += s.classic[i]
		w.appendSample("_bucket", labels, le, float64(cumulative))
	}
	w.appendSample("_sum", labels, "", s.sum)
	w.appendSample("_count", labels, "", float64(s.count))
}

// appendSample writes the family's name with suffix, the labels, le last
// unless empty, and the value.
func (w *expositionWriter) appendSample(suffix string, labels []Label, le string, value float64) {
	w.b = append(w.b, w.f.name...)
	w.b = append(w.b, suffix...)
	if len(labels) > 0 || le != "" {
		w.b = append(w.b, '{')
		for _, l := range labels {
			w.b = append(w.b, l.Name...)
			w.b = append(w.b, `="`...)
			w.b = appendEscaped(w.b, l.Value, true)
			w.b = append(w.b, `",`...)
		}
		if le != "" {
			w.b = append(w.b, `le="`...)
			w.b = append(w.b, le...)
			w.b = append(w.b, `",`...)
		}
		w.b[len(w.b)-1] = '}'
	}
	w.b = append(w.b, ' ')
	w.b = appendFloat(w.b, value)
	w.b = append(w.b, '\n')
}

// validLabels reports whether every label name is valid and given once;
// a histogram's may not be le, which its buckets carry.
func validLabels(labels []Label, histogram bool) bool {
	for i, l := range labels {
		if !validName(l.Name, true) || histogram && l.Name == "le" {
			return false
		}
		for _, prev := range labels[:i] {
			if prev.Name == l.Name {
				return false
			}
		}
	}
	return true
}

// leText and leOpenMetrics are the classic buckets' le values, +Inf last.
// The text format spells a bound as any other float; OpenMetrics asks for
// its canonical form, which gives a whole number a ".0", and is what
// Prometheus also names the buckets it reads from protobuf: a series keeps
// its name whichever of the two formats it was scraped in.
var leText, leOpenMetrics = func() (text, om [len(classicBounds) + 1]string) {
	for i, ns := range classicBounds {
		b := appendFloat(nil, float64(ns)/1e9)
		text[i] = string(b)
		if !strings.ContainsAny(text[i], ".e") {
			b = append(b, ".0"...)
		}
		om[i] = string(b)
	}
	text[len(classicBounds)], om[len(classicBounds)] = "+Inf", "+Inf"
	return text, om
}()

// appendEscaped appends s with backslash and newline escaped, and double
// quote too when quote is set: label values in both formats, HELP text in
// OpenMetrics only (the text format leaves a HELP's quotes alone).
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// From 1e-4 up to maxPlain, values are written without an exponent:
// 1048576 rather than 1.048576e+06, 1796060448.95 rather than
// 1.79606044895e+09, which is how byte counts and timestamps read best.
// Every integer below maxPlain is exactly a float64, so a count is never
// written rounded.
const maxPlain = 1 << 53

// appendFloat writes v as both formats spell it: +Inf, -Inf, NaN, and
// otherwise the shortest decimal that parses back to v.
func appendFloat(b []byte, v float64) []byte {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case v == 0:
		// -0 too: the same value, one spelling.
		return append(b, '0')
	case 1e-4 <= a && a < maxPlain:
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
