// Package slotmap knows where every key of a Redis Cluster lives: the CRC16
// hash slot of a key, and an immutable slot -> master (and replicas) table
// discovered from seed nodes and kept fresh by periodic and on-demand
// refreshes.
//
// It knows nothing of clients or backend connections: callers read the
// current table with Table (an atomic load) and report what they observe
// (a MOVED reply, a dead master) with Patch and Refresh.
package slotmap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slotproxy/slotproxy/internal/oplog"
)

// Options configure a Map.
type Options struct {
	// Seeds are the "host:port" addresses tried to discover the cluster.
	// Once a table is known, its masters are asked first and the seeds
	// are a fallback. At least one is required.
	Seeds []string
	// Username and Password authenticate to the nodes (AUTH); an empty
	// Username means the default user (requirepass style). Empty
	// Password means no AUTH.
	Username, Password string
	// RefreshInterval is the period of background refreshes; zero means
	// 10s. SetRefreshInterval changes it while Run runs.
	RefreshInterval time.Duration
	// MinRefreshGap is the least time between two refreshes triggered on
	// demand, so a storm of triggers costs one refresh; zero means 100ms.
	MinRefreshGap time.Duration
	// DialTimeout and ReadTimeout bound each discovery exchange; zero
	// means 1s and 3s.
	DialTimeout, ReadTimeout time.Duration
	// Logger receives one line per topology change and per failed
	// discovery; nil means no logs.
	Logger *slog.Logger
	// Dial opens a connection to a node; nil means plain TCP. The router's
	// dialer goes here too, so that discovery speaks TLS when it does.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// TLS says Dial speaks TLS: a node is then dialed on the tls-port
	// CLUSTER SHARDS announces (a node with tls-cluster announces both
	// ports when it also has a plaintext one). CLUSTER SLOTS needs no
	// telling: a node answers it with the port of the connection's kind.
	TLS bool
}

func (o *Options) setDefaults() {
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = 10 * time.Second
	}
	if o.MinRefreshGap <= 0 {
		o.MinRefreshGap = 100 * time.Millisecond
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 3 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Dial == nil {
		d := &net.Dialer{}
		o.Dial = func(ctx context.Context, addr string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", addr)
		}
	}
}

// Map holds the current slot table of one cluster.
type Map struct {
	opts    Options
	current atomic.Pointer[Table]
	kick    chan string   // refresh requests; capacity 1 coalesces them
	every   atomic.Int64  // the refresh period, in ns
	retick  chan struct{} // every changed; capacity 1
	// failures limits the lines about failed refreshes: while no node
	// answers, every request for a dead master triggers one, up to ten
	// a second.
	failures *oplog.Limiter
	ready    chan struct{}
	readyOK  atomic.Bool
	static   bool // built by Static: never discovers
	stats    refreshStats
}

// New returns a Map that has no table yet; Run discovers it.
func New(opts Options) (*Map, error) {
	if len(opts.Seeds) == 0 {
		return nil, errors.New("slotmap: no seeds")
	}
	opts.setDefaults()
	m := &Map{opts: opts, kick: make(chan string, 1), retick: make(chan struct{}, 1), ready: make(chan struct{}),
		failures: oplog.NewLimiter(10*time.Second, 1)}
	m.every.Store(int64(opts.RefreshInterval))
	return m, nil
}

// SetRefreshInterval changes the period of background refreshes, from
// the next tick; zero or less means 10s.
func (m *Map) SetRefreshInterval(d time.Duration) {
	if d <= 0 {
		d = 10 * time.Second
	}
	m.every.Store(int64(d))
	select {
	case m.retick <- struct{}{}:
	default:
	}
}

func (m *Map) refreshInterval() time.Duration { return time.Duration(m.every.Load()) }

// Table returns the current table, or nil while no node has answered yet.
func (m *Map) Table() *Table { return m.current.Load() }

// Ready is closed once the first table is published.
func (m *Map) Ready() <-chan struct{} { return m.ready }

// Refresh asks for a refresh soon, without waiting for it. Requests made
// while one is pending are merged into it. reason is logged.
func (m *Map) Refresh(reason string) {
	select {
	case m.kick <- reason:
	default:
	}
}

// Patch records that slot is served by the master at addr, as a MOVED reply
// says, so that the retry does not wait for the refresh it also triggers.
func (m *Map) Patch(slot uint16, addr string) {
	if slot >= NumSlots {
		return
	}
	for {
		t := m.current.Load()
		if t == nil || t.Master(slot) == addr {
			break
		}
		if m.current.CompareAndSwap(t, t.withSlot(slot, addr)) {
			break
		}
	}
	m.Refresh("moved")
}

