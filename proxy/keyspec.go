package proxy

import (
	"strings"

	"github.com/tidwall/resp"
)

// KeyFlags are a key spec's flags, from the strings COMMAND reports for it.
type KeyFlags uint16

const (
	KeyRO            KeyFlags = 1 << iota // "RO": read only
	KeyRW                                 // "RW": read and write
	KeyOW                                 // "OW": overwrite
	KeyRM                                 // "RM": remove
	KeyAccess                             // "access"
	KeyUpdate                             // "update"
	KeyInsert                             // "insert"
	KeyDelete                             // "delete"
	KeyNotKey                             // "not_key": a shard channel (SPUBLISH, SSUBSCRIBE); routed by slot like a key
	KeyIncomplete                         // "incomplete": the spec may miss some keys
	KeyVariableFlags                      // "variable_flags": the access flags depend on the arguments
)

var keyFlagNames = map[string]KeyFlags{
	"ro":             KeyRO,
	"rw":             KeyRW,
	"ow":             KeyOW,
	"rm":             KeyRM,
	"access":         KeyAccess,
	"update":         KeyUpdate,
	"insert":         KeyInsert,
	"delete":         KeyDelete,
	"not_key":        KeyNotKey,
	"incomplete":     KeyIncomplete,
	"variable_flags": KeyVariableFlags,
}

// BeginSearch says how a key spec finds the position its keys start from.
type BeginSearch uint8

const (
	BeginUnknown BeginSearch = iota // the keys cannot be found from the spec
	BeginIndex                      // at the fixed argument position Index
	BeginKeyword                    // right after the argument equal to Keyword
)

// FindKeys says how a key spec finds its keys from the begin position.
type FindKeys uint8

const (
	FindUnknown FindKeys = iota // the keys cannot be found from the spec
	FindRange                   // LastKey, KeyStep, Limit
	FindKeyNum                  // KeyNumIdx, FirstKey, KeyStep
)

// KeySpec is one Redis 7 key specification: a rule that finds some of a
// command's keys in its arguments (see the Redis documentation, "Command key
// specifications"). Positions count args[0], the command name, as 0.
// KeySpec values are comparable with ==.
type KeySpec struct {
	Flags KeyFlags

	Begin BeginSearch
	// Index is the position of the first key, for BeginIndex (>= 1).
	Index int
	// Keyword, for BeginKeyword, is matched case-insensitively (kept in lower
	// case); the keys start right after it. The search starts at StartFrom
	// and goes forwards; a negative StartFrom counts from the end of the
	// arguments and searches backwards.
	Keyword   string
	StartFrom int

	Find FindKeys
	// LastKey, for FindRange, is the position of the last key relative to the
	// begin position; a negative LastKey counts from the end of the arguments
	// (-1 is the last argument). With Limit > 0 (and LastKey -1) only the
	// first 1/Limit of the arguments from the begin position are keys, as in
	// XREAD's STREAMS k1 k2 id1 id2.
	LastKey int
	Limit   int
	// KeyStep is the distance between two keys (>= 1), for both FindRange
	// and FindKeyNum.
	KeyStep int
	// KeyNumIdx, for FindKeyNum, is the position of the argument holding the
	// number of keys, and FirstKey the position of the first key, both
	// relative to the begin position.
	KeyNumIdx int
	FirstKey  int
}

// Incomplete reports whether the spec is flagged incomplete: what it finds
// are keys, but there may be others it cannot describe.
func (s KeySpec) Incomplete() bool { return s.Flags&KeyIncomplete != 0 }

// known reports whether the keys can be found from the spec at all.
func (s KeySpec) known() bool { return s.Begin != BeginUnknown && s.Find != FindUnknown }

// isOneKeyAt1 reports whether s is the "one key at index 1" shape of GET, SET,
// HSET and most other commands.
func (s KeySpec) isOneKeyAt1() bool {
	return s.Begin == BeginIndex && s.Index == 1 &&
		s.Find == FindRange && s.LastKey == 0 && s.KeyStep == 1 && s.Limit == 0 &&
		s.Flags&KeyIncomplete == 0
}

// Outcome of evaluating a command's key specs against its arguments,
// mirroring the two ways Redis' getKeysUsingKeySpecs gives up.
const (
	specsOK        = 0
	specsUnknown   = 1 // a spec is of unknown type or flagged incomplete
	specsMalformed = 2 // the arguments do not fit a spec (bad numkeys, out of range)
)

// maxSpecsTracked is how many specs' ranges Keys remembers on the stack to
// drop duplicate indexes; commands with more specs (none in Redis 7.0) fall
// back to scanning what they already appended.
const maxSpecsTracked = 8

type keyRange struct{ first, last, step int }

func (r keyRange) has(i int) bool {
	return i >= r.first && i <= r.last && (i-r.first)%r.step == 0
}

