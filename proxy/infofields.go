package proxy

// How INFO is read and written: the masters' replies parsed into
// sections of fields, the arithmetic that merges a field over masters, and
// the writer that prints sections as redis-server does.

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// infoWriter writes sections as redis does: a "# Title" line, "name:value"
// lines, a blank line between sections and none after the last.
type infoWriter struct {
	b       strings.Builder
	written map[string]bool // the fields of the current section
}

func (w *infoWriter) section(title string) {
	if w.b.Len() > 0 {
		w.b.WriteString("\r\n")
	}
	w.b.WriteString("# ")
	w.b.WriteString(title)
	w.b.WriteString("\r\n")
	clear(w.written)
}

func (w *infoWriter) str(name, value string) {
	w.written[name] = true
	w.b.WriteString(name)
	w.b.WriteByte(':')
	w.b.WriteString(value)
	w.b.WriteString("\r\n")
}

func (w *infoWriter) int(name string, v int64) { w.str(name, strconv.FormatInt(v, 10)) }

// float prints v as redis prints its "%.2f" figures.
func (w *infoWriter) float(name string, v float64) {
	w.str(name, strconv.FormatFloat(v, 'f', 2, 64))
}

// bytes prints n and, after it, name_human as redis writes byte counts.
func (w *infoWriter) bytes(name string, n int64) {
	w.int(name, n)
	w.str(name+"_human", bytesToHuman(n))
}

func (w *infoWriter) sum(f infoFields, name string) { w.int(name, f.sum(name)) }
func (w *infoWriter) max(f infoFields, name string) { w.int(name, f.maxOr(name, 0)) }
func (w *infoWriter) min(f infoFields, name string) { w.int(name, f.min(name)) }
func (w *infoWriter) maxOr(f infoFields, name string, none int64) {
	w.int(name, f.maxOr(name, none))
}

// status prints "err" when any master reports a failure, else "ok".
func (w *infoWriter) status(f infoFields, name string) {
	for _, v := range f.values(name) {
		if v != "ok" {
			w.str(name, v)
			return
		}
	}
	w.str(name, "ok")
}

// rest prints the fields the masters print that the writer has not: those
// of a newer redis, with the first master's value, since nothing is known
// of how they would merge.
func (w *infoWriter) rest(f infoFields) {
	for _, s := range f {
		for _, l := range s.lines() {
			if !w.written[l.name] {
				w.str(l.name, f.first(l.name))
			}
		}
	}
}

// infoLine is one "name:value" line.
type infoLine struct{ name, value string }

// infoSection is one section of one master's reply.
type infoSection struct {
	list  []infoLine
	index map[string]int // the first line of each name
}

func (s *infoSection) lines() []infoLine {
	if s == nil {
		return nil
	}
	return s.list
}

func (s *infoSection) get(name string) (string, bool) {
	if s == nil {
		return "", false
	}
	i, ok := s.index[name]
	if !ok {
		return "", false
	}
	return s.list[i].value, true
}

// masterInfo is one master's INFO reply by section, keyed by the lower-case
// title ("server", "keyspace", ...).
type masterInfo map[string]*infoSection

func (m masterInfo) section(name string) *infoSection { return m[name] }

// parseMasterInfo splits an INFO reply into sections and lines. It takes
// "\n" as well as "\r\n" and skips what is not a "name:value" line.
func parseMasterInfo(text string) masterInfo {
	m := make(masterInfo)
	var cur *infoSection
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if title, ok := strings.CutPrefix(line, "# "); ok {
			cur = &infoSection{index: make(map[string]int)}
			m[strings.ToLower(strings.TrimSpace(title))] = cur
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || cur == nil {
			continue
		}
		if _, dup := cur.index[name]; !dup {
			cur.index[name] = len(cur.list)
		}
		cur.list = append(cur.list, infoLine{name, value})
	}
	return m
}

// infoMasters are the parsed replies of the masters that answered, in the
// order given, and the one of them with the lowest redis_version.
type infoMasters struct {
	all []masterInfo
	ref masterInfo // nil when no master answered
}

func newInfoMasters(texts []string) *infoMasters {
	ms := &infoMasters{}
	var low []int
	for _, t := range texts {
		m := parseMasterInfo(t)
		if len(m) == 0 {
			continue // a master that did not answer
		}
		ms.all = append(ms.all, m)
		v, _ := m.section("server").get("redis_version")
		if cur := infoVersion(v); ms.ref == nil || compareVersions(cur, low) < 0 {
			ms.ref, low = m, cur
		}
	}
	return ms
}

// section returns one section of every master.
func (ms *infoMasters) section(name string) infoFields {
	f := make(infoFields, len(ms.all))
	for i, m := range ms.all {
		f[i] = m.section(name)
	}
	return f
}

