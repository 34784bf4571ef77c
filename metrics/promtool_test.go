package metrics

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"
)

// TestPromtoolChecksScrape runs Prometheus' own linter on a whole scrape of
// NewRegistry, with a histogram family added, served by Serve: the parser
// Prometheus scrapes with must accept it, and the naming rules (units,
// _total, HELP, histogram buckets) must hold. promtool comes with Debian's
// prometheus package; without it the test fails, since nothing else here
// checks the text against Prometheus itself.
func TestPromtoolChecksScrape(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (apt-get install prometheus): %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	reg := NewRegistry()
	h := NewHistogram()
	for _, d := range []time.Duration{30 * time.Microsecond, 2 * time.Millisecond, 20 * time.Second} {
		h.Observe(d)
	}
	reg.MustRegisterHistogram("test_request_duration_seconds", "Time from a request's arrival to its reply.", func(emit EmitHistogram) {
		emit(h, Label{"command", "get"})
	})
	go func() { done <- Serve(ctx, ln, Handler(reg)) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve still running 10s after cancel")
		}
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	if !bytes.Contains(body, []byte("\ntest_request_duration_seconds_bucket{command=\"get\",le=\"+Inf\"} 3\n")) {
		t.Fatalf("the scrape lacks the histogram:\n%s", body)
	}
	client.CloseIdleConnections()

	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("promtool check metrics: %v\n%s\nscrape:\n%s", err, out, body)
	}
}
