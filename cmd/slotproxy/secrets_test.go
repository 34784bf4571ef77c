package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// TestSecretsStayOut runs slotproxy in front of a cluster that requires a
// password, with a client password, at log level debug, in each log
// format; uses it with wrong and right passwords, a distinctive value,
// protocol errors, and reloads of broken files that hold a password on
// the faulty line; then looks for the passwords and the value in all the
// proxy shows: its log, /metrics, INFO, CLIENT LIST, SLOWLOG GET and
// CONFIG GET.
func TestSecretsStayOut(t *testing.T) {
	const (
		clusterPW = "cluster-pw-Zq81"
		clientPW  = "client-pw-Xr27"
		newPW     = "client-pw-new-Mb55"
		brokenPW  = "broken-pw-Ty60"
		value     = "value-Vk93-distinctive"
		userPW    = "user-pw-Qw41"
	)
	secrets := []string{clusterPW, clientPW, newPW, brokenPW, value, userPW}
	c := clustertest.New(t, clustertest.Options{Masters: 3, Password: clusterPW})

	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			path := cfgFile(t, "")
			base := fmt.Sprintf("listen: 127.0.0.1:0\nmetrics:\n  listen: 127.0.0.1:0\nlog:\n  level: debug\n  format: %s\n"+
				"cluster:\n  seeds: [%q]\n  password: %s\n", format, c.Seeds()[0], clusterPW)
			write := func(yaml string) {
				t.Helper()
				if err := os.WriteFile(path, []byte(base+yaml), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("clients:\n  password: " + clientPW + "\n  users: [{name: app, password: " + userPW + "}, {name: ro, password: " + userPW + ", read_only: true}]\n")
			r := startRun(t, "-config", path)
			ctx := context.Background()

			client := redis.NewClient(&redis.Options{Addr: r.proxy, Password: clientPW, MaxRetries: -1, Protocol: 2, PoolSize: 1})
			defer client.Close()
			clustertest.Eventually(t, 15*time.Second, func() error { return client.Set(ctx, "secret:probe", "1", 0).Err() })

			// Wrong passwords, in every way a client can give one.
			wrong := redis.NewClient(&redis.Options{Addr: r.proxy, Password: "not-" + clientPW, MaxRetries: -1, Protocol: 2})
			if err := wrong.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
				t.Errorf("a client with a wrong password: %v", err)
			}
			wrong.Close()
			raw := dialResp(t, r.proxy)
			for _, args := range [][]string{
				{"AUTH", brokenPW},
				{"AUTH", "default", brokenPW},
				{"AUTH", "nobody", clientPW},
				{"AUTH", "app", brokenPW},
				{"AUTH", "app", userPW + "x"},
				{"HELLO", "3", "AUTH", "default", brokenPW},
				{"SET", "secret:k", value},
			} {
				if got := raw.do(args...); !strings.HasPrefix(got, "-") {
					t.Errorf("%s before AUTH: %q", args[0], got)
				}
			}
			// The right one, then the value, in many commands.
			if got := raw.do("AUTH", clientPW); got != "+OK" {
				t.Fatalf("AUTH: %q", got)
			}
			for _, args := range [][]string{
				{"SET", "secret:k", value},
				{"GET", "secret:k"},
				{"MSET", "secret:a", value, "secret:b", value},
				{"MGET", "secret:a", "secret:b", "secret:k"},
				{"APPEND", "secret:k", value},
				{"EVAL", "return ARGV[1]", "0", value},
				{"PUBLISH", "secret:ch", value},
				{"NOSUCHCOMMAND", value, clientPW},
			} {
				raw.do(args...)
			}
			// A read-only user's refused write, which names the command.
			ro := dialResp(t, r.proxy)
			if got := ro.do("AUTH", "ro", userPW); got != "+OK" {
				t.Fatalf("AUTH ro: %q", got)
			}
			if got := ro.do("SET", "secret:k", value); !strings.HasPrefix(got, "-NOPERM") {
				t.Errorf("SET by the read-only user: %q", got)
			}
			// Protocol errors with a password in them.
			for _, junk := range []string{
				"AUTH \"" + clientPW + "\r\n",
				"*2\r\n$4\r\nAUTH\r\n$x" + clientPW + "\r\n",
			} {
				nc, err := net.Dial("tcp", r.proxy)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(nc, junk)
				nc.SetReadDeadline(time.Now().Add(5 * time.Second))
				io.ReadAll(nc) // the error, then the end
				nc.Close()
			}

			// Reloads of broken files with a password on the faulty line,
			// then a good one with a new password.
			rejected := `configuration reload rejected`
			for i, bad := range []string{
				"clients:\n  password: " + clientPW + "\n  max_clients: " + brokenPW + "\n",
				"clients:\n  password: \"" + brokenPW + "\n",
				"clients:\n  password: " + brokenPW + "\n  password: " + brokenPW + "\n",
				"clients:\n  password: *" + brokenPW + "\n",
				"clients:\n  idle_timeout: " + brokenPW + "\n  password: " + brokenPW + "\n",
			} {
				write(bad)
				r.hup(t, rejected, i+1)
			}
			write("clients:\n  password: " + newPW + "\n")
			r.hup(t, "configuration reloaded", 1)
			after := redis.NewClient(&redis.Options{Addr: r.proxy, Password: newPW, MaxRetries: -1, Protocol: 2, PoolSize: 1})
			defer after.Close()
			if got, err := after.Get(ctx, "secret:a").Result(); err != nil || got != value {
				t.Fatalf("GET with the new password: %q, %v", got, err)
			}

			// Everything the proxy shows.
			shown := map[string]string{"the log": r.logs.String()}
			resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + r.admin + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || len(body) == 0 {
				t.Fatalf("/metrics: %d, %d bytes, %v", resp.StatusCode, len(body), err)
			}
			shown["/metrics"] = string(body)
			for _, args := range [][]any{
				{"INFO", "everything"},
				{"CLIENT", "LIST"},
				{"SLOWLOG", "GET", "128"},
				{"CONFIG", "GET", "*"},
			} {
				v, err := after.Do(ctx, args...).Result()
				shown[fmt.Sprint(args...)] = fmt.Sprintf("%v %v", v, err)
			}
			if s := shown["INFOeverything"]; !strings.Contains(s, "connected_clients:") {
				t.Errorf("INFO everything: %.300s", s)
			}
			if s := shown["CLIENTLIST"]; !strings.Contains(s, "cmd=") {
				t.Errorf("CLIENT LIST: %.300s", s)
			}
			if s := shown["CONFIGGET*"]; !strings.Contains(s, "requirepass (hidden by slotproxy)") {
				t.Errorf("CONFIG GET *: %.300s", s)
			}
			// The log holds what the secrets could have leaked through.
			for _, line := range []string{"slotproxy listening", "client disconnected", "protocol_error", rejected, "configuration reloaded", "client connected"} {
				if !strings.Contains(r.logs.String(), line) {
					t.Errorf("the log has no %q line: the search below would prove little", line)
				}
			}
			for where, text := range shown {
				for _, s := range secrets {
					if i := strings.Index(text, s); i >= 0 {
						t.Errorf("%s shows %q: ...%s...", where, s, text[max(0, i-200):min(len(text), i+len(s)+50)])
					}
				}
			}
		})
	}
}
