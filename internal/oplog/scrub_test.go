package oplog

import "testing"

func TestScrub(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		secrets  []string
	}{
		{"WRONGPASS invalid username-password pair or user is disabled.", "WRONGPASS invalid username-password pair or user is disabled.", nil},
		// Redis 7 with AUTH renamed away, and HELLO before Redis 6.
		{"ERR unknown command 'AUTH', with args beginning with: 'app' 'hunter2' ", "ERR unknown command '…', with args beginning with: '…' '…' ", nil},
		{"ERR unknown command 'HELLO', with args beginning with: '3' 'AUTH' 'default' 'hunter2' ", "ERR unknown command '…', with args beginning with: '…' '…' '…' '…' ", nil},
		// Redis 6.0 quoted with backquotes.
		{"ERR unknown command `HELLO`, with args beginning with: `3`, `AUTH`, `default`, `hunter2`, ",
			"ERR unknown command '…', with args beginning with: '…', '…', '…', '…', ", nil},
		{"line 2: cannot unmarshal !!str `hunter2` into int", "line 2: cannot unmarshal !!str '…' into int", nil},
		{"yaml: unknown anchor 'hunter2' referenced", "yaml: unknown anchor '…' referenced", nil},
		{"not closed: \"hunter2 and more", "not closed: '…'", nil},
		{"dial tcp 127.0.0.1:1: connect: connection refused", "dial tcp 127.0.0.1:1: connect: connection refused", []string{"hunter2"}},
		{"reply: hunter2 twice hunter2", "reply: (hidden) twice (hidden)", []string{"", "hunter2"}},
		{"quote inside the secret: it's", "quote inside the secret: (hidden)", []string{"it's"}},
		{"", "", []string{"x"}},
	} {
		if got := Scrub(tt.in, tt.secrets...); got != tt.want {
			t.Errorf("Scrub(%q, %q) = %q, want %q", tt.in, tt.secrets, got, tt.want)
		}
	}
}
