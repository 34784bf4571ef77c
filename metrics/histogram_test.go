package metrics

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// nativeIndex is the Prometheus bucket index of a slot nativeSlot returns.
func nativeIndex(slot int) int { return slot - 1 + nativeMinIndex }

// TestNativeSlotBounds checks nativeSlot against the definition of schema
// 3's buckets, computed the slow way: bucket i holds (2^((i-1)/8), 2^(i/8)].
func TestNativeSlotBounds(t *testing.T) {
	check := func(d time.Duration) {
		t.Helper()
		v := float64(d) / 1e9
		slot := nativeSlot(d)
		if v <= nativeZeroThreshold {
			if slot != 0 {
				t.Errorf("%v (%g s): slot %d, want the zero bucket", d, v, slot)
			}
			return
		}
		i := nativeIndex(slot)
		lower, upper := math.Exp2(float64(i-1)/8), math.Exp2(float64(i)/8)
		if i == nativeMaxIndex && v > upper {
			return // the last bucket takes what is above it
		}
		if !(lower < v && v <= upper) {
			t.Errorf("%v (%g s): bucket %d, which holds (%g, %g]", d, v, i, lower, upper)
		}
	}

	// The edges.
	for _, d := range []time.Duration{0, 1, 953, 954, 1000, time.Microsecond, 1953125, 1953124, 1953126, time.Second, 256 * time.Second, time.Hour} {
		check(d)
	}
	for _, tt := range []struct {
		d    time.Duration
		want int // bucket index, or math.MinInt for the zero bucket
	}{
		{-time.Second, math.MinInt},
		{0, math.MinInt},
		{953, math.MinInt}, // 2^-20 s is 953.67ns
		{954, nativeMinIndex},
		{1953125, -72}, // exactly 2^-9 s: the top of its bucket
		{1953126, -71},
		{time.Second, 0},
		{time.Second + 1, 1},
		{2 * time.Second, 8},
		{256 * time.Second, nativeMaxIndex},
		{time.Hour, nativeMaxIndex},
	} {
		slot := nativeSlot(max(tt.d, 0))
		got := math.MinInt
		if slot != 0 {
			got = nativeIndex(slot)
		}
		if got != tt.want {
			t.Errorf("%v: bucket %d, want %d", tt.d, got, tt.want)
		}
	}

	// Every bound's neighbourhood, and a log-uniform sweep.
	for i := nativeMinIndex; i <= nativeMaxIndex; i++ {
		ns := math.Exp2(float64(i)/8) * 1e9
		for _, d := range []time.Duration{time.Duration(ns) - 1, time.Duration(ns), time.Duration(ns) + 1} {
			// A duration within a rounding error of the bound could go
			// either way; the bound itself is not a whole nanosecond
			// except at powers of two, checked above.
			if math.Abs(float64(d)-ns) > 1e-6*ns || float64(d) == ns {
				check(d)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		check(time.Duration(math.Exp2(rng.Float64()*30-22) * 1e9))
	}
}

func TestClassicSlot(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{50 * time.Microsecond, 0},
		{50*time.Microsecond + 1, 1},
		{time.Millisecond, 4},
		{time.Millisecond + 1, 5},
		{10 * time.Second, len(classicBounds) - 1},
		{10*time.Second + 1, len(classicBounds)},
		{time.Hour, len(classicBounds)},
	} {
		if got := classicSlot(tt.d); got != tt.want {
			t.Errorf("classicSlot(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
	for i, b := range classicBounds {
		if i > 0 && b <= classicBounds[i-1] {
			t.Errorf("classic bounds not increasing at %d", i)
		}
		if classicSlot(time.Duration(b)) != i || classicSlot(time.Duration(b)+1) != i+1 {
			t.Errorf("bound %d (%dns) is not the top of its bucket", i, b)
		}
	}
}

// TestHistogramSnapshot: what is observed is what a snapshot reads, and a
// snapshot does not lose or double what it folds back.
func TestHistogramSnapshot(t *testing.T) {
	h := NewHistogram()
	var s histogramSnapshot
	h.snapshot(&s)
	if s.count != 0 || s.sum != 0 {
		t.Errorf("empty histogram: count %d, sum %g", s.count, s.sum)
	}

	observed := []time.Duration{100, 40 * time.Microsecond, 2 * time.Millisecond, 2 * time.Millisecond, 3 * time.Second, time.Hour, -5}
	for _, d := range observed {
		h.Observe(d)
	}
	want := func(rounds int) histogramSnapshot {
		var w histogramSnapshot
		var sum time.Duration
		for range rounds {
			for _, d := range observed {
				d = max(d, 0)
				w.count++
				sum += d
				w.classic[classicSlot(d)]++
				w.native[nativeSlot(d)]++
			}
		}
		w.sum = float64(sum) / 1e9
		return w
	}
	for i := range 3 {
		h.snapshot(&s)
		if w := want(1); s != w {
			t.Fatalf("snapshot %d:\n got %+v\nwant %+v", i, s, w)
		}
	}
	for _, d := range observed {
		h.Observe(d)
	}
	h.snapshot(&s)
	if w := want(2); s != w {
		t.Fatalf("after observing again:\n got %+v\nwant %+v", s, w)
	}
	if s.native[0] != 4 || s.classic[0] != 6 || s.classic[len(classicBounds)] != 2 {
		t.Errorf("zero bucket %d (want 4: 100ns and -5 twice), first classic %d (want 6), +Inf only %d (want 2)",
			s.native[0], s.classic[0], s.classic[len(classicBounds)])
	}
}

// TestHistogramConcurrent: snapshots taken while many goroutines observe
// are each consistent (count, sum and buckets from one moment) and never
// go back, and the last one holds every observation. Run it with -race.
func TestHistogramConcurrent(t *testing.T) {
	h := NewHistogram()
	const goroutines, each = 8, 20000
	durations := [2]time.Duration{300 * time.Microsecond, 7 * time.Millisecond}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				h.Observe(durations[g%2])
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()

	check := func(s *histogramSnapshot, prev uint64) {
		t.Helper()
		var classic, native uint64
		for _, c := range s.classic {
			classic += c
		}
		for _, c := range s.native {
			native += c
		}
		short := s.classic[classicSlot(durations[0])]
		long := s.classic[classicSlot(durations[1])]
		sum := float64(time.Duration(short)*durations[0]+time.Duration(long)*durations[1]) / 1e9
		if classic != s.count || native != s.count || short+long != s.count ||
			s.native[nativeSlot(durations[0])] != short || s.native[nativeSlot(durations[1])] != long || s.sum != sum {
			t.Fatalf("inconsistent snapshot: count %d, classic %d, native %d, %d short + %d long, sum %g want %g",
				s.count, classic, native, short, long, s.sum, sum)
		}
		if s.count < prev {
			t.Fatalf("count went back from %d to %d", prev, s.count)
		}
	}
	var s histogramSnapshot
	var prev uint64
	snapshots := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		h.snapshot(&s)
		check(&s, prev)
		prev = s.count
		snapshots++
	}
	h.snapshot(&s)
	check(&s, prev)
	if s.count != goroutines*each {
		t.Errorf("count %d after all %d observations", s.count, goroutines*each)
	}
	t.Logf("%d snapshots while observing", snapshots)
}

func TestObserveDoesNotAllocate(t *testing.T) {
	h := NewHistogram()
	d := time.Duration(0)
	if n := testing.AllocsPerRun(1000, func() {
		d += 7919
		h.Observe(d)
	}); n != 0 {
		t.Errorf("Observe: %v allocations per call, want 0", n)
	}
}

// durationsForBench spread over the buckets a proxy sees, so that the
// branch predictor does not learn one path.
func durationsForBench() []time.Duration {
	rng := rand.New(rand.NewPCG(3, 4))
	ds := make([]time.Duration, 1024)
	for i := range ds {
		ds[i] = time.Duration(math.Exp2(rng.Float64()*14-15) * 1e9) // 30µs to 0.5s
	}
	return ds
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := NewHistogram()
	ds := durationsForBench()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.Observe(ds[i&1023])
	}
}

func BenchmarkHistogramObserveParallel(b *testing.B) {
	h := NewHistogram()
	ds := durationsForBench()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			h.Observe(ds[i&1023])
			i++
		}
	})
}

func BenchmarkNativeSlot(b *testing.B) {
	ds := durationsForBench()
	n := 0
	for i := 0; b.Loop(); i++ {
		n += nativeSlot(ds[i&1023])
	}
	if n == 0 {
		b.Fatal("no slots")
	}
}

// TestHistogramCount: Count is the number of observations, before and
// after snapshots fold the counts from one set into the other.
func TestHistogramCount(t *testing.T) {
	h := NewHistogram()
	for i := range 10 {
		h.Observe(time.Duration(i) * time.Millisecond)
	}
	var s histogramSnapshot
	h.snapshot(&s)
	h.Observe(time.Second)
	if got := h.Count(); got != 11 || s.count != 10 {
		t.Errorf("Count = %d after 11 observations (snapshot of 10: %d)", got, s.count)
	}
	h.snapshot(&s)
	if got := h.Count(); got != 11 || s.count != 11 {
		t.Errorf("Count = %d, snapshot %d, want 11", got, s.count)
	}
}
