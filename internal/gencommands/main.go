// Command gencommands captures the raw RESP2 reply of COMMAND from a local
// redis-server, for the built-in command table of package proxy.
//
// It starts a private redis-server on a unix socket in a temporary directory
// (no TCP port, no persistence), sends COMMAND, reads exactly one complete
// reply and writes its bytes to -out. The server is stopped by its process id
// and the directory removed whatever happens.
//
// redis-server lists commands (and subcommands) in the order of its hash
// table, which is seeded at random: two runs give the same commands in a
// different order. So that regenerating the file gives the same bytes,
// gencommands sorts commands and subcommands by name; every element is
// otherwise written exactly as the server sent it (checked by re-encoding
// the reply before sorting). -sort=false writes the reply as received.
//
// Usage (from the repository root; go generate in proxy/ passes -out):
//
//	go run ./internal/gencommands -out proxy/command_table.resp
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/resp"
)

func main() {
	out := flag.String("out", "proxy/command_table.resp", "file to write the raw COMMAND reply to")
	server := flag.String("redis-server", "redis-server", "redis-server binary to run")
	timeout := flag.Duration("timeout", 10*time.Second, "how long to wait for the server to start and answer")
	sorted := flag.Bool("sort", true, "sort commands and subcommands by name, for a reproducible file")
	flag.Parse()

	if err := run(*server, *out, *timeout, *sorted); err != nil {
		fmt.Fprintln(os.Stderr, "gencommands:", err)
		os.Exit(1)
	}
}

func run(server, out string, timeout time.Duration, sorted bool) error {
	dir, err := os.MkdirTemp("", "gencommands-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	sock := filepath.Join(dir, "r.sock")
	cmd := exec.Command(server,
		"--port", "0",
		"--unixsocket", sock,
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"),
	)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", server, err)
	}
	// Stop exactly the process we started, and reap it.
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()

	conn, err := dialWhenReady(sock, time.Now().Add(timeout))
	if err != nil {
		if log, rerr := os.ReadFile(filepath.Join(dir, "redis.log")); rerr == nil && len(log) > 0 {
			err = fmt.Errorf("%w\nredis-server log:\n%s", err, log)
		}
		return err
	}
	defer conn.Close()

	raw, err := commandReply(conn, time.Now().Add(timeout))
	if err != nil {
		return err
	}
	if sorted {
		if raw, err = sortReply(raw); err != nil {
			return err
		}
	}
	if err := os.WriteFile(out, raw, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gencommands: wrote %d bytes to %s\n", len(raw), out)
	return nil
}

// dialWhenReady polls the unix socket until the server accepts a connection
// or the deadline passes.
func dialWhenReady(sock string, deadline time.Time) (net.Conn, error) {
	for {
		conn, err := net.DialTimeout("unix", sock, time.Second)
		if err == nil {
			return conn, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("redis-server did not accept connections on %s: %w", sock, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// commandReply sends COMMAND and returns the raw bytes of exactly one reply.
// The resp reader buffers ahead, so the bytes it consumed are recorded
// through a tee and cut at the length the reader reports.
func commandReply(conn net.Conn, deadline time.Time) ([]byte, error) {
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := io.WriteString(conn, "*1\r\n$7\r\nCOMMAND\r\n"); err != nil {
		return nil, fmt.Errorf("send COMMAND: %w", err)
	}
	var seen bytes.Buffer
	v, n, err := resp.NewReader(io.TeeReader(conn, &seen)).ReadValue()
	if err != nil {
		return nil, fmt.Errorf("read COMMAND reply: %w", err)
	}
	if v.Type() == resp.Error {
		return nil, fmt.Errorf("COMMAND: %s", v.String())
	}
	if v.Type() != resp.Array || len(v.Array()) == 0 {
		return nil, errors.New("COMMAND: reply is not a non-empty array")
	}
	if n > seen.Len() {
		return nil, fmt.Errorf("COMMAND: reader consumed %d bytes but only %d were read", n, seen.Len())
	}
	return seen.Bytes()[:n], nil
}

// sortReply returns the COMMAND reply with its commands, and each command's
// subcommands (element 10 of an entry), sorted by name.
func sortReply(raw []byte) ([]byte, error) {
	v, _, err := resp.NewReader(bytes.NewReader(raw)).ReadValue()
	if err != nil {
		return nil, err
	}
	// Sorting re-encodes the reply: make sure the encoding is exact first.
	if again, err := v.MarshalRESP(); err != nil || !bytes.Equal(again, raw) {
		return nil, fmt.Errorf("COMMAND reply does not re-encode to the same bytes (%v); use -sort=false", err)
	}
	entries := v.Array()
	for _, e := range entries {
		if a := e.Array(); len(a) >= 10 {
			sortByName(a[9].Array())
		}
	}
	sortByName(entries)
	sorted, err := resp.ArrayValue(entries).MarshalRESP()
	if err != nil {
		return nil, err
	}
	if len(sorted) != len(raw) {
		return nil, fmt.Errorf("sorted reply has %d bytes, not %d", len(sorted), len(raw))
	}
	return sorted, nil
}

func sortByName(entries []resp.Value) {
	name := func(v resp.Value) string {
		if a := v.Array(); len(a) > 0 {
			return strings.ToLower(a[0].String())
		}
		return ""
	}
	slices.SortStableFunc(entries, func(a, b resp.Value) int { return strings.Compare(name(a), name(b)) })
}
