// Package respenc encodes the commands slotproxy sends on its own (AUTH,
// HELLO, CLUSTER SHARDS, ...) for the packages that cannot share one
// another's code: router imports slotmap, and both need it.
package respenc

import "strconv"

// AppendCommand appends args to b as a RESP array of bulk strings.
func AppendCommand(b []byte, args ...string) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(len(args)), 10)
	b = append(b, '\r', '\n')
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}
