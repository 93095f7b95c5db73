// Command standin is TEST CODE, never shipped as multipass: a stand-in for
// Canonical's multipass client that implements the subset of its command
// line the harness's multipass provider uses (version, launch, info, list,
// exec, transfer, stop, start, delete --purge), with multipass's argument
// grammar, JSON shapes, messages and exit codes, on top of the embedded
// QEMU provider. It exists so the multipass provider can be proved end to
// end on real VMs on a machine without multipass; the integration spec
// builds it into a temporary directory as an executable named `multipass`.
//
// Every instance is a QEMU VM of one group ("standin"), so all of them share
// one private segment, as multipass's instances share its bridge. multipass
// lets the host reach an instance at its first IPv4 address; the QEMU
// provider's segment is not reachable from the host, so the stand-in adds
// each instance's private address to the host's loopback interface and runs
// a small detached TCP proxy from that address's port 8443 to the VM's
// 127.0.0.1 forward of guest port 8443 (see network.go). That needs root.
//
// Environment:
//
//	BCMTEST_STANDIN_LOG    file that gets one JSON line per invocation (its argv)
//	BCMTEST_STANDIN_TRACE  file that gets the QEMU provider's progress lines
//	BCMTEST_STATE_DIR etc. as for the harness (state.Default)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// Exit codes of the multipass client (include/multipass/cli/return_codes.h).
const (
	exitOK          = 0
	exitCommandLine = 1
	exitCommandFail = 2
	exitTimeout     = 5
)

// version is what `version` reports for client and daemon; the suffix keeps
// the stand-in from ever being mistaken for a real multipass.
const version = "1.14.0+standin"

// Environment variables the stand-in reads.
const (
	envCallLog = "BCMTEST_STANDIN_LOG"
	envTrace   = "BCMTEST_STANDIN_TRACE"
)

func main() {
	if os.Getenv(envProxy) == "1" {
		os.Exit(runProxy(os.Args[1:]))
	}
	os.Exit(run(os.Args[1:]))
}

// cliError is a failed command: multipass's message and exit code.
// Unknown commands are reported on stdout, as multipass does.
type cliError struct {
	code     int
	msg      string
	toStdout bool
}

func (e *cliError) Error() string { return e.msg }

// failed is how multipass reports a refused or failed request: exit 2 and
// "<command> failed: <message>".
func failed(cmd, format string, args ...any) error {
	return &cliError{code: exitCommandFail, msg: cmd + " failed: " + fmt.Sprintf(format, args...)}
}

// doesNotExist is the daemon's message for an unknown instance.
func doesNotExist(cmd, name string) error {
	return failed(cmd, "instance %q does not exist", name)
}

// commandLine is a rejected command line (exit 1), message as printed.
func commandLine(format string, args ...any) error {
	return &cliError{code: exitCommandLine, msg: fmt.Sprintf(format, args...)}
}

// handler runs one command with its arguments (the command name removed).
type handler func(ctx context.Context, e *env, args []string) error

var handlers = map[string]handler{
	"version":    cmdVersion,
	"launch":     cmdLaunch,
	"info":       cmdInfo,
	"list":       cmdList,
	"ls":         cmdList,
	"exec":       cmdExec,
	"transfer":   cmdTransfer,
	"copy-files": cmdTransfer,
	"stop":       cmdStop,
	"start":      cmdStart,
	"delete":     cmdDelete,
}

// unsupported are real multipass commands the stand-in refuses. purge is
// among them on purpose: the harness must never run the global purge, and
// a run that does fails loudly here.
var unsupported = map[string]bool{
	"alias": true, "aliases": true, "authenticate": true, "clone": true, "find": true, "get": true,
	"mount": true, "networks": true, "prefer": true, "purge": true, "recover": true,
	"restart": true, "restore": true, "set": true, "shell": true, "sh": true, "connect": true,
	"snapshot": true, "suspend": true, "umount": true, "unmount": true, "unalias": true,
}

