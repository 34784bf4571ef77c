package proxy

import "testing"

func TestPeakGauge(t *testing.T) {
	var g peakGauge
	for range 1000 {
		g.add(1)
	}
	if g.fell() {
		t.Fatal("fell at its peak")
	}
	// Down by 700 since the last look: far and by more than half.
	for range 700 {
		g.add(-1)
	}
	if !g.fell() {
		t.Fatal("1000 -> 300 did not count as a fall")
	}
	if g.fell() {
		t.Fatal("the same fall counted twice")
	}

	// A rise and fall between two looks still counts (sessions resumed
	// and ended within one sweep).
	for range 400 {
		g.add(1)
	}
	for range 400 {
		g.add(-1)
	}
	if !g.fell() {
		t.Fatal("300 -> 700 -> 300 between looks did not count")
	}

	// Small or shallow falls do not: a fall of one less than
	// returnMemoryAfter, though by more than half, nor 2000 -> 1200, by
	// less than half.
	for range 300 - 2*returnMemoryAfter {
		g.add(-1)
	}
	g.fell()
	for range returnMemoryAfter - 1 {
		g.add(-1)
	}
	if g.fell() {
		t.Fatalf("a fall of %d counted", returnMemoryAfter-1)
	}
	for range 2000 - g.cur.Load() {
		g.add(1)
	}
	g.fell()
	for range 800 {
		g.add(-1)
	}
	if g.fell() {
		t.Fatal("2000 -> 1200 counted")
	}
}
