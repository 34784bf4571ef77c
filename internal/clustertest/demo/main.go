// Command demo starts a local Redis Cluster and runs a command (normally
// slotproxy) against it until interrupted; make demo uses it:
//
//	go run ./internal/clustertest/demo [-masters 3 -replicas 1 -base-port 7000 -password ""] -- bin/slotproxy -config proxy.yaml
//
// On SIGINT or SIGTERM, or when the command exits, it stops the command
// (SIGTERM, then SIGKILL after 5s) and kills the cluster. The cluster lives
// in a fresh temp dir, removed at exit.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/slotproxy/slotproxy/internal/clustertest"
)

const (
	startTimeout = 90 * time.Second
	stopGrace    = 5 * time.Second
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	masters := fs.Int("masters", 3, "number of masters")
	replicas := fs.Int("replicas", 1, "replicas per master")
	basePort := fs.Int("base-port", 7000, "port of the first node; node i listens on base-port+i and base-port+i+10000")
	password := fs.String("password", "", "requirepass/masterauth of every node (empty: none)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: demo [flags] -- command [args...]\n\nStarts a Redis Cluster on 127.0.0.1, then runs command until it exits or demo is interrupted.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	command := fs.Args()
	if len(command) == 0 {
		fs.Usage()
		return 2
	}

	// Fail before the cluster starts, not after (bin/slotproxy not built).
	if _, err := exec.LookPath(command[0]); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return 1
	}

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)

	// A signal during start-up cancels it; Start then kills what it began.
	startCtx, cancel := context.WithTimeout(context.Background(), startTimeout)
	signalled := make(chan bool, 1)
	go func() {
		select {
		case sig := <-signals:
			fmt.Fprintf(stderr, "demo: %v during cluster start-up, stopping\n", sig)
			cancel()
			signalled <- true
		case <-startCtx.Done():
			signalled <- false // a signal still pending is seen below
		}
	}()
	cluster, err := clustertest.Start(startCtx, clustertest.Options{
		Masters:  *masters,
		Replicas: *replicas,
		Password: *password,
		BasePort: *basePort,
		Logf: func(format string, args ...any) {
			fmt.Fprintf(stderr, "demo: "+format+"\n", args...)
		},
	})
	cancel()
	interrupted := <-signalled
	if err != nil {
		if errors.Is(err, clustertest.ErrPortInUse) {
			fmt.Fprintf(stderr, "demo: %v\ndemo: stop whatever listens there, or pick other ports with -base-port\n", err)
		} else {
			fmt.Fprintf(stderr, "demo: %v\n", err)
		}
		return 1
	}
	defer closeCluster(cluster, stderr)
	if interrupted {
		return 1
	}

	printCluster(stdout, cluster)

	proxy := exec.Command(command[0], command[1:]...)
	proxy.Stdout = stdout
	proxy.Stderr = stderr
	// Own process group: a terminal's Ctrl-C reaches demo only, and demo
	// stops the command in order (SIGTERM first). Pdeathsig: it does not
	// outlive demo.
	proxy.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := proxy.Start(); err != nil {
		fmt.Fprintf(stderr, "demo: starting %s: %v\n", command[0], err)
		return 1
	}
	fmt.Fprintf(stderr, "demo: started %s (pid %d); Ctrl-C stops it and the cluster\n", strings.Join(command, " "), proxy.Process.Pid)
	exited := make(chan error, 1)
	go func() { exited <- proxy.Wait() }()

	select {
	case sig := <-signals:
		fmt.Fprintf(stderr, "demo: %v: stopping %s\n", sig, command[0])
		stopCommand(proxy, exited, stderr)
		return 0
	case err := <-exited:
		if err != nil {
			fmt.Fprintf(stderr, "demo: %s exited: %v\n", command[0], err)
			var exit *exec.ExitError
			if errors.As(err, &exit) && exit.ExitCode() > 0 {
				return exit.ExitCode()
			}
			return 1
		}
		fmt.Fprintf(stderr, "demo: %s exited\n", command[0])
		return 0
	}
}

// stopCommand sends SIGTERM to the command's process group, and SIGKILL if
// it has not exited stopGrace later.
func stopCommand(cmd *exec.Cmd, exited <-chan error, stderr io.Writer) {
	pgid := cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		fmt.Fprintf(stderr, "demo: SIGTERM: %v\n", err)
	}
	select {
	case <-exited:
		return
	case <-time.After(stopGrace):
	}
	fmt.Fprintf(stderr, "demo: still running after %v, sending SIGKILL\n", stopGrace)
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		fmt.Fprintf(stderr, "demo: SIGKILL: %v\n", err)
	}
	<-exited
}

func closeCluster(c *clustertest.Cluster, stderr io.Writer) {
	if err := c.Close(); err != nil {
		fmt.Fprintf(stderr, "demo: stopping cluster: %v\n", err)
		return
	}
	fmt.Fprintf(stderr, "demo: cluster stopped\n")
}

func printCluster(w io.Writer, c *clustertest.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	masters, err := c.MasterAddrs(ctx)
	if err != nil {
		masters = nil // roles unknown; the addresses are still worth printing
	}
	fmt.Fprintf(w, "Redis Cluster up (%s):\n", filepath.Dir(c.Nodes[0].Dir))
	for _, n := range c.Nodes {
		role := "replica"
		if slices.Contains(masters, n.Addr) {
			role = "master"
		}
		fmt.Fprintf(w, "  %-16s %-7s pid %d\n", n.Addr, role, n.PID())
	}
	fmt.Fprintf(w, "seeds: %s\n", strings.Join(c.Seeds(), ","))
}
