package proxy

// The command reference: how the proxy serves each command, in words a
// user understands, derived from the same classification the sessions use
// (kind, fan, key specs, the unsupported reasons), so that the README
// cannot promise what the code does not do. The README's copy is checked
// against it by TestCommandReferenceInREADME.

import (
	"io"
	"slices"
	"strconv"
	"strings"
)

// What the proxy does with a command, one phrase per way it is served.
const (
	treatSlot    = "routed by the slot of its keys"
	treatAny     = "any master"
	treatSplit   = "split by slot and merged"
	treatAll     = "every master, replies merged"
	treatLocal   = "answered by the proxy"
	treatScript  = "routed by its keys; the script is remembered and re-loaded on NOSCRIPT"
	treatSlotArg = "routed to the slot it names"
	treatHeld    = "on a dedicated connection to the master of its keys' slot"
	treatRefused = "refused: "
	whyNotYet    = "not supported yet"
)

// Notes on the multi-key and keyless cases a command's key specs allow.
const (
	noteOneSlot   = "all keys in one slot"
	noteNoKeys    = "without keys: any master"
	noteBlock     = "with BLOCK: " + treatHeld
	noteShardChan = "its shard channel stands for the key"
)

// whyClusterRefused is the reason appendCluster gives for the CLUSTER
// subcommands in clusterRefused.
const whyClusterRefused = "this proxy presents the whole cluster as one node"

// localRefusals are commands of kindLocal whose answer is always an
// error: the reference calls them refused, with the reason the error gives.
var localRefusals = map[string]string{
	"client|tracking": "client-side caching through the proxy is not there",
}

// referenceNotes say, for commands the proxy answers or sends to every
// master, what a user cannot guess from the treatment alone: above all,
// which ones cost requests to the masters.
var referenceNotes = map[string]string{
	"scan":            "asks each slot's master for the slot's keys; the cursor is a position in the slot space, valid across failovers and reshards",
	"randomkey":       "asks every master for its key count, then one master, chosen by weight, for a key",
	"info":            "built from every master's INFO and the proxy's own figures",
	"wait":            "sent to the masters the client wrote to since its last WAIT; the least count; timeout at most " + strconv.Itoa(maxWaitMillis) + " ms",
	"config|set":      "refused unless commands.config_set is all-nodes; then sent to every master and replica",
	"config|get":      "asks any master; the values of requirepass, masterauth, masteruser and the TLS key passphrases are hidden",
	"select":          "database 0 only, as on a cluster node",
	"auth":            "checked against clients.password and clients.users",
	"acl|whoami":      "the proxy's user the client authenticated as",
	"role":            "a master without replicas",
	"client|list":     "the proxy's own clients",
	"client|kill":     "the proxy's own clients",
	"keys":            "each key listed once",
	"dbsize":          "the sum of the masters' counts",
	"lastsave":        "the earliest of the masters' times",
	"script|load":     "the proxy remembers the script",
	"script|flush":    "the proxy forgets the scripts it remembered",
	"script|exists":   "1 where every master has the script or the proxy can load it",
	"script|kill":     "OK when a master stopped a script",
	"function|kill":   "OK when a master stopped a function",
	"client|tracking": "OFF answers OK: tracking is off",
	"client|unblock":  "the proxy's own clients, unblocked on their master",
	"slowlog|get":     "the proxy's own slow log: requests that took slowlog.threshold or more through it; a node's own is read on the node",
	"slowlog|len":     "the proxy's own slow log",
	"slowlog|reset":   "the proxy's own slow log",

	"multi":   "the proxy queues the commands; EXEC sends MULTI, them and EXEC in one write on a dedicated connection to the master of their slot; all keys in one slot",
	"exec":    "the queued transaction, on a dedicated connection",
	"discard": "also forgets the WATCHed keys",
	"watch":   "leases a dedicated connection to the master of the keys' slot, held until EXEC, DISCARD or UNWATCH; all keys of the transaction in that slot",
	"unwatch": "gives the dedicated connection back",

	"subscribe":    "multiplexed: a few subscriber connections per node carry every client's subscriptions",
	"psubscribe":   "multiplexed, as SUBSCRIBE; a pattern that may match keyspace notifications is made on every master",
	"ssubscribe":   "multiplexed, on the master of the shard channel's slot",
	"unsubscribe":  "the proxy's own clients",
	"punsubscribe": "the proxy's own clients",
	"sunsubscribe": "the proxy's own clients",
	"publish":      "sent to the master the proxy's subscriptions are on (any master without them), so that one publisher's messages keep their order",
	"spublish":     "routed by the slot of its shard channel",
	"pubsub":       "from the subscriptions of the proxy's own clients",
}

