package metrics

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/encoding/protodelim"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
)

// decodeFamilies reads a delimited stream of MetricFamily messages with
// the protobuf runtime and client_model's generated types: the decoder
// client_golang's own tests use, and Prometheus' wire format.
func decodeFamilies(t *testing.T, b []byte) []*dto.MetricFamily {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(b))
	var fams []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		err := protodelim.UnmarshalFrom(r, mf)
		if errors.Is(err, io.EOF) {
			return fams
		}
		if err != nil {
			t.Fatalf("decoding family %d: %v", len(fams), err)
		}
		fams = append(fams, mf)
	}
}

func label(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)}
}

// classicBuckets builds the classic buckets from cumulative counts.
func classicBuckets(cumulative [len(classicBounds)]uint64) []*dto.Bucket {
	var bs []*dto.Bucket
	for i, ns := range classicBounds {
		bs = append(bs, &dto.Bucket{CumulativeCount: proto.Uint64(cumulative[i]), UpperBound: proto.Float64(float64(ns) / 1e9)})
	}
	return bs
}

func span(offset int32, length uint32) *dto.BucketSpan {
	return &dto.BucketSpan{Offset: proto.Int32(offset), Length: proto.Uint32(length)}
}

// TestProtobufDecodes: the hand-written encoding of a registry with every
// kind of family, decoded by the protobuf runtime, is exactly the messages
// expected. The native buckets are worked out by hand from the schema's
// definition, not from the code under test.
func TestProtobufDecodes(t *testing.T) {
	r := histogramRegistry(t)
	// Buckets 0, 2 and 5 (a gap of one, then two: one span) and 9 (a gap
	// of three: a second span).
	spread := NewHistogram()
	for _, d := range []time.Duration{time.Second, time.Second, time.Second, 1100 * time.Millisecond, 1500 * time.Millisecond, 1500 * time.Millisecond, 2100 * time.Millisecond, 500} {
		spread.Observe(d)
	}
	r.MustRegisterHistogram("app_spread_seconds", "Buckets in two spans.", func(emit EmitHistogram) { emit(spread) })
	// Enough label sets for a family longer than 16 KiB: its length takes
	// three bytes, and the messages after it must still be found.
	r.MustRegister("app_many", "Many label sets.", Gauge, func(emit Emit) {
		for i := range 1000 {
			emit(float64(i), Label{"i", strconv.Itoa(i)}, Label{"pad", strings.Repeat("x", 10)})
		}
		emit(math.Inf(1), Label{"i", "inf"})
		emit(1, Label{"0bad", "left out"})
	})

	b := r.appendProtobuf(nil)
	if len(b) < 16<<10 {
		t.Fatalf("scrape of %d bytes, want one over 16 KiB", len(b))
	}
	got := decodeFamilies(t, b)

	many := &dto.MetricFamily{Name: proto.String("app_many"), Help: proto.String("Many label sets."), Type: dto.MetricType_GAUGE.Enum()}
	for i := range 1000 {
		many.Metric = append(many.Metric, &dto.Metric{
			Label: []*dto.LabelPair{label("i", strconv.Itoa(i)), label("pad", strings.Repeat("x", 10))},
			Gauge: &dto.Gauge{Value: proto.Float64(float64(i))},
		})
	}
	many.Metric = append(many.Metric, &dto.Metric{Label: []*dto.LabelPair{label("i", "inf")}, Gauge: &dto.Gauge{Value: proto.Float64(math.Inf(1))}})

	want := []*dto.MetricFamily{
		{
			Name: proto.String("app_latency_seconds"),
			Help: proto.String(`Latency "of" commands\.`),
			Type: dto.MetricType_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{
				{
					Label: []*dto.LabelPair{label("cmd", "get"), label("path", `a"b`)},
					Histogram: &dto.Histogram{
						// 40µs, 1ms twice, 3s, 20s.
						SampleCount:   proto.Uint64(5),
						SampleSum:     proto.Float64(23.00204),
						Bucket:        classicBuckets([17]uint64{1, 1, 1, 1, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 4}),
						Schema:        proto.Int32(3),
						ZeroThreshold: proto.Float64(math.Exp2(-20)),
						ZeroCount:     proto.Uint64(0),
						// log2(seconds)*8, rounded up: 40µs in bucket -116,
						// 1ms in -79, 3s in 13, 20s in 35.
						PositiveSpan:  []*dto.BucketSpan{span(-116, 1), span(36, 1), span(91, 1), span(21, 1)},
						PositiveDelta: []int64{1, 1, -1, 0},
					},
				},
				{
					Label: []*dto.LabelPair{label("cmd", "set"), label("path", "")},
					Histogram: &dto.Histogram{
						SampleCount:   proto.Uint64(0),
						SampleSum:     proto.Float64(0),
						Bucket:        classicBuckets([17]uint64{}),
						Schema:        proto.Int32(3),
						ZeroThreshold: proto.Float64(math.Exp2(-20)),
						ZeroCount:     proto.Uint64(0),
					},
				},
			},
		},
		many,
		{
			Name: proto.String("app_requests_total"), Help: proto.String("Requests."), Type: dto.MetricType_COUNTER.Enum(),
			Metric: []*dto.Metric{{Label: []*dto.LabelPair{label("code", "200")}, Counter: &dto.Counter{Value: proto.Float64(3)}}},
		},
		{
			Name: proto.String("app_spread_seconds"), Help: proto.String("Buckets in two spans."), Type: dto.MetricType_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{
				Histogram: &dto.Histogram{
					SampleCount:   proto.Uint64(8),
					SampleSum:     proto.Float64(9.2000005),
					Bucket:        classicBuckets([17]uint64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 8, 8, 8}),
					Schema:        proto.Int32(3),
					ZeroThreshold: proto.Float64(math.Exp2(-20)),
					ZeroCount:     proto.Uint64(1), // 500ns
					// Buckets 0..5 hold 3,0,1,0,0,2; bucket 9 holds 1.
					PositiveSpan:  []*dto.BucketSpan{span(0, 6), span(3, 1)},
					PositiveDelta: []int64{3, -3, 1, -1, 0, 2, -1},
				},
			}},
		},
		{
			Name: proto.String("app_up"), Help: proto.String("Up."), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}},
		},
	}
	if len(got) != len(want) {
		for _, mf := range got {
			t.Logf("got family %s", mf.GetName())
		}
		t.Fatalf("%d families, want %d", len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("family %d:\n got %s\nwant %s", i, short(got[i]), short(want[i]))
		}
	}
}

