package proxy

// The proxy answers SCAN itself, walking slots with CLUSTER GETKEYSINSLOT,
// which cannot filter; so MATCH is applied here and must select exactly the
// names redis-server's KEYS and SCAN MATCH would, quirks included. The rules
// below are redis-server 7.0's:
//
//   - '*' matches any run of bytes, '?' any one byte.
//   - '[...]' matches one byte from a set; '[^...]' one byte not in it. In a
//     set, '\x' stands for x (compared exactly, even when folding case),
//     'a-z' is a range whose ends may come in either order, and ']' ends the
//     set unless it is the far end of a range ('[a-]' is the range ']'..'a').
//     A set that is never closed runs to the end of the pattern.
//   - Outside a set, '\x' matches x; a trailing '\' matches a backslash.
//   - An empty name matches only the empty pattern: redis-server stops as
//     soon as the name is used up, so even "**" does not match it. Only the
//     pattern that is exactly "*" selects the empty name, because KEYS and
//     SCAN skip the matcher for it (globMatch does the same).

// globMatch reports whether s matches pattern as redis-server's KEYS and
// SCAN MATCH match it.
func globMatch(pattern, s []byte) bool {
	if len(pattern) == 1 && pattern[0] == '*' {
		return true
	}
	return glob(pattern, s, false)
}

// globMatchNocase is globMatch without the lone-"*" shortcut and with ASCII
// letters folded, as redis-server matches command and config names (COMMAND
// LIST FILTERBY PATTERN, CONFIG GET).
func globMatchNocase(pattern, s []byte) bool {
	return glob(pattern, s, true)
}

// glob matches without recursion or allocation, in O(len(pattern)*len(s))
// steps. Every element other than '*' consumes exactly one byte, so when
// the pattern fails after a star only the most recent star needs to take
// one more byte: giving an earlier star more would only push the later one
// further right, to where its tail has already failed. redis-server bounds
// its recursive matcher by the same argument.
func glob(pattern, s []byte, nocase bool) bool {
	if len(s) == 0 {
		return len(pattern) == 0
	}
	p, i := 0, 0
	tail, tailAt := -1, 0 // the pattern after the last star, and where in s it is being tried
	for i < len(s) {
		if p < len(pattern) {
			if pattern[p] == '*' {
				for p < len(pattern) && pattern[p] == '*' {
					p++
				}
				if p == len(pattern) {
					return true
				}
				tail, tailAt = p, i
				continue
			}
			if next, ok := globOne(pattern, p, s[i], nocase); ok {
				p, i = next, i+1
				continue
			}
		}
		if tail < 0 {
			return false
		}
		tailAt++
		p, i = tail, tailAt
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// globOne matches c against the element that starts at pattern[p], which
// is not '*', and returns where the next element starts.
func globOne(pattern []byte, p int, c byte, nocase bool) (next int, ok bool) {
	switch pattern[p] {
	case '?':
		return p + 1, true
	case '[':
		return globSet(pattern, p+1, c, nocase)
	case '\\':
		if p+1 < len(pattern) {
			p++
		}
	}
	if nocase {
		return p + 1, foldASCII(int(pattern[p])) == foldASCII(int(c))
	}
	return p + 1, pattern[p] == c
}

// globSet matches c against the set whose body starts at pattern[p], just
// after its '['.
func globSet(pattern []byte, p int, c byte, nocase bool) (next int, ok bool) {
	negate := p < len(pattern) && pattern[p] == '^'
	if negate {
		p++
	}
	in := false
	for p < len(pattern) {
		b := pattern[p]
		switch {
		case b == '\\' && p+1 < len(pattern):
			p++
			in = in || pattern[p] == c
		case b == ']':
			return p + 1, in != negate
		case p+2 < len(pattern) && pattern[p+1] == '-':
			// redis-server compares range ends as C chars, signed on the
			// x86-64 builds this proxy is tested against, so a byte from
			// 0x80 up sorts below '\0' here ('[a-\xff]' holds '\x01' but
			// not '\x80'). On a platform with unsigned char it would not.
			lo, hi, x := int(int8(b)), int(int8(pattern[p+2])), int(int8(c))
			if lo > hi {
				lo, hi = hi, lo
			}
			if nocase {
				// Folded after the swap, as redis-server does: '[a-Z]'
				// becomes 'z'..'a' and holds nothing.
				lo, hi, x = foldASCII(lo), foldASCII(hi), foldASCII(x)
			}
			in = in || (lo <= x && x <= hi)
			p += 2
		case nocase:
			in = in || foldASCII(int(b)) == foldASCII(int(c))
		default:
			in = in || b == c
		}
		p++
	}
	return p, in != negate
}

// foldASCII lowers A-Z only, as tolower does in the C locale redis-server
// runs its matcher in.
func foldASCII(c int) int {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
