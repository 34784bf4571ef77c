package slotmap

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slotproxy/slotproxy/metrics"
)

// refreshStats counts refreshes by what triggered them. Refreshes are
// rare (coalesced, at least MinRefreshGap apart): a mutex is enough.
type refreshStats struct {
	mu     sync.Mutex
	counts map[string]*[2]uint64 // trigger -> [ok, failed]
	lastOK atomic.Int64          // unix ns of the last table published
}

func (s *refreshStats) count(trigger string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = make(map[string]*[2]uint64)
	}
	c := s.counts[trigger]
	if c == nil {
		c = new([2]uint64)
		s.counts[trigger] = c
	}
	if err != nil {
		c[1]++
	} else {
		c[0]++
	}
}

// RefreshStat is how many refreshes one trigger caused, by result.
type RefreshStat struct {
	Trigger    string // "startup", "periodic", "moved", "clusterdown", "dial failure", ...
	OK, Failed uint64
}

// RefreshStats returns the refreshes made so far, by trigger, sorted.
func (m *Map) RefreshStats() []RefreshStat {
	s := &m.stats
	s.mu.Lock()
	out := make([]RefreshStat, 0, len(s.counts))
	for t, c := range s.counts {
		out = append(out, RefreshStat{Trigger: t, OK: c[0], Failed: c[1]})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b RefreshStat) int { return strings.Compare(a.Trigger, b.Trigger) })
	return out
}

// LastRefresh returns when a table was last published, or the zero time.
func (m *Map) LastRefresh() time.Time {
	if ns := m.stats.lastOK.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// RegisterMetrics adds the slot table's families to reg.
func (m *Map) RegisterMetrics(reg *metrics.Registry) {
	reg.MustRegister("slotproxy_slot_table_refreshes_total",
		"Slot table refreshes, by what triggered them and whether a table came of it.",
		metrics.Counter, func(emit metrics.Emit) {
			for _, s := range m.RefreshStats() {
				trigger := metrics.Label{Name: "trigger", Value: strings.ReplaceAll(s.Trigger, " ", "_")}
				emit(float64(s.OK), trigger, metrics.Label{Name: "result", Value: "ok"})
				emit(float64(s.Failed), trigger, metrics.Label{Name: "result", Value: "failed"})
			}
		})
	reg.MustRegister("slotproxy_slot_table_last_refresh_timestamp_seconds",
		"When a slot table was last learned from the cluster, in seconds since the epoch.",
		metrics.Gauge, func(emit metrics.Emit) {
			if t := m.LastRefresh(); !t.IsZero() {
				emit(float64(t.UnixNano()) / 1e9)
			}
		})
	table := func(f func(t *Table) int) func(metrics.Emit) {
		return func(emit metrics.Emit) {
			n := 0
			if t := m.Table(); t != nil {
				n = f(t)
			}
			emit(float64(n))
		}
	}
	reg.MustRegister("slotproxy_slots_covered", "Hash slots that have a master in the slot table, out of 16384.",
		metrics.Gauge, table(func(t *Table) int { return t.Covered() }))
	reg.MustRegister("slotproxy_masters", "Masters in the slot table.",
		metrics.Gauge, table(func(t *Table) int { return len(t.Shards()) }))
	reg.MustRegister("slotproxy_replicas", "Replicas in the slot table.",
		metrics.Gauge, table(func(t *Table) int { return t.Replicas() }))
}
