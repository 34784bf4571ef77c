package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// running is slotproxy run in-process by a test.
type running struct {
	proxy, admin string
	logs         *clustertest.LogBuffer
	reload       chan os.Signal // what SIGHUP would send
}

// startRun runs slotproxy with args until the test ends, and waits until
// it listens.
func startRun(t *testing.T, args ...string) *running {
	t.Helper()
	r := &running{logs: &clustertest.LogBuffer{}, reload: make(chan os.Signal, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan [2]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, io.Discard, r.logs, func(p, a string) { listening <- [2]string{p, a} }, r.reload)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if t.Failed() {
			t.Logf("slotproxy log:\n%s", r.logs)
		}
	})
	select {
	case a := <-listening:
		r.proxy, r.admin = a[0], a[1]
	case err := <-done:
		done <- err
		t.Fatalf("run returned before listening: %v\n%s", err, r.logs)
	case <-time.After(15 * time.Second):
		t.Fatalf("not listening after 15s\n%s", r.logs)
	}
	return r
}

// hup reloads and waits for the line the reload logs: the n-th line
// containing msg in all.
func (r *running) hup(t *testing.T, msg string, n int) {
	t.Helper()
	r.reload <- syscall.SIGHUP
	clustertest.Eventually(t, 10*time.Second, func() error {
		if got := strings.Count(r.logs.String(), msg); got < n {
			return fmt.Errorf("%d lines with %q, want %d", got, msg, n)
		}
		return nil
	})
	if got := strings.Count(r.logs.String(), msg); got != n {
		t.Fatalf("%d lines with %q, want %d", got, msg, n)
	}
}

// lastLine returns the last log line that contains msg.
func (r *running) lastLine(msg string) string {
	lines := strings.Split(r.logs.String(), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], msg) {
			return lines[i]
		}
	}
	return ""
}

// respConn is a plain client connection, one command at a time.
type respConn struct {
	t  *testing.T
	nc net.Conn
	rd *bufio.Reader
}

func dialResp(t *testing.T, addr string) *respConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &respConn{t: t, nc: nc, rd: bufio.NewReader(nc)}
}

// do sends args and returns the reply's first line, and a bulk string's
// content after it: "+OK", "-ERR ...", "$1" + "\n" + "v".
func (c *respConn) do(args ...string) string {
	c.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.nc, b.String()); err != nil {
		return "write: " + err.Error()
	}
	return c.reply()
}

func (c *respConn) reply() string {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.rd.ReadString('\n')
	if err != nil {
		return "read: " + err.Error()
	}
	line = strings.TrimSuffix(line, "\r\n")
	if strings.HasPrefix(line, "$") && line != "$-1" {
		var n int
		fmt.Sscanf(line[1:], "%d", &n)
		body := make([]byte, n+2)
		if _, err := io.ReadFull(c.rd, body); err != nil {
			return "read: " + err.Error()
		}
		return line + "\n" + string(body[:n])
	}
	return line
}