// Run discovers the table and keeps it fresh until ctx ends. Until a node
// answers it retries, with a log line per failed round.
func (m *Map) Run(ctx context.Context) error {
	if m.static {
		return m.runStatic(ctx)
	}
	retry := 100 * time.Millisecond
	for m.Table() == nil {
		err := m.RefreshNow(ctx)
		m.stats.count("startup", err)
		if err == nil {
			break
		}
		m.opts.Logger.Warn("cluster discovery failed, retrying", "err", err, "in", retry)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(retry):
		}
		retry = min(retry*2, m.refreshInterval(), 2*time.Second)
	}

	tick := time.NewTicker(m.refreshInterval())
	defer tick.Stop()
	for {
		reason := "periodic"
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.retick:
			tick.Reset(m.refreshInterval())
			continue
		case <-tick.C:
		case reason = <-m.kick:
		}
		err := m.RefreshNow(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.stats.count(reason, err)
		if err != nil {
			m.failures.Log(m.opts.Logger, slog.LevelWarn, "refresh", "slot table refresh failed", "trigger", reason, "err", err)
		}
		// Triggers that arrive during the gap are merged into one refresh.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(m.opts.MinRefreshGap):
		}
	}
}

// RefreshNow asks the known masters, then the seeds, for the table, and
// publishes the first answer.
func (m *Map) RefreshNow(ctx context.Context) error {
	if m.static {
		return nil
	}
	var errs []error
	var best *Table
	var bestFrom string
	for _, addr := range m.candidates() {
		t, err := m.fetch(ctx, addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if t.covered == NumSlots {
			m.publish(t, addr)
			return nil
		}
		// A node that left the cluster (del-node resets it) or is not
		// part of it yet sees few slots or none; so does a cluster that
		// lost some. Another node may know better: the table that covers
		// the most is taken only once every node has been asked.
		if best == nil || t.covered > best.covered {
			best, bestFrom = t, addr
		}
	}
	if best != nil && best.covered > 0 {
		m.publish(best, bestFrom)
		return nil
	}
	if best != nil {
		errs = append(errs, fmt.Errorf("%s: no node serves any slot", bestFrom))
	}
	return fmt.Errorf("%w: %w", ErrNoSeed, errors.Join(errs...))
}

// candidates lists the nodes to ask: the current masters in random order
// (spreading the load of many proxies), then the seeds.
func (m *Map) candidates() []string {
	var addrs []string
	if t := m.Table(); t != nil {
		for _, s := range t.shards {
			addrs = append(addrs, s.Master.Addr)
		}
		rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	}
	for _, s := range m.opts.Seeds {
		if !slices.Contains(addrs, s) {
			addrs = append(addrs, s)
		}
	}
	return addrs
}

func (m *Map) publish(t *Table, from string) {
	old := m.current.Swap(t)
	m.stats.lastOK.Store(time.Now().UnixNano())
	if old == nil {
		m.opts.Logger.Info("slot table discovered", "from", from, "masters", len(t.shards),
			"replicas", t.Replicas(), "slots_covered", t.covered, "layout", t.String())
	} else if moved := old.diff(t); moved > 0 || len(old.shards) != len(t.shards) || old.Replicas() != t.Replicas() {
		m.opts.Logger.Info("slot table changed", changeAttrs(old, t, from, moved)...)
	}
	if m.readyOK.CompareAndSwap(false, true) {
		close(m.ready)
	}
}

// changeAttrs describes a new table for its one log line: besides the
// figures of the table, which masters gained or lost how many slots
// ("10.0.0.2:7000=+1365 10.0.0.1:7000=-1365") and which masters came or
// went, so that a reshard or a failover reads from one line rather than
// from a line per slot.
func changeAttrs(old, t *Table, from string, moved int) []any {
	before, after := old.slotCounts(), t.slotCounts()
	var deltas []string
	for addr, n := range after {
		if d := n - before[addr]; d != 0 {
			deltas = append(deltas, fmt.Sprintf("%s=%+d", addr, d))
		}
	}
	for addr, n := range before {
		if _, ok := after[addr]; !ok && n != 0 {
			deltas = append(deltas, fmt.Sprintf("%s=%+d", addr, -n))
		}
	}
	slices.Sort(deltas)
	args := []any{"from", from, "slots_moved", moved}
	if len(deltas) > 0 {
		args = append(args, "slot_changes", strings.Join(deltas, " "))
	}
	if added := missingFrom(before, after); len(added) > 0 {
		args = append(args, "masters_added", strings.Join(added, ","))
	}
	if removed := missingFrom(after, before); len(removed) > 0 {
		args = append(args, "masters_removed", strings.Join(removed, ","))
	}
	return append(args, "masters", len(t.shards), "replicas", t.Replicas(),
		"slots_covered", t.covered, "layout", t.String())
}

// slotCounts returns how many slots each master serves, by address.
func (t *Table) slotCounts() map[string]int {
	counts := make(map[string]int, len(t.shards))
	for _, s := range t.shards {
		counts[s.Master.Addr] = 0
	}
	for _, i := range t.slots {
		if i != noShard {
			counts[t.shards[i].Master.Addr]++
		}
	}
	return counts
}

// missingFrom returns the keys of b that a lacks, sorted.
func missingFrom(a, b map[string]int) []string {
	var out []string
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
