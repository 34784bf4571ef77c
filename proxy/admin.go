package proxy

import (
	"bytes"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/slotproxy/slotproxy/router"
)

// startCommandJob starts the commands the proxy answers with requests of
// its own, and reports false for the others.
func (s *session) startCommandJob(cmd *Command, args [][]byte) bool {
	switch cmd.Name {
	case "keys":
		s.sendAll(args, true, mergeKeys)
	case "dbsize":
		s.sendAll(args, true, mergeSum)
	case "flushall", "flushdb", "save", "bgsave", "bgrewriteaof":
		s.sendAll(args, false, mergeFirst)
	case "lastsave":
		s.sendAll(args, true, mergeMin)
	case "scan":
		s.scan(args)
	case "randomkey":
		s.randomKey()
	case "info":
		s.info(args)
	case "wait":
		s.wait(args)
	case "config|set":
		s.configSet(args)
	case "config|get":
		s.configGet(args)
	case "client|unblock":
		s.clientUnblock(args)
	case "script|load", "script|exists", "script|flush", "script|kill",
		"function|load", "function|delete", "function|flush", "function|restore", "function|kill":
		s.scriptCommand(cmd.Name, args)
	default:
		return false
	}
	return true
}

// info serves INFO [section ...] as one server: built from every master's
// INFO and the proxy's own figures.
func (s *session) info(args [][]byte) {
	sections := make([][]byte, len(args)-1)
	for i, a := range args[1:] {
		sections[i] = bytes.Clone(a)
	}
	s.sendAll([][]byte{[]byte("INFO"), []byte("everything")}, true, func(s *session, b []byte, parts []value) []byte {
		texts := make([]string, len(parts))
		for i, p := range parts {
			texts[i] = string(p.str)
		}
		return appendVerbatim(b, buildInfo(sections, texts, s.srv.facts()), s.proto)
	})
}

// maxWaitMillis bounds the timeout of a WAIT: the masters block the shared
// connection the client's writes used while they wait, and so every
// client on it. A WAIT cut short answers with the replicas that
// acknowledged so far, as a WAIT whose timeout ran out does.
const maxWaitMillis = 1000

// wait serves WAIT numreplicas timeout: it goes to the masters the client
// wrote to since its last WAIT (all of them when the proxy cannot tell),
// on the connections its writes used, and answers the least count.
func (s *session) wait(args [][]byte) {
	if _, ok := string2ll(args[1]); !ok {
		s.replyError(msgNotInteger)
		return
	}
	timeout, ok := string2ll(args[2])
	switch {
	case !ok:
		s.replyError("ERR timeout is not an integer or out of range")
		return
	case timeout < 0:
		s.replyError("ERR timeout is negative")
		return
	case timeout == 0 || timeout > maxWaitMillis:
		timeout = maxWaitMillis
	}
	masters := s.masters()
	if !s.waitAll && s.waitTable != nil && s.waitTable == s.table {
		var written []string
		for i, m := range masters {
			if i < 64 && s.waitMask&(1<<i) != 0 {
				written = append(written, m)
			}
		}
		if len(written) > 0 {
			masters = written
		}
	}
	s.waitTable, s.waitMask, s.waitAll = nil, 0, false
	cmd := appendCommand(nil, [][]byte{[]byte("WAIT"), args[1], strconv.AppendInt(nil, int64(timeout), 10)})
	s.sendNodes(masters, cmd, false, mergeMin)
}

// wrote notes that the client wrote to slot's master, for WAIT.
func (s *session) wrote(slot int) {
	t := s.table
	if s.waitAll || t == nil || slot == router.NoSlot || (s.waitTable != nil && s.waitTable != t) {
		s.waitAll = true
		return
	}
	i := t.ShardIndex(uint16(slot))
	if i < 0 || i >= 64 {
		s.waitAll = true
		return
	}
	s.waitTable = t
	s.waitMask |= 1 << i
}

const msgConfigSet = "ERR slotproxy: CONFIG SET would change one node of the cluster; set commands.config_set: all-nodes to send it to every node"

// configSet serves CONFIG SET: refused unless the operator asked for it
// to go to every node, masters and replicas.
func (s *session) configSet(args [][]byte) {
	if !s.srv.opts.ConfigSetAllNodes {
		s.replyError(msgConfigSet)
		return
	}
	t := s.table
	if t == nil {
		t = s.srv.router.Table()
	}
	var nodes []string
	if t != nil {
		for _, sh := range t.Shards() {
			nodes = append(nodes, sh.Master.Addr)
			for _, r := range sh.Replicas {
				nodes = append(nodes, r.Addr)
			}
		}
	}
	s.sendNodes(nodes, appendCommand(nil, args), false, mergeFirst)
}

// forwardSlotArg routes CLUSTER COUNTKEYSINSLOT and GETKEYSINSLOT to the
// master of the slot they name. A slot that is not one goes to any
// master, whose error is the reply.
func (s *session) forwardSlotArg(args [][]byte, raw []byte) {
	slot, ok := string2ll(args[2])
	if !ok || slot < 0 || slot >= numSlots {
		slot = router.NoSlot
	}
	s.forward(args, raw, slot, true, false)
}

// clusterSelf is the one node a cluster-aware client sees: the proxy at
// the address the client reached it on.
func (srv *Server) clusterSelf(nc net.Conn) clusterSelf {
	self := clusterSelf{ID: srv.nodeID}
	if a, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		self.IP, self.Port = a.IP.String(), a.Port
	}
	return self
}

// facts are the proxy's own figures for INFO.
func (srv *Server) facts() proxyFacts {
	f := proxyFacts{
		Version:             srv.opts.Version,
		PID:                 os.Getpid(),
		RunID:               srv.runID,
		Started:             srv.started,
		ConfigFile:          srv.opts.ConfigFile,
		ConnectedClients:    srv.Clients(),
		MaxClients:          int(srv.maxClients.Load()),
		TotalConnections:    srv.accepted.Load(),
		RejectedConnections: srv.rejected.Load(),
	}
	f.Executable, _ = os.Executable()
	f.BlockedClients = srv.blockedClients()
	srv.mu.Lock()
	for ln := range srv.listeners {
		if a, ok := ln.Addr().(*net.TCPAddr); ok {
			f.TCPPort = a.Port
		}
	}
	srv.mu.Unlock()
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		f.CPUSys = time.Duration(ru.Stime.Nano())
		f.CPUUser = time.Duration(ru.Utime.Nano())
	}
	if t := srv.router.Table(); t != nil {
		f.Masters = len(t.Shards())
		f.Replicas = t.Replicas()
		f.SlotsCovered = t.Covered()
	}
	f.TableRefreshed = srv.router.SlotMap().LastRefresh()
	f.Ready, _ = srv.router.Ready()
	f.ClientsParked = int(srv.parkedN.Load())
	f.Retries = srv.router.Retries()
	for _, r := range srv.router.SlotMap().RefreshStats() {
		f.RefreshesOK += r.OK
		f.RefreshesFailed += r.Failed
	}
	f.Nodes = srv.router.NodeStats()
	if st := srv.stats; st != nil {
		f.NetInput, f.NetOutput = srv.netBytes()
		f.CommandResults = st.results()
	}
	return f
}
