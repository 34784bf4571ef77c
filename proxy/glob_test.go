package proxy

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// globCases are hand-picked; TestGlobAgainstRedis also stores every name
// here and replays every pattern, so each result is redis-server 7.0's.
var globCases = []struct {
	pattern, s string
	want       bool
}{
	// The empty name: only "" and the lone "*" shortcut select it.
	{"*", "", true},
	{"**", "", false},
	{"?*", "", false},
	{"", "", true},
	{"", "a", false},
	{"?", "", false},

	{"a", "a", true},
	{"a", "A", false},
	{"a", "ab", false},
	{"ab", "a", false},
	{"?", "a", true},
	{"?", "ab", false},
	{"??", "\xc3\xa9", true}, // bytes, not runes
	{"h?llo", "hello", true},
	{"a*", "a", true},
	{"*a", "a", true},
	{"a*b", "ab", true},
	{"a*b", "a", false},
	{"a*b", "axxb", true},
	{"a*b", "axxbc", false},
	{"a**b", "axb", true},
	{"a*b*", "ab", true},
	{"a*b**", "axbyy", true},
	{"*:*:name", "user:42:name", true},
	{"*:*:name", "user:42:names", false},
	{"a\x00*", "a\x00b", true},
	{"*x", "\x00x", true},

	{"h[ae]llo", "hallo", true},
	{"h[ae]llo", "hillo", false},
	{"h[^e]llo", "hallo", true},
	{"h[^e]llo", "hello", false},
	{"h[a-b]llo", "hbllo", true},
	{"[z-a]", "m", true}, // ends in either order
	{"[z-a]", "A", false},
	{"[--/]", ".", true},
	{"[a-]", "]", true}, // ']' is the far end of a range: ']'..'a'
	{"[a-]", "^", true},
	{"[a-]", "b", false},
	{"[a-]]", "]", true},
	{"[]", "]", false},
	{"[]]", "]]", false}, // an empty set, then a literal ']'
	{"[^]", "x", true},
	{"[^]]", "x]", true},
	{"[[]", "[", true},
	{"[^^]", "^", false},
	{"[a^]", "^", true},

	// Sets never closed run to the end of the pattern.
	{"[", "[", false},
	{"[^", "x", true},
	{"[^", "xy", false},
	{"[abc", "b", true},
	{"[abc", "bc", false},
	{"x[", "x[", false},
	{"[a-z", "q", true},

	// Escapes.
	{`\*`, "*", true},
	{`\*`, "a", false},
	{`\?`, "?", true},
	{`\?`, "a", false},
	{`\[a]`, "[a]", true},
	{`\`, `\`, true}, // a trailing backslash is itself
	{`a\`, `a\`, true},
	{`\\`, `\`, true},
	{`\a`, "a", true},
	{`[\]`, "]", true}, // escaped ']', set never closed
	{`[\]`, `\`, false},
	{`[\`, `\`, true}, // a backslash with nothing to escape is itself
	{`[\-]`, "-", true},
	{`[a\-z]`, "-", true},
	{`[a\-z]`, "b", false},
	{`[\^a]`, "^", true},
	{`[^\]]`, "]", false},

	// Range ends are signed chars: 0x80..0xff sort below 0x00.
	{"[a-\xff]", "\x01", true},
	{"[a-\xff]", "\xff", true},
	{"[a-\xff]", "\x80", false},
	{"[a-\xff]", "b", false},
	{"[\x7f-\x80]", "A", true},
	{"[\x02-\xff]", "\x01", true},
	{"[\x02-\xff]", "\x03", false},
	{"[\x80-\xff]", "\x90", true},
	{"[\x80-\xff]", "\x00", false},

	// Backtracking stays linear (an exponential matcher would not return).
	{"*a*a*a*a*a*a*b", strings.Repeat("a", 64), false},
	{"*a*a*a*a*a*a*b", strings.Repeat("a", 64) + "b", true},
	{"*?*?*?*?*?*?*?x", strings.Repeat("?", 40), false},
}

func TestGlobMatch(t *testing.T) {
	for _, tt := range globCases {
		if got := globMatch([]byte(tt.pattern), []byte(tt.s)); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

func TestGlobMatchNocase(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"HELLO", "hello", true},
		{"hello", "HeLLo", true},
		{"h?LL*", "hello", true},
		{"[A-Z]", "q", true},
		{"[a-z]", "Q", true},
		{"[Q]", "q", true},
		{"[^Q]", "q", false},
		{"[a-Z]", "a", false}, // folded after the swap: 'z'..'a', empty
		{"[a-Z]", "Z", false},
		{"[A-z]", "_", false}, // folded: 'a'..'z'
		{`[\A]`, "a", false},  // an escape in a set compares exactly
		{`[\A]`, "A", true},
		{`\A`, "a", true}, // outside a set it folds
		{"*", "", false},  // no lone-"*" shortcut here
		{"\xc9", "\xe9", false},
	} {
		if got := globMatchNocase([]byte(tt.pattern), []byte(tt.s)); got != tt.want {
			t.Errorf("globMatchNocase(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
	if !globMatch([]byte("[A-z]"), []byte("_")) {
		t.Errorf(`globMatch("[A-z]", "_") = false: without folding '_' is inside 'A'..'z'`)
	}
}

func TestGlobAllocatesNothing(t *testing.T) {
	pattern, s := []byte("*a*[^b-c]*[\\]x-z]?\\*"), []byte("xxaxxdxx]q*")
	if n := testing.AllocsPerRun(100, func() { globMatch(pattern, s) }); n != 0 {
		t.Errorf("globMatch allocates %v times per call", n)
	}
}

// TestGlobLongInput guards the O(len(pattern)*len(s)) bound on a case an
// exponential matcher would never finish; the limit is far above the few
// milliseconds it takes, even under -race on a loaded machine.
func TestGlobLongInput(t *testing.T) {
	pattern := []byte(strings.Repeat("*a", 30) + "*b")
	s := bytes.Repeat([]byte("a"), 100_000)
	start := time.Now()
	if globMatch(pattern, s) {
		t.Errorf("matched a name without 'b'")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

// globKeyAlphabet and globPatternAlphabet are small on purpose, so random
// names and patterns collide often; they hold every byte the matcher treats
// specially, both cases of a letter, and bytes on each side of 0x80.
var (
	globKeyAlphabet     = []string{"a", "b", "A", "z", "-", "^", "]", "[", `\`, "*", "?", "!", "\x00", "\x01", "\x7f", "\x80", "\xff"}
	globPatternAlphabet = append([]string{"*", "*", "?", "[", "[", "[^", "]", "]", "-", "-", `\`, `\`, "**"}, globKeyAlphabet...)
)

// globRandom joins up to maxPicks random picks from alphabet.
func globRandom(rng *rand.Rand, alphabet []string, maxPicks int) string {
	var b strings.Builder
	for n := rng.IntN(maxPicks + 1); n > 0; n-- {
		b.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

// TestGlobAgainstRedis compares, pattern by pattern, the names KEYS returns
// on a real redis-server with the names globMatch selects from the same set.
func TestGlobAgainstRedis(t *testing.T) {
	n := clustertest.Standalone(t, "")
	rdb := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	ctx := t.Context()

	rng := rand.New(rand.NewPCG(7, 0x676c6f62))
	keySet := map[string]bool{
		"": true, "a": true, "A": true, "ab": true, "user:42:name": true,
		"[": true, "]": true, "[]": true, "[a]": true, "^": true, "-": true,
		`\`: true, `\\`: true, `a\`: true, "*": true, "?": true, "**": true,
		"\x00": true, "\x00\x00": true, "\x80": true, "\xff": true, "\xc3\xa9": true,
		" ": true, "Hello": true, "hello": true, "HELLO": true, "hallo": true,
		strings.Repeat("a", 40): true, strings.Repeat("a", 40) + "b": true,
	}
	for _, tt := range globCases {
		keySet[tt.s] = true
	}
	for len(keySet) < 400 {
		keySet[globRandom(rng, globKeyAlphabet, 6)] = true
	}
	keys := make([]string, 0, len(keySet))
	for k := range keySet {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	args := make([]any, 0, 2*len(keys))
	for _, k := range keys {
		args = append(args, k, "v")
	}
	if err := rdb.MSet(ctx, args...).Err(); err != nil {
		t.Fatalf("MSET: %v", err)
	}

	patterns := []string{
		"", "*", "**", "***", "?", "??", "?*", "*?", "[", "[^", "]", "[]", "[]]",
		"[^]", "[^]]", "[[]", "[a-]", "[a-]]", "[z-a]", "[a-z]", "[A-Z]", "[^a-z]",
		`\`, `\\`, `\*`, `\?`, `\[`, `[\]`, `[\]]`, `[\`, `[\\]`, `[\-]`, `[a\-z]`,
		"[a-\xff]", "[\xff-a]", "[\x7f-\x80]", "[\x80-\xff]", "[\x00-\x01]", "\x00*",
		"*a*a*a*a*a*a*b", "*a*a*a*a*a*a*a", "h?llo", "h[ae]llo", "h[^e]llo", "*l*",
	}
	for _, tt := range globCases {
		patterns = append(patterns, tt.pattern)
	}
	for range 4000 {
		patterns = append(patterns, globRandom(rng, globPatternAlphabet, 7))
	}

	var mismatches, nonEmpty int
	for chunk := range slices.Chunk(patterns, 500) {
		cmds := make([]*redis.StringSliceCmd, len(chunk))
		_, err := rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
			for i, p := range chunk {
				cmds[i] = pipe.Keys(ctx, p)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("pipelined KEYS: %v", err)
		}
		for i, p := range chunk {
			want := cmds[i].Val()
			slices.Sort(want)
			var got []string
			for _, k := range keys {
				if globMatch([]byte(p), []byte(k)) {
					got = append(got, k)
				}
			}
			if len(want) > 0 {
				nonEmpty++
			}
			if !slices.Equal(got, want) {
				if mismatches++; mismatches <= 10 {
					t.Errorf("pattern %q: redis-server selects %q; globMatch selects %q", p, want, got)
				}
			}
		}
	}
	if mismatches > 10 {
		t.Errorf("... %d patterns differ in all", mismatches)
	}
	if nonEmpty < len(patterns)/10 {
		t.Errorf("only %d of %d patterns selected anything", nonEmpty, len(patterns))
	}
	// Guard against MSET having stored fewer names than the test compares.
	if all, err := rdb.Keys(ctx, "*").Result(); err != nil || len(all) != len(keys) {
		t.Fatalf("KEYS * = %d names, %v; want the %d set", len(all), err, len(keys))
	}
}

// TestGlobNocaseAgainstRedis checks the case-folding rules against COMMAND
// LIST FILTERBY PATTERN, which matches command names ignoring case.
func TestGlobNocaseAgainstRedis(t *testing.T) {
	n := clustertest.Standalone(t, "")
	rdb := redis.NewClient(&redis.Options{Addr: n.Addr, MaxRetries: -1})
	t.Cleanup(func() { rdb.Close() })
	ctx := t.Context()

	names, err := rdb.Do(ctx, "COMMAND", "LIST").StringSlice()
	if err != nil {
		t.Fatalf("COMMAND LIST: %v", err)
	}
	if len(names) < 200 {
		t.Fatalf("COMMAND LIST returned only %d names", len(names))
	}
	slices.Sort(names)

	// Command names are lower case letters, '|', '-' and '_'; ranges over
	// upper case letters and punctuation are where folding is subtle.
	alphabet := []string{"*", "*", "?", "[", "]", "^", "-", `\`, "|", "_", "a", "c", "e", "g", "l", "s", "t", "A", "C", "E", "L", "S", "T", "Z", "z", "[A-", "[a-", "[^"}
	patterns := []string{"*", "[a-Z]*", "[A-z]*", "*[A-_]*", "*[_-A]*", `[\C]*`, `\C*`, "C*|*", "*|[A-D]*", "*[|-~]*", "*[\x80-\x81]*"}
	rng := rand.New(rand.NewPCG(11, 0x6e6f6361))
	for range 1500 {
		p := globRandom(rng, alphabet, 5)
		if rng.IntN(2) == 0 {
			p = "*" + p + "*" // else few random patterns select any name
		}
		patterns = append(patterns, p)
	}

	cmds := make([]*redis.Cmd, len(patterns))
	_, err = rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for i, p := range patterns {
			cmds[i] = pipe.Do(ctx, "COMMAND", "LIST", "FILTERBY", "PATTERN", p)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pipelined COMMAND LIST: %v", err)
	}
	var mismatches, nonEmpty int
	for i, p := range patterns {
		want, err := cmds[i].StringSlice()
		if err != nil {
			t.Fatalf("COMMAND LIST FILTERBY PATTERN %q: %v", p, err)
		}
		slices.Sort(want)
		var got []string
		for _, name := range names {
			if globMatchNocase([]byte(p), []byte(name)) {
				got = append(got, name)
			}
		}
		if len(want) > 0 {
			nonEmpty++
		}
		if !slices.Equal(got, want) {
			if mismatches++; mismatches <= 10 {
				t.Errorf("pattern %q: redis-server selects %q; globMatchNocase selects %q", p, want, got)
			}
		}
	}
	if mismatches > 10 {
		t.Errorf("... %d patterns differ in all", mismatches)
	}
	// Guard against a generator that only ever tests empty answers.
	if nonEmpty < len(patterns)/10 {
		t.Errorf("only %d of %d patterns selected anything", nonEmpty, len(patterns))
	}
}

// refGlob is the fuzz test's reference: the rules written as plainly as
// possible, letting each star try every split. Exponential in the number of
// stars, so only for short inputs.
func refGlob(pattern, s []byte, nocase bool) bool {
	if len(s) == 0 {
		return len(pattern) == 0
	}
	return refGlobFrom(pattern, s, nocase)
}

// refGlobFrom matches the rest of a name that was not empty to begin with;
// here an empty s is a name used up, which trailing stars still match.
func refGlobFrom(pattern, s []byte, nocase bool) bool {
	if len(pattern) == 0 {
		return len(s) == 0
	}
	if pattern[0] == '*' {
		rest := bytes.TrimLeft(pattern, "*")
		for k := 0; k <= len(s); k++ {
			if refGlobFrom(rest, s[k:], nocase) {
				return true
			}
		}
		return false
	}
	if len(s) == 0 {
		return false
	}
	width, ok := refGlobElement(pattern, s[0], nocase)
	return ok && refGlobFrom(pattern[width:], s[1:], nocase)
}

// refGlobElement reports how many pattern bytes the first element takes and
// whether it matches c.
func refGlobElement(pattern []byte, c byte, nocase bool) (int, bool) {
	lower := func(b int) int {
		if b >= 'A' && b <= 'Z' {
			return b | 0x20
		}
		return b
	}
	same := func(a, b byte) bool {
		if nocase {
			return lower(int(a)) == lower(int(b))
		}
		return a == b
	}
	switch {
	case pattern[0] == '?':
		return 1, true
	case pattern[0] == '\\' && len(pattern) > 1:
		return 2, same(pattern[1], c)
	case pattern[0] != '[':
		return 1, same(pattern[0], c)
	}
	body := pattern[1:]
	negate := bytes.HasPrefix(body, []byte("^"))
	if negate {
		body = body[1:]
	}
	hit := false
	for len(body) > 0 {
		switch {
		case body[0] == '\\' && len(body) >= 2:
			hit = hit || body[1] == c
			body = body[2:]
		case body[0] == ']':
			return len(pattern) - len(body) + 1, hit != negate
		case len(body) >= 3 && body[1] == '-':
			lo, hi, x := int(int8(body[0])), int(int8(body[2])), int(int8(c))
			lo, hi = min(lo, hi), max(lo, hi)
			if nocase {
				lo, hi, x = lower(lo), lower(hi), lower(x)
			}
			hit = hit || (x >= lo && x <= hi)
			body = body[3:]
		default:
			hit = hit || same(body[0], c)
			body = body[1:]
		}
	}
	return len(pattern), hit != negate
}

func FuzzGlob(f *testing.F) {
	for _, tt := range globCases {
		if len(tt.s) <= 16 {
			f.Add([]byte(tt.pattern), []byte(tt.s))
		}
	}
	f.Add([]byte("*[a-]]*?\\"), []byte("x]y\\"))
	f.Add([]byte("[^\\]a-c"), []byte("d"))
	f.Add([]byte("*\\*[\x80-a]*"), []byte("**\x01z"))
	f.Fuzz(func(t *testing.T, pattern, s []byte) {
		got := globMatch(pattern, s)
		nocase := globMatchNocase(pattern, s)
		if len(pattern) > 14 || len(s) > 14 {
			return
		}
		want := refGlob(pattern, s, false) || string(pattern) == "*"
		if got != want {
			t.Errorf("globMatch(%q, %q) = %v, reference says %v", pattern, s, got, want)
		}
		if want := refGlob(pattern, s, true); nocase != want {
			t.Errorf("globMatchNocase(%q, %q) = %v, reference says %v", pattern, s, nocase, want)
		}
	})
}

func BenchmarkGlob(b *testing.B) {
	for _, bb := range []struct{ name, pattern, s string }{
		{"literal", "user:1000:profile", "user:1000:profile"},
		{"prefix", "user:*", "user:1000:profile"},
		{"sets", "user:[0-9][0-9]*:pro?il[^x]", "user:1000:profile"},
		{"miss", "session:*", "user:1000:profile"},
		{"stars", "*a*a*a*a*a*a*b", strings.Repeat("a", 1000)},
	} {
		pattern, s := []byte(bb.pattern), []byte(bb.s)
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(s)))
			for b.Loop() {
				globMatch(pattern, s)
			}
		})
	}
}
