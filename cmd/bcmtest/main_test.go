package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// isolate gives a test its own state and cache directories and a provider
// choice that never reaches for multipass.
func isolate(t *testing.T) (stateDir, cacheDir string) {
	t.Helper()
	stateDir, cacheDir = t.TempDir(), t.TempDir()
	t.Setenv("BCMTEST_STATE_DIR", stateDir)
	t.Setenv("BCMTEST_CACHE_DIR", cacheDir)
	t.Setenv("BCMTEST_PROVIDER", "qemu")
	t.Setenv("BCMTEST_MULTIPASS", filepath.Join(t.TempDir(), "multipass"))
	return stateDir, cacheDir
}

// runCLI runs a command line as main would, returning the exit code and
// what it printed.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = execute(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// commandPaths lists every visible command below the root as the words a
// user types ("image list").
func commandPaths(t *testing.T) [][]string {
	root, _ := newRoot(&bytes.Buffer{}, &bytes.Buffer{})
	var paths [][]string
	walk(root, func(c *cobra.Command) {
		if c.Hidden || c == root {
			return
		}
		paths = append(paths, strings.Fields(c.CommandPath())[1:])
	})
	if len(paths) < 15 {
		t.Fatalf("the command tree has only %d commands: %v", len(paths), paths)
	}
	return paths
}

func TestEveryCommandAnswersHelpWithAnExample(t *testing.T) {
	isolate(t)
	refuseLaunches(t)
	paths := append(commandPaths(t), []string{})
	for _, p := range paths {
		for _, args := range [][]string{append(append([]string{}, p...), "--help"), append([]string{"help"}, p...)} {
			code, out, errOut := runCLI(t, args...)
			if code != exitOK {
				t.Errorf("bcmtest %s: exit %d, stderr:\n%s", strings.Join(args, " "), code, errOut)
			}
			if !strings.Contains(out, "Examples:\n  bcmtest") {
				t.Errorf("bcmtest %s printed no example:\n%s", strings.Join(args, " "), out)
			}
			if !strings.Contains(out, "Usage:") {
				t.Errorf("bcmtest %s printed no usage:\n%s", strings.Join(args, " "), out)
			}
		}
	}
	for _, group := range []string{"image", "cloudinit", "completion"} {
		if code, out, _ := runCLI(t, group, "help"); code != exitOK || !strings.Contains(out, "Examples:") {
			t.Errorf("bcmtest %s help: exit %d\n%s", group, code, out)
		}
	}
	if code, out, _ := runCLI(t, "help"); code != exitOK || !strings.Contains(out, "Exit codes") {
		t.Errorf("bcmtest help: exit %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, "-help"); code != exitOK || !strings.Contains(out, "Exit codes") {
		t.Errorf("bcmtest -help: exit %d\n%s", code, out)
	}
}

func TestUnknownFlagExitsTwoNamingTheFlag(t *testing.T) {
	isolate(t)
	refuseLaunches(t)
	for _, p := range append(commandPaths(t), []string{}) {
		args := append(append([]string{}, p...), "--no-such-flag")
		code, _, errOut := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(errOut, "--no-such-flag: unknown flag") {
			t.Errorf("bcmtest %s: exit %d, stderr:\n%s", strings.Join(args, " "), code, errOut)
		}
	}
	_, _, errOut := runCLI(t, "up", "CLUS1", "--memroy", "3G")
	if strings.Contains(errOut, "did you mean") {
		t.Errorf("suggested a flag for a typo that shares no prefix: %s", errOut)
	}
	_, _, errOut = runCLI(t, "up", "CLUS1", "--cpu", "3")
	if !strings.Contains(errOut, "did you mean --cpus?") {
		t.Errorf("no suggestion for --cpu: %s", errOut)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if code, out, _ := runCLI(t, args...); code != exitOK || out != "bcmtest "+version+"\n" {
			t.Errorf("bcmtest %v: exit %d, %q", args, code, out)
		}
	}
}

func TestParseMembersAndSizes(t *testing.T) {
	if n, err := parseMembers("3"); err != nil || n != 3 {
		t.Errorf("3: %d %v", n, err)
	}
	for _, bad := range []string{"-1", "three", "", "1.5", "100"} {
		if _, err := parseMembers(bad); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "MEMBERS") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	s, err := parseSizes("0, 1,3")
	if err != nil || len(s) != 3 || s[2] != 3 {
		t.Errorf("sizes = %v %v", s, err)
	}
	for _, bad := range []string{"", "a", "1,-2", ",", "1,1", "100"} {
		if _, err := parseSizes(bad); exitCode(err) != exitUsage {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseSizeFlag(t *testing.T) {
	for in, want := range map[string]int64{"2G": 2 << 30, "1536M": 1536 << 20, "7T": 7 << 40, "8388607T": 8388607 << 40} {
		if got, err := parseSizeFlag("--memory", in); err != nil || got != want {
			t.Errorf("%s: %d, %v", in, got, err)
		}
	}
	for in, rule := range map[string]string{"": "must not be empty", " ": "must not be empty", "8388608T": "too large",
		"99999999999999999999": "too large", "1e30": "unknown unit", "2X": "unknown unit", "0": "greater than zero"} {
		_, err := parseSizeFlag("--memory", in)
		if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--memory") || !strings.Contains(err.Error(), rule) {
			t.Errorf("%q: %v, want %q", in, err, rule)
		}
	}
}

func TestExitCodes(t *testing.T) {
	for err, want := range map[error]int{
		nil: 0, usagef("x"): 2, envError{errors.New("no qemu")}: 3, errors.New("x"): 1,
		exitStatus(7): 7, errInterrupted: 130, helpHint{err: usagef("x"), path: "bcmtest up"}: 2,
	} {
		if got := exitCode(err); got != want {
			t.Errorf("exitCode(%v) = %d, want %d", err, got, want)
		}
	}
}
