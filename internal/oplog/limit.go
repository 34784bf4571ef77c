package oplog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limiter lets through at most burst lines per key in each period; the
// first line let through after some were held back says how many, as
// "suppressed". Keys name a cause ("dial failed" and a node address, a
// reason for refusing clients), never a client: the set of keys must stay
// small.
type Limiter struct {
	every time.Duration
	burst int
	now   func() time.Time // time.Now; tests move time themselves

	mu   sync.Mutex
	keys map[string]*window
}

type window struct {
	start   time.Time
	lines   int // let through since start
	dropped int // held back since start
}

// maxKeys bounds the keys remembered: past it, keys quiet for a whole
// period are forgotten (with what they held back).
const maxKeys = 1024

// NewLimiter returns a Limiter that lets through burst lines per key per
// every. burst below 1 means 1.
func NewLimiter(every time.Duration, burst int) *Limiter {
	return &Limiter{every: every, burst: max(burst, 1), now: time.Now, keys: make(map[string]*window)}
}

// Log writes msg with args at level unless key had its share of lines in
// the current period. Nothing is counted while the level is disabled.
func (l *Limiter) Log(logger *slog.Logger, level slog.Level, key, msg string, args ...any) {
	ctx := context.Background()
	if !logger.Enabled(ctx, level) {
		return
	}
	ok, dropped := l.allow(key)
	if !ok {
		return
	}
	if dropped > 0 {
		args = append(args[:len(args):len(args)], "suppressed", dropped)
	}
	logger.Log(ctx, level, msg, args...)
}

// allow reports whether a line for key may be written, and how many were
// held back before it.
func (l *Limiter) allow(key string) (ok bool, dropped int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.keys[key]
	switch {
	case w == nil:
		if len(l.keys) >= maxKeys {
			l.forgetQuiet(now)
		}
		l.keys[key] = &window{start: now, lines: 1}
		return true, 0
	case now.Sub(w.start) >= l.every:
		dropped = w.dropped
		*w = window{start: now, lines: 1}
		return true, dropped
	case w.lines < l.burst:
		w.lines++
		return true, 0
	}
	w.dropped++
	return false, 0
}

// forgetQuiet drops the keys whose period ended. Under l.mu.
func (l *Limiter) forgetQuiet(now time.Time) {
	for k, w := range l.keys {
		if now.Sub(w.start) >= l.every {
			delete(l.keys, k)
		}
	}
}