// Keys appends to dst the indexes in args of the arguments that are keys
// (args[0] is the command name) and returns it. It never panics and never
// returns an index out of range, whatever args holds (malformed numkeys,
// negative, huge, missing keyword...). Zero allocations when dst has room.
//
// The keys are those of all key specs, in spec order, without duplicate
// indexes, with Redis' own rules (getKeysFromCommandWithSpecs):
//   - when every spec applies cleanly, the keys they find;
//   - when a spec is unknown or flagged incomplete, the command's own key
//     finder where Redis has one that the proxy mirrors (SORT ... STORE,
//     MIGRATE ... KEYS), otherwise what the specs found, an incomplete
//     spec's keys included (a module command's best description);
//   - when the arguments do not fit a spec (numkeys not a number, 0, negative
//     or larger than what follows; a range past the end), no keys at all: the
//     command is malformed and the server will reject it.
//
// Unlike COMMAND GETKEYS, keys flagged not_key (shard channels) are returned:
// a cluster node routes SPUBLISH and SSUBSCRIBE by their channel's slot, and
// so must the proxy.
//
// A container command (one with subcommands, like OBJECT) answers for the
// subcommand named by args[1].
func (c *Command) Keys(args [][]byte, dst []int) []int {
	if c.oneKeyAt1 {
		if len(args) > 1 {
			dst = append(dst, 1)
		}
		return dst
	}
	if c.Sub != nil && len(args) > 1 {
		if sub := c.Subcommand(args[1]); sub != nil {
			return sub.Keys(args, dst)
		}
	}
	if len(c.KeySpecs) == 0 {
		return dst
	}
	start := len(dst)
	dst, status := c.specKeys(args, dst)
	switch {
	case status == specsOK:
		return dst
	case c.getKeys != nil:
		return c.getKeys(args, dst[:start])
	case status&specsMalformed != 0:
		return dst[:start]
	default:
		return dst
	}
}

// specKeys evaluates every key spec, appending what the usable ones find.
func (c *Command) specKeys(args [][]byte, dst []int) ([]int, int) {
	start := len(dst)
	status := specsOK
	var seen [maxSpecsTracked]keyRange
	nseen, overflow := 0, false
	for si := range c.KeySpecs {
		s := &c.KeySpecs[si]
		first, last, step, st := s.bounds(args)
		if st != specsOK {
			status |= st
			continue
		}
		if first == 0 { // keyword not found: the spec does not apply
			continue
		}
		prior := dst[start:]
		for i := first; i <= last; i += step {
			if nseen > 0 && seenKey(i, seen[:nseen], overflow, prior) {
				continue
			}
			dst = append(dst, i)
		}
		if nseen < len(seen) {
			seen[nseen] = keyRange{first, last, step}
			nseen++
		} else {
			overflow = true
		}
		// Redis keeps what an incomplete spec found only in partial mode.
		if s.Flags&KeyIncomplete != 0 {
			status |= specsUnknown
		}
	}
	return dst, status
}

// seenKey reports whether index i was already found by an earlier spec: one
// of the ranges in seen, or, once there were too many specs to track them
// all, one of the indexes in prior.
func seenKey(i int, seen []keyRange, overflow bool, prior []int) bool {
	if overflow {
		for _, j := range prior {
			if j == i {
				return true
			}
		}
		return false
	}
	for _, r := range seen {
		if r.has(i) {
			return true
		}
	}
	return false
}

// bounds finds where the spec's keys are in args: the first and last index
// and the step. first == 0 with specsOK means a keyword spec whose keyword is
// absent, which Redis treats as "this spec has no keys here".
func (s *KeySpec) bounds(args [][]byte) (first, last, step, status int) {
	if !s.safe() {
		return 0, 0, 0, specsUnknown
	}
	argc := len(args)
	switch s.Begin {
	case BeginIndex:
		first = s.Index
	case BeginKeyword:
		first = s.keywordSearch(args)
		if first == 0 {
			return 0, 0, 0, specsOK
		}
	default:
		return 0, 0, 0, specsUnknown
	}

	switch s.Find {
	case FindRange:
		step = s.KeyStep
		switch {
		case s.LastKey >= 0:
			last = first + s.LastKey
		case s.Limit == 0:
			last = argc + s.LastKey
		default:
			last = first + (argc-first)/s.Limit + s.LastKey
		}
	case FindKeyNum:
		step = s.KeyStep
		idx := first + s.KeyNumIdx
		if idx < 1 || idx >= argc {
			return 0, 0, 0, specsMalformed
		}
		n, ok := parseNumKeys(args[idx])
		if !ok || n > argc {
			return 0, 0, 0, specsMalformed
		}
		// numkeys keys, KeyStep apart, as the documentation describes them
		// and as Redis' own finders (genericGetKeys) place them. Redis'
		// getKeysUsingKeySpecs computes first+numkeys-1 whatever the step;
		// the two agree for step 1, the only step Redis 7.0 uses.
		first += s.FirstKey
		last = first + (n-1)*step
	default:
		return 0, 0, 0, specsUnknown
	}

	// Out of bounds means a syntax error; so does numkeys 0 (last < first),
	// as in Redis 7.0, whose own key finders report no keys for it.
	if first < 1 || first >= argc || last >= argc || last < first {
		return 0, 0, 0, specsMalformed
	}
	return first, last, step, specsOK
}

