package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"syscall"
)

// isTemporary reports accept errors worth waiting out: the process or the
// system ran out of file descriptors or buffers, or the peer gave up before
// the accept completed.
func isTemporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// refusalsPerSecond bounds the lines about refused or cut-off clients, per
// reason: each such client gets its line, unless hundreds a second are
// (a connection storm past max clients, a scanner sending junk); then the
// next line says how many went unlogged.
const refusalsPerSecond = 20

// noteRefused logs one client refused or disconnected by the proxy, and
// why. reason is one of a few words (max_clients, output_limit,
// idle_timeout, protocol_error, http): the lines are limited per reason.
// Clients going away by themselves, or past a limit they may well meet
// in normal use (an idle timeout, junk from a port scanner), are logged
// at Info, the others at Warn.
func (s *Server) noteRefused(msg, reason string, nc net.Conn, args ...any) {
	level := slog.LevelWarn
	if reason == "idle_timeout" || reason == "protocol_error" {
		level = slog.LevelInfo
	}
	args = append([]any{"reason", reason, "remote", nc.RemoteAddr().String()}, args...)
	s.refusals.Log(s.opts.Logger, level, reason, msg, args...)
}

// debugClient logs a client's arrival or departure at Debug. The check
// comes first: the arguments alone would cost allocations per connection
// at every level.
func (s *Server) debugClient(msg string, sess *session) {
	if s.opts.Logger.Enabled(context.Background(), slog.LevelDebug) {
		s.opts.Logger.Debug(msg, "id", sess.id, "remote", sess.nc.RemoteAddr().String())
	}
}
