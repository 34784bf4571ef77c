package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

// TestRunTLS: the tls and backend_tls keys put TLS on both sides of the
// whole program, in front of a cluster that speaks nothing else.
func TestRunTLS(t *testing.T) {
	nodes, err := clustertest.NewTLS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c := clustertest.New(t, clustertest.Options{Masters: 3, TLS: nodes})
	ca, err := clustertest.NewCA(t.TempDir(), "clients-ca")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue("proxy")
	if err != nil {
		t.Fatal(err)
	}
	config := cfgFile(t, fmt.Sprintf(`listen: "127.0.0.1:0"
cluster:
  seeds: [%q]
metrics:
  listen: ""
tls:
  cert_file: %q
  key_file: %q
  min_version: "1.3"
backend_tls:
  enabled: true
  ca_file: %q
  cert_file: %q
  key_file: %q
`, c.Seeds()[0], cert.CertFile, cert.KeyFile, nodes.CA.CertFile, nodes.Cert.CertFile, nodes.Cert.KeyFile))

	logs := &clustertest.LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	listening := make(chan string, 1)
	done := make(chan error, 1)
	hup := make(chan os.Signal, 1)
	go func() {
		done <- run(ctx, []string{"-config", config}, io.Discard, logs, func(p, _ string) { listening <- p }, hup)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
		if t.Failed() {
			t.Logf("slotproxy log:\n%s", logs)
		}
	}()
	var addr string
	select {
	case addr = <-listening:
	case err := <-done:
		t.Fatalf("run returned before listening: %v\n%s", err, logs)
	case <-time.After(10 * time.Second):
		t.Fatalf("not listening after 10s\n%s", logs)
	}

	client := redis.NewClient(&redis.Options{
		Addr: addr, MaxRetries: -1, Protocol: 2, DisableIdentity: true,
		TLSConfig: &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"},
	})
	defer client.Close()
	bg := context.Background()
	clustertest.Eventually(t, 15*time.Second, func() error { return client.Set(bg, "run:tls", "over tls", 0).Err() })
	if got, err := client.Get(bg, "run:tls").Result(); err != nil || got != "over tls" {
		t.Errorf("GET = %q, %v", got, err)
	}
	// min_version 1.3 holds.
	old := &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12}
	if conn, err := tls.Dial("tcp", addr, old); err == nil {
		conn.Close()
		t.Error("a TLS 1.2 client was let in with tls.min_version 1.3")
	}
	for _, line := range []string{`msg="clients connect with TLS"`, `msg="the cluster is reached with TLS"`} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("no %s in the log", line)
		}
	}

	// SIGHUP reads the certificate files again: a new connection is
	// served the new certificate, and the connected client goes on.
	renewed, err := ca.Issue("proxy")
	if err != nil {
		t.Fatal(err)
	}
	clustertest.CopyFile(t, renewed.CertFile, cert.CertFile)
	clustertest.CopyFile(t, renewed.KeyFile, cert.KeyFile)
	want, err := tls.LoadX509KeyPair(renewed.CertFile, renewed.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	hup <- syscall.SIGHUP
	clustertest.Eventually(t, 5*time.Second, func() error {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"})
		if err != nil {
			return err
		}
		defer conn.Close()
		if got := conn.ConnectionState().PeerCertificates[0].Raw; string(got) != string(want.Certificate[0]) {
			return fmt.Errorf("the proxy still serves the old certificate")
		}
		return nil
	})
	if got, err := client.Get(bg, "run:tls").Result(); err != nil || got != "over tls" {
		t.Errorf("GET after the reload = %q, %v", got, err)
	}
	if !strings.Contains(logs.String(), `msg="TLS certificates reloaded"`) {
		t.Error("no TLS certificates reloaded line in the log")
	}
}

// TestLoadCertificates: a file that does not load stops the start with an
// error naming its key; Reload, the SIGHUP handler's, names the side whose
// files fail and keeps what it had.
func TestLoadCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, err := clustertest.NewCA(dir, "ca")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := ca.Issue("proxy")
	if err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "none.pem")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))

	cfg := defaultConfig()
	cfg.TLS.CertFile, cfg.TLS.KeyFile = missing, kp.KeyFile
	if _, err := loadCertificates(cfg, logger); err == nil || !strings.HasPrefix(err.Error(), "tls: ") || !strings.Contains(err.Error(), "none.pem") {
		t.Errorf("a missing tls.cert_file: %v", err)
	}
	cfg = defaultConfig()
	cfg.BackendTLS.Enabled, cfg.BackendTLS.CAFile = true, missing
	if _, err := loadCertificates(cfg, logger); err == nil || !strings.HasPrefix(err.Error(), "backend_tls: ") || !strings.Contains(err.Error(), "none.pem") {
		t.Errorf("a missing backend_tls.ca_file: %v", err)
	}

	plain, err := loadCertificates(defaultConfig(), logger)
	if err != nil || plain.client != nil || plain.backend != nil || plain.backendDial() != nil {
		t.Fatalf("without TLS keys: %+v, %v", plain, err)
	}
	if err := plain.Reload(); err != nil {
		t.Errorf("Reload without TLS: %v", err)
	}

	caFile := filepath.Join(dir, "backend-ca.pem")
	clustertest.CopyFile(t, ca.CertFile, caFile)
	cfg = defaultConfig()
	cfg.TLS.CertFile, cfg.TLS.KeyFile = kp.CertFile, kp.KeyFile
	cfg.BackendTLS.Enabled, cfg.BackendTLS.CAFile = true, caFile
	certs, err := loadCertificates(cfg, logger)
	if err != nil || certs.client == nil || certs.backend == nil || certs.backendDial() == nil {
		t.Fatalf("with both sides: %+v, %v", certs, err)
	}
	if err := certs.Reload(); err != nil {
		t.Errorf("Reload of unchanged files: %v", err)
	}
	if err := os.WriteFile(caFile, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := certs.Reload(); err == nil || !strings.HasPrefix(err.Error(), "backend_tls: ") {
		t.Errorf("Reload with a broken backend_tls.ca_file: %v", err)
	}
}
