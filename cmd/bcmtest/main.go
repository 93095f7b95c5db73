// Command bcmtest brings Bitcoin Cache Machine LXD clusters up and down on
// VMs, shows and collects their state, and runs the e2e suites across
// cluster sizes. See `bcmtest help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// execute runs a command line as main does: it prints the error, if any,
// and returns the documented exit code. Tests drive it with argv.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := run(ctx, args, stdout, stderr)
	if err == nil {
		return exitOK
	}
	// A remote command's own exit code: it ran, and said what it had to.
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	if ctx.Err() != nil && !errors.Is(err, errInterrupted) {
		err = fmt.Errorf("%w: %w", errInterrupted, err)
	}
	fmt.Fprintf(stderr, "bcmtest: %v\n", err)
	var hint helpHint
	if exitCode(err) == exitUsage && errors.As(err, &hint) {
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", hint.path)
	}
	return exitCode(err)
}

// run parses and runs a command line; it is main without the process
// around it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	root, ran := newRoot(stdout, stderr)
	root.SetArgs(compatArgs(args))
	c, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	// Whatever failed before a command started running is the command
	// line's fault: cobra's own errors (an unknown command) are untyped.
	var u usageError
	var e envError
	if !*ran && !errors.As(err, &u) && !errors.As(err, &e) {
		err = usageError{err.Error()}
	}
	if c == nil {
		c = root
	}
	return helpHint{err: err, path: c.CommandPath()}
}

// compatArgs keeps the single-dash -help the old flag parser accepted.
func compatArgs(args []string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if a == "--" {
			break
		}
		if a == "-help" {
			out[i] = "--help"
		}
	}
	return out
}