// infoVersion reads "7.0.15" as [7 0 15]; a part that is not a number reads
// as 0. An empty version is nil, which compares above every other, so that
// a master that printed none is not taken as the lowest.
func infoVersion(v string) []int {
	if v == "" {
		return nil
	}
	var parts []int
	for p := range strings.SplitSeq(v, ".") {
		n, _ := strconv.Atoi(p)
		parts = append(parts, n)
	}
	return parts
}

func compareVersions(a, b []int) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return slices.Compare(a, b)
}

// infoFields is one section as each master printed it; an entry is nil
// where a master printed no such section.
type infoFields []*infoSection

func (f infoFields) values(name string) []string {
	var vs []string
	for _, s := range f {
		if v, ok := s.get(name); ok {
			vs = append(vs, v)
		}
	}
	return vs
}

func (f infoFields) has(name string) bool { return len(f.values(name)) > 0 }

func (f infoFields) ints(name string) []int64 {
	var ns []int64
	for _, v := range f.values(name) {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			ns = append(ns, n)
		}
	}
	return ns
}

func (f infoFields) sum(name string) int64 {
	var total int64
	for _, n := range f.ints(name) {
		total += n
	}
	return total
}

func (f infoFields) maxOr(name string, none int64) int64 {
	ns := f.ints(name)
	if len(ns) == 0 {
		return none
	}
	return slices.Max(ns)
}

func (f infoFields) min(name string) int64 {
	ns := f.ints(name)
	if len(ns) == 0 {
		return 0
	}
	return slices.Min(ns)
}

func (f infoFields) floats(name string) []float64 {
	var xs []float64
	for _, v := range f.values(name) {
		if x, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64); err == nil {
			xs = append(xs, x)
		}
	}
	return xs
}

func (f infoFields) sumFloat(name string) float64 {
	var total float64
	for _, x := range f.floats(name) {
		total += x
	}
	return total
}

func (f infoFields) maxFloat(name string) float64 {
	xs := f.floats(name)
	if len(xs) == 0 {
		return 0
	}
	return slices.Max(xs)
}

func (f infoFields) minFloat(name string) float64 {
	xs := f.floats(name)
	if len(xs) == 0 {
		return 0
	}
	return slices.Min(xs)
}

// first is the value of the first master that prints name, "" if none does.
func (f infoFields) first(name string) string { return f.firstOr(name, "") }

func (f infoFields) firstOr(name, none string) string {
	if vs := f.values(name); len(vs) > 0 {
		return vs[0]
	}
	return none
}

// infoRatio is num/den as redis prints its memory ratios: computed in single
// precision, as redis does, so that one master's figures come out the same.
// With no denominator it falls back to the first master's figure.
func infoRatio(f infoFields, name string, num, den int64) string {
	if den <= 0 {
		return f.firstOr(name, "0.00")
	}
	return strconv.FormatFloat(float64(float32(num)/float32(den)), 'f', 2, 64)
}

// infoPercent is 100*num/den followed by "%", in single precision as redis
// computes it.
func infoPercent(f infoFields, name string, num, den int64) string {
	if den <= 0 {
		return f.firstOr(name, "0.00%")
	}
	return strconv.FormatFloat(float64(float32(num)*100/float32(den)), 'f', 2, 64) + "%"
}

// bytesToHuman writes a byte count as redis does: 1023B, 1.00K, 943.42M,
// ..., and plain bytes again from 1024P up.
func bytesToHuman(n int64) string {
	if n >= 1024 {
		for i, unit := range "KMGTP" {
			scale := int64(1) << (10 * (i + 1))
			if n < scale<<10 {
				return strconv.FormatFloat(float64(n)/float64(scale), 'f', 2, 64) + string(unit)
			}
		}
	}
	return strconv.FormatInt(n, 10) + "B"
}

// infoSeconds prints a CPU time as redis does: seconds and microseconds.
func infoSeconds(d time.Duration) string {
	us := d.Microseconds()
	frac := strconv.FormatInt(us%1e6, 10)
	return strconv.FormatInt(us/1e6, 10) + "." + strings.Repeat("0", 6-len(frac)) + frac
}

// infoPair returns the value of key in a "k=v,k=v" value, "" if absent.
func infoPair(value, key string) string {
	for kv := range strings.SplitSeq(value, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

func infoPairInt(value, key string) int64 {
	n, _ := strconv.ParseInt(infoPair(value, key), 10, 64)
	return n
}

// infoTopPercentile is the latency of the last (highest) percentile of a
// "p50=1.003,p99=2.007,p99.9=4.015" value.
func infoTopPercentile(value string) float64 {
	i := strings.LastIndexByte(value, '=')
	if i < 0 {
		return 0
	}
	x, _ := strconv.ParseFloat(value[i+1:], 64)
	return x
}

// infoSafe keeps a value of the proxy's own on one line, as redis replaces
// the characters that would break its format in the names it prints.
func infoSafe(s string) string {
	return strings.NewReplacer("\r", "_", "\n", "_").Replace(s)
}
