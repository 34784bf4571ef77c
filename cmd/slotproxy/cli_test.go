package main

import (
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-version"}, &out, io.Discard, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "slotproxy dev (go1.") {
		t.Errorf("-version printed %q", out.String())
	}
}

// TestPrecedence: flags over the environment over the file over the
// defaults, shown by -check-config, which masks every password.
func TestPrecedence(t *testing.T) {
	file := cfgFile(t, "listen: \"127.0.0.1:6000\"\nbackend:\n  read_timeout: 7s\nclients:\n  password: file-pw-Ab12\n")
	t.Setenv("SLOTPROXY_LISTEN", "127.0.0.1:6001")
	t.Setenv("SLOTPROXY_CLUSTER_PASSWORD", "env-pw-Cd34")
	t.Setenv("SLOTPROXY_CLUSTER_SEEDS", "10.1.1.1:7000,10.1.1.2:7000")
	check := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"-check-config", "-config", file}, args...), &out, io.Discard, nil, nil); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	got := check()
	for _, want := range []string{
		"listen: 127.0.0.1:6001", // the environment over the file
		"read_timeout: 7s",       // the file over the default
		"- 10.1.1.1:7000",
		"password: " + masked,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("-check-config without flags lacks %q:\n%s", want, got)
		}
	}
	for _, secret := range []string{"file-pw-Ab12", "env-pw-Cd34"} {
		if strings.Contains(got, secret) {
			t.Errorf("-check-config shows a password:\n%s", got)
		}
	}
	if got := check("-listen", "127.0.0.1:6002"); !strings.Contains(got, "listen: 127.0.0.1:6002") {
		t.Errorf("the flag does not win over the environment:\n%s", got)
	}

	t.Setenv("SLOTPROXY_CLIENTS_MAX_CLIENTS", "lots")
	err := run(context.Background(), []string{"-check-config", "-config", file}, io.Discard, io.Discard, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "SLOTPROXY_CLIENTS_MAX_CLIENTS") {
		t.Errorf("a bad variable: %v", err)
	}
}

// dockerBuild returns the go build command of the Dockerfile's build
// stage, as it stands there.
func dockerBuild(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no go build in the Dockerfile")
	}
	return string(m[1])
}

// TestDockerfileBuild builds the binary with exactly the Dockerfile's
// command (no Docker engine here), checks that it is static and stamped
// with the version, and that its healthcheck passes against the running
// proxy and fails where no proxy answers or the password is wrong.
func TestDockerfileBuild(t *testing.T) {
	cmdline := dockerBuild(t)
	out := t.TempDir()
	cmdline = strings.ReplaceAll(cmdline, "/out/slotproxy", filepath.Join(out, "slotproxy"))
	cmdline = strings.ReplaceAll(cmdline, "${VERSION}", "9.9.9-test")
	cmdline = strings.ReplaceAll(cmdline, "./cmd/slotproxy", ".")
	build := exec.Command("sh", "-c", cmdline)
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, b)
	}
	bin := filepath.Join(out, "slotproxy")

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: not static", bin)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s needs %v", bin, libs)
	}
	f.Close()
	if b, err := exec.Command(bin, "-version").Output(); err != nil || !strings.HasPrefix(string(b), "slotproxy 9.9.9-test ") {
		t.Errorf("-version: %q %v", b, err)
	}

	c := clustertest.New(t, clustertest.Options{Masters: 3})
	addr := clustertest.FreeAddr(t)
	proxyCmd := exec.Command(bin, "-listen", addr, "-metrics-listen", "127.0.0.1:0", "-seeds", c.Seeds()[0])
	proxyCmd.Env = append(os.Environ(), "SLOTPROXY_CLIENTS_PASSWORD=hc-pw-Ef56")
	var logs bytes.Buffer
	proxyCmd.Stderr = &logs
	if err := proxyCmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proxyCmd.Process.Kill()
		proxyCmd.Wait()
	})
	healthcheck := func(env ...string) error {
		hc := exec.Command(bin, "healthcheck", "-listen", addr)
		hc.Env = append(os.Environ(), env...)
		b, err := hc.CombinedOutput()
		if err != nil {
			return &hcError{err, string(b)}
		}
		return nil
	}
	clustertest.Eventually(t, 10*time.Second, func() error { return healthcheck("SLOTPROXY_CLIENTS_PASSWORD=hc-pw-Ef56") })
	if err := healthcheck("SLOTPROXY_CLIENTS_PASSWORD=wrong"); err == nil || !strings.Contains(err.Error(), "AUTH was refused") {
		t.Errorf("healthcheck with a wrong password: %v", err)
	}
	if err := exec.Command(bin, "healthcheck", "-listen", clustertest.FreeAddr(t)).Run(); err == nil {
		t.Error("healthcheck passed where no proxy listens")
	}
}

type hcError struct {
	err error
	out string
}

func (e *hcError) Error() string { return e.err.Error() + ": " + e.out }
