package proxy

import (
	"strings"
	"testing"
)

// TestIdempotent: only writes whose second run has the first one's effect
// and reply may be sent again.
func TestIdempotent(t *testing.T) {
	tbl := Builtin()
	for _, tt := range []struct {
		cmd  string
		want bool
	}{
		{"SET k v", true},
		{"set k v EX 10", true},
		{"SET k v px 100 KEEPTTL", true},
		{"SET k v EXAT 1900000000", true},
		{"SET k v PXAT 1900000000000", true},
		{"SET k NX", true}, // NX is the value here
		{"SET k v NX", false},
		{"SET k v xx EX 10", false},
		{"SET k v GET", false},
		{"SET k v EX 10 GET", false},
		{"SET k v IFEQ old", false}, // unknown to this proxy: not sent twice
		{"SETEX k 10 v", true},
		{"PSETEX k 100 v", true},
		{"MSET a 1 b 2", true},
		{"MSETNX a 1 b 2", false},
		{"INCR k", false},
		{"DEL k", false},
		{"HSET h f v", false},
		{"SETNX k v", false},
		{"GETSET k v", false},
		{"APPEND k v", false},
		{"GET k", false}, // a read: retried as one, not as a write
	} {
		args := strings.Fields(tt.cmd)
		bargs := make([][]byte, len(args))
		for i, a := range args {
			bargs[i] = []byte(a)
		}
		c := tbl.Lookup(bargs[0])
		if c == nil {
			t.Fatalf("%s: not in the command table", args[0])
		}
		if got := c.idempotent(bargs); got != tt.want {
			t.Errorf("%s: idempotent = %v, want %v", tt.cmd, got, tt.want)
		}
	}
}
