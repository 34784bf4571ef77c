package metrics

import (
	"encoding/binary"
	"math"
)

// protobufContentType is the Prometheus protobuf exposition format: a
// stream of io.prometheus.client.MetricFamily messages, each preceded by
// its length as a varint. Prometheus asks for it first when its native
// histograms are enabled, since no text format carries them.
const protobufContentType = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"

// appendProtobuf appends every family to b in the protobuf format. The
// messages are encoded here by hand, from the public metrics.proto of
// prometheus/client_model, because the protobuf runtime would take the
// binary's image up by megabytes for five small messages.
func (r *Registry) appendProtobuf(b []byte) []byte {
	w := &protobufWriter{e: protoEncoder{b: b}}
	r.scrape(w)
	return w.e.b
}

// The field numbers of metrics.proto's messages.
const (
	familyName   = 1 // MetricFamily
	familyHelp   = 2
	familyType   = 3
	familyMetric = 4

	metricLabel     = 1 // Metric
	metricGauge     = 2
	metricCounter   = 3
	metricHistogram = 7

	labelName  = 1 // LabelPair
	labelValue = 2

	valueField = 1 // Gauge, Counter

	histCount         = 1 // Histogram
	histSum           = 2
	histBucket        = 3
	histSchema        = 5
	histZeroThreshold = 6
	histZeroCount     = 7
	histPositiveSpan  = 12
	histPositiveDelta = 13

	bucketCumulativeCount = 1 // Bucket
	bucketUpperBound      = 2

	spanOffset = 1 // BucketSpan
	spanLength = 2
)

// The MetricType enum's values for the types a Registry has.
var protoTypes = [...]uint64{Counter: 0, Gauge: 1, histogramType: 4}

// protobufWriter is one scrape in the protobuf format.
type protobufWriter struct {
	e       protoEncoder
	snap    *histogramSnapshot
	f       *family
	family  int // where f's message begins, its length not yet written
	metrics int // Metric messages written for f so far
	spans   []nativeSpan
}

func (w *protobufWriter) setSnapshot(s *histogramSnapshot) { w.snap = s }

func (w *protobufWriter) beginFamily(f *family) {
	w.f, w.metrics = f, 0
	w.family = w.e.begin()
	// The counter's name keeps its _total, as the text format's does.
	w.e.string(familyName, f.name)
	w.e.string(familyHelp, f.help)
	w.e.uint(familyType, protoTypes[f.typ])
}

func (w *protobufWriter) endFamily() {
	if w.metrics == 0 {
		w.e.b = w.e.b[:w.family]
		return
	}
	w.e.end(w.family)
}

// emit writes a Metric with the labels and a Counter or Gauge; a sample
// with bad labels is left out, as the text formats leave it out.
func (w *protobufWriter) emit(value float64, labels ...Label) {
	if !validLabels(labels, false) {
		return
	}
	w.metrics++
	m := w.beginMetric(labels)
	field := metricGauge
	if w.f.typ == Counter {
		field = metricCounter
	}
	v := w.e.beginField(field)
	w.e.double(valueField, value)
	w.e.end(v)
	w.e.end(m)
}

func (w *protobufWriter) beginMetric(labels []Label) int {
	m := w.e.beginField(familyMetric)
	for _, l := range labels {
		p := w.e.beginField(metricLabel)
		w.e.string(labelName, l.Name)
		w.e.string(labelValue, l.Value)
		w.e.end(p)
	}
	return m
}

// emitHistogram writes a Metric whose Histogram has both forms: the
// classic buckets (cumulative, without +Inf, which the count implies) and
// the native ones, as spans of consecutive buckets and each bucket's count
// as the difference from the one before.
func (w *protobufWriter) emitHistogram(h *Histogram, labels ...Label) {
	if h == nil || !validLabels(labels, true) {
		return
	}
	w.metrics++
	s := w.snap
	h.snapshot(s)
	m := w.beginMetric(labels)
	hm := w.e.beginField(metricHistogram)
	w.e.uint(histCount, s.count)
	w.e.double(histSum, s.sum)
	var cumulative uint64
	for i, ns := range classicBounds {
		cumulative += s.classic[i]
		b := w.e.beginField(histBucket)
		w.e.uint(bucketCumulativeCount, cumulative)
		w.e.double(bucketUpperBound, float64(ns)/1e9)
		w.e.end(b)
	}
	w.e.sint(histSchema, nativeSchema)
	// Never zero: Prometheus 2.x tells a native histogram from a classic
	// one by a non-zero threshold, zero count or bucket.
	w.e.double(histZeroThreshold, nativeZeroThreshold)
	w.e.uint(histZeroCount, s.native[0])
	w.appendNativeBuckets(s.native[1:])
	w.e.end(hm)
	w.e.end(m)
}

