package monitoring

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// TestMonitoringEndToEnd runs the example monitoring files against a real
// Prometheus scraping the slotproxy binary, which serves a load on a
// 3-master, 3-replica cluster: every dashboard query returns data, every
// alert is quiet while all is well, and the alerts meant for it fire when
// slots lose their master and when a master is killed, then clear.
func TestMonitoringEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), testBudget)
	defer cancel()
	prometheus, promtool := lookTools(t)
	s := &stack{t: t, ctx: ctx}
	s.c = clustertest.New(t, clustertest.Options{Masters: 3, Replicas: 1, NodeTimeout: 2 * time.Second})
	if err := s.c.WaitReplicas(ctx); err != nil {
		t.Fatal(err)
	}
	s.p = startProxy(t, ctx, s.c)
	s.prom = startPrometheus(t, ctx, prometheus, s.p.admin)
	startLoad(t, s.p.addr)

	s.checkHealthy()
	s.checkScrape(promtool)
	s.checkSlotsNotCovered()
	s.checkMasterKilled()
}

// testBudget bounds the whole end-to-end test, which takes 20s when all
// goes well: every wait in it ends by then.
const testBudget = 2 * time.Minute

// stack is what the end-to-end test runs.
type stack struct {
	t    *testing.T
	ctx  context.Context // ends with testBudget
	c    *clustertest.Cluster
	p    *proxyProcess
	prom *promServer
}

// checkHealthy waits until Prometheus has seen the load, then runs every
// query of the dashboard and every alert's expression.
func (s *stack) checkHealthy() {
	t, prom := s.t, s.prom
	t.Helper()
	s.poll(60*time.Second, func() error {
		for _, expr := range []string{
			`up{job="slotproxy"}`,
			`sum(rate(slotproxy_commands_total{command="get"}[1m])) > 0`,
			`sum(rate(slotproxy_commands_total{command="set"}[1m])) > 0`,
			`sum(rate(slotproxy_commands_total{command="mget"}[1m])) > 0`,
			`sum(rate(slotproxy_commands_total{command="incr", result="error"}[1m])) > 0`,
			`slotproxy_slots_covered == 16384`,
			`slotproxy_masters == 3`,
			`slotproxy_replicas == 3`,
		} {
			if v, err := prom.value(expr); err != nil {
				return err
			} else if v == 0 {
				return fmt.Errorf("%s: 0", expr)
			}
		}
		for _, q := range []float64{0.5, 0.99} {
			expr := fmt.Sprintf(`histogram_quantile(%g, sum by (le) (rate(slotproxy_command_duration_seconds_bucket{family="string"}[1m])))`, q)
			v, err := prom.value(expr)
			if err != nil {
				return err
			}
			if math.IsNaN(v) || v <= 0 || v > 10 {
				return fmt.Errorf("%s: %g", expr, v)
			}
		}
		return nil
	})

	d := loadDashboard(t)
	s.poll(30*time.Second, func() error {
		var empty []string
		for _, q := range d.queries() {
			res, err := prom.query(q.expr)
			if err != nil {
				return fmt.Errorf("panel %s: %w", q.panel, err)
			}
			if len(res) == 0 {
				empty = append(empty, fmt.Sprintf("panel %s: %s", q.panel, q.expr))
			}
		}
		if len(empty) > 0 {
			return fmt.Errorf("queries without data:\n%s", strings.Join(empty, "\n"))
		}
		return nil
	})

	// An alert's expression is a condition: it must parse and, with every
	// node up and the load's errors well under the threshold, select
	// nothing. A proxy just started is not ready until it has dialed every
	// master, which the first scrape asks it to: SlotproxyNotReady may be
	// pending for a moment, and must then leave ALERTS.
	rules := alertRules(t)
	s.poll(30*time.Second, func() error {
		var errs []error
		for _, r := range rules {
			res, err := prom.query(r.Expr)
			if err != nil {
				t.Fatalf("alert %s: %v", r.Alert, err)
			}
			if len(res) > 0 {
				errs = append(errs, fmt.Errorf("alert %s while all is well: %v", r.Alert, res))
			}
		}
		if res, err := prom.query(`ALERTS`); err != nil || len(res) > 0 {
			errs = append(errs, fmt.Errorf("ALERTS while all is well: %v %v", res, err))
		}
		return errors.Join(errs...)
	})
}

