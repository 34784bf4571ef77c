package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/proxy"
)

// TestRun starts the whole program in front of a real cluster, uses it,
// and stops it by cancelling its context.
func TestRun(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	logs := &clustertest.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type addrs struct{ proxy, admin string }
	listening := make(chan addrs, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{
			"-listen", "127.0.0.1:0",
			"-metrics-listen", "127.0.0.1:0",
			"-seeds", c.Seeds()[0],
		}, io.Discard, logs, func(p, a string) { listening <- addrs{p, a} }, nil)
	}()
	var a addrs
	select {
	case a = <-listening:
	case err := <-done:
		t.Fatalf("run returned before listening: %v\n%s", err, logs)
	case <-time.After(10 * time.Second):
		t.Fatalf("not listening after 10s\n%s", logs)
	}
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
		if t.Failed() {
			t.Logf("slotproxy log:\n%s", logs)
		}
	}()
	for _, addr := range []string{a.proxy, a.admin} {
		if host, port, err := net.SplitHostPort(addr); err != nil || host != "127.0.0.1" || port == "0" {
			t.Fatalf("onListen gave %q", addr)
		}
	}

	client := redis.NewClient(&redis.Options{Addr: a.proxy, MaxRetries: -1, DisableIdentity: true})
	defer client.Close()
	bg := context.Background()
	// The proxy answers CLUSTERDOWN until it has its slot table.
	clustertest.Eventually(t, 15*time.Second, func() error { return client.Set(bg, "run:probe", "1", 0).Err() })
	for i := range 20 {
		key, val := fmt.Sprintf("run:key:%d", i), fmt.Sprintf("value %d", i)
		if err := client.Set(bg, key, val, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", key, err)
		}
		if got, err := client.Get(bg, key).Result(); err != nil || got != val {
			t.Fatalf("GET %s = %q, %v; want %q", key, got, err, val)
		}
	}
	if _, err := client.Get(bg, "run:absent").Result(); err != redis.Nil {
		t.Errorf("GET of an absent key: %v, want redis.Nil", err)
	}

	httpc := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := httpc.Get("http://" + a.admin + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Errorf("/metrics: %d", code)
	}
	for _, series := range []string{"\ngo_goroutines ", "\nprocess_resident_memory_bytes ", "\n# TYPE process_cpu_seconds_total counter\n"} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %q:\n%.500s", series, body)
		}
	}
	if code, _ := get("/nope"); code != http.StatusNotFound {
		t.Errorf("/nope: %d, want 404", code)
	}

	// Cancelling the context is a clean shutdown.
	cancel()
	select {
	case err := <-done:
		stopped = true
		if err != nil {
			t.Errorf("run returned %v after cancel, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run still running 5s after cancel")
	}
	if nc, err := net.DialTimeout("tcp", a.proxy, time.Second); err == nil {
		nc.Close()
		t.Errorf("the proxy listener %s still accepts after run returned", a.proxy)
	}
	// The admin listener is shut down by a goroutine that run does not
	// wait for; it must be closed soon after.
	clustertest.Eventually(t, 5*time.Second, func() error {
		if nc, err := net.DialTimeout("tcp", a.admin, time.Second); err == nil {
			nc.Close()
			return errors.New("the admin listener " + a.admin + " still accepts")
		}
		return nil
	})
	if err := client.Ping(bg).Err(); err == nil {
		t.Error("a client connection still works after run returned")
	}
}

// TestRunBadStart: every way start-up can fail returns an error from run,
// promptly; nothing panics or exits.
func TestRunBadStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		args []string
		want string // in the error
	}{
		{"missing config file", []string{"-config", filepath.Join(dir, "none.yaml")}, "none.yaml"},
		{"bad config value", []string{"-config", cfgFile(t, "backend:\n  read_timeout: 0s\n")}, "backend.read_timeout"},
		{"unknown config key", []string{"-config", cfgFile(t, "listn: \":5000\"\n")}, "listn"},
		{"bad listen flag", []string{"-listen", "nope"}, "listen"},
		{"unknown flag", []string{"-nosuchflag"}, "nosuchflag"},
		{"stray argument", []string{"-listen", "127.0.0.1:0", "stray"}, "stray"},
		{"listen address in use", []string{"-listen", busy.Addr().String(), "-metrics-listen", "127.0.0.1:0", "-seeds", "127.0.0.1:1"}, "address already in use"},
		{"admin address in use", []string{"-listen", "127.0.0.1:0", "-metrics-listen", busy.Addr().String(), "-seeds", "127.0.0.1:1"}, "address already in use"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			var stderr clustertest.LogBuffer
			go func() {
				defer func() {
					if r := recover(); r != nil {
						done <- fmt.Errorf("panic: %v", r)
					}
				}()
				done <- run(ctx, tt.args, io.Discard, &stderr, func(string, string) {
					t.Errorf("onListen called")
				}, nil)
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("run: %v; want an error containing %q", err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("run did not return within 5s")
			}
		})
	}
}

