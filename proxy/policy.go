package proxy

import (
	"strings"
	"sync"
)

// The command policy: commands an application must not send through a
// sidecar shared with others, refused with an error that names the policy
// (commands.deny). It is a list of command names, a subcommand written
// "container|sub" ("config|set"), a container alone denying all of its
// subcommands.
//
// DefaultDeny is what the policy denies unless configured otherwise: what
// would stop, reconfigure, fail over, replicate, watch or dump a node, or
// change the cluster's layout or its users. FLUSHALL, FLUSHDB and KEYS are
// not in it: an application may need them, and an operator adds them.
var DefaultDeny = []string{
	"shutdown", "debug", "config|set", "config|rewrite", "config|resetstat",
	"cluster|addslots", "cluster|addslotsrange", "cluster|delslots", "cluster|delslotsrange",
	"cluster|flushslots", "cluster|forget", "cluster|meet", "cluster|replicate", "cluster|reset",
	"cluster|saveconfig", "cluster|set-config-epoch", "cluster|setslot", "cluster|bumpepoch",
	"cluster|failover", "failover", "replicaof", "slaveof", "monitor",
	"save", "bgsave", "bgrewriteaof", "migrate",
	"acl|setuser", "acl|deluser", "acl|load", "acl|save", "acl|log",
	"module",
}

// Every command name the policy may name, top-level or "container|sub",
// gets a number, process-wide, so that a server's policy is a slice it
// indexes once per command; names past maxPolicyIDs cannot be denied
// (they are more than redis-server has commands and subcommands).
const maxPolicyIDs = 4096

var policyIDs = struct {
	sync.Mutex
	ids map[string]uint16
}{ids: map[string]uint16{}}

// policyID returns the number of a full command name; 0 is no name.
func policyID(name string) uint16 {
	policyIDs.Lock()
	defer policyIDs.Unlock()
	if id, ok := policyIDs.ids[name]; ok {
		return id
	}
	if len(policyIDs.ids)+1 >= maxPolicyIDs {
		return 0
	}
	id := uint16(len(policyIDs.ids) + 1)
	policyIDs.ids[name] = id
	return id
}

// policy is a server's deny list, by policy number.
type policy struct {
	denied []bool
}

func newPolicy(deny []string) policy {
	p := policy{denied: make([]bool, maxPolicyIDs)}
	for _, name := range deny {
		if id := policyID(strings.ToLower(name)); id != 0 {
			p.denied[id] = true
		}
	}
	return p
}

// denies reports whether cmd, or the container it is a subcommand of, is
// denied.
func (p *policy) denies(top, cmd *Command) bool {
	return p.denied[cmd.policyID] || p.denied[top.policyID]
}

// deniedError is the reply to a denied command.
func deniedError(cmd *Command) string {
	return "ERR command '" + strings.ToUpper(strings.ReplaceAll(cmd.Name, "|", " ")) +
		"' is denied by slotproxy's command policy (commands.deny)"
}
