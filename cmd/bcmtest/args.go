package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Exit codes, documented in --help and README.
const (
	exitOK          = 0
	exitFailed      = 1 // tests or the operation failed
	exitUsage       = 2 // bad command line
	exitEnv         = 3 // the host lacks something (qemu, multipass, disk)
	exitInterrupted = 130
)

// usageError marks command-line mistakes (exit 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// envError marks problems with the host (exit 3).
type envError struct{ err error }

func (e envError) Error() string { return e.err.Error() }
func (e envError) Unwrap() error { return e.err }

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var u usageError
	var e envError
	var st exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &st):
		return int(st)
	case errors.As(err, &u):
		return exitUsage
	case errors.As(err, &e):
		return exitEnv
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	}
	return exitFailed
}

var errInterrupted = errors.New("interrupted")

// parseInterleaved parses flags that may come before, between or after
// positional arguments (`up CLUS1 3 --cpus 1`), stopping at "--". It
// returns the positionals and whatever followed "--".
func parseInterleaved(fs *flag.FlagSet, args []string) (pos, rest []string, err error) {
	fs.SetOutput(io.Discard)
	for i, a := range args {
		if a == "--" {
			rest = args[i+1:]
			args = args[:i]
			break
		}
	}
	for {
		// A negative number is a (bad) positional, not a flag: let the
		// command say "MEMBERS -1: must be 0 or more".
		if i := firstNegativeNumber(args); i >= 0 {
			p, _, err := parseInterleaved(fs, args[:i])
			if err != nil {
				return nil, nil, err
			}
			pos = append(append(pos, p...), args[i])
			args = args[i+1:]
			continue
		}
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, err
			}
			return nil, nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, rest, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func firstNegativeNumber(args []string) int {
	for i, a := range args {
		if len(a) > 1 && a[0] == '-' {
			if _, err := strconv.Atoi(a); err == nil {
				return i
			}
		}
	}
	return -1
}

// parseMembers reads the MEMBERS argument of `up`.
func parseMembers(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, usagef("MEMBERS %q: must be a whole number of joining members (0 = single node)", s)
	}
	if n < 0 {
		return 0, usagef("MEMBERS %d: must be 0 or more", n)
	}
	return n, nil
}

// parseSizes reads --sizes 0,1,3 for matrix.
func parseSizes(s string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, usagef("--sizes %q: %q is not a member count (0 or more)", s, f)
		}
		if seen[n] {
			return nil, usagef("--sizes %q: %d is listed twice", s, n)
		}
		seen[n] = true
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, usagef("--sizes %q: give at least one member count, e.g. 0,1,3", s)
	}
	return out, nil
}
