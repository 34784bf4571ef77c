package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// The load: each client owns groups of keys, each group under one hash
// tag (so that its MGET is one slot for a cluster client too), and loops
// over SET (half its requests, with a value that only grows), GET and
// MGET of a group.
const (
	loadClients     = 20
	groupsPerClient = 4
	keysPerGroup    = 5
)

// load runs the workload through clients made by newClient and keeps
// what they saw.
type load struct {
	side string

	stop    chan struct{}
	wg      sync.WaitGroup
	clients []*clientStats
}

// clientStats is one client's record; only its goroutine writes it until
// the load stops.
type clientStats struct {
	requests int
	errs     map[string]int
	lat      []time.Duration
	acked    map[string]int64 // key → the highest value a SET of it was acknowledged with
	sent     map[string]int64 // key → the highest value sent, acknowledged or not
	// lastOK is when a request on each group of keys last succeeded
	// (unix ns, read by waitServed), and stall the longest a group went
	// without one: how long its slot could not be used, whether the
	// client waited or got errors.
	lastOK [groupsPerClient]atomic.Int64
	stall  time.Duration
}

// startLoad starts loadClients clients, each with its own connection(s)
// from newClient, prefixing their keys with side.
func startLoad(side string, newClient func() redis.UniversalClient) *load {
	l := &load{side: side, stop: make(chan struct{})}
	for i := range loadClients {
		cs := &clientStats{errs: map[string]int{}, acked: map[string]int64{}, sent: map[string]int64{}}
		l.clients = append(l.clients, cs)
		l.wg.Add(1)
		go l.run(i, cs, newClient())
	}
	return l
}

func keyOf(side string, client, group, key int) string {
	return fmt.Sprintf("chaos:%s:{c%d-g%d}:%d", side, client, group, key)
}

func (l *load) run(id int, cs *clientStats, rdb redis.UniversalClient) {
	defer l.wg.Done()
	defer rdb.Close()
	ctx := context.Background()
	var seq int64
	for g := range cs.lastOK {
		cs.lastOK[g].Store(time.Now().UnixNano())
	}
	for n := 0; ; n++ {
		select {
		case <-l.stop:
			return
		default:
		}
		g, k := n/keysPerGroup%groupsPerClient, n%keysPerGroup
		key := keyOf(l.side, id, g, k)
		start := time.Now()
		var err error
		switch op := n % 10; {
		case op < 5:
			seq++
			cs.sent[key] = seq
			err = rdb.Set(ctx, key, seq, 0).Err()
			if err == nil {
				cs.acked[key] = seq
			}
		case op < 9:
			err = rdb.Get(ctx, key).Err()
			if errors.Is(err, redis.Nil) {
				err = nil
			}
		default:
			keys := make([]string, keysPerGroup)
			for j := range keys {
				keys[j] = keyOf(l.side, id, g, j)
			}
			err = rdb.MGet(ctx, keys...).Err()
		}
		now := time.Now()
		cs.requests++
		cs.lat = append(cs.lat, now.Sub(start))
		if err != nil {
			cs.errs[errorKind(err)]++
			continue
		}
		cs.stall = max(cs.stall, now.Sub(time.Unix(0, cs.lastOK[g].Load())))
		cs.lastOK[g].Store(now.UnixNano())
	}
}

// waitServed waits, at most within, until every client of the load has
// had a successful request on each of its groups of keys since since:
// every slot the load uses is served.
func (l *load) waitServed(since time.Time, within time.Duration) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(within)
	for {
		served := true
		for _, cs := range l.clients {
			for g := range cs.lastOK {
				if cs.lastOK[g].Load() < since.UnixNano() {
					served = false
				}
			}
		}
		if served {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the %s load's slots not all served within %v", l.side, within)
		}
		<-tick.C
	}
}

// errorKind names the kind of a failed request, for the table.
func errorKind(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "may or may not have run"):
		return "may-have-run"
	case strings.HasPrefix(msg, "MOVED") || strings.HasPrefix(msg, "ASK"):
		return "redirect"
	case strings.HasPrefix(msg, "CLUSTERDOWN"):
		return "clusterdown"
	case strings.HasPrefix(msg, "TRYAGAIN"):
		return "tryagain"
	case strings.HasPrefix(msg, "LOADING"):
		return "loading"
	case strings.HasPrefix(msg, "READONLY"):
		return "readonly"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return "connection"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if i := strings.IndexAny(msg, " :"); i > 0 {
		msg = msg[:i]
	}
	return "other:" + msg
}

// result is what a stopped load saw, with the writes checked against the
// cluster.
type result struct {
	scenario, side string
	requests       int
	errors         int
	kinds          map[string]int
	stall          time.Duration
	p99, max       time.Duration
	acked          int // acknowledged SETs' keys checked
	lost           int // keys whose value is older than their last acknowledged SET
}

// finish stops the load and reads every key it wrote from the cluster
// through check, which must be a client that sees the whole cluster.
func (l *load) finish(ctx context.Context, scenario string, check redis.UniversalClient) (result, error) {
	close(l.stop)
	l.wg.Wait()
	r := result{scenario: scenario, side: l.side, kinds: map[string]int{}}
	var lat []time.Duration
	for _, cs := range l.clients {
		r.requests += cs.requests
		r.stall = max(r.stall, cs.stall)
		for k, n := range cs.errs {
			r.kinds[k] += n
			r.errors += n
		}
		lat = append(lat, cs.lat...)
		for key, want := range cs.acked {
			r.acked++
			got, err := check.Get(ctx, key).Int64()
			if err != nil && !errors.Is(err, redis.Nil) {
				return r, fmt.Errorf("reading back %s: %w", key, err)
			}
			if got < want {
				r.lost++
			}
			if got > cs.sent[key] {
				return r, fmt.Errorf("%s = %d, above anything written (%d)", key, got, cs.sent[key])
			}
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		r.p99 = lat[len(lat)*99/100]
		r.max = lat[len(lat)-1]
	}
	return r, nil
}

func (r result) kindsString() string {
	if len(r.kinds) == 0 {
		return "none"
	}
	var parts []string
	for k, n := range r.kinds {
		parts = append(parts, k+" "+strconv.Itoa(n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func (r result) row() string {
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + " ms"
	}
	return fmt.Sprintf("| %s | %s | %d | %d (%s) | %s | %s | %s | %d | %d |",
		r.scenario, r.side, r.requests, r.errors, r.kindsString(), ms(r.stall), ms(r.p99), ms(r.max), r.acked, r.lost)
}

const tableHeader = "| scenario | client | requests | errors (kinds) | longest stall | p99 | max | keys with acknowledged writes | writes lost |\n|---|---|---:|---|---:|---:|---:|---:|---:|"