// safe reports whether the spec's numbers are within the bounds the parser
// enforces, so that no index arithmetic can overflow or loop forever. Specs
// from ParseCommandReply always are; a KeySpec built by hand may not be.
func (s *KeySpec) safe() bool {
	return s.KeyStep >= 1 && s.KeyStep <= maxSpecInt && s.Limit >= 0 && s.Limit <= maxSpecInt &&
		specIntOK(s.Index) && specIntOK(s.StartFrom) && specIntOK(s.LastKey) &&
		specIntOK(s.KeyNumIdx) && specIntOK(s.FirstKey)
}

// keywordSearch returns the position after the keyword, or 0 when it is not
// found. Like Redis, the search stops before the far end: the last argument
// (forwards) or args[1] (backwards) is never taken for the keyword.
func (s *KeySpec) keywordSearch(args [][]byte) int {
	argc := len(args)
	from, end := s.StartFrom, argc-1
	if s.StartFrom <= 0 {
		from, end = argc+s.StartFrom, 1
	}
	for i := from; i != end; {
		if i >= argc || i < 1 {
			break
		}
		if equalFoldLower(args[i], s.Keyword) {
			return i + 1
		}
		if from <= end {
			i++
		} else {
			i--
		}
	}
	return 0
}

// parseNumKeys parses a numkeys argument as strictly as Redis' string2ll: an
// optional '-', no '+', no leading zeros, no spaces. Negative numbers are
// rejected.
func parseNumKeys(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false // also rejects negatives, '+' and leading zeros
	}
	n := 0
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		n = n*10 + int(ch-'0')
	}
	return n, true
}

// equalFoldLower compares b, in any case, with the lower-case ASCII string s.
func equalFoldLower(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		ch := b[i]
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != s[i] {
			return false
		}
	}
	return true
}

// getKeysFunc is a command's own key finder, for commands whose key specs
// cannot describe all their keys. Redis falls back to its C equivalent
// whenever the specs do not apply cleanly; these mirror it.
type getKeysFunc func(args [][]byte, dst []int) []int

// builtinGetKeys maps command names to the key finders Redis uses for them
// where the specs are unknown or incomplete and the answer differs from what
// the other specs find. (SORT_RO's finder returns just its first key, which
// the specs already give.)
var builtinGetKeys = map[string]getKeysFunc{
	"sort":    sortGetKeys,
	"migrate": migrateGetKeys,
}

// sortGetKeys: SORT key [BY p] [LIMIT off n] [GET p ...] [ASC|DESC] [ALPHA]
// [STORE dst]. The key, and the destination of the last STORE.
func sortGetKeys(args [][]byte, dst []int) []int {
	if len(args) < 2 {
		return dst
	}
	dst = append(dst, 1)
	store := 0
	for i := 2; i < len(args); i++ {
		a := args[i]
		switch {
		case equalFoldLower(a, "limit"):
			i += 2
		case equalFoldLower(a, "get"), equalFoldLower(a, "by"):
			i++
		case equalFoldLower(a, "store") && i+1 < len(args):
			// Not skipped: the last STORE wins, as in SORT itself.
			store = i + 1
		}
	}
	if store != 0 {
		dst = append(dst, store)
	}
	return dst
}

// migrateGetKeys: MIGRATE host port key|"" db timeout [COPY] [REPLACE]
// [AUTH pw | AUTH2 user pw] [KEYS key ...]. The key, or with KEYS (and an
// empty key) the keys after it.
func migrateGetKeys(args [][]byte, dst []int) []int {
	argc := len(args)
	if argc < 4 {
		return dst
	}
	first, num := 3, 1
	for i := 6; i < argc; i++ {
		a := args[i]
		if equalFoldLower(a, "keys") {
			if len(args[3]) > 0 {
				return dst // a syntax error MIGRATE itself reports
			}
			first, num = i+1, argc-i-1
			break
		}
		switch {
		case equalFoldLower(a, "auth"):
			i++
		case equalFoldLower(a, "auth2"):
			i += 2
		}
	}
	for i := first; i < first+num; i++ {
		dst = append(dst, i)
	}
	return dst
}