// maxSpanGap is the longest run of empty buckets written as zero deltas
// inside a span rather than ending it: a byte or two each, against the
// next span's four or more.
const maxSpanGap = 2

// nativeSpan is a run of buckets written together, as positions in the
// buckets slice appendNativeBuckets is given; end is exclusive.
type nativeSpan struct{ start, end int }

// appendNativeBuckets writes the spans, then the deltas: a field's
// repeated values must stay in order, but two fields may come in any.
// buckets[i] is the count of bucket index i+nativeMinIndex.
func (w *protobufWriter) appendNativeBuckets(buckets []uint64) {
	w.spans = w.spans[:0]
	for i, c := range buckets {
		if c == 0 {
			continue
		}
		if n := len(w.spans); n > 0 && i-w.spans[n-1].end <= maxSpanGap {
			w.spans[n-1].end = i + 1
		} else {
			w.spans = append(w.spans, nativeSpan{i, i + 1})
		}
	}
	for k, sp := range w.spans {
		// The first span's offset is its first bucket's index; a later
		// one's the number of buckets skipped since the span before.
		offset := sp.start + nativeMinIndex
		if k > 0 {
			offset = sp.start - w.spans[k-1].end
		}
		m := w.e.beginField(histPositiveSpan)
		w.e.sint(spanOffset, int64(offset))
		w.e.uint(spanLength, uint64(sp.end-sp.start))
		w.e.end(m)
	}
	var prev uint64
	for _, sp := range w.spans {
		for _, c := range buckets[sp.start:sp.end] {
			w.e.sint(histPositiveDelta, int64(c-prev)) // negative when c < prev
			prev = c
		}
	}
}

// protoEncoder appends protobuf wire format to b. A nested message's
// length is only known once it is written, so begin leaves no room for it
// and end moves the message up by the length's size: a copy per level of
// nesting, which for a scrape of a few hundred small messages costs less
// than measuring each message first.
type protoEncoder struct {
	b []byte
}

const (
	wireVarint = 0
	wire64     = 1
	wireBytes  = 2
)

func (e *protoEncoder) tag(field, wire int) {
	e.b = binary.AppendUvarint(e.b, uint64(field)<<3|uint64(wire))
}

func (e *protoEncoder) uint(field int, v uint64) {
	e.tag(field, wireVarint)
	e.b = binary.AppendUvarint(e.b, v)
}

// sint writes a sint32 or sint64: zigzag, so that small negative numbers
// stay short.
func (e *protoEncoder) sint(field int, v int64) {
	e.tag(field, wireVarint)
	e.b = binary.AppendUvarint(e.b, uint64(v<<1)^uint64(v>>63))
}

func (e *protoEncoder) double(field int, v float64) {
	e.tag(field, wire64)
	e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(v))
}

func (e *protoEncoder) string(field int, s string) {
	e.tag(field, wireBytes)
	e.b = binary.AppendUvarint(e.b, uint64(len(s)))
	e.b = append(e.b, s...)
}

// beginField starts an embedded message in field; end finishes it.
func (e *protoEncoder) beginField(field int) int {
	e.tag(field, wireBytes)
	return e.begin()
}

// begin starts a message whose length end will put before it: an embedded
// one after beginField's tag, or a delimited one at the top level.
func (e *protoEncoder) begin() int { return len(e.b) }

func (e *protoEncoder) end(start int) {
	n := len(e.b) - start
	var l [binary.MaxVarintLen64]byte
	size := binary.PutUvarint(l[:], uint64(n))
	e.b = append(e.b, l[:size]...)
	copy(e.b[start+size:], e.b[start:start+n])
	copy(e.b[start:], l[:size])
}
