package proxy

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
	"github.com/slotproxy/slotproxy/router"
)

var updateReadme = flag.Bool("update", false, "rewrite the command reference in ../README.md")

const (
	readmePath     = "../README.md"
	referenceBegin = "<!-- commands:begin -->\n"
	referenceEnd   = "<!-- commands:end -->"
)

// builtinReference is the reference of the built-in table, as the README
// and slotproxy -commands give it.
func builtinReference(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	if err := WriteCommandReference(&b, Builtin()); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// readmeBlock splits the README around the text between the markers.
func readmeBlock(readme string) (before, block, after string, err error) {
	i := strings.Index(readme, referenceBegin)
	if i < 0 {
		return "", "", "", fmt.Errorf("no %q line", strings.TrimSpace(referenceBegin))
	}
	i += len(referenceBegin)
	n := strings.Index(readme[i:], referenceEnd)
	if n < 0 {
		return "", "", "", fmt.Errorf("no %q after %q", referenceEnd, strings.TrimSpace(referenceBegin))
	}
	return readme[:i], readme[i : i+n], readme[i+n:], nil
}

// TestCommandReferenceInREADME: the README's table is what the code
// generates, so that it cannot drift from what the proxy does.
func TestCommandReferenceInREADME(t *testing.T) {
	want := builtinReference(t)
	data, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	before, got, after, err := readmeBlock(string(data))
	if err != nil {
		t.Fatalf("%s: %v", readmePath, err)
	}
	if got == want {
		return
	}
	if *updateReadme {
		info, err := os.Stat(readmePath)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(readmePath, []byte(before+want+after), info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the command reference in %s", readmePath)
		return
	}
	gotLines, wantLines := strings.Split(got, "\n"), strings.Split(want, "\n")
	line := 0
	for line < len(gotLines) && line < len(wantLines) && gotLines[line] == wantLines[line] {
		line++
	}
	at := func(lines []string) string {
		if line < len(lines) {
			return lines[line]
		}
		return "(end of the table)"
	}
	t.Errorf("the command reference in README.md is out of date: run\n"+
		"\tgo test ./proxy -run TestCommandReferenceInREADME -update\n"+
		"or paste the output of `go run ./cmd/slotproxy -commands` between the markers.\n"+
		"First difference, line %d of the table:\nREADME:    %s\ngenerated: %s",
		line+1, at(gotLines), at(wantLines))
}

// parseReference reads the rows of a generated reference back: the
// command name and the two other cells of each.
func parseReference(t *testing.T, ref string) (names []string, rows map[string][2]string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(ref, "\n"), "\n")
	if len(lines) < 3 || lines[0] != "| Command | How slotproxy serves it | Note |" || lines[1] != "|---|---|---|" {
		t.Fatalf("the reference does not start with its table header:\n%.300s", ref)
	}
	rows = make(map[string][2]string)
	for _, l := range lines[2:] {
		cells := strings.Split(l, " | ")
		if len(cells) != 3 || !strings.HasPrefix(cells[0], "| `") || !strings.HasSuffix(cells[0], "`") || !strings.HasSuffix(cells[2], "|") {
			t.Fatalf("malformed row %q", l)
		}
		name := strings.Trim(cells[0], "|` ")
		names = append(names, name)
		rows[name] = [2]string{cells[1], strings.TrimSpace(strings.TrimSuffix(cells[2], "|"))}
	}
	return names, rows
}

// TestCommandReferenceCoversTable: every command of the built-in table
// that a client can run, every subcommand included, has exactly one row,
// and nothing else has one.
func TestCommandReferenceCoversTable(t *testing.T) {
	tbl := Builtin()
	names, rows := parseReference(t, builtinReference(t))

	want := make(map[string]bool)
	for _, c := range tbl.cmds {
		if c.Sub == nil {
			want[strings.ToUpper(c.Name)] = true
			continue
		}
		for _, sub := range c.Sub {
			want[strings.ToUpper(strings.ReplaceAll(sub.Name, "|", " "))] = true
		}
	}
	seen := make(map[string]int)
	for _, n := range names {
		seen[n]++
	}
	for n := range want {
		if seen[n] != 1 {
			t.Errorf("%s has %d rows, want 1", n, seen[n])
		}
	}
	for n := range seen {
		if !want[n] {
			t.Errorf("row %s names no command of the table", n)
		}
	}
	if len(names) != len(want) {
		t.Errorf("%d rows for %d commands", len(names), len(want))
	}
	if !slices.IsSorted(names) {
		t.Error("rows are not sorted by name")
	}
	// A container only runs as one of its subcommands.
	for _, n := range []string{"CLIENT", "CONFIG", "CLUSTER", "OBJECT"} {
		if _, ok := rows[n]; ok {
			t.Errorf("container %s has a row of its own", n)
		}
	}
	for _, n := range []string{"CLIENT SETINFO", "CLIENT NO-TOUCH", "GET", "XINFO STREAM"} {
		if seen[n] != 1 {
			t.Errorf("%s: %d rows, want 1", n, seen[n])
		}
	}

	known := []string{treatSlot, treatAny, treatSplit, treatAll, treatLocal, treatScript, treatSlotArg, treatHeld}
	for n, r := range rows {
		if !slices.Contains(known, r[0]) && (!strings.HasPrefix(r[0], treatRefused) || len(r[0]) == len(treatRefused)) {
			t.Errorf("%s: treatment %q is none of the known ones", n, r[0])
		}
	}
}

// TestCommandReferenceRows spot-checks what the reference tells users.
func TestCommandReferenceRows(t *testing.T) {
	_, rows := parseReference(t, builtinReference(t))
	for _, tt := range []struct {
		name      string
		treatment string
		note      string // in the note; "" for an empty note, "*" for any note
	}{
		{"GET", "routed by the slot of its keys", ""},
		{"SET", "routed by the slot of its keys", ""},
		{"MSETNX", "routed by the slot of its keys", "all keys in one slot"},
		{"RENAME", "routed by the slot of its keys", "all keys in one slot"},
		{"SUNIONSTORE", "routed by the slot of its keys", "all keys in one slot"},
		{"XREAD", "routed by the slot of its keys", "with BLOCK: on a dedicated connection"},
		{"FCALL", "routed by the slot of its keys", "without keys: any master"},
		{"SPUBLISH", "routed by the slot of its keys", "shard channel"},
		{"MGET", "split by slot and merged", ""},
		{"MSET", "split by slot and merged", ""},
		{"DEL", "split by slot and merged", ""},
		{"UNLINK", "split by slot and merged", ""},
		{"EXISTS", "split by slot and merged", ""},
		{"TOUCH", "split by slot and merged", ""},
		{"TIME", "any master", ""},
		{"PUBLISH", "any master", "subscriptions are on"},
		{"COMMAND COUNT", "any master", ""},
		{"CONFIG GET", "answered by the proxy", "requirepass"},
		{"KEYS", "every master, replies merged", "*"},
		{"DBSIZE", "every master, replies merged", "sum"},
		{"FLUSHALL", "every master, replies merged", ""},
		{"SCRIPT LOAD", "every master, replies merged", "remembers"},
		{"SCAN", "answered by the proxy", "master"},
		{"RANDOMKEY", "answered by the proxy", "every master"},
		{"INFO", "answered by the proxy", "every master"},
		{"WAIT", "answered by the proxy", "masters"},
		{"CONFIG SET", "answered by the proxy", "every master"},
		{"PING", "answered by the proxy", ""},
		{"CLIENT SETINFO", "answered by the proxy", ""},
		{"CLUSTER SLOTS", "answered by the proxy", "one node"},
		{"EVALSHA", "routed by its keys; the script is remembered and re-loaded on NOSCRIPT", "all keys in one slot"},
		{"CLUSTER COUNTKEYSINSLOT", "routed to the slot it names", ""},
		{"CLUSTER GETKEYSINSLOT", "routed to the slot it names", ""},
		{"MULTI", "answered by the proxy", "EXEC sends"},
		{"WATCH", "answered by the proxy", "dedicated connection"},
		{"BLPOP", "on a dedicated connection to the master of its keys' slot", "all keys in one slot"},
		{"SUBSCRIBE", "answered by the proxy", "multiplexed"},
		{"PUBSUB NUMSUB", "answered by the proxy", "proxy's own clients"},
		{"MONITOR", "refused: not supported yet", ""},
		{"SHUTDOWN", "refused: it would stop a cluster node", ""},
		{"ACL SETUSER", "refused: ACL users are managed on the nodes", ""},
		{"CLUSTER SETSLOT", "refused: this proxy presents the whole cluster as one node", ""},
		{"CLIENT TRACKING", "refused: client-side caching through the proxy is not there", "OFF answers OK: tracking is off"},
	} {
		r, ok := rows[tt.name]
		switch {
		case !ok:
			t.Errorf("%s: no row", tt.name)
		case r[0] != tt.treatment:
			t.Errorf("%s: treatment %q, want %q", tt.name, r[0], tt.treatment)
		case tt.note == "" && r[1] != "",
			tt.note == "*" && r[1] == "",
			tt.note != "*" && !strings.Contains(r[1], tt.note):
			t.Errorf("%s: note %q, want %q", tt.name, r[1], tt.note)
		}
	}
}

// TestCommandReferenceSources: the hand-written parts of the reference
// name commands that exist, of the kind they describe, and give the
// reasons the replies give.
func TestCommandReferenceSources(t *testing.T) {
	for name := range referenceNotes {
		if c := referenceCommand(name); c == nil || (c.kind != kindLocal && c.kind != kindAll && c.kind != kindTxn && c.kind != kindPubSub) {
			t.Errorf("referenceNotes[%q]: no command the proxy answers or sends to every master by that name", name)
		}
	}
	for name := range localRefusals {
		if c := referenceCommand(name); c == nil || c.kind != kindLocal {
			t.Errorf("localRefusals[%q]: no command of kindLocal by that name", name)
		}
	}
	if !strings.Contains(msgNoTracking, localRefusals["client|tracking"]) {
		t.Errorf("CLIENT TRACKING's reply %q does not give the reason %q", msgNoTracking, localRefusals["client|tracking"])
	}
	for sub := range clusterRefused {
		b, _ := appendCluster(nil, sub, nil, clusterSelf{}, 2)
		if !bytes.Contains(b, []byte(whyClusterRefused)) {
			t.Errorf("CLUSTER %s: reply %q does not give the reason %q", sub, b, whyClusterRefused)
		}
	}
}

// TestCommandReferenceRefusals sends every command the reference says is
// refused to a proxy in front of a real cluster, and checks that the
// client gets the refusal with the reason the reference gives, so that a
// command the reference calls refused never reaches a node.
func TestCommandReferenceRefusals(t *testing.T) {
	// Two masters: clustertest cannot bring a cluster of one to health
	// (see oneNodeCluster).
	c := clustertest.New(t, clustertest.Options{Masters: 2})
	p := startProxy(t, c, Options{}, router.Options{})
	client := p.client(t, "")
	ctx := context.Background()

	names, rows := parseReference(t, builtinReference(t))
	refused := 0
	for _, name := range names {
		why, ok := strings.CutPrefix(rows[name][0], treatRefused)
		if !ok {
			continue
		}
		refused++
		cmd := referenceCommand(name)
		if cmd == nil {
			t.Fatalf("%s: not in the built-in table", name)
		}
		var args []any
		for _, w := range strings.Fields(name) {
			args = append(args, w)
		}
		for n := len(args); !cmd.ArityOK(n); n++ {
			args = append(args, "0")
		}
		if words, ok := refusedArgs[cmd.Name]; ok {
			args = args[:0]
			for _, w := range words {
				args = append(args, w)
			}
		}
		err := client.Do(ctx, args...).Err()
		var rerr redis.Error
		if !errors.As(err, &rerr) {
			t.Errorf("%s: %v, want an error reply", name, err)
			continue
		}
		msg := rerr.Error()
		if why == whyNotYet {
			if want := fmt.Sprintf(msgNotSupportedFmt, name); msg != want {
				t.Errorf("%s: %q, want %q", name, msg, want)
			}
		} else if !strings.HasPrefix(msg, "ERR slotproxy") || !strings.Contains(msg, why) {
			t.Errorf("%s: %q, want the proxy's refusal giving %q", name, msg, why)
		}
	}
	if refused < 40 {
		t.Errorf("only %d commands are refused in the reference; the test sees too few", refused)
	}
	// A refusal leaves the connection usable.
	if err := client.Set(ctx, "reference:after", "1", 0).Err(); err != nil {
		t.Errorf("SET after the refusals: %v", err)
	}
}

// referenceCommand finds a built-in command by the name the reference
// gives it ("CLIENT LIST") or the table's ("client|list"); nil if none.
func referenceCommand(name string) *Command {
	words := strings.Fields(strings.ReplaceAll(name, "|", " "))
	c := Builtin().Lookup([]byte(words[0]))
	if c != nil && len(words) > 1 {
		c = c.Subcommand([]byte(words[1]))
	}
	return c
}

// refusedArgs are the arguments that get a refused command its refusal,
// where the arguments a test would make up (zeros) get another error.
var refusedArgs = map[string][]string{
	"client|tracking": {"CLIENT", "TRACKING", "ON"},
}