// checkScrape lints a scrape of /metrics with promtool, and checks that
// every slotproxy family it holds is on the dashboard and in the README.
func (s *stack) checkScrape(promtool string) {
	t, p := s.t, s.p
	t.Helper()
	code, body, err := p.get("/metrics")
	if err != nil || code != 200 {
		t.Fatalf("GET /metrics: %d %v", code, err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	var families []string
	for _, line := range strings.Split(body, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if name, _, _ := strings.Cut(rest, " "); strings.HasPrefix(name, "slotproxy_") {
				families = append(families, name)
			}
		}
	}
	if len(families) == 0 {
		t.Fatalf("no slotproxy family in /metrics:\n%s", body)
	}
	var exprs strings.Builder
	for _, q := range loadDashboard(t).queries() {
		exprs.WriteString(q.expr + "\n")
	}
	readme := readmeSection(t, "## Monitoring")
	for _, f := range families {
		if !strings.Contains(exprs.String(), f) {
			t.Errorf("%s is on no dashboard panel", f)
		}
		if !strings.Contains(readme, "`"+f+"`") {
			t.Errorf("%s is not in the README's Monitoring section", f)
		}
	}
}

// readmeSection returns the README's section under heading, up to the
// next heading of the same level.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no %q section", heading)
	}
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	return section
}

// checkSlotsNotCovered takes slot 0 away from its master on every node, as
// an unfinished reshard or a node removed with its slots would leave it:
// SlotsNotCovered and SlotproxyNotReady fire and /readyz says why; once
// the slot is given back all three clear.
func (s *stack) checkSlotsNotCovered() {
	t, ctx, c, p, prom := s.t, s.ctx, s.c, s.p, s.prom
	t.Helper()
	owner := s.slotOwner(0)
	// The owner first: the others would otherwise learn the slot back
	// from its heartbeats.
	nodes := []string{owner}
	for _, n := range c.Nodes {
		if n.Addr != owner {
			nodes = append(nodes, n.Addr)
		}
	}
	for _, addr := range nodes {
		if err := c.Client(addr).ClusterDelSlots(ctx, 0).Err(); err != nil {
			t.Fatalf("CLUSTER DELSLOTS 0 on %s: %v", addr, err)
		}
	}
	expr := ruleExpr(t, "SlotsNotCovered")
	s.poll(30*time.Second, func() error {
		if code, body, err := p.get("/readyz"); err != nil || code != 503 || !strings.Contains(body, "16383 of 16384") {
			return fmt.Errorf("/readyz with slot 0 unassigned: %d %q %v", code, body, err)
		}
		if res, err := prom.query(expr); err != nil || len(res) != 1 || res[0].Value != 16383 {
			return fmt.Errorf("SlotsNotCovered's expression with slot 0 unassigned: %v %v", res, err)
		}
		if err := alertActive(prom, "SlotsNotCovered"); err != nil {
			return err
		}
		return alertActive(prom, "SlotproxyNotReady")
	})

	if err := c.Client(owner).ClusterAddSlots(ctx, 0).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTS 0 on %s: %v", owner, err)
	}
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	s.poll(30*time.Second, func() error {
		if code, body, err := p.get("/readyz"); err != nil || code != 200 {
			return fmt.Errorf("/readyz with slot 0 back: %d %q %v", code, body, err)
		}
		if res, err := prom.query(expr); err != nil || len(res) != 0 {
			return fmt.Errorf("SlotsNotCovered's expression with slot 0 back: %v %v", res, err)
		}
		if err := alertGone(prom, "SlotsNotCovered"); err != nil {
			return err
		}
		return alertGone(prom, "SlotproxyNotReady")
	})
}

