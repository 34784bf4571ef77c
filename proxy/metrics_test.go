package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/metrics"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

// serveAdmin serves p's metrics on a free loopback port, as main wires
// them, and returns the admin listener's base URL.
func serveAdmin(t *testing.T, p *testProxy) string {
	t.Helper()
	reg := metrics.NewRegistry()
	p.Server.RegisterMetrics(reg)
	p.Router.RegisterMetrics(reg)
	p.Slots.RegisterMetrics(reg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		metrics.Serve(ctx, ln, metrics.NewAdmin(reg, metrics.AdminOptions{Ready: p.Router.Ready}))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return "http://" + ln.Addr().String()
}

// scrape reads /metrics and returns every sample by its name and labels
// as written ("slotproxy_commands_total{command=\"get\",result=\"ok\"}").
func scrape(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return samples
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetrics: what clients do through a real proxy shows in its metrics,
// by command, result, family, node and trigger.
func TestMetrics(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{}, router.Options{})
	base := serveAdmin(t, p)
	ctx := context.Background()
	cl := p.client(t, "")

	before := scrape(t, base)
	const n = 25
	for i := range n {
		if err := cl.Set(ctx, "m:k", i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := cl.Get(ctx, "m:k").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Do(ctx, "NOSUCHCOMMAND").Err(); err == nil {
		t.Fatal("an unknown command was accepted")
	}
	if err := cl.Do(ctx, "INCR", "m:str").Err(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Do(ctx, "LPUSH", "m:str", "x").Err(); err == nil {
		t.Fatal("LPUSH on a string was accepted")
	}
	// A slot table that sends the key to the wrong master: the master's
	// MOVED is followed.
	slot := slotmap.Slot([]byte("m:k"))
	owner := p.Slots.Table().Master(slot)
	var wrong string
	for _, sh := range p.Slots.Table().Shards() {
		if sh.Master.Addr != owner {
			wrong = sh.Master.Addr
		}
	}
	p.Slots.Patch(slot, wrong)
	if err := cl.Get(ctx, "m:k").Err(); err != nil {
		t.Fatal(err)
	}

	after := scrape(t, base)
	delta := func(key string) float64 { return after[key] - before[key] }
	for key, want := range map[string]float64{
		`slotproxy_commands_total{command="set",result="ok"}`:                 n,
		`slotproxy_commands_total{command="get",result="ok"}`:                 n,
		`slotproxy_commands_total{command="get",result="redirected"}`:         1,
		`slotproxy_commands_total{command="other",result="error"}`:            1,
		`slotproxy_commands_total{command="incr",result="ok"}`:                1,
		`slotproxy_commands_total{command="lpush",result="error"}`:            1,
		`slotproxy_command_duration_seconds_count{family="string"}`:           2*n + 2,
		`slotproxy_command_duration_seconds_count{family="list"}`:             1,
		`slotproxy_cluster_replies_total{node="` + wrong + `",reply="moved"}`: 1,
	} {
		if got := delta(key); got != want {
			t.Errorf("%s rose by %v, want %v", key, got, want)
		}
	}
	if got := delta(`slotproxy_backend_replies_total{node="` + owner + `"}`); got < 2*n {
		t.Errorf("replies from %s rose by %v, want at least %d", owner, got, 2*n)
	}
	if got := after[`slotproxy_backend_request_duration_seconds_count{node="`+owner+`"}`]; got < 2*n {
		t.Errorf("backend latency observations for %s: %v, want at least %d", owner, got, 2*n)
	}
	if got := delta("slotproxy_client_received_bytes_total"); got < float64(n*len("*3\r\n$3\r\nSET\r\n$3\r\nm:k\r\n$1\r\n0\r\n")) {
		t.Errorf("bytes received rose by %v", got)
	}
	if got := delta("slotproxy_client_sent_bytes_total"); got < float64(n*len("+OK\r\n")) {
		t.Errorf("bytes sent rose by %v", got)
	}
	for key, want := range map[string]float64{
		"slotproxy_clients_connected": 1,
		"slotproxy_slots_covered":     16384,
		"slotproxy_masters":           3,
		"slotproxy_replicas":          0,
		"slotproxy_ready":             1,
	} {
		if got := after[key]; got != want {
			t.Errorf("%s = %v, want %v", key, got, want)
		}
	}
	// The MOVED asked for a refresh, which runs on its own.
	clustertest.Eventually(t, 5*time.Second, func() error {
		key := `slotproxy_slot_table_refreshes_total{trigger="moved",result="ok"}`
		if got := scrape(t, base)[key]; got < 1 {
			return fmt.Errorf("%s = %v, want at least 1", key, got)
		}
		return nil
	})
	if ts := after["slotproxy_slot_table_last_refresh_timestamp_seconds"]; time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last refresh at %v", time.Unix(int64(ts), 0))
	}
	if got := after[`slotproxy_backend_connections{node="`+owner+`",role="master",kind="shared"}`]; got < 1 {
		t.Errorf("shared connections to %s: %v", owner, got)
	}
	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz: %d %q", code, body)
	}

	// INFO proxy shows the same figures, for redis-cli users.
	info, err := cl.Info(ctx, "proxy").Result()
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]string{}
	for _, line := range strings.Split(info, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = v
		}
	}
	okCount := 0.0
	for key, v := range after {
		if strings.HasPrefix(key, "slotproxy_commands_total{") && strings.HasSuffix(key, `result="ok"}`) {
			okCount += v
		}
	}
	// INFO itself is counted once it is answered, after it read them.
	if got, _ := strconv.ParseFloat(fields["commands_ok"], 64); got < okCount || got > okCount+1 {
		t.Errorf("INFO commands_ok = %s, /metrics said %v", fields["commands_ok"], okCount)
	}
	for _, k := range []string{"ready:1", "slots_covered:16384", "commands_redirected:1"} {
		name, want, _ := strings.Cut(k, ":")
		if fields[name] != want {
			t.Errorf("INFO %s = %q, want %q", name, fields[name], want)
		}
	}
	found := false
	for k, v := range fields {
		if strings.HasPrefix(k, "node") && strings.HasPrefix(v, "addr="+owner+",role=master,shared=") {
			found = true
		}
	}
	if !found {
		t.Errorf("no node line for %s in INFO proxy:\n%s", owner, info)
	}

	// CLIENT INFO counts the client's own commands and bytes, in fields a
	// real client parses (go-redis knows them from redis-server 8).
	me, err := cl.ClientInfo(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if me.TotalCmds < 2*n || me.TotalNetIn < 2*n || me.TotalNetOut < 2*n {
		t.Errorf("CLIENT INFO: tot-cmds=%d tot-net-in=%d tot-net-out=%d, want each at least %d", me.TotalCmds, me.TotalNetIn, me.TotalNetOut, 2*n)
	}
}

// TestReadyzFollowsMasters: /readyz answers 503 with the reason while a
// master cannot be reached, and 200 again once it can.
func TestReadyzFollowsMasters(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3, NodeTimeout: 20 * time.Second})
	p := startProxy(t, c, Options{}, router.Options{})
	base := serveAdmin(t, p)
	clustertest.Eventually(t, 10*time.Second, func() error {
		if code, body := get(t, base+"/readyz"); code != 200 {
			return fmt.Errorf("/readyz: %d %q", code, body)
		}
		return nil
	})
	masters, err := c.MasterAddrs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var node *clustertest.Node
	for _, nd := range c.Nodes {
		if nd.Addr == masters[0] {
			node = nd
		}
	}
	if err := node.Term(); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 15*time.Second, func() error {
		code, body := get(t, base+"/readyz")
		if code != 503 || !strings.Contains(body, node.Addr) {
			return fmt.Errorf("/readyz with %s down: %d %q", node.Addr, code, body)
		}
		return nil
	})
	if err := c.Restart(context.Background(), node); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 15*time.Second, func() error {
		if code, body := get(t, base+"/readyz"); code != 200 {
			return fmt.Errorf("/readyz after %s came back: %d %q", node.Addr, code, body)
		}
		return nil
	})
}
