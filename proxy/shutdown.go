package proxy

import (
	"context"
	"time"
)

// Shutdown stops accepting clients and lets those connected finish what
// they sent: a session that is answering a batch writes its replies, then
// ends; a session waiting for its client (parked, idle, subscribed, in a
// MULTI, blocked on a dedicated connection) ends at once. When ctx ends
// first, the remaining clients are closed as by Close, and ctx's error is
// returned. Either way the Server is closed afterwards.
//
// A client therefore never loses the reply of a command the proxy sent
// on: it sees its connection closed between replies, as when a
// redis-server restarts.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed || s.draining.Load() {
		s.mu.Unlock()
		return s.Close()
	}
	s.draining.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	n := len(s.sessions)
	for sess := range s.sessions {
		// A read already in progress or parked ends with this; a session
		// in the middle of a batch sees it once its replies are written.
		sess.nc.SetReadDeadline(drainDeadline)
	}
	s.mu.Unlock()
	s.opts.Logger.Info("draining clients", "clients", n)
	if s.parker != nil {
		// Parked sessions resume, and their first read fails on the
		// deadline.
		s.parker.close()
	}

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.opts.Logger.Warn("clients still connected when the shutdown grace ended; closing them", "clients", s.Clients())
	}
	s.Close()
	return err
}

// drainDeadline is a read deadline long past: set on every client socket
// by Shutdown.
var drainDeadline = time.Unix(1, 0)

// clearReadDeadline undoes a read deadline the session set on itself,
// except the one Shutdown set.
func (s *session) clearReadDeadline() {
	if s.srv.draining.Load() {
		s.nc.SetReadDeadline(drainDeadline)
		return
	}
	s.nc.SetReadDeadline(time.Time{})
}
