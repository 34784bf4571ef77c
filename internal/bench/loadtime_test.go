package main

import (
	"testing"
	"time"
)

// samples builds a sampling every 10 ms over total, the masters using
// busy CPUs' worth between from and to and a trickle otherwise.
var t0 = time.Unix(1000, 0)

func samples(total, from, to time.Duration, busy float64) []loadSample {
	var out []loadSample
	var cpu time.Duration
	for at := time.Duration(0); at <= total; at += loadTick {
		out = append(out, loadSample{at: t0.Add(at), cpu: cpu})
		share := 0.001 // serverCron
		if at >= from && at < to {
			share = busy
		}
		cpu += time.Duration(share * float64(loadTick))
	}
	return out
}

func TestLoadWindow(t *testing.T) {
	end := t0.Add(time.Hour) // no exit seen
	// Load from 0.2 s to 3.2 s, then the idle wait for redis-benchmark's
	// tick: the window is the load, within a sampling interval.
	d, ok := loadWindow(samples(3500*time.Millisecond, 200*time.Millisecond, 3200*time.Millisecond, 0.8), end)
	if !ok || d < 3*time.Second-loadTick || d > 3*time.Second+loadTick {
		t.Errorf("loadWindow = %v, %v; want 3s ± %v", d, ok, loadTick)
	}

	// The masters busy again at the exit (connections closing), after the
	// idle wait: not load.
	s := samples(3500*time.Millisecond, 200*time.Millisecond, 3200*time.Millisecond, 0.8)
	exit := len(s) - 2
	s[exit].cpu += 2 * time.Millisecond
	s[exit+1].cpu += 2 * time.Millisecond
	d, ok = loadWindow(s, s[exit].at.Add(-loadTick))
	if !ok || d < 3*time.Second-loadTick || d > 3*time.Second+loadTick {
		t.Errorf("with the exit's blip: loadWindow = %v, %v; want 3s ± %v", d, ok, loadTick)
	}
	if d, _ := loadWindow(s, end); d < 3200*time.Millisecond {
		t.Errorf("the blip counts when the exit is not known: %v", d)
	}

	// Idle masters: no window.
	if d, ok := loadWindow(samples(time.Second, 0, 0, 0), end); ok {
		t.Errorf("idle: loadWindow = %v, true; want none", d)
	}

	// A single busy interval has no length to measure.
	if d, ok := loadWindow(samples(time.Second, 500*time.Millisecond, 505*time.Millisecond, 0.8), end); ok {
		t.Errorf("one interval: loadWindow = %v, true; want none", d)
	}

	// Light load still counts: 10% of a CPU is over the threshold.
	if d, ok := loadWindow(samples(2*time.Second, 0, time.Second, 0.1), end); !ok || d < time.Second-2*loadTick || d > time.Second+loadTick {
		t.Errorf("light load: loadWindow = %v, %v; want 1s", d, ok)
	}
}
