package metrics

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// classicBounds are the classic buckets' inclusive upper bounds, in
// nanoseconds: from a local reply (tens of µs) to a request that waited out
// several backend timeouts. Observe compares them with a Duration as
// integers, so a value on a bound is counted in that bound's bucket exactly.
var classicBounds = [...]int64{
	50e3, 100e3, 250e3, 500e3, // µs
	1e6, 2.5e6, 5e6, 10e6, 25e6, 50e6, 100e6, 250e6, 500e6, // ms
	1e9, 2.5e9, 5e9, 10e9, // s
}

// The native histogram uses Prometheus' exponential buckets of schema 3:
// bucket i holds the values in (2^((i-1)/8), 2^(i/8)] seconds, each bound
// 9% above the one before. The buckets are a fixed array, so that Observe
// neither locks nor allocates: they run from just under 1µs to 256s, which
// covers every latency the proxy can measure. A value at or below
// nativeZeroThreshold (2^-20 s, about 954ns) goes to the zero bucket, which
// Prometheus reads as [0, threshold]; a value above 256s goes to the last
// bucket, whose bound then understates it, though _sum stays exact.
const (
	nativeSchema = 3

	nativeMinIndex = -8*20 + 1 // the first bucket above the zero bucket: (2^-20, 2^-19.875] s
	nativeMaxIndex = 8 * 8     // the last bucket: (2^7.875, 2^8] s
	// nativeSlots counts the zero bucket, in slot 0, and the others: bucket
	// i is in slot i-nativeMinIndex+1.
	nativeSlots = nativeMaxIndex - nativeMinIndex + 2
)

var nativeZeroThreshold = math.Exp2(-20)

// nativeMantissas are the mantissa bits of 2^(k/8) for k = 1..7: the bucket
// bounds between two powers of two, which share their exponent bits.
var nativeMantissas = func() (m [7]uint64) {
	for k := range m {
		m[k] = math.Float64bits(math.Exp2(float64(k+1)/8)) & mantissaMask
	}
	return m
}()

const mantissaMask = 1<<52 - 1

// Histogram records durations in a classic histogram (the buckets in
// classicBounds) and a native one (see nativeSchema) at once, for
// exposition in either form. Observe may be called from any number of
// goroutines; it takes no lock and allocates nothing. A Histogram costs
// about 4 KiB.
//
// A scrape must see the count, the sum and every bucket from one moment,
// or Prometheus may find more observations in the buckets than in the count
// (and reject a native histogram so made). So observations go to one of two
// sets of counters, the hot one; a scrape makes the other set hot, waits for
// the observations already started on the old one to finish, reads it, and
// folds it into the new hot set.
type Histogram struct {
	// hotAndStarted's top bit selects the hot set; the other bits count
	// the observations ever started.
	hotAndStarted atomic.Uint64
	counts        [2]histogramCounts

	mu sync.Mutex // serialises snapshots
}

type histogramCounts struct {
	// finished is added to last by Observe: once it equals the number of
	// observations started on this set, all of them are in the buckets.
	finished atomic.Uint64
	// sumNanos wraps only after 584 years of summed latency.
	sumNanos atomic.Uint64
	classic  [len(classicBounds) + 1]atomic.Uint64 // per bucket, the last for +Inf
	native   [nativeSlots]atomic.Uint64
}

// NewHistogram returns an empty latency histogram. Its observations are in
// seconds, so the name it is registered under ends in _seconds.
func NewHistogram() *Histogram {
	return &Histogram{}
}

// Observe records one duration. A negative one, which a monotonic clock
// cannot produce, is recorded as zero.
func (h *Histogram) Observe(d time.Duration) {
	d = max(d, 0)
	classic, native := classicSlot(d), nativeSlot(d)
	n := h.hotAndStarted.Add(1)
	c := &h.counts[n>>63]
	c.sumNanos.Add(uint64(d))
	c.classic[classic].Add(1)
	c.native[native].Add(1)
	c.finished.Add(1)
}

// classicSlot returns the index of the first bound d is not above, by a
// binary search that always takes five steps.
func classicSlot(d time.Duration) int {
	lo, hi := 0, len(classicBounds)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if int64(d) > classicBounds[mid] {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// nativeSlot returns the slot of the native bucket holding d. The bucket's
// index is 8 times the power of two below d in seconds, plus how many of
// the eight bounds between that power and the next d is above: the
// exponent and the mantissa of d as a float64, with no logarithm.
func nativeSlot(d time.Duration) int {
	// A division rather than a multiplication by 1e-9, which is not exact:
	// the quotient is the float nearest the true value, so a duration on a
	// bound that is a float (2^-9 s is 1953125ns) lands in its bucket.
	v := float64(d) / 1e9
	if v <= nativeZeroThreshold {
		return 0
	}
	bits := math.Float64bits(v)
	exp := int(bits>>52) - 1023 // v is positive and normal: no sign bit, no subnormal
	mant := bits & mantissaMask
	i := 8 * exp
	if mant != 0 {
		// Above the power of two itself: at least in the next bucket,
		// and one further for each inner bound below v.
		i++
		for _, m := range nativeMantissas {
			// Both are below 2^52: the difference's sign bit says
			// whether mant is above m, without a branch to mispredict.
			i += int((m - mant) >> 63)
		}
	}
	return min(i, nativeMaxIndex) - nativeMinIndex + 1
}

// Count returns how many observations have been made, those a few atomic
// adds from done included: a counter that only goes up, read without the
// lock a snapshot takes.
func (h *Histogram) Count() uint64 { return h.hotAndStarted.Load() &^ (1 << 63) }

// histogramSnapshot is a histogram as read at one moment.
type histogramSnapshot struct {
	count   uint64
	sum     float64 // seconds
	classic [len(classicBounds) + 1]uint64
	native  [nativeSlots]uint64
}

// snapshot reads h into s; see Histogram for how it stays consistent.
func (h *Histogram) snapshot(s *histogramSnapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.hotAndStarted.Add(1 << 63)
	started := n &^ (1 << 63)
	hot, cold := &h.counts[n>>63], &h.counts[n>>63^1]
	// The observations still under way on cold are a few atomic adds
	// from done.
	for cold.finished.Load() != started {
		runtime.Gosched()
	}

	s.count = started
	sumNanos := cold.sumNanos.Swap(0)
	s.sum = float64(sumNanos) / 1e9
	hot.sumNanos.Add(sumNanos)
	for i := range cold.classic {
		v := cold.classic[i].Swap(0)
		s.classic[i] = v
		hot.classic[i].Add(v)
	}
	for i := range cold.native {
		v := cold.native[i].Swap(0)
		s.native[i] = v
		if v != 0 {
			hot.native[i].Add(v)
		}
	}
	// Last, as in Observe: the next snapshot waits for hot's finished to
	// reach everything started, the observations folded in included.
	cold.finished.Store(0)
	hot.finished.Add(started)
}
