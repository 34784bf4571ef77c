package oplog

import "strings"

// Scrub returns s fit for a log line: each quoted span ('...', "..." or
// `...`, to the end of s when it is not closed) becomes '…', and each
// non-empty secret becomes (hidden). A node's error reply quotes the
// arguments of the command it refuses ("unknown command 'AUTH', with args
// beginning with: 'pass'" where AUTH is renamed), yaml.v3 quotes the value
// it cannot decode, and either may be a password.
func Scrub(s string, secrets ...string) string {
	s = Hide(s, secrets...)
	if !strings.ContainsAny(s, "'\"`") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for {
		i := strings.IndexAny(s, "'\"`")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString("'…'")
		end := strings.IndexByte(s[i+1:], s[i])
		if end < 0 {
			return b.String()
		}
		s = s[i+1+end+1:]
	}
}

// Hide returns s with each non-empty secret replaced by (hidden).
func Hide(s string, secrets ...string) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "(hidden)")
		}
	}
	return s
}