// run executes one invocation and returns its exit code.
func run(args []string) int {
	logCall(args)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := dispatch(ctx, args)
	if err == nil {
		return exitOK
	}
	var ce *cliError
	if !errors.As(err, &ce) {
		ce = &cliError{code: exitCommandFail, msg: err.Error()}
	}
	w := io.Writer(os.Stderr)
	if ce.toStdout {
		w = os.Stdout
	}
	if ce.msg != "" {
		fmt.Fprintln(w, ce.msg)
	}
	return ce.code
}

func dispatch(ctx context.Context, args []string) error {
	args = dropVerbosity(args)
	if len(args) == 0 {
		fmt.Print(generalHelp)
		return &cliError{code: exitCommandFail}
	}
	name := args[0]
	switch name {
	case "-V", "--version":
		name = "version"
	case "-h", "--help", "help":
		fmt.Print(generalHelp)
		return nil
	}
	h, ok := handlers[name]
	switch {
	case ok:
	case unsupported[name]:
		return failed(name, "not supported by the bcmtest multipass stand-in")
	default:
		return &cliError{code: exitCommandLine, toStdout: true, msg: fmt.Sprintf("Error: Unknown Command '%s' (try \"multipass help\")", name)}
	}
	e, err := newEnv()
	if err != nil {
		return failed(name, "%v", err)
	}
	defer e.close()
	return h(ctx, e, args[1:])
}

const generalHelp = `Usage: multipass [options] <command>
bcmtest's multipass stand-in (test code): launches QEMU VMs.

Options:
  -h, --help     Display this help
  -v, --verbose  Increase logging verbosity.

Available commands:
  delete    Delete instances (only with --purge)
  exec      Run a command on an instance
  info      Display information about instances
  launch    Create and start an instance
  list      List all available instances
  start     Start instances
  stop      Stop running instances
  transfer  Transfer files between the host and instances
  version   Show version details
`

// callRecord is one line of the call log.
type callRecord struct {
	Time string   `json:"time"`
	PID  int      `json:"pid"`
	Argv []string `json:"argv"`
}

// logCall appends this invocation's argv to $BCMTEST_STANDIN_LOG, in one
// write, before anything else happens, so even a call that is killed is on
// record.
func logCall(args []string) {
	path := os.Getenv(envCallLog)
	if path == "" {
		return
	}
	if args == nil {
		args = []string{}
	}
	b, err := json.Marshal(callRecord{Time: time.Now().UTC().Format(time.RFC3339Nano), PID: os.Getpid(), Argv: args})
	if err != nil {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintf(os.Stderr, "multipass stand-in: call log: %v\n", err)
		return
	}
	f.Write(append(b, '\n'))
	f.Close()
}

// env is what every command needs: the harness's state directories, the
// stand-in's own directory and where progress goes.
type env struct {
	dirs      state.Dirs
	dir       string // <state>/standin
	trace     io.Writer
	close     func()
	p         *qemu.Provider // made on first use by qemu()
	intervals wait.Intervals // the harness's, from BCMTEST_INTERVALS
}

func newEnv() (*env, error) {
	dirs, err := state.Default()
	if err != nil {
		return nil, err
	}
	iv, err := wait.Load()
	if err != nil {
		return nil, err
	}
	e := &env{dirs: dirs, dir: filepath.Join(dirs.State, "standin"), trace: io.Discard, close: func() {}, intervals: iv}
	if err := state.MkdirPrivate(e.dir); err != nil {
		return nil, err
	}
	if p := os.Getenv(envTrace); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("opening the trace file: %w", err)
		}
		e.trace, e.close = f, func() { f.Close() }
	}
	return e, nil
}

// tracef writes one progress line to the trace file.
func (e *env) tracef(format string, args ...any) {
	fmt.Fprintf(e.trace, "%s standin[%d] %s\n", time.Now().Format("15:04:05"), os.Getpid(), fmt.Sprintf(format, args...))
}
