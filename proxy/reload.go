package proxy

import "time"

// Live holds the settings Reload changes while the proxy runs, its
// clients staying connected. Each field means what the Options field of
// the same name means, zero included. A setting belongs here once every
// place that reads it loads it anew at each use (an atomic load where
// the data path reads it).
type Live struct {
	Password       string
	Users          []User
	MaxClients     int
	MaxOutputBytes int
	IdleTimeout    time.Duration
}

func (l *Live) setDefaults() {
	if l.MaxClients <= 0 {
		l.MaxClients = 10000
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = 128 << 20
	}
	if l.IdleTimeout < 0 {
		l.IdleTimeout = 0
	}
}

// Reload puts l in force, as redis-server's CONFIG SET would:
//   - a client keeps the authentication it has. One that is authenticated
//     (or connected while no password was set) stays so; AUTH checks the
//     new password from now on; a client yet to authenticate needs to no
//     longer once the password is removed;
//   - a lower max clients refuses new clients only;
//   - a lower output limit applies from a client's next reply;
//   - a new idle timeout applies from the next sweep of idle clients.
func (s *Server) Reload(l Live) {
	l.setDefaults()
	a, err := newAccounts(l.Password, l.Users)
	if err != nil {
		s.opts.Logger.Error("client users left out", "err", err)
	}
	s.accounts.Store(a)
	s.maxClients.Store(int64(l.MaxClients))
	s.maxOutput.Store(int64(l.MaxOutputBytes))
	s.idleTimeout.Store(int64(l.IdleTimeout))
}

// authRequired reports whether clients must authenticate.
func (s *Server) authRequired() bool { return s.accounts.Load().required() }

func (s *Server) maxOutputBytes() int { return int(s.maxOutput.Load()) }

func (s *Server) idleTimeoutNow() time.Duration { return time.Duration(s.idleTimeout.Load()) }

// authedNow is the slow half of the authentication check, for a session
// that is not authenticated: a client that connected while a password
// was required needs none once it is removed, as with redis-server.
func (s *session) authedNow() bool {
	if !s.srv.authRequired() {
		s.authed = true
	}
	return s.authed
}