// short prints a family, truncated: app_many's thousand metrics would
// bury the difference.
func short(mf *dto.MetricFamily) string {
	s := prototext.Format(mf)
	if len(s) > 4000 {
		s = s[:4000] + "..."
	}
	return s
}

// TestProtobufMatchesText: every family of NewRegistry's scrape, with a
// histogram added, decodes from protobuf with the name, type and number of
// label sets the text format shows; over HTTP, an Accept header asking for
// protobuf gets it.
func TestProtobufMatchesText(t *testing.T) {
	reg := NewRegistry()
	h := NewHistogram()
	h.Observe(time.Millisecond)
	reg.MustRegisterHistogram("test_seconds", "A histogram.", func(emit EmitHistogram) { emit(h) })
	a := startAdmin(t, reg, nil)
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	scrape := func(accept string) (string, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+a.addr+"/metrics", nil)
		req.Header.Set("Accept", accept)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
		}
		return resp.Header.Get("Content-Type"), body
	}
	ct, pb := scrape("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
	if ct != protobufContentType {
		t.Fatalf("Content-Type %q, want %q", ct, protobufContentType)
	}
	_, text := scrape("text/plain")

	fams := decodeFamilies(t, pb)
	if len(fams) < 10 {
		t.Fatalf("only %d families in the protobuf scrape", len(fams))
	}
	for _, mf := range fams {
		typ := strings.ToLower(mf.GetType().String())
		if !bytes.Contains(text, []byte("\n# TYPE "+mf.GetName()+" "+typ+"\n")) {
			t.Errorf("protobuf family %s (%s) is not in the text scrape", mf.GetName(), typ)
		}
		if !bytes.Contains(text, []byte("# HELP "+mf.GetName()+" "+mf.GetHelp()+"\n")) {
			t.Errorf("protobuf family %s: HELP %q differs from the text scrape's", mf.GetName(), mf.GetHelp())
		}
		sample := mf.GetName()
		if mf.GetType() == dto.MetricType_HISTOGRAM {
			sample += "_count"
		}
		if n := bytes.Count(text, []byte("\n"+sample+" ")) + bytes.Count(text, []byte("\n"+sample+"{")); n != len(mf.GetMetric()) {
			t.Errorf("family %s: %d metrics in protobuf, %d samples named %s in text", mf.GetName(), len(mf.GetMetric()), n, sample)
		}
	}
	if n := bytes.Count(text, []byte("\n# TYPE ")); n != len(fams) {
		t.Errorf("%d families in text, %d in protobuf", n, len(fams))
	}
}