// TestRunCommands: -commands prints the command reference of the built-in
// table on stdout and returns, with no config file and no cluster; a
// -config that names no file is not even read.
func TestRunCommands(t *testing.T) {
	var want strings.Builder
	if err := proxy.WriteCommandReference(&want, proxy.Builtin()); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"-commands"},
		{"-commands", "-config", filepath.Join(t.TempDir(), "none.yaml"), "-seeds", "127.0.0.1:1"},
	} {
		var stdout, stderr clustertest.LogBuffer
		done := make(chan error, 1)
		go func() {
			done <- run(context.Background(), args, &stdout, &stderr, func(string, string) {
				t.Errorf("%v: onListen called", args)
			}, nil)
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run(%v): %v", args, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("run(%v) did not return within 5s", args)
		}
		if got := stdout.String(); got != want.String() {
			t.Errorf("run(%v) printed %d bytes, want the %d of the reference:\n%.300s", args, len(got), want.Len(), got)
		}
		if stderr.String() != "" {
			t.Errorf("run(%v) wrote to stderr: %q", args, stderr.String())
		}
	}
}

// TestMainCommands runs the program itself, as a user would, and checks
// that slotproxy -commands prints the reference and exits 0.
func TestMainCommands(t *testing.T) {
	if os.Getenv("SLOTPROXY_TEST_MAIN") == "1" {
		os.Args = []string{"slotproxy", "-commands"}
		main()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainCommands$")
	cmd.Env = append(os.Environ(), "SLOTPROXY_TEST_MAIN=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("slotproxy -commands: %v\n%s", err, stderr.String())
	}
	// The test binary adds its own PASS line after what main printed.
	out := stdout.String()
	if !strings.HasPrefix(out, "| Command | How slotproxy serves it | Note |\n") ||
		!strings.Contains(out, "| `GET` | routed by the slot of its keys | |\n") ||
		!strings.Contains(out, "| `MONITOR` | refused: not supported yet | |\n") {
		t.Errorf("slotproxy -commands printed:\n%.500s", out)
	}
}

// TestMainSIGTERM runs the program itself in front of a real cluster and
// sends it SIGTERM while a client is connected: it must drain (the log
// says so), close the client, and exit 0.
func TestMainSIGTERM(t *testing.T) {
	if args := os.Getenv("SLOTPROXY_TEST_SIGTERM"); args != "" {
		os.Args = append([]string{"slotproxy"}, strings.Fields(args)...)
		main()
		return
	}
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainSIGTERM$")
	cmd.Env = append(os.Environ(), "SLOTPROXY_TEST_SIGTERM=-listen "+addr+" -metrics-listen 127.0.0.1:0 -seeds "+c.Seeds()[0])
	var stderr clustertest.LogBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("slotproxy's stderr:\n%s", stderr.String())
		}
	}()

	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, Protocol: 2, PoolSize: 1})
	defer client.Close()
	ctx := context.Background()
	clustertest.Eventually(t, 15*time.Second, func() error { return client.Set(ctx, "sigterm:key", "v", 0).Err() })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("slotproxy exited with %v after SIGTERM, want exit code 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("slotproxy still running 20s after SIGTERM")
	}
	if !strings.Contains(stderr.String(), "msg=\"draining clients\" clients=1") {
		t.Errorf("slotproxy did not log the drain of its one client")
	}
	if err := client.Ping(ctx).Err(); err == nil {
		t.Error("the client's connection still works after slotproxy exited")
	}
}