// noteClusterSelf is the note of the CLUSTER subcommands the proxy
// answers as the one node a cluster-aware client sees.
const noteClusterSelf = "as a cluster of one node: the proxy"

// referenceRow is one line of the command reference.
type referenceRow struct {
	name      string // as a user types it: "CLIENT LIST"
	treatment string
	note      string
}

// WriteCommandReference writes, as a Markdown table, how the proxy serves
// every command and subcommand of t, sorted by name. A container such as
// CLIENT has no row of its own: it only runs as one of its subcommands.
func WriteCommandReference(w io.Writer, t *Table) error {
	var b strings.Builder
	b.WriteString("| Command | How slotproxy serves it | Note |\n")
	b.WriteString("|---|---|---|\n")
	for _, r := range referenceRows(t) {
		b.WriteString("| `")
		b.WriteString(r.name)
		b.WriteString("` | ")
		b.WriteString(markdownCell(r.treatment))
		b.WriteString(" | ")
		if r.note != "" {
			b.WriteString(markdownCell(r.note))
			b.WriteString(" ")
		}
		b.WriteString("|\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func referenceRows(t *Table) []referenceRow {
	var rows []referenceRow
	if t == nil {
		return rows
	}
	for _, c := range t.cmds {
		if c.Sub == nil {
			rows = append(rows, describe(c))
			continue
		}
		for _, sub := range c.Sub {
			rows = append(rows, describe(sub))
		}
	}
	slices.SortFunc(rows, func(a, b referenceRow) int { return strings.Compare(a.name, b.name) })
	return rows
}

// describe says how the proxy serves c, from c's kind, fan and keys.
func describe(c *Command) referenceRow {
	r := referenceRow{
		name: commandName(c),
		note: referenceNotes[c.Name],
	}
	switch c.kind {
	case kindForward:
		switch {
		case c.fan != fanNone:
			r.treatment = treatSplit
		case hasKeys(c):
			r.treatment = treatSlot
			r.note = joinNotes(r.note, keyNotes(c))
		default:
			r.treatment = treatAny
		}
		if c.Flags&CmdBlocking != 0 {
			r.note = joinNotes(r.note, noteBlock)
		}
	case kindScript:
		r.treatment = treatScript
		r.note = joinNotes(r.note, keyNotes(c))
	case kindSlotArg:
		r.treatment = treatSlotArg
	case kindTxn:
		r.treatment = treatLocal
	case kindBlocking:
		r.treatment = treatHeld
		r.note = joinNotes(r.note, keyNotes(c))
	case kindPubSub:
		r.treatment = treatLocal
		if c.Name == "publish" {
			r.treatment = treatAny
		} else if c.Name == "spublish" {
			r.treatment = treatSlot
		}
		if container, _, ok := strings.Cut(c.Name, "|"); ok && r.note == "" {
			r.note = referenceNotes[container]
		}
	case kindAll:
		r.treatment = treatAll
	case kindLocal:
		r.treatment = treatLocal
		sub, inCluster := strings.CutPrefix(c.Name, "cluster|")
		switch {
		case localRefusals[c.Name] != "":
			r.treatment = treatRefused + localRefusals[c.Name]
		case inCluster && clusterRefused[sub]:
			r.treatment = treatRefused + whyClusterRefused
		case inCluster:
			r.note = joinNotes(r.note, noteClusterSelf)
		}
	default:
		why := refusalReason(c)
		if why == "" {
			why = whyNotYet
		}
		r.treatment = treatRefused + why
	}
	return r
}

// hasKeys reports whether c names keys the proxy can route by.
func hasKeys(c *Command) bool { return len(c.KeySpecs) > 0 || c.getKeys != nil }

// keyNotes are the notes on a routed command's keys: whether it may take
// keys of several slots (and then fails with CROSSSLOT unless they share
// one), or none at all.
func keyNotes(c *Command) string {
	var note string
	if severalKeys(c) {
		note = noteOneSlot
	}
	if c.Flags&CmdNoMandatoryKeys != 0 {
		note = joinNotes(note, noteNoKeys)
	}
	shardChan := len(c.KeySpecs) > 0
	for _, s := range c.KeySpecs {
		shardChan = shardChan && s.Flags&KeyNotKey != 0
	}
	if shardChan {
		note = joinNotes(note, noteShardChan)
	}
	return note
}

// severalKeys reports whether c's key specs allow more than one key.
func severalKeys(c *Command) bool {
	if c.getKeys != nil || len(c.KeySpecs) > 1 {
		return true
	}
	for _, s := range c.KeySpecs {
		if !s.known() || s.Find == FindKeyNum || s.Find == FindRange && s.LastKey != 0 {
			return true
		}
	}
	return false
}

func joinNotes(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// markdownCell keeps text inside its table cell.
func markdownCell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
