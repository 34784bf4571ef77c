package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"runtime"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slotproxy/slotproxy/internal/respenc"
)

// version is slotproxy's version, stamped at build time:
//
//	go build -ldflags "-X main.version=1.2.3" ./cmd/slotproxy
var version = "dev"

// The answers of parseArgs that ask for text instead of a proxy.
var (
	errVersionAsked = errors.New("the version was asked for")
	errCheckAsked   = errors.New("a configuration check was asked for")
)

func writeVersion(w io.Writer) error {
	_, err := fmt.Fprintf(w, "slotproxy %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return err
}

// masked is what -check-config prints for a secret that is set.
const masked = "(masked)"

// writeEffective prints cfg as the YAML a file would hold, with every
// password masked: what -check-config shows of a configuration that
// passed the checks.
func writeEffective(w io.Writer, cfg Config) error {
	maskSecrets(reflect.ValueOf(&cfg).Elem())
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// maskSecrets replaces, in place, every non-empty string field whose YAML
// key names a secret (password, password_sha256, ...), wherever it is.
func maskSecrets(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			key, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
			if f.Kind() == reflect.String && secretKey(key) && f.String() != "" {
				f.SetString(masked)
				continue
			}
			maskSecrets(f)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			maskSecrets(v.Index(i))
		}
	}
}

func secretKey(key string) bool {
	return strings.Contains(key, "password") || strings.Contains(key, "passphrase")
}

// healthcheck is `slotproxy healthcheck`, the image's HEALTHCHECK (the
// image has no shell): with the same configuration as the proxy (file,
// environment, flags), it connects to the client listener, authenticates
// when clients need to, and wants PONG to a PING. It returns nil when the
// proxy answers as it should.
func healthcheck(cfg Config, timeout time.Duration) error {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return err
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	nc, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), timeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(timeout))
	var req []byte
	if cfg.Clients.Password != "" {
		req = respenc.AppendCommand(req, "AUTH", cfg.Clients.Password)
	}
	req = respenc.AppendCommand(req, "PING")
	if _, err := nc.Write(req); err != nil {
		return err
	}
	r := bufio.NewReader(nc)
	if cfg.Clients.Password != "" {
		if line, err := r.ReadString('\n'); err != nil || line != "+OK\r\n" {
			return fmt.Errorf("AUTH was refused: %q %v", strings.TrimSpace(line), err)
		}
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}
