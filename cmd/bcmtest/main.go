// Command bcmtest brings Bitcoin Cache Machine LXD clusters up and down on
// VMs, shows and collects their state, and runs the e2e suites across
// cluster sizes. See `bcmtest help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `bcmtest: end-to-end test harness for Bitcoin Cache Machine's LXD clusters

Usage:
  bcmtest up NAME [MEMBERS] [flags]   bring NAME-00 (bootstrap) and NAME-01..NN up as one LXD cluster
  bcmtest down NAME | --stale         remove exactly that cluster | sweep what crashed runs left
  bcmtest list                        clusters and VMs the harness knows
  bcmtest exec NODE -- CMD [ARGS...]  run a command as root on a node
  bcmtest ssh NODE                    interactive shell on a node
  bcmtest logs NAME [--out DIR]       collect per-node diagnostics
  bcmtest image build|list|prune      the embedded provider's VM images
  bcmtest cloudinit lint FILE         check a cloud-init file before any VM starts
  bcmtest cloudinit check FILE        lint, then boot one VM and report each cloud-init module
  bcmtest matrix --sizes 0,1,3        the suites over cluster sizes, with a JSON/Markdown/HTML report
  bcmtest version

Examples:
  bcmtest up CLUS1 3                  CLUS1-00..CLUS1-03 as one cluster (as up_lxd_cluster.sh CLUS1 3)
  bcmtest exec CLUS1-01 -- zpool list
  bcmtest down CLUS1                  removes CLUS1-NN only, never CLUS10-NN

Run 'bcmtest COMMAND --help' for a command's flags.

Environment: BCMTEST_PROVIDER (auto|qemu|multipass), BCMTEST_ACCEL (auto|kvm|tcg),
BCMTEST_STATE_DIR, BCMTEST_CACHE_DIR, BCMTEST_MULTIPASS (path to multipass).

Exit codes: 0 ok, 1 failure (an operation or tests failed), 2 usage error,
3 environment problem (missing qemu, multipass, disk), 130 interrupted.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	interrupted := ctx.Err() != nil
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(exitOK)
		}
		if interrupted && !errors.Is(err, errInterrupted) {
			err = fmt.Errorf("%w: %w", errInterrupted, err)
		}
		fmt.Fprintf(os.Stderr, "bcmtest: %v\n", err)
		os.Exit(exitCode(err))
	}
}

// run dispatches a command line; it is main without the process around it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	case "version", "--version":
		fmt.Fprintf(stdout, "bcmtest %s\n", version)
		return nil
	case "up":
		return cmdUp(ctx, rest, stdout, stderr)
	case "down":
		return cmdDown(ctx, rest, stdout, stderr)
	case "list", "ls":
		return cmdList(ctx, rest, stdout, stderr)
	case "exec":
		return cmdExec(ctx, rest, stdout, stderr)
	case "ssh", "shell":
		return cmdSSH(ctx, rest, stdout, stderr)
	case "logs":
		return cmdLogs(ctx, rest, stdout, stderr)
	case "image":
		return cmdImage(ctx, rest, stdout, stderr)
	case "matrix":
		return cmdMatrix(ctx, rest, stdout, stderr)
	case "cloudinit", "cloud-init":
		return cmdCloudInit(ctx, rest, stdout, stderr)
	}
	return usagef("unknown command %q; run 'bcmtest help'", cmd)
}

// newFlags makes a FlagSet whose --help prints the command's usage.
func newFlags(name, synopsis string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "%s\n\nFlags:\n", synopsis)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
	}
	return fs
}

// parse handles --help for every command the same way.
func parse(fs *flag.FlagSet, args []string) (pos, rest []string, err error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "--help" || a == "-help" {
			fs.Usage()
			return nil, nil, flag.ErrHelp
		}
	}
	return parseInterleaved(fs, args)
}
