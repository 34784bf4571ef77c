package monitoring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// The stack the end-to-end test runs: the slotproxy binary in front of a
// clustertest cluster, and Prometheus scraping it with the example
// configuration. Each is a child process, killed by the kernel too should
// the test binary die (Pdeathsig), and by its PID in t.Cleanup.

// startAttempts is how many times a process is started on new free ports
// when another process took a port between the probe and the bind.
const startAttempts = 3

// child is a process the test started.
type child struct {
	name string
	cmd  *exec.Cmd
	log  *clustertest.LogBuffer
	done chan struct{} // closed once the process has exited and been reaped
}

// startChild starts cmd and has t.Cleanup kill it by PID and reap it,
// logging its output if the test failed.
func startChild(t *testing.T, name string, cmd *exec.Cmd) (*child, error) {
	t.Helper()
	c := &child{name: name, cmd: cmd, log: &clustertest.LogBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.log, c.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("%s (pid %d) output:\n%s", name, cmd.Process.Pid, c.log.Tail(8192))
		}
	})
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL to the process and waits until it is reaped.
func (c *child) kill() {
	if c.exited() {
		return
	}
	c.cmd.Process.Kill()
	<-c.done
}

// waitUp polls ready until it returns nil, failing at once if the process
// exits and after timeout or when ctx ends. The error of an exit says
// whether a port was taken, so that the caller may try other ports.
func (c *child) waitUp(ctx context.Context, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	for {
		if c.exited() {
			err := fmt.Errorf("%s exited: %s", c.name, c.log.Tail(2048))
			if strings.Contains(c.log.String(), "address already in use") {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return err
		}
		err := ready()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not up after %v: %w", c.name, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var errPortTaken = errors.New("port taken")

// lookTools returns the paths of prometheus and promtool. Without them
// the test fails rather than skips: nothing else checks these files.
func lookTools(t *testing.T) (prometheus, promtool string) {
	t.Helper()
	var err error
	if prometheus, err = exec.LookPath("prometheus"); err == nil {
		promtool, err = exec.LookPath("promtool")
	}
	if err != nil {
		t.Fatalf("%v: run scripts/ensure-prometheus.sh", err)
	}
	return prometheus, promtool
}

// buildProxy builds cmd/slotproxy as make build does.
func buildProxy(t *testing.T, ctx context.Context) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "slotproxy")
	cmd := exec.CommandContext(ctx, filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "../../cmd/slotproxy")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proxyProcess is the slotproxy binary, running.
type proxyProcess struct {
	*child
	addr, admin string
}

// startProxy runs the slotproxy binary in front of c, refreshing its slot
// table every second so that the test sees changes soon, and waits until
// it serves a SET.
func startProxy(t *testing.T, ctx context.Context, c *clustertest.Cluster) *proxyProcess {
	t.Helper()
	bin := buildProxy(t, ctx)
	for attempt := 1; ; attempt++ {
		p := &proxyProcess{addr: clustertest.FreeAddr(t), admin: clustertest.FreeAddr(t)}
		cfg := filepath.Join(t.TempDir(), "proxy.yaml")
		yaml := fmt.Sprintf("listen: %q\ncluster:\n  seeds: [%s]\n  refresh_interval: 1s\nmetrics:\n  listen: %q\n",
			p.addr, quoteAll(c.Seeds()), p.admin)
		if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		ch, err := startChild(t, "slotproxy", exec.Command(bin, "-config", cfg))
		if err != nil {
			t.Fatal(err)
		}
		p.child = ch
		rdb := redis.NewClient(&redis.Options{Addr: p.addr, MaxRetries: -1, DisableIdentity: true})
		err = ch.waitUp(ctx, 30*time.Second, func() error {
			return rdb.Set(ctx, "monitoring:up", "1", 0).Err()
		})
		rdb.Close()
		if err == nil {
			return p
		}
		ch.kill()
		if attempt == startAttempts || !errors.Is(err, errPortTaken) {
			t.Fatal(err)
		}
	}
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// get fetches path from the proxy's admin listener.
func (p *proxyProcess) get(path string) (int, string, error) {
	return httpGet("http://" + p.admin + path)
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

func httpGet(u string) (int, string, error) {
	resp, err := httpClient.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// promConfig is the example prometheus.yml made to scrape admin: every
// interval one second, the target replaced, the rule file named by its
// absolute path.
func promConfig(t *testing.T, admin string) []byte {
	t.Helper()
	raw, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("prometheus.yml: %v", err)
	}
	global, _ := cfg["global"].(map[string]any)
	if global == nil {
		t.Fatal("prometheus.yml: no global section")
	}
	global["scrape_interval"], global["evaluation_interval"] = "1s", "1s"
	rules, _ := cfg["rule_files"].([]any)
	if len(rules) != 1 || rules[0] != "alerts.yml" {
		t.Fatalf("prometheus.yml: rule_files %v, want [alerts.yml]", cfg["rule_files"])
	}
	abs, err := filepath.Abs("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg["rule_files"] = []any{abs}
	scrapes, _ := cfg["scrape_configs"].([]any)
	found := false
	for _, s := range scrapes {
		sc, _ := s.(map[string]any)
		if sc["job_name"] != "slotproxy" {
			continue
		}
		found = true
		sc["scrape_interval"] = "1s"
		statics, _ := sc["static_configs"].([]any)
		if len(statics) != 1 {
			t.Fatalf("prometheus.yml: job slotproxy has %d static_configs, want 1", len(statics))
		}
		st, _ := statics[0].(map[string]any)
		if targets, _ := st["targets"].([]any); len(targets) != 1 || targets[0] != "localhost:9121" {
			t.Fatalf("prometheus.yml: job slotproxy scrapes %v, want [localhost:9121]", st["targets"])
		}
		st["targets"] = []any{admin}
	}
	if !found {
		t.Fatal("prometheus.yml: no job slotproxy")
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// promServer is a running Prometheus and its HTTP API.
type promServer struct {
	*child
	url string
}

// startPrometheus runs Prometheus with the example configuration aimed at
// the proxy's admin listener, its data in a temporary directory, and
// waits until it is ready.
func startPrometheus(t *testing.T, ctx context.Context, bin, admin string) *promServer {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, promConfig(t, admin), 0o644); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		listen := clustertest.FreeAddr(t)
		data, err := os.MkdirTemp(dir, "data-")
		if err != nil {
			t.Fatal(err)
		}
		ch, err := startChild(t, "prometheus", exec.Command(bin,
			"--config.file="+cfg,
			"--storage.tsdb.path="+data,
			"--web.listen-address="+listen,
		))
		if err != nil {
			t.Fatal(err)
		}
		p := &promServer{child: ch, url: "http://" + listen}
		err = ch.waitUp(ctx, 30*time.Second, func() error {
			code, body, err := httpGet(p.url + "/-/ready")
			if err == nil && code != 200 {
				err = fmt.Errorf("/-/ready: %d %s", code, body)
			}
			return err
		})
		if err == nil {
			return p
		}
		ch.kill()
		if attempt == startAttempts || !errors.Is(err, errPortTaken) {
			t.Fatal(err)
		}
	}
}

// sample is one element of a query's result.
type sample struct {
	Metric map[string]string
	Value  float64
}

func (s sample) String() string { return fmt.Sprintf("%v %g", s.Metric, s.Value) }

// query runs an instant query. An expression Prometheus rejects is an
// error; an empty result is not.
func (p *promServer) query(expr string) ([]sample, error) {
	resp, err := httpClient.PostForm(p.url+"/api/v1/query", url.Values{"query": {expr}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("query %s: HTTP %d: %w", expr, resp.StatusCode, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s: %s", expr, r.Status, r.Error)
	}
	switch r.Data.ResultType {
	case "vector":
		var vec []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(r.Data.Result, &vec); err != nil {
			return nil, fmt.Errorf("query %s: %w", expr, err)
		}
		out := make([]sample, len(vec))
		for i, v := range vec {
			out[i].Metric = v.Metric
			if out[i].Value, err = sampleValue(v.Value[1]); err != nil {
				return nil, fmt.Errorf("query %s: %w", expr, err)
			}
		}
		return out, nil
	case "scalar":
		var sc [2]any
		if err := json.Unmarshal(r.Data.Result, &sc); err != nil {
			return nil, fmt.Errorf("query %s: %w", expr, err)
		}
		v, err := sampleValue(sc[1])
		return []sample{{Value: v}}, err
	}
	return nil, fmt.Errorf("query %s: result of type %s", expr, r.Data.ResultType)
}

// sampleValue reads a value as the API writes it: a string, which may be
// NaN or ±Inf.
func sampleValue(v any) (float64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("value %v is not a string", v)
	}
	return strconv.ParseFloat(s, 64)
}

// value runs expr, which must return exactly one sample, and returns its
// value.
func (p *promServer) value(expr string) (float64, error) {
	res, err := p.query(expr)
	if err != nil {
		return 0, err
	}
	if len(res) != 1 {
		return 0, fmt.Errorf("query %s: %d samples %v, want 1", expr, len(res), res)
	}
	return res[0].Value, nil
}
