package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// redis-benchmark with --threads (both sides here) stops its threads at
// the first 250 ms tick of its progress timer after the last reply, and its
// req/s divides by the time up to that tick: a 3 s run reads up to 8% slow,
// by chance, on either side (req/s values of one run fall on n/3.00 s,
// n/3.25 s, ...). So req/s here is n divided by the time the servers that
// do the data work spent on the run's load (the masters for the direct and
// proxy sides, the standalone redis-server for its own): their main
// threads' CPU time (/proc/<pid>/schedstat) is sampled every loadTick while
// redis-benchmark runs, and the load window goes from the middle of the
// first sampling interval in which the servers were busy to the middle of
// the last one that ended a loadTick before redis-benchmark exited: its exit
// closes its connections, which keeps the servers busy for a moment too.
// The same clock serves every side.
const (
	loadTick = 10 * time.Millisecond
	// busyShare is the share of one CPU the servers together must use in
	// an interval for it to count as carrying load; an idle redis-server
	// uses almost none (serverCron every 100 ms).
	busyShare = 0.05
)

type loadSample struct {
	at  time.Time
	cpu time.Duration // the servers' main threads, summed
}

// loadSampler samples the servers' main threads until stop is called.
type loadSampler struct {
	pids    []int
	samples []loadSample
	stop    chan struct{}
	done    chan struct{}
}

func startLoadSampler(pids []int) *loadSampler {
	s := &loadSampler{pids: pids, stop: make(chan struct{}), done: make(chan struct{})}
	s.sample()
	go func() {
		defer close(s.done)
		t := time.NewTicker(loadTick)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				s.sample()
				return
			case <-t.C:
				s.sample()
			}
		}
	}()
	return s
}

func (s *loadSampler) sample() {
	var sum time.Duration
	for _, pid := range s.pids {
		ns, err := mainThreadCPU(pid)
		if err != nil {
			return // a gap: the neighbouring samples span it
		}
		sum += ns
	}
	s.samples = append(s.samples, loadSample{at: time.Now(), cpu: sum})
}

// window stops the sampler and returns how long the servers carried load
// before exited, when redis-benchmark was seen to exit; ok is false when no
// such window was seen.
func (s *loadSampler) window(exited time.Time) (d time.Duration, ok bool) {
	close(s.stop)
	<-s.done
	return loadWindow(s.samples, exited.Add(-loadTick))
}

// loadWindow finds the first and last sampling intervals, of those ending
// by until, in which the servers were busy, and returns the time between
// their middles.
func loadWindow(samples []loadSample, until time.Time) (time.Duration, bool) {
	first, last := -1, -1
	for i := 1; i < len(samples) && !samples[i].at.After(until); i++ {
		dt := samples[i].at.Sub(samples[i-1].at)
		if dt <= 0 {
			continue
		}
		if float64(samples[i].cpu-samples[i-1].cpu) > busyShare*float64(dt) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 || last == first {
		return 0, false
	}
	mid := func(i int) time.Time { return samples[i-1].at.Add(samples[i].at.Sub(samples[i-1].at) / 2) }
	return mid(last).Sub(mid(first)), true
}

// mainThreadCPU is the first field of /proc/<pid>/schedstat: nanoseconds
// on CPU of the main thread, where redis-server runs its commands.
func mainThreadCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("/proc/%d/schedstat: empty", pid)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(ns), err
}
