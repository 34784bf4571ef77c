// Command slotproxy lets a client that speaks plain Redis use a whole Redis
// Cluster through one address.
//
//	slotproxy -config proxy.yaml [-listen :5000] [-seeds h:p,h:p] [-metrics-listen :9121]
//	slotproxy -commands
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/slotproxy/slotproxy/metrics"
	"github.com/slotproxy/slotproxy/proxy"
	"github.com/slotproxy/slotproxy/router"
	"github.com/slotproxy/slotproxy/slotmap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil, hup); err != nil {
		fmt.Fprintln(os.Stderr, "slotproxy:", err)
		os.Exit(1)
	}
}

// listening is told the addresses the proxy and admin listeners are bound
// to, once both are; tests use it to find ports chosen by the system.
type listening func(proxyAddr, adminAddr string)

// run is the whole program: it returns when ctx ends (a signal) or start-up
// fails, or at once when args ask only for output on stdout. Each value
// received from reload (SIGHUP) reloads the configuration file; nil never
// does.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, onListen listening, reload <-chan os.Signal) error {
	if len(args) > 0 && args[0] == "healthcheck" {
		cfg, err := parseArgs(args[1:], stderr)
		if err != nil {
			return err
		}
		if err := healthcheck(cfg, 2*time.Second); err != nil {
			return fmt.Errorf("healthcheck: %w", err)
		}
		return nil
	}
	cfg, err := parseArgs(args, stderr)
	switch {
	case errors.Is(err, errCommandsAsked):
		return proxy.WriteCommandReference(stdout, proxy.Builtin())
	case errors.Is(err, errVersionAsked):
		return writeVersion(stdout)
	case errors.Is(err, errCheckAsked):
		return writeEffective(stdout, cfg)
	case err != nil:
		return err
	}
	if n := cfg.Runtime.GOMAXPROCS; n > 0 {
		runtime.GOMAXPROCS(n)
	}
	level := new(slog.LevelVar) // SIGHUP changes it
	lv, _ := cfg.Log.level()
	level.Set(lv)
	hopts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	if cfg.Log.Format == "json" {
		logger = slog.New(slog.NewJSONHandler(stderr, hopts))
	} else {
		logger = slog.New(slog.NewTextHandler(stderr, hopts))
	}

	certs, err := loadCertificates(cfg, logger)
	if err != nil {
		return err
	}
	slots, err := slotmap.New(slotmap.Options{
		Seeds:           cfg.Cluster.Seeds,
		Username:        cfg.Cluster.Username,
		Password:        cfg.Cluster.Password,
		RefreshInterval: cfg.Cluster.RefreshInterval,
		DialTimeout:     cfg.Backend.DialTimeout,
		ReadTimeout:     cfg.Backend.ReadTimeout,
		Logger:          logger,
		Dial:            certs.backendDial(),
		TLS:             certs.backend != nil,
	})
	if err != nil {
		return err
	}
	rt := router.New(slots, router.Options{
		ConnsPerNode:        cfg.Backend.ConnectionsPerNode,
		DialTimeout:         cfg.Backend.DialTimeout,
		ReadTimeout:         cfg.Backend.ReadTimeout,
		RetryTimeout:        cfg.Backend.RetryTimeout,
		MaxDedicatedPerNode: cfg.Backend.MaxDedicatedPerNode,
		DedicatedWait:       cfg.Backend.DedicatedWait,
		Username:            cfg.Cluster.Username,
		Password:            cfg.Cluster.Password,
		Logger:              logger,
		Dial:                certs.backendDial(),
	})
	defer rt.Close()
	srv := proxy.New(rt, proxy.Options{
		Password:       cfg.Clients.Password,
		Users:          cfg.Clients.proxyUsers(),
		MaxClients:     cfg.Clients.MaxClients,
		MaxOutputBytes: cfg.Clients.MaxOutputBytes,
		IdleTimeout:    cfg.Clients.IdleTimeout,

		ConfigSetAllNodes: cfg.Commands.ConfigSet == "all-nodes",
		ScriptCacheBytes:  cfg.Commands.ScriptCacheBytes,
		ConfigFile:        cfg.File,
		Version:           version,
		Deny:              cfg.Commands.denyList(),
		Logger:            logger,
		// Without an admin listener no one reads the command counts.
		NoStats: cfg.Metrics.Listen == "",

		SlowlogThreshold:     cfg.Slowlog.proxyThreshold(),
		SlowlogMaxLen:        cfg.Slowlog.MaxLen,
		SlowlogBackendFields: cfg.Slowlog.BackendFields,

		TLS: certs.client,
	})

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	var adminLn net.Listener
	if cfg.Metrics.Listen != "" {
		if adminLn, err = net.Listen("tcp", cfg.Metrics.Listen); err != nil {
			ln.Close()
			return err
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	go func() { errc <- slots.Run(ctx) }()
	go func() { errc <- srv.Serve(ln) }()
	adminAddr := ""
	if adminLn != nil {
		adminAddr = adminLn.Addr().String()
		reg := metrics.NewRegistry()
		srv.RegisterMetrics(reg)
		rt.RegisterMetrics(reg)
		slots.RegisterMetrics(reg)
		admin := metrics.NewAdmin(reg, metrics.AdminOptions{Ready: rt.Ready, Pprof: cfg.Metrics.Pprof})
		go func() { errc <- metrics.Serve(ctx, adminLn, admin) }()
	}
	go learnCommands(ctx, slots, srv, logger)
	logger.Info("slotproxy listening", "listen", ln.Addr().String(), "admin", adminAddr,
		"seeds", strings.Join(cfg.Cluster.Seeds, ","))
	if onListen != nil {
		onListen(ln.Addr().String(), adminAddr)
	}

	r := &reloader{args: args, cfg: cfg, level: level, logger: logger, srv: srv, slots: slots, certs: certs}
wait:
	for {
		select {
		case <-ctx.Done():
			err = nil
			break wait
		case err = <-errc:
			break wait
		case <-reload:
			r.reload()
		}
	}
	// The slot map, the router and the admin listener keep working while
	// the clients finish.
	logger.Info("slotproxy stopping", "shutdown_grace", r.cfg.ShutdownGrace)
	grace, cancelGrace := context.WithTimeout(context.Background(), r.cfg.ShutdownGrace)
	srv.Shutdown(grace)
	cancelGrace()
	cancel()
	return err
}

// learnCommands replaces the built-in command table with the cluster's own
// once a master can be asked.
func learnCommands(ctx context.Context, slots *slotmap.Map, srv *proxy.Server, logger *slog.Logger) {
	select {
	case <-ctx.Done():
		return
	case <-slots.Ready():
	}
	for attempt := 0; attempt < 5; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := srv.LearnCommands(cctx)
		cancel()
		if err == nil {
			// Start-up is over: reading the configuration, the built-in and
			// the cluster's command tables left a few MiB of garbage, and the
			// runtime would keep its pages for the heap's next growth, which
			// in a sidecar serving small requests does not come. Measured on
			// a proxy idle after start: RssAnon 6.0 MiB without this, 3.2 MiB
			// with it.
			debug.FreeOSMemory()
			return
		}
		if ctx.Err() != nil {
			return
		}
		logger.Warn("learning the command table failed; the built-in one stays", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// errCommandsAsked is parseArgs' answer to -commands: like flag.ErrHelp,
// it asks for text instead of a proxy, whatever the configuration says,
// so that the reference can be printed without a config file or a cluster.
var errCommandsAsked = errors.New("the command reference was asked for")

// parseArgs loads the config file, if any, and applies the flags over it.
func parseArgs(args []string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("slotproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration file (proxy.yaml documents every key)")
	listen := fs.String("listen", "", "client listen address, overrides listen")
	seeds := fs.String("seeds", "", "comma-separated seed nodes host:port, override cluster.seeds")
	metricsListen := fs.String("metrics-listen", "", "admin listen address for /metrics and /healthz, overrides metrics.listen")
	commands := fs.Bool("commands", false, "print how every command is served, as Markdown, and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	checkOnly := fs.Bool("check-config", false, "check the configuration (file, environment, flags), print it with its secrets masked, and exit")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *commands {
		return Config{}, errCommandsAsked
	}
	if *showVersion {
		return Config{}, errVersionAsked
	}
	cfg := defaultConfig()
	if *path != "" {
		var err error
		if cfg, err = loadConfig(*path); err != nil {
			return cfg, err
		}
		cfg.File, _ = filepath.Abs(*path)
	}
	// The environment overrides the file, and the flags both.
	if err := applyEnv(&cfg, os.LookupEnv); err != nil {
		return cfg, errors.New("config: " + err.Error())
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *seeds != "" {
		cfg.Cluster.Seeds = strings.Split(*seeds, ",")
		for i, s := range cfg.Cluster.Seeds {
			cfg.Cluster.Seeds[i] = strings.TrimSpace(s)
		}
	}
	if *metricsListen != "" {
		cfg.Metrics.Listen = *metricsListen
	}
	if err := cfg.check(); err != nil {
		return cfg, errors.New("config: " + err.Error())
	}
	if *checkOnly {
		return cfg, errCheckAsked
	}
	return cfg, nil
}

// certificates are the TLS configurations of both sides; a nil one is a
// side in plain TCP.
type certificates struct {
	client  *proxy.TLS
	backend *router.TLS
	logger  *slog.Logger
}

// loadCertificates reads the files the tls and backend_tls keys name.
func loadCertificates(cfg Config, logger *slog.Logger) (*certificates, error) {
	c := &certificates{logger: logger}
	if t := cfg.TLS; t.CertFile != "" {
		minVersion := uint16(tls.VersionTLS12)
		if t.MinVersion == "1.3" {
			minVersion = tls.VersionTLS13
		}
		var err error
		c.client, err = proxy.NewTLS(proxy.TLSOptions{
			CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile,
			MinVersion: minVersion, HandshakeTimeout: t.HandshakeTimeout,
		})
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		logger.Info("clients connect with TLS", "cert_file", t.CertFile, "client_ca_file", t.ClientCAFile, "min_version", t.MinVersion)
	}
	if b := cfg.BackendTLS; b.Enabled {
		var err error
		c.backend, err = router.NewTLS(router.TLSOptions{CAFile: b.CAFile, CertFile: b.CertFile, KeyFile: b.KeyFile, ServerName: b.ServerName})
		if err != nil {
			return nil, fmt.Errorf("backend_tls: %w", err)
		}
		logger.Info("the cluster is reached with TLS", "ca_file", b.CAFile, "cert_file", b.CertFile, "server_name", b.ServerName)
	}
	return c, nil
}

// Reload reads the certificate, key and CA files of both sides again, for
// the connections made from now on; the SIGHUP handler calls it. A side
// whose files do not load keeps what it had, and the error says which.
func (c *certificates) Reload() error {
	var errs []error
	if c.client != nil {
		if err := c.client.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("tls: %w", err))
		}
	}
	if c.backend != nil {
		if err := c.backend.Reload(); err != nil {
			errs = append(errs, fmt.Errorf("backend_tls: %w", err))
		}
	}
	err := errors.Join(errs...)
	if err == nil && (c.client != nil || c.backend != nil) {
		c.logger.Info("TLS certificates reloaded")
	}
	return err
}

// backendDial is the dialer of the router and the slot map: nil, their
// plain TCP default, without backend TLS.
func (c *certificates) backendDial() func(context.Context, string) (net.Conn, error) {
	if c.backend == nil {
		return nil
	}
	return c.backend.Dial
}
