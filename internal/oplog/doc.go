// Package oplog holds what slotproxy's operator logs need beyond log/slog:
// lines limited per cause, so that a dead node or a storm of refused
// clients cannot flood the log, and text from peers with whatever might
// quote a secret left out.
//
// It knows nothing of clients, nodes or configuration: callers name the
// cause and give the secrets.
package oplog
