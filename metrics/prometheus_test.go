package metrics

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// prometheusServer is a real Prometheus started by startPrometheus.
type prometheusServer struct {
	t    *testing.T
	addr string // its web listener: the HTTP API
}

var promListening = regexp.MustCompile(`msg="Listening on" address=(127\.0\.0\.1:\d+)`)

// startPrometheus runs /usr/bin/prometheus scraping target every second,
// with native histograms enabled or not, its data and log in a temporary
// directory and its web listener on a free loopback port, which it reports
// in its log. It is killed at cleanup, and with the test binary if that
// dies first.
func startPrometheus(t *testing.T, target string, native bool) *prometheusServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not found (apt-get install prometheus): %v", err)
	}
	dir := t.TempDir()
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: slotproxy
    static_configs:
      - targets: [%q]
`, target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	args := []string{
		"--config.file=" + filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:0",
		"--log.level=info",
	}
	if native {
		args = append(args, "--enable-feature=native-histograms")
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			if log, err := os.ReadFile(logPath); err == nil {
				t.Logf("prometheus (native histograms %v) log:\n%s", native, log)
			}
		}
	})

	p := &prometheusServer{t: t}
	clustertest.Eventually(t, 20*time.Second, func() error {
		log, err := os.ReadFile(logPath)
		if err != nil {
			return err
		}
		m := promListening.FindSubmatch(log)
		if m == nil {
			return errors.New("prometheus has not logged its listen address")
		}
		p.addr = string(m[1])
		return nil
	})
	return p
}

// query runs an instant query and returns its one value; an error when
// the result is not a single number, as when the data are not there yet.
func (p *prometheusServer) query(q string) (float64, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + p.addr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var r struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return 0, fmt.Errorf("%s: %v in %q", q, err, body)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s: %s %s", q, r.Status, r.Error)
	}
	if r.Data.ResultType != "vector" || len(r.Data.Result) != 1 {
		return 0, fmt.Errorf("%s: %d results of type %s, want one in a vector", q, len(r.Data.Result), r.Data.ResultType)
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) {
		return 0, fmt.Errorf("%s = %q", q, s)
	}
	return v, nil
}

// within waits until q's value is in [lo, hi].
func (p *prometheusServer) within(q string, lo, hi float64) float64 {
	p.t.Helper()
	var v float64
	clustertest.Eventually(p.t, 40*time.Second, func() error {
		var err error
		if v, err = p.query(q); err != nil {
			return err
		}
		if v < lo || v > hi {
			return fmt.Errorf("%s = %g, want it in [%g, %g]", q, v, lo, hi)
		}
		return nil
	})
	return v
}

// TestPrometheusReadsHistograms has a real Prometheus scrape a histogram
// of known durations and compute quantiles from it: from the native
// buckets, scraped as protobuf with native histograms enabled, and from the
// classic ones, scraped as OpenMetrics by a second Prometheus without the
// feature. Two are needed because Prometheus 2.42, given a histogram with
// both forms in protobuf, keeps only the native one (a later release added
// scrape_classic_histograms to keep both).
//
// 30% of the durations are 200µs, 40% 2ms and 30% 20ms, so the median is in
// the buckets holding 2ms and the 90th percentile in those holding 20ms.
func TestPrometheusReadsHistograms(t *testing.T) {
	reg := NewRegistry()
	h := NewHistogram()
	reg.MustRegisterHistogram("test_latency_seconds", "Latency of test commands.", func(emit EmitHistogram) {
		emit(h, Label{"cmd", "get"})
	})
	a := startAdmin(t, reg, nil)

	// The rate of a histogram needs observations between scrapes: a batch
	// every 100ms, until the test ends.
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, o := range []struct {
				d time.Duration
				n int
			}{{200 * time.Microsecond, 3}, {2 * time.Millisecond, 4}, {20 * time.Millisecond, 3}} {
				for range o.n {
					h.Observe(o.d)
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-stopped
	})

	native := startPrometheus(t, a.addr, true)
	classic := startPrometheus(t, a.addr, false)
	start := time.Now()

	// Native buckets: 2ms is in (2^(-72/8), 2^(-71/8)] s, 20ms in
	// (2^(-46/8), 2^(-45/8)]; the quantile lies in the bucket.
	bucket := func(i int) (float64, float64) { return math.Exp2(float64(i-1) / 8), math.Exp2(float64(i) / 8) }
	lo, hi := bucket(-71)
	v := native.within("histogram_quantile(0.5, rate(test_latency_seconds[1m]))", lo, hi)
	t.Logf("native median %g s, in (%g, %g], %v after start", v, lo, hi, time.Since(start))
	lo, hi = bucket(-45)
	v = native.within("histogram_quantile(0.9, rate(test_latency_seconds[1m]))", lo, hi)
	t.Logf("native 90th percentile %g s, in (%g, %g]", v, lo, hi)
	native.within(`histogram_count(rate(test_latency_seconds{cmd="get"}[1m]))`, 1, math.Inf(1))
	// The other families came through the protobuf scrape too.
	native.within("go_goroutines", 1, math.Inf(1))
	native.within("go_gc_cycles_total >= 0", 0, math.Inf(1))
	native.within(`go_info{version!=""}`, 1, 1)
	if n, err := native.query("count(test_latency_seconds_bucket)"); err == nil {
		t.Logf("with native histograms on, this Prometheus also keeps %g classic bucket series", n)
	} else {
		t.Logf("with native histograms on, this Prometheus keeps no classic buckets (%v)", err)
	}

	// Classic buckets: the median is in (1ms, 2.5ms], the 90th percentile
	// in (10ms, 25ms].
	v = classic.within("histogram_quantile(0.5, rate(test_latency_seconds_bucket[1m]))", 0.001, 0.0025)
	t.Logf("classic median %g s", v)
	v = classic.within("histogram_quantile(0.9, rate(test_latency_seconds_bucket[1m]))", 0.01, 0.025)
	t.Logf("classic 90th percentile %g s", v)
	// The mean, from _sum and _count: 0.3*200µs + 0.4*2ms + 0.3*20ms, give
	// or take a batch that a scrape caught halfway.
	const mean = 0.3*0.0002 + 0.4*0.002 + 0.3*0.02
	classic.within("rate(test_latency_seconds_sum[1m]) / rate(test_latency_seconds_count[1m])", mean*0.95, mean*1.05)
	native.within("histogram_sum(rate(test_latency_seconds[1m])) / histogram_count(rate(test_latency_seconds[1m]))", mean*0.95, mean*1.05)
	t.Logf("both Prometheus servers answered %v after start", time.Since(start))
}
