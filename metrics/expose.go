package metrics

import (
	"math"
	"strconv"
)

// The two exposition formats /metrics answers in, as Content-Type values.
const (
	textContentType        = "text/plain; version=0.0.4; charset=utf-8"
	openMetricsContentType = "application/openmetrics-text; version=1.0.0; charset=utf-8"
)

// appendExposition appends every family's HELP, TYPE and samples to b, in
// the Prometheus text format 0.0.4 or, with openMetrics, in OpenMetrics
// 1.0.0. The formats differ only in a counter's family name (OpenMetrics
// drops _total from HELP and TYPE), in HELP escaping double quotes, and in
// OpenMetrics' closing # EOF.
func (r *Registry) appendExposition(b []byte, openMetrics bool) []byte {
	r.scrapeMu.Lock()
	defer r.scrapeMu.Unlock()
	w := &expositionWriter{b: b, openMetrics: openMetrics}
	emit := w.emit
	if p := r.families.Load(); p != nil {
		for _, f := range *p {
			header := len(w.b)
			w.f, w.samples = f, 0
			w.appendHeader()
			f.collect(emit)
			if w.samples == 0 {
				w.b = w.b[:header]
			}
		}
	}
	if openMetrics {
		w.b = append(w.b, "# EOF\n"...)
	}
	return w.b
}

// expositionWriter is one scrape in progress; its emit method is the Emit
// each family's collect function is given.
type expositionWriter struct {
	b           []byte
	openMetrics bool
	f           *family // the family being collected
	samples     int     // written for f so far
}

func (w *expositionWriter) appendHeader() {
	name := w.f.name
	if w.openMetrics {
		name = w.f.familyName()
	}
	w.b = append(w.b, "# HELP "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ' ')
	w.b = appendEscaped(w.b, w.f.help, w.openMetrics)
	w.b = append(w.b, "\n# TYPE "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, w.f.typ.String()...)
	w.b = append(w.b, '\n')
}

// emit writes one sample line. A sample whose label names are invalid or
// repeated is left out: one bad sample must not make the whole scrape
// unparseable, and label names are constants in the code that a test of
// its collector catches.
func (w *expositionWriter) emit(value float64, labels ...Label) {
	for i, l := range labels {
		if !validName(l.Name, true) {
			return
		}
		for _, prev := range labels[:i] {
			if prev.Name == l.Name {
				return
			}
		}
	}
	w.samples++
	w.b = append(w.b, w.f.name...)
	if len(labels) > 0 {
		w.b = append(w.b, '{')
		for i, l := range labels {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = append(w.b, l.Name...)
			w.b = append(w.b, `="`...)
			w.b = appendEscaped(w.b, l.Value, true)
			w.b = append(w.b, '"')
		}
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, ' ')
	w.b = appendFloat(w.b, value)
	w.b = append(w.b, '\n')
}

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
