package proxy

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// exchange sends raw on a new connection to addr and reads n replies,
// returning them as one string.
func exchange(t *testing.T, addr, raw string, n int) string {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(nc)
	var out strings.Builder
	for range n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reply %q so far: %v", out.String(), err)
		}
		out.WriteString(line)
		if line[0] == '$' && line != "$-1\r\n" {
			body, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			out.WriteString(body)
		}
	}
	return out.String()
}

// TestClientAuth: every way a client authenticates, or fails to, through a
// real proxy: the default user's password, ACL-style users, a read-only
// user, HELLO AUTH; and an unauthenticated pipeline is refused command by
// command exactly as a redis-server with requirepass refuses it.
func TestClientAuth(t *testing.T) {
	const defaultPW, appPW, roPW = "default-pw-Ij90", "app-pw-Kl12", "ro-pw-Mn34"
	sum := sha256.Sum256([]byte(roPW))
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{Password: defaultPW, Users: []User{
		{Name: "app", Password: appPW},
		{Name: "reports", PasswordSHA256: hex.EncodeToString(sum[:]), ReadOnly: true},
	}}, router.Options{})
	ctx := context.Background()

	t.Run("Pipeline", func(t *testing.T) {
		ref := clustertest.Standalone(t, defaultPW)
		pipeline := "GET auth:k\r\nSET auth:k v\r\nPING\r\nAUTH wrong\r\nAUTH " + defaultPW + "\r\nSET auth:k v\r\nGET auth:k\r\n"
		want := exchange(t, ref.Addr, pipeline, 7)
		if got := exchange(t, p.Addr, pipeline, 7); got != want {
			t.Errorf("through the proxy:\n%q\nredis-server:\n%q", got, want)
		}
		if !strings.HasPrefix(want, "-NOAUTH") {
			t.Fatalf("redis-server answered %q", want)
		}
	})

	dial := func(user, pass string, proto int) *redis.Client {
		cl := redis.NewClient(&redis.Options{Addr: p.Addr, Username: user, Password: pass, Protocol: proto, MaxRetries: -1, DisableIdentity: true})
		t.Cleanup(func() { cl.Close() })
		return cl
	}
	errOf := func(err error) string {
		if err == nil {
			return ""
		}
		return err.Error()
	}
	const wrongPass = "WRONGPASS invalid username-password pair or user is disabled."
	for _, tc := range []struct {
		name, user, pass string
		proto            int
		want             string // the error of a first PING; "" for none
	}{
		{"NoAuth", "", "", 2, "NOAUTH Authentication required."},
		{"WrongPassword", "", "nope", 2, wrongPass},
		{"DefaultPassword", "", defaultPW, 2, ""},
		{"DefaultByName", "default", defaultPW, 2, ""},
		{"User", "app", appPW, 2, ""},
		{"UserWrongPassword", "app", defaultPW, 2, wrongPass},
		{"NoSuchUser", "nobody", appPW, 2, wrongPass},
		{"HelloAuth", "app", appPW, 3, ""}, // go-redis authenticates with HELLO 3 AUTH
		{"HelloAuthWrong", "reports", appPW, 3, wrongPass},
		{"HashedPassword", "reports", roPW, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := errOf(dial(tc.user, tc.pass, tc.proto).Ping(ctx).Err()); got != tc.want {
				t.Errorf("PING: %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("WhoAmI", func(t *testing.T) {
		info, err := dial("app", appPW, 2).ClientInfo(ctx).Result()
		if err != nil || info.User != "app" {
			t.Errorf("CLIENT INFO user: %+v %v", info, err)
		}
		if who, err := dial("app", appPW, 2).Do(ctx, "ACL", "WHOAMI").Text(); err != nil || who != "app" {
			t.Errorf("ACL WHOAMI: %q %v", who, err)
		}
	})

	t.Run("ReadOnlyUser", func(t *testing.T) {
		rw := dial("app", appPW, 2)
		if err := rw.Set(ctx, "auth:ro", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		ro := dial("reports", roPW, 2)
		if v, err := ro.Get(ctx, "auth:ro").Result(); err != nil || v != "v" {
			t.Errorf("GET: %q %v", v, err)
		}
		for _, args := range [][]any{
			{"SET", "auth:ro", "w"}, {"DEL", "auth:ro"}, {"INCR", "auth:n"}, {"FLUSHALL"},
			{"EVAL", "return 1", "0"}, {"HSET", "auth:h", "f", "v"},
		} {
			want := "NOPERM this user has no permissions to run the '" + strings.ToLower(args[0].(string)) + "' command"
			if got := errOf(ro.Do(ctx, args...).Err()); got != want {
				t.Errorf("%v: %q, want %q", args, got, want)
			}
		}
		if v, err := ro.Do(ctx, "EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "auth:ro").Result(); err != nil || v != "v" {
			t.Errorf("EVAL_RO: %v %v", v, err)
		}
		_, err := ro.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Get(ctx, "auth:ro")
			pipe.Set(ctx, "auth:ro", "x", 0)
			return nil
		})
		if err == nil || !strings.HasPrefix(err.Error(), "EXECABORT") {
			t.Errorf("MULTI with a SET: %v", err)
		}
		if v, _ := rw.Get(ctx, "auth:ro").Result(); v != "v" {
			t.Errorf("the read-only user's writes ran: %q", v)
		}
	})
}

// TestUsersOnly: with users and no default password, the default user is
// off, as an ACL with "user default off" makes it.
func TestUsersOnly(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	p := startProxy(t, c, Options{Users: []User{{Name: "app", Password: "only-pw"}}}, router.Options{})
	got := exchange(t, p.Addr, "PING\r\nAUTH only-pw\r\nAUTH default only-pw\r\nAUTH app only-pw\r\nPING\r\n", 5)
	want := "-NOAUTH Authentication required.\r\n" +
		"-WRONGPASS invalid username-password pair or user is disabled.\r\n" +
		"-WRONGPASS invalid username-password pair or user is disabled.\r\n" +
		"+OK\r\n+PONG\r\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