// slotOwner returns the address of the master serving slot.
func (s *stack) slotOwner(slot int64) string {
	s.t.Helper()
	slots, err := s.c.Client(s.c.Seeds()[0]).ClusterSlots(s.ctx).Result()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, r := range slots {
		if int64(r.Start) <= slot && slot <= int64(r.End) && len(r.Nodes) > 0 {
			return r.Nodes[0].Addr
		}
	}
	s.t.Fatalf("no master serves slot %d: %v", slot, slots)
	return ""
}

// checkMasterKilled kills a master with kill -9 and follows the failover
// from outside, as an operator would: through Prometheus and /readyz.
func (s *stack) checkMasterKilled() {
	t, ctx, c, p, prom := s.t, s.ctx, s.c, s.p, s.prom
	t.Helper()
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var master *clustertest.Node
	for _, n := range c.Nodes {
		if n.Addr == masters[0] {
			master = n
		}
	}
	replicas, err := c.Replicas(ctx, master.Addr)
	if err != nil || len(replicas) == 0 {
		t.Fatalf("replicas of %s: %v %v", master.Addr, replicas, err)
	}
	errorsBefore := promValue(t, prom, `sum(slotproxy_backend_errors_total)`)
	refreshesBefore := promValue(t, prom, `sum(slotproxy_slot_table_refreshes_total)`)
	notReadyExpr := ruleExpr(t, "SlotproxyNotReady")

	if err := master.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// The outage lasts a few seconds: every condition is looked at in each
	// round, and when it was first seen is kept.
	var notReady, alerted, promoted time.Duration
	s.poll(45*time.Second, func() error {
		if notReady == 0 {
			if code, body, err := p.get("/readyz"); err == nil && code == 503 && strings.Contains(body, master.Addr) {
				notReady = time.Since(killed)
				t.Logf("/readyz while %s is down: %d %s", master.Addr, code, strings.TrimSpace(body))
			}
		}
		if alerted == 0 {
			res, err := prom.query(notReadyExpr)
			if err != nil {
				return err
			}
			if len(res) == 1 && alertActive(prom, "SlotproxyNotReady") == nil {
				alerted = time.Since(killed)
			}
		}
		if promoted == 0 {
			role, err := c.Client(replicas[0].Addr).Do(ctx, "ROLE").Slice()
			if err == nil && len(role) > 0 && role[0] == "master" {
				promoted = time.Since(killed)
			}
		}
		var missing []string
		if notReady == 0 {
			missing = append(missing, "/readyz answering 503 for "+master.Addr)
		}
		if alerted == 0 {
			missing = append(missing, "SlotproxyNotReady")
		}
		if promoted == 0 {
			missing = append(missing, replicas[0].Addr+" promoted")
		}
		if len(missing) > 0 {
			return errors.New("waiting for: " + strings.Join(missing, ", "))
		}
		return nil
	})
	if err := c.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}

	s.poll(30*time.Second, func() error {
		if code, body, err := p.get("/readyz"); err != nil || code != 200 {
			return fmt.Errorf("/readyz after the failover: %d %q %v", code, body, err)
		}
		for _, expr := range []string{
			`slotproxy_slots_covered == 16384`,
			`slotproxy_masters == 3`,
			fmt.Sprintf(`sum(slotproxy_backend_errors_total) > %g`, errorsBefore),
			fmt.Sprintf(`sum(slotproxy_backend_errors_total{node=%q, kind="dial"}) > 0`, master.Addr),
			fmt.Sprintf(`sum(slotproxy_slot_table_refreshes_total) > %g`, refreshesBefore),
		} {
			res, err := prom.query(expr)
			if err != nil {
				return err
			}
			if len(res) == 0 {
				return fmt.Errorf("after the failover, no data for %s", expr)
			}
		}
		masterRole := fmt.Sprintf(`slotproxy_backend_connections{node=%q, role="master"}`, master.Addr)
		if res, err := prom.query(masterRole); err != nil || len(res) != 0 {
			return fmt.Errorf("the killed node is still a master to the proxy: %v %v", res, err)
		}
		if res, err := prom.query(notReadyExpr); err != nil || len(res) != 0 {
			return fmt.Errorf("SlotproxyNotReady's expression after the failover: %v %v", res, err)
		}
		return alertGone(prom, "SlotproxyNotReady")
	})
	ready := time.Since(killed)
	window := fmt.Sprintf("%ds", int(ready.Seconds())+1)
	// Only logged: the cluster keeps listing a dead master's slots as its
	// own until a replica takes over, so slotproxy_slots_covered is not
	// expected to drop, and SlotproxyNotReady, not SlotsNotCovered, is the
	// alert for a dead master.
	t.Logf("master %s killed; /readyz 503 after %v, SlotproxyNotReady active after %v, %s promoted after %v, ready again within %v; lowest slotproxy_slots_covered since the kill: %g",
		master.Addr, notReady.Round(time.Millisecond), alerted.Round(time.Millisecond), replicas[0].Addr,
		promoted.Round(time.Millisecond), ready.Round(time.Millisecond),
		promValue(t, prom, `min_over_time(slotproxy_slots_covered[`+window+`])`))
	if res, err := prom.query(`sum by (trigger) (increase(slotproxy_slot_table_refreshes_total[` + window + `])) > 0`); err == nil {
		t.Logf("slot table refreshes since the kill, by trigger: %v", res)
	}
}