// TestReloadConfig runs slotproxy in front of a real cluster with a
// configuration file, rewrites the file and reloads it as SIGHUP does:
// the new password is required of new clients while the client
// authenticated before stays so, the new max clients is enforced, debug
// lines appear; a broken file changes nothing and is one error line.
func TestReloadConfig(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	path := cfgFile(t, "")
	write := func(yaml string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := fmt.Sprintf("listen: 127.0.0.1:0\nmetrics:\n  listen: \"\"\ncluster:\n  seeds: [%q]\n", c.Seeds()[0])
	write(base + "clients:\n  password: first-pw\n  max_clients: 10\n")
	r := startRun(t, "-config", path)

	old := dialResp(t, r.proxy)
	clustertest.Eventually(t, 15*time.Second, func() error {
		if got := old.do("AUTH", "first-pw"); got != "+OK" {
			return fmt.Errorf("AUTH: %s", got)
		}
		if got := old.do("SET", "reload:key", "v1"); got != "+OK" {
			return fmt.Errorf("SET: %s", got)
		}
		return nil
	})
	if strings.Contains(r.logs.String(), "level=DEBUG") {
		t.Fatalf("debug lines at log level info:\n%s", r.logs)
	}

	// The password, max clients, the log level and the refresh interval
	// change; a key that needs a restart is named as such.
	write(base + "clients:\n  password: second-pw\n  max_clients: 2\nlog:\n  level: debug\n" +
		"backend:\n  read_timeout: 4s\n")
	r.hup(t, `msg="configuration reloaded"`, 1)
	line := r.lastLine(`msg="configuration reloaded"`)
	if !strings.Contains(line, `changed=clients.password,clients.max_clients,log.level need_restart=backend.read_timeout`) {
		t.Errorf("the reload line does not list the keys that changed: %s", line)
	}
	if strings.Contains(line, "second-pw") || strings.Contains(line, "first-pw") {
		t.Errorf("the reload line shows a password: %s", line)
	}

	if got := old.do("GET", "reload:key"); got != "$2\nv1" {
		t.Errorf("the client authenticated before the reload: GET %q", got)
	}
	second := dialResp(t, r.proxy)
	if got := second.do("GET", "reload:key"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("a new client without AUTH: %q", got)
	}
	if got := second.do("AUTH", "first-pw"); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Errorf("a new client with the old password: %q", got)
	}
	if got := second.do("AUTH", "second-pw"); got != "+OK" {
		t.Errorf("a new client with the new password: %q", got)
	}
	third := dialResp(t, r.proxy)
	if got := third.reply(); got != "-ERR max number of clients reached" {
		t.Errorf("a third client with max_clients 2: %q", got)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if !strings.Contains(r.logs.String(), `level=DEBUG msg="client connected"`) {
			return fmt.Errorf("no debug line at log level debug")
		}
		return nil
	})
	second.nc.Close()
	// A client that gets in once the closed ones are gone, and gets want
	// to args.
	admitted := func(want string, args ...string) *respConn {
		t.Helper()
		var conn *respConn
		clustertest.Eventually(t, 5*time.Second, func() error {
			conn = dialResp(t, r.proxy)
			if got := conn.do(args...); got != want {
				conn.nc.Close()
				return fmt.Errorf("%q: %q, want %q", args, got, want)
			}
			return nil
		})
		return conn
	}

	// Broken files: one error line each, and what was in force stays.
	rejected := `level=ERROR msg="configuration reload rejected; the configuration in force stays"`
	for i, bad := range []struct{ yaml, err string }{
		{base + "clients:\n  password: \"third-pw\n  max_clients: 5\n", "found unexpected end of stream"},
		{base + "clients:\n  max_clients: 0\n", "clients.max_clients: must be at least 1, got 0"},
		{base + "clients:\n  password: third-pw\n  max_clients: many\n", "line 8: cannot unmarshal !!str '…' into int"},
		{base + "log:\n  levl: warn\n", "field levl not found"},
	} {
		write(bad.yaml)
		r.hup(t, rejected, i+1)
		if line := r.lastLine(rejected); !strings.Contains(line, bad.err) || strings.Contains(line, "third-pw") {
			t.Errorf("file %d rejected with %s; want %q and no password", i, line, bad.err)
		}
		again := admitted("+OK", "AUTH", "second-pw")
		if got := dialResp(t, r.proxy).reply(); got != "-ERR max number of clients reached" {
			t.Errorf("after file %d was rejected, a third client: %q", i, got)
		}
		again.nc.Close()
	}
	if n := strings.Count(r.logs.String(), `msg="configuration reloaded"`); n != 1 {
		t.Errorf("%d reload lines, want the first only", n)
	}

	// Back to warn: the line still says so, then debug lines stop.
	write(base + "clients:\n  password: second-pw\n  max_clients: 2\nlog:\n  level: warn\n")
	r.hup(t, `msg="configuration reloaded"`, 2)
	debugLines := strings.Count(r.logs.String(), "level=DEBUG")
	admitted("-NOAUTH Authentication required.", "PING")
	if got := old.do("PING"); got != "+PONG" {
		t.Errorf("PING: %q", got)
	}
	if n := strings.Count(r.logs.String(), "level=DEBUG"); n != debugLines {
		t.Errorf("%d debug lines at log level warn", n-debugLines)
	}
}

