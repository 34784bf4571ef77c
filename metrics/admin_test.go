package metrics

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// fetch does one request to the admin server at addr and returns the
// status, the Content-Type and the body.
func fetch(t *testing.T, method, url string) (int, string, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A CPU profile takes its seconds; nothing here asks for more than a
	// few.
	client := &http.Client{Timeout: 20 * time.Second}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// TestReadyz: 200 "ok" without a Ready function or while it says ready,
// 503 with its reason, on one line, while it does not.
func TestReadyz(t *testing.T) {
	var reason atomic.Pointer[string]
	a := serveAdmin(t, NewAdmin(&Registry{}, AdminOptions{Ready: func() (bool, string) {
		if r := reason.Load(); r != nil {
			return false, *r
		}
		return true, "ignored"
	}}), nil)
	url := "http://" + a.addr + "/readyz"

	if code, ct, body := fetch(t, "GET", url); code != 200 || string(body) != "ok\n" || ct != plainContentType {
		t.Errorf("ready: %d %q %q", code, ct, body)
	}
	for _, tt := range []struct{ reason, body string }{
		{"no slot table yet", "no slot table yet\n"},
		{"two\nlines\r\n", "two lines  \n"},
		{"", "\n"},
	} {
		reason.Store(&tt.reason)
		if code, ct, body := fetch(t, "GET", url); code != 503 || string(body) != tt.body || ct != plainContentType {
			t.Errorf("not ready (%q): %d %q %q, want 503 %q", tt.reason, code, ct, body, tt.body)
		}
	}
	if code, _, body := fetch(t, "HEAD", url); code != 503 || len(body) != 0 {
		t.Errorf("HEAD while not ready: %d %q", code, body)
	}
	reason.Store(nil)
	if code, _, body := fetch(t, "GET", url); code != 200 || string(body) != "ok\n" {
		t.Errorf("ready again: %d %q", code, body)
	}
	if code, _, _ := fetch(t, "POST", url); code != 405 {
		t.Errorf("POST /readyz: %d, want 405", code)
	}

	plain := startAdmin(t, &Registry{}, nil)
	if code, _, body := fetch(t, "GET", "http://"+plain.addr+"/readyz"); code != 200 || string(body) != "ok\n" {
		t.Errorf("/readyz without a Ready function: %d %q", code, body)
	}
}

// TestPprofOff: without the option, nothing under /debug/pprof exists.
func TestPprofOff(t *testing.T) {
	a := serveAdmin(t, NewAdmin(&Registry{}, AdminOptions{}), nil)
	for _, path := range []string{"/debug/pprof", "/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/profile?seconds=1"} {
		if code, _, body := fetch(t, "GET", "http://"+a.addr+path); code != 404 || string(body) != "404 Not Found\n" {
			t.Errorf("GET %s with pprof off: %d %q", path, code, body)
		}
	}
	if code, _, _ := fetch(t, "POST", "http://"+a.addr+"/debug/pprof/heap"); code != 404 {
		t.Errorf("POST /debug/pprof/heap with pprof off: %d, want 404", code)
	}
}

// goToolPprof runs go tool pprof -top on a profile saved in a file, which
// is how an engineer reads one: it must exit 0.
func goToolPprof(t *testing.T, profile []byte) string {
	t.Helper()
	if len(profile) < 2 || profile[0] != 0x1f || profile[1] != 0x8b {
		t.Fatalf("profile does not start with the gzip magic: %.40q", profile)
	}
	path := filepath.Join(t.TempDir(), "profile.pb.gz")
	if err := os.WriteFile(path, profile, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "tool", "pprof", "-top", path).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top: %v\n%s", err, out)
	}
	return string(out)
}