// Bounds applied to the integers of a key spec from a server: a spec that
// steps outside them cannot be evaluated safely and is treated as unknown.
const maxSpecInt = 1 << 20

// parseKeySpec decodes one key spec, a flat array of name/value pairs:
// flags, begin_search, find_keys (and notes, ignored). Anything it does not
// understand makes the spec unknown rather than failing the table: a newer
// server may describe keys in ways this proxy does not know yet.
func parseKeySpec(v resp.Value) (KeySpec, error) {
	var s KeySpec
	kv := v.Array()
	if v.Type() != resp.Array {
		return s, replyErrorf("key spec is not an array")
	}
	var begin, find []resp.Value
	for i := 0; i+1 < len(kv); i += 2 {
		switch strings.ToLower(kv[i].String()) {
		case "flags":
			for _, f := range kv[i+1].Array() {
				s.Flags |= keyFlagNames[strings.ToLower(f.String())]
			}
		case "begin_search":
			begin = kv[i+1].Array()
		case "find_keys":
			find = kv[i+1].Array()
		}
	}

	typ, spec := specTypeAndArgs(begin)
	switch typ {
	case "index":
		if idx, ok := specInt(spec, "index"); ok && idx >= 1 && idx <= maxSpecInt {
			s.Begin, s.Index = BeginIndex, idx
		}
	case "keyword":
		kw, okk := specString(spec, "keyword")
		from, okf := specInt(spec, "startfrom")
		if okk && okf && kw != "" && from >= -maxSpecInt && from <= maxSpecInt {
			s.Begin, s.Keyword, s.StartFrom = BeginKeyword, strings.ToLower(kw), from
		}
	}

	typ, spec = specTypeAndArgs(find)
	switch typ {
	case "range":
		last, ok1 := specInt(spec, "lastkey")
		step, ok2 := specInt(spec, "keystep")
		limit, ok3 := specInt(spec, "limit")
		if ok1 && ok2 && ok3 && specIntOK(last) && step >= 1 && step <= maxSpecInt &&
			limit >= 0 && limit <= maxSpecInt {
			s.Find, s.LastKey, s.KeyStep, s.Limit = FindRange, last, step, limit
		}
	case "keynum":
		idx, ok1 := specInt(spec, "keynumidx")
		fk, ok2 := specInt(spec, "firstkey")
		step, ok3 := specInt(spec, "keystep")
		if ok1 && ok2 && ok3 && specIntOK(idx) && specIntOK(fk) && step >= 1 && step <= maxSpecInt {
			s.Find, s.KeyNumIdx, s.FirstKey, s.KeyStep = FindKeyNum, idx, fk, step
		}
	}
	if !s.known() {
		// Keep unknown specs uniformly zero so that they compare equal.
		s = KeySpec{Flags: s.Flags}
	}
	return s, nil
}

func specIntOK(n int) bool { return n >= -maxSpecInt && n <= maxSpecInt }

// specTypeAndArgs reads the [type T spec [...]] pair list of begin_search and
// find_keys.
func specTypeAndArgs(kv []resp.Value) (string, []resp.Value) {
	var typ string
	var spec []resp.Value
	for i := 0; i+1 < len(kv); i += 2 {
		switch strings.ToLower(kv[i].String()) {
		case "type":
			typ = strings.ToLower(kv[i+1].String())
		case "spec":
			spec = kv[i+1].Array()
		}
	}
	return typ, spec
}

func specField(kv []resp.Value, name string) (resp.Value, bool) {
	for i := 0; i+1 < len(kv); i += 2 {
		if t := kv[i].Type(); (t == resp.BulkString || t == resp.SimpleString) && strings.EqualFold(kv[i].String(), name) {
			return kv[i+1], true
		}
	}
	return resp.Value{}, false
}

func specInt(kv []resp.Value, name string) (int, bool) {
	v, ok := specField(kv, name)
	if !ok {
		return 0, false
	}
	return respInt(v)
}

func specString(kv []resp.Value, name string) (string, bool) {
	v, ok := specField(kv, name)
	if !ok {
		return "", false
	}
	return respString(v)
}

// legacyKeySpec builds the key spec equivalent to the (first, last, step)
// triple that servers before Redis 7 report. ok is false when the triple
// names no keys.
func legacyKeySpec(first, last, step int) (KeySpec, bool) {
	if first < 1 || first > maxSpecInt || !specIntOK(last) {
		return KeySpec{}, false
	}
	if step < 1 || step > maxSpecInt {
		step = 1
	}
	s := KeySpec{Begin: BeginIndex, Index: first, Find: FindRange, KeyStep: step}
	switch {
	case last < 0:
		s.LastKey = last
	case last >= first:
		s.LastKey = last - first
	default:
		return KeySpec{}, false
	}
	return s, true
}