// alertActive returns nil once Prometheus has alert pending or firing.
func alertActive(prom *promServer, alert string) error {
	res, err := prom.query(fmt.Sprintf(`ALERTS{alertname=%q}`, alert))
	if err != nil {
		return err
	}
	if len(res) == 0 {
		return fmt.Errorf("%s is neither pending nor firing", alert)
	}
	return nil
}

// alertGone returns nil once Prometheus no longer has alert pending or
// firing.
func alertGone(prom *promServer, alert string) error {
	res, err := prom.query(fmt.Sprintf(`ALERTS{alertname=%q}`, alert))
	if err != nil {
		return err
	}
	if len(res) > 0 {
		return fmt.Errorf("%s still active: %v", alert, res)
	}
	return nil
}

func promValue(t *testing.T, prom *promServer, expr string) float64 {
	t.Helper()
	v, err := prom.value(expr)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// poll calls check every quarter second until it returns nil, and fails
// the test with check's last error after timeout, or sooner when the
// test's budget runs out. Each round may run dozens of queries:
// clustertest.Eventually's 20ms would keep Prometheus busy.
func (s *stack) poll(timeout time.Duration, check func() error) {
	s.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	if d, ok := s.ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("after %v: %v", time.Since(start).Round(time.Millisecond), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// startLoad runs, until the test ends, a plain client's commands through
// the proxy at a steady pace: SET, GET, a cross-slot MGET and INCR on keys
// spread over every master, and now and then an INCR of a string, which
// is an error reply.
func startLoad(t *testing.T, addr string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DisableIdentity: true})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			key := fmt.Sprintf("monitoring:%d", i%64)
			rdb.Set(ctx, key, i, 0)
			rdb.Get(ctx, key)
			rdb.MGet(ctx, key, "monitoring:a", "monitoring:b", "monitoring:c")
			rdb.Incr(ctx, "monitoring:counter")
			if i%50 == 0 {
				rdb.Set(ctx, "monitoring:text", "x", 0)
				rdb.Incr(ctx, "monitoring:text")
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		rdb.Close()
	})
}
