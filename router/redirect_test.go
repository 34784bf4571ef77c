package router

import "testing"

func TestParseRedirect(t *testing.T) {
	tests := []struct {
		name, reply, from string
		slot              uint16
		addr              string
		ok                bool
	}{
		{name: "moved", reply: "-MOVED 3999 127.0.0.1:6381\r\n", from: "127.0.0.1:7000", slot: 3999, addr: "127.0.0.1:6381", ok: true},
		{name: "ask", reply: "-ASK 3999 127.0.0.1:6381\r\n", from: "127.0.0.1:7000", slot: 3999, addr: "127.0.0.1:6381", ok: true},
		{name: "without CRLF", reply: "-MOVED 0 10.1.2.3:7001", from: "127.0.0.1:7000", slot: 0, addr: "10.1.2.3:7001", ok: true},
		{name: "last slot", reply: "-MOVED 16383 h:1\r\n", from: "x:2", slot: 16383, addr: "h:1", ok: true},
		{name: "hostname", reply: "-MOVED 12 redis-1.example:6379\r\n", from: "x:2", slot: 12, addr: "redis-1.example:6379", ok: true},
		{name: "empty host means the sender's", reply: "-MOVED 3999 :6381\r\n", from: "10.0.0.5:7000", slot: 3999, addr: "10.0.0.5:6381", ok: true},
		{name: "ask with empty host", reply: "-ASK 5 :6381\r\n", from: "10.0.0.5:7000", slot: 5, addr: "10.0.0.5:6381", ok: true},
		{name: "IPv6", reply: "-MOVED 1 [::1]:7000\r\n", from: "127.0.0.1:7000", slot: 1, addr: "[::1]:7000", ok: true},
		{name: "empty host, IPv6 sender", reply: "-MOVED 2 :7002\r\n", from: "[fe80::1]:7000", slot: 2, addr: "[fe80::1]:7002", ok: true},
		{name: "extra spaces", reply: "-MOVED  7   h:1 \r\n", from: "x:2", slot: 7, addr: "h:1", ok: true},

		{name: "no fields", reply: "-MOVED\r\n", from: "x:2"},
		{name: "no address", reply: "-MOVED 3999\r\n", from: "x:2"},
		{name: "trailing field", reply: "-MOVED 3999 h:1 extra\r\n", from: "x:2"},
		{name: "slot not a number", reply: "-MOVED abc h:1\r\n", from: "x:2"},
		{name: "negative slot", reply: "-MOVED -1 h:1\r\n", from: "x:2"},
		{name: "slot 16384", reply: "-MOVED 16384 h:1\r\n", from: "x:2"},
		{name: "slot over 16 bits", reply: "-MOVED 70000 h:1\r\n", from: "x:2"},
		{name: "no port", reply: "-MOVED 1 hostonly\r\n", from: "x:2"},
		{name: "IPv6 without brackets", reply: "-MOVED 1 ::1:7000\r\n", from: "x:2"},
		{name: "unclosed bracket", reply: "-MOVED 1 [::1:7000\r\n", from: "x:2"},
		// BUG (minor; router/redirect.go parseRedirect, lines 57-64): the
		// port is not checked. A port must be a port: dialing "h:" or
		// "h:abc" cannot succeed, and a MOVED with such an address patches
		// the slot table (slotmap.Patch) with an address that stays wrong
		// until the next refresh, the request retrying against it.
		{name: "empty port", reply: "-MOVED 1 127.0.0.1:\r\n", from: "x:2"},
		{name: "port not a number", reply: "-MOVED 1 127.0.0.1:abc\r\n", from: "x:2"},
		{name: "port out of range", reply: "-MOVED 1 127.0.0.1:70000\r\n", from: "x:2"},
		{name: "colon alone", reply: "-MOVED 1 :\r\n", from: "10.0.0.5:7000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slot, addr, ok := parseRedirect([]byte(tt.reply), tt.from)
			if ok != tt.ok || (ok && (slot != tt.slot || addr != tt.addr)) {
				t.Errorf("parseRedirect(%q, %q) = %d, %q, %v; want %d, %q, %v",
					tt.reply, tt.from, slot, addr, ok, tt.slot, tt.addr, tt.ok)
			}
		})
	}
}