// TestReloadWithoutFile: SIGHUP to a proxy started with flags only says
// there is nothing to reload, and the proxy goes on.
func TestReloadWithoutFile(t *testing.T) {
	r := startRun(t, "-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0", "-seeds", "127.0.0.1:1")
	r.hup(t, "nothing to reload", 1)
	if got := dialResp(t, r.proxy).do("PING"); got != "+PONG" {
		t.Errorf("PING after SIGHUP: %q", got)
	}
}

// TestChangedKeys: every key is found by its dotted name.
func TestChangedKeys(t *testing.T) {
	a := defaultConfig()
	if got := changedKeys(a, a); len(got) != 0 {
		t.Errorf("the same configuration: %q", got)
	}
	b := a
	b.Cluster.Seeds = []string{"10.0.0.1:7000"}
	b.Clients.Password = "x"
	b.Log.Level = "debug"
	b.ShutdownGrace = time.Second
	b.File = "/elsewhere.yaml" // not a key
	want := []string{"cluster.seeds", "clients.password", "log.level", "shutdown_grace"}
	if got := changedKeys(a, b); !reflect.DeepEqual(got, want) {
		t.Errorf("changedKeys = %q, want %q", got, want)
	}
	for _, k := range want {
		if live := liveKey(k); live != (k != "cluster.seeds") {
			t.Errorf("liveKey(%s) = %v", k, live)
		}
	}
}

// TestLiveKeysTaken: a reload takes every key liveKey names, and only
// those: each key of a configuration whose every value differs is either
// taken or left for a restart, as liveKey says.
func TestLiveKeysTaken(t *testing.T) {
	next := defaultConfig()
	var alter func(v reflect.Value)
	alter = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				alter(v.Field(i))
			}
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Int, reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Slice:
			elem := reflect.New(v.Type().Elem()).Elem()
			alter(elem)
			v.Set(reflect.Append(v, elem))
		default:
			t.Fatalf("a key of kind %s: teach this test to change it", v.Kind())
		}
	}
	alter(reflect.ValueOf(&next).Elem())
	if n, all := len(changedKeys(defaultConfig(), next)), len(changedKeys(Config{}, next)); n != all || n < 20 {
		t.Fatalf("%d keys of %d altered", n, all)
	}
	cfg := defaultConfig()
	takeLive(&cfg, next)
	for _, k := range changedKeys(defaultConfig(), cfg) {
		if !liveKey(k) {
			t.Errorf("a reload takes %s, which liveKey says needs a restart", k)
		}
	}
	for _, k := range changedKeys(cfg, next) {
		if liveKey(k) {
			t.Errorf("a reload leaves %s, which liveKey says is live", k)
		}
	}
}

// TestYAMLErrorsHideValues: what yaml.v3 quotes of the file is left out
// of the error; where the error is, and an unknown key's name, stay.
func TestYAMLErrorsHideValues(t *testing.T) {
	const secret = "pw-Hk2s9"
	for _, tt := range []struct{ yaml, want string }{
		{"clients:\n  max_clients: " + secret + "\n", "line 2: cannot unmarshal !!str '…' into int"},
		{"clients:\n  idle_timeout: " + secret + "\n", "line 2: cannot unmarshal !!str '…' into time.Duration"},
		{"clients:\n  password: *" + secret + "\n", "unknown anchor '…' referenced"},
		{"clients:\n  password: \"" + secret + "\n", "found unexpected end of stream"},
		{"clients:\n  password: " + secret + "\n  password: x\n", "line 3: mapping key '…' already defined at line 2"},
		{"clients:\n  password:" + secret + ": x\n", "field (not shaped like a key) not found"},
		{"clients:\n  passwrd: " + secret + "\n", "field passwrd not found"},
		{"clients: " + secret + "\n", "line 1: cannot unmarshal !!str '…' into main.ClientsConfig"},
	} {
		_, err := parseConfig([]byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), secret) {
			t.Errorf("%q: %v; want %q and no secret", tt.yaml, err, tt.want)
		}
	}
}

