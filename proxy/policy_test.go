package proxy

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

// argsFor returns a call of the command named name ("config|set") with as
// many arguments as its arity asks, and the command's words in it.
func argsFor(t *testing.T, name string) (args []any, words string) {
	t.Helper()
	top, sub, _ := strings.Cut(name, "|")
	cmd := Builtin().Lookup([]byte(top))
	if cmd == nil {
		t.Fatalf("%s: not in the command table", top)
	}
	args = []any{strings.ToUpper(top)}
	if sub == "" && cmd.Sub != nil {
		sub = "help" // a container is denied with all its subcommands
	}
	if sub != "" {
		if cmd = cmd.Subcommand([]byte(sub)); cmd == nil {
			t.Fatalf("%s: no such subcommand", name)
		}
		args = append(args, strings.ToUpper(sub))
	}
	n := cmd.Arity
	if n < 0 {
		n = -n
	}
	words = strings.ToUpper(strings.TrimSpace(top + " " + sub))
	for len(args) < n {
		args = append(args, "1")
	}
	return args, words
}

// TestCommandPolicy: every command of the default deny list is refused
// through a real proxy with the policy's error, before it reaches a
// node; what is not on the list passes; the list is the configuration's.
func TestCommandPolicy(t *testing.T) {
	c := clustertest.New(t, clustertest.Options{Masters: 3})
	ctx := context.Background()

	t.Run("DefaultDeny", func(t *testing.T) {
		p := startProxy(t, c, Options{Deny: DefaultDeny}, router.Options{})
		cl := p.client(t, "")
		for _, name := range DefaultDeny {
			args, words := argsFor(t, name)
			err := cl.Do(ctx, args...).Err()
			want := "ERR command '" + words + "' is denied by slotproxy's command policy (commands.deny)"
			if err == nil || err.Error() != want {
				t.Errorf("%v: %v, want %q", args, err, want)
			}
		}
		// The nodes are untouched: still up, same config.
		if err := cl.Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		// What is not denied passes: a read of the config, the rest of
		// CLUSTER, KEYS and FLUSHALL (not on the default list).
		for _, args := range [][]any{
			{"CONFIG", "GET", "maxmemory"}, {"CLUSTER", "INFO"}, {"KEYS", "policy:*"}, {"FLUSHALL"},
		} {
			if err := cl.Do(ctx, args...).Err(); err != nil {
				t.Errorf("%v: %v", args, err)
			}
		}
		// Any spelling of the name.
		if err := cl.Do(ctx, "sHuTdOwN").Err(); err == nil || !strings.Contains(err.Error(), "'SHUTDOWN' is denied") {
			t.Errorf("sHuTdOwN: %v", err)
		}
		// In a transaction, a denied command dooms it, as any refused one.
		var cmds []redis.Cmder
		_, err := cl.TxPipelined(ctx, func(pipe redis.Pipeliner) error {
			pipe.Set(ctx, "policy:k", "v", 0)
			cmds = append(cmds, pipe.Do(ctx, "BGSAVE"))
			return nil
		})
		if err == nil || !strings.HasPrefix(err.Error(), "EXECABORT") {
			t.Errorf("MULTI with BGSAVE: %v, want EXECABORT", err)
		}
		if n, err := cl.Exists(ctx, "policy:k").Result(); err != nil || n != 0 {
			t.Errorf("the doomed transaction ran: %d, %v", n, err)
		}
	})

	t.Run("Configured", func(t *testing.T) {
		p := startProxy(t, c, Options{Deny: []string{"flushall", "FLUSHDB", "keys", "config"}}, router.Options{})
		cl := p.client(t, "")
		for _, args := range [][]any{{"FLUSHALL"}, {"FLUSHDB", "ASYNC"}, {"KEYS", "*"}, {"CONFIG", "GET", "maxmemory"}} {
			if err := cl.Do(ctx, args...).Err(); err == nil || !strings.Contains(err.Error(), "denied by slotproxy's command policy") {
				t.Errorf("%v: %v, want the policy's error", args, err)
			}
		}
		// SHUTDOWN is not on this list: it gets the error it always gets.
		if err := cl.Do(ctx, "SHUTDOWN").Err(); err == nil || strings.Contains(err.Error(), "policy") {
			t.Errorf("SHUTDOWN without the policy: %v", err)
		}
	})
}
