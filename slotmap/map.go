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
	"sync/atomic"
	"time"
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
	// RefreshInterval is the period of background refreshes; zero means 10s.
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
	kick    chan string // refresh requests; capacity 1 coalesces them
	ready   chan struct{}
	readyOK atomic.Bool
	static  bool // built by Static: never discovers
	stats   refreshStats
}

// New returns a Map that has no table yet; Run discovers it.
func New(opts Options) (*Map, error) {
	if len(opts.Seeds) == 0 {
		return nil, errors.New("slotmap: no seeds")
	}
	opts.setDefaults()
	return &Map{opts: opts, kick: make(chan string, 1), ready: make(chan struct{})}, nil
}

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
		retry = min(retry*2, m.opts.RefreshInterval, 2*time.Second)
	}

	tick := time.NewTicker(m.opts.RefreshInterval)
	defer tick.Stop()
	for {
		reason := "periodic"
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case reason = <-m.kick:
		}
		err := m.RefreshNow(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		m.stats.count(reason, err)
		if err != nil {
			m.opts.Logger.Warn("slot table refresh failed", "trigger", reason, "err", err)
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
		m.opts.Logger.Info("slot table changed", "from", from, "slots_moved", moved, "masters", len(t.shards),
			"replicas", t.Replicas(), "slots_covered", t.covered, "layout", t.String())
	}
	if m.readyOK.CompareAndSwap(false, true) {
		close(m.ready)
	}
}