// TestMainSIGHUP runs the program itself, with a configuration file and
// without, and sends it the real SIGHUP: the first takes the new
// password, the second says there is nothing to reload; both keep
// serving, and exit 0 on SIGTERM.
func TestMainSIGHUP(t *testing.T) {
	if args := os.Getenv("SLOTPROXY_TEST_SIGHUP"); args != "" {
		os.Args = append([]string{"slotproxy"}, strings.Fields(args)...)
		main()
		return
	}
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	withFile, withoutFile := clustertest.FreeAddr(t), clustertest.FreeAddr(t)
	path := cfgFile(t, fmt.Sprintf("listen: %s\nmetrics:\n  listen: \"\"\ncluster:\n  seeds: [%q]\nclients:\n  password: first-pw\n",
		withFile, c.Seeds()[0]))

	start := func(args string) (*exec.Cmd, *clustertest.LogBuffer, chan error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMainSIGHUP$")
		cmd.Env = append(os.Environ(), "SLOTPROXY_TEST_SIGHUP="+args)
		stderr := &clustertest.LogBuffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				<-exited
			}
			if t.Failed() {
				t.Logf("slotproxy %s:\n%s", args, stderr)
			}
		})
		return cmd, stderr, exited
	}
	cmd1, log1, exited1 := start("-config " + path)
	cmd2, log2, exited2 := start("-listen " + withoutFile + " -metrics-listen 127.0.0.1:0 -seeds " + c.Seeds()[0])

	ctx := context.Background()
	first := redis.NewClient(&redis.Options{Addr: withFile, Password: "first-pw", MaxRetries: -1, Protocol: 2, PoolSize: 1})
	defer first.Close()
	clustertest.Eventually(t, 15*time.Second, func() error { return first.Set(ctx, "sighup:key", "v", 0).Err() })
	plain := redis.NewClient(&redis.Options{Addr: withoutFile, MaxRetries: -1, Protocol: 2, PoolSize: 1})
	defer plain.Close()
	clustertest.Eventually(t, 15*time.Second, func() error { return plain.Get(ctx, "sighup:key").Err() })

	if err := os.WriteFile(path, []byte(fmt.Sprintf("listen: %s\nmetrics:\n  listen: \"\"\ncluster:\n  seeds: [%q]\nclients:\n  password: second-pw\n",
		withFile, c.Seeds()[0])), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []*exec.Cmd{cmd1, cmd2} {
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	clustertest.Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(log1.String(), `msg="configuration reloaded"`) || !strings.Contains(log2.String(), "nothing to reload") {
			return fmt.Errorf("no reload lines yet")
		}
		return nil
	})
	if !strings.Contains(log1.String(), "changed=clients.password need_restart=\"\"") {
		t.Errorf("the reload line: %s", log1)
	}
	second := redis.NewClient(&redis.Options{Addr: withFile, Password: "second-pw", MaxRetries: -1, Protocol: 2, PoolSize: 1})
	defer second.Close()
	if got, err := second.Get(ctx, "sighup:key").Result(); err != nil || got != "v" {
		t.Errorf("a client with the new password: %q, %v", got, err)
	}
	if err := first.Get(ctx, "sighup:key").Err(); err != nil {
		t.Errorf("the client authenticated before SIGHUP: %v", err)
	}
	if err := plain.Get(ctx, "sighup:key").Err(); err != nil {
		t.Errorf("the proxy started without a file, after SIGHUP: %v", err)
	}

	for i, cmd := range []*exec.Cmd{cmd1, cmd2} {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		exited := []chan error{exited1, exited2}[i]
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("slotproxy %d exited with %v after SIGTERM, want exit code 0", i, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("slotproxy %d still running 20s after SIGTERM", i)
		}
	}
}