// TestPprofProfiles: the index lists the profiles, a named profile comes as
// go tool pprof reads it or, with debug=1, as text.
func TestPprofProfiles(t *testing.T) {
	a := serveAdmin(t, NewAdmin(&Registry{}, AdminOptions{Pprof: true}), nil)
	base := "http://" + a.addr + "/debug/pprof/"

	for _, url := range []string{base, strings.TrimSuffix(base, "/")} {
		code, ct, body := fetch(t, "GET", url)
		if code != 200 || ct != "text/html; charset=utf-8" {
			t.Fatalf("GET %s: %d %q", url, code, ct)
		}
		for _, name := range []string{"allocs", "block", "goroutine", "heap", "mutex", "threadcreate"} {
			if !bytes.Contains(body, []byte(`<a href="/debug/pprof/`+name+`?debug=1">`+name+`</a>`)) {
				t.Errorf("the index has no link to %s:\n%s", name, body)
			}
		}
		if !bytes.Contains(body, []byte(`<a href="/debug/pprof/profile">profile</a>`)) {
			t.Errorf("the index has no link to the CPU profile:\n%s", body)
		}
	}

	code, ct, heap := fetch(t, "GET", base+"heap?gc=1")
	if code != 200 || ct != "application/octet-stream" {
		t.Fatalf("GET heap: %d %q %.100q", code, ct, heap)
	}
	if out := goToolPprof(t, heap); !strings.Contains(out, "Type: inuse_space") {
		t.Errorf("go tool pprof -top on the heap profile:\n%s", out)
	}

	code, ct, text := fetch(t, "GET", base+"goroutine?debug=1")
	if code != 200 || ct != plainContentType || !bytes.HasPrefix(text, []byte("goroutine profile: total ")) {
		t.Errorf("GET goroutine?debug=1: %d %q %.100q", code, ct, text)
	}
	// debug=2: every goroutine's stack as a panic prints it, this
	// server's own connection goroutine among them.
	if code, _, text := fetch(t, "GET", base+"goroutine?debug=2"); code != 200 || !bytes.Contains(text, []byte("metrics.(*adminConn).serve")) {
		t.Errorf("GET goroutine?debug=2: %d %.300q", code, text)
	}
	for _, tt := range []struct {
		method, path string
		code         int
	}{
		{"GET", "nosuch", 404},
		{"GET", "heap?debug=x", 400},
		{"GET", "heap?debug=-1", 400},
		{"POST", "heap", 405},
		{"DELETE", "", 405},
	} {
		if code, _, body := fetch(t, tt.method, base+tt.path); code != tt.code {
			t.Errorf("%s %s: %d %q, want %d", tt.method, tt.path, code, body, tt.code)
		}
	}
}

// TestPprofCPUProfile: a CPU profile over one second comes back readable;
// while one runs, another is refused; bad durations are refused.
func TestPprofCPUProfile(t *testing.T) {
	h := NewAdmin(&Registry{}, AdminOptions{Pprof: true})
	a := serveAdmin(t, h, nil)
	base := "http://" + a.addr + "/debug/pprof/profile"

	for _, q := range []string{"?seconds=0", "?seconds=61", "?seconds=1.5", "?seconds=", "?seconds=x"} {
		if code, _, body := fetch(t, "GET", base+q); code != 400 || string(body) != "seconds must be a whole number from 1 to 60\n" {
			t.Errorf("GET profile%s: %d %q, want 400", q, code, body)
		}
	}

	type result struct {
		code int
		ct   string
		body []byte
		took time.Duration
	}
	first := make(chan result, 1)
	go func() {
		start := time.Now()
		req, _ := http.NewRequest("GET", base+"?seconds=1", nil)
		client := &http.Client{Timeout: 20 * time.Second}
		defer client.CloseIdleConnections()
		resp, err := client.Do(req)
		if err != nil {
			first <- result{code: -1, body: []byte(err.Error())}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		first <- result{resp.StatusCode, resp.Header.Get("Content-Type"), body, time.Since(start)}
	}()
	clustertest.Eventually(t, 5*time.Second, func() error {
		if !h.cpuProfiling.Load() {
			return errors.New("the first CPU profile has not started")
		}
		return nil
	})
	if code, _, body := fetch(t, "GET", base+"?seconds=1"); code != 409 || !strings.Contains(string(body), "already") {
		t.Errorf("a second CPU profile while one runs: %d %q, want 409", code, body)
	}
	r := <-first
	if r.code != 200 || r.ct != "application/octet-stream" {
		t.Fatalf("CPU profile: %d %q %.200q", r.code, r.ct, r.body)
	}
	if r.took < time.Second {
		t.Errorf("a one-second CPU profile came back after %v", r.took)
	}
	if out := goToolPprof(t, r.body); !strings.Contains(out, "Type: cpu") {
		t.Errorf("go tool pprof -top on the CPU profile:\n%s", out)
	}
	if h.cpuProfiling.Load() {
		t.Error("the CPU profiler is still marked busy after the profile")
	}
}

// TestPprofCPUProfileShutdown: a long CPU profile does not hold up
// shutdown: it is cut short, and Serve returns within the grace period.
func TestPprofCPUProfileShutdown(t *testing.T) {
	h := NewAdmin(&Registry{}, AdminOptions{Pprof: true})
	a := serveAdmin(t, h, nil)
	c := dialRaw(t, a.addr)
	c.send(get("/debug/pprof/profile?seconds=30"))
	clustertest.Eventually(t, 5*time.Second, func() error {
		if !h.cpuProfiling.Load() {
			return errors.New("the CPU profile has not started")
		}
		return nil
	})
	start := time.Now()
	if err := a.stop(); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Serve returned %v after cancel, with a 30s CPU profile under way", took)
	}
	resp, body := c.response("GET")
	if resp.StatusCode != 503 || !strings.Contains(body, "shutting down") || !resp.Close {
		t.Errorf("the cut profile: %d %q, close %v", resp.StatusCode, body, resp.Close)
	}
	if h.cpuProfiling.Load() {
		t.Error("the CPU profiler is still marked busy")
	}
}
