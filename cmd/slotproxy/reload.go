package main

import (
	"io"
	"log/slog"
	"reflect"
	"strings"

	"github.com/slotproxy/slotproxy/internal/oplog"
	"github.com/slotproxy/slotproxy/proxy"
	"github.com/slotproxy/slotproxy/slotmap"
)

// liveKey reports whether a key takes effect on SIGHUP. The others need a
// restart: listeners, the cluster's address and credentials, and the
// backend connections are made once.
func liveKey(key string) bool {
	switch key {
	case "log.level", "cluster.refresh_interval", "shutdown_grace", "slowlog.threshold",
		"clients.password", "clients.users", "clients.max_clients", "clients.max_output_bytes", "clients.idle_timeout":
		return true
	}
	return false
}

// takeLive copies the live keys of next into cfg: what liveKey lists,
// and nothing else (TestLiveKeysTaken holds the two together).
func takeLive(cfg *Config, next Config) {
	cfg.Log.Level = next.Log.Level
	cfg.Cluster.RefreshInterval = next.Cluster.RefreshInterval
	cfg.Clients = next.Clients
	cfg.ShutdownGrace = next.ShutdownGrace
	cfg.Slowlog.Threshold = next.Slowlog.Threshold
}

// reloader puts the configuration file's new settings in force on
// SIGHUP. Only run's goroutine uses it.
type reloader struct {
	args   []string // the command line: its flags override the file again
	cfg    Config   // in force: the live keys as last reloaded, the others as started
	level  *slog.LevelVar
	logger *slog.Logger
	srv    *proxy.Server
	slots  *slotmap.Map
	certs  *certificates // TLS, both sides: their files are read again
}

// reload reads the file again, checks it as at start-up, and applies the
// live keys that changed. A file that fails is one log line, and nothing
// changes. Values are never logged, only key names: a value may be a
// password.
func (r *reloader) reload() {
	if r.cfg.File == "" {
		r.logger.Warn("SIGHUP: nothing to reload: slotproxy was started without -config")
		r.reloadCerts()
		return
	}
	next, err := parseArgs(r.args, io.Discard)
	if err != nil {
		// The error names the key and line; parseConfig left out what
		// yaml quoted. The passwords in force are hidden as well, in
		// case a check ever quotes one.
		r.logger.Error("configuration reload rejected; the configuration in force stays", "file", r.cfg.File,
			"err", oplog.Hide(err.Error(), r.cfg.Clients.Password, r.cfg.Cluster.Password))
		return
	}
	var live, restart []string
	for _, key := range changedKeys(r.cfg, next) {
		if liveKey(key) {
			live = append(live, key)
		} else {
			restart = append(restart, key)
		}
	}
	takeLive(&r.cfg, next)

	level, _ := next.Log.level()
	// The line goes out at Info under whichever level, old or new, lets
	// it through.
	if level > slog.LevelInfo {
		r.logReloaded(live, restart)
		r.level.Set(level)
	} else {
		r.level.Set(level)
		r.logReloaded(live, restart)
	}
	r.srv.Reload(proxy.Live{
		Password:       r.cfg.Clients.Password,
		Users:          r.cfg.Clients.proxyUsers(),
		MaxClients:     r.cfg.Clients.MaxClients,
		MaxOutputBytes: r.cfg.Clients.MaxOutputBytes,
		IdleTimeout:    r.cfg.Clients.IdleTimeout,
	})
	r.slots.SetRefreshInterval(r.cfg.Cluster.RefreshInterval)
	r.srv.SetSlowlogThreshold(r.cfg.Slowlog.Threshold)
	r.reloadCerts()
}

// reloadCerts reads the TLS certificate, key and CA files again, with or
// without a configuration file: their paths are the ones started with.
func (r *reloader) reloadCerts() {
	if r.certs == nil {
		return
	}
	if err := r.certs.Reload(); err != nil {
		r.logger.Error("TLS certificates reload failed; the ones in force stay", "err", err)
	}
}

func (r *reloader) logReloaded(live, restart []string) {
	r.logger.Info("configuration reloaded", "file", r.cfg.File,
		"changed", strings.Join(live, ","), "need_restart", strings.Join(restart, ","))
}

// changedKeys lists the keys whose values differ between a and b, by
// their dotted names (clients.max_clients), in the order of Config.
func changedKeys(a, b Config) []string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var keys []string
	for _, k := range configKeys() {
		if !reflect.DeepEqual(va.FieldByIndex(k.index).Interface(), vb.FieldByIndex(k.index).Interface()) {
			keys = append(keys, k.path)
		}
	}
	return keys
}
