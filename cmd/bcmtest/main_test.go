package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
)

func TestParseInterleavedTakesFlagsAnywhereAndStopsAtDashDash(t *testing.T) {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	cpus := fs.Int("cpus", 2, "")
	keep := fs.Bool("keep-on-failure", false, "")
	pos, rest, err := parseInterleaved(fs, []string{"CLUS1", "--cpus", "1", "3", "--keep-on-failure", "--", "zpool", "--x"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(pos, " ") != "CLUS1 3" || *cpus != 1 || !*keep || strings.Join(rest, " ") != "zpool --x" {
		t.Errorf("pos=%v rest=%v cpus=%d keep=%v", pos, rest, *cpus, *keep)
	}
	_, _, err = parseInterleaved(flag.NewFlagSet("up", flag.ContinueOnError), []string{"--nope"})
	if exitCode(err) != exitUsage {
		t.Errorf("unknown flag: %v (exit %d)", err, exitCode(err))
	}
}

func TestParseMembersAndSizes(t *testing.T) {
	if n, err := parseMembers("3"); err != nil || n != 3 {
		t.Errorf("3: %d %v", n, err)
	}
	for _, bad := range []string{"-1", "three", "", "1.5"} {
		if _, err := parseMembers(bad); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "MEMBERS") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	s, err := parseSizes("0, 1,3")
	if err != nil || len(s) != 3 || s[2] != 3 {
		t.Errorf("sizes = %v %v", s, err)
	}
	for _, bad := range []string{"", "a", "1,-2", ",", "1,1"} {
		if _, err := parseSizes(bad); exitCode(err) != exitUsage {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestRunRejectsBadCommandLinesBeforeTouchingTheHost(t *testing.T) {
	cases := map[string][]string{
		"no command":            nil,
		"unknown command":       {"frobnicate"},
		"up without name":       {"up"},
		"up bad name":           {"up", "CLUS_1"},
		"up node as name":       {"up", "CLUS1-00"},
		"up negative members":   {"up", "CLUS1", "-1"},
		"up non-numeric":        {"up", "CLUS1", "x"},
		"up too many args":      {"up", "A", "1", "2"},
		"up missing cloud-init": {"up", "CLUS1", "--cloud-init", "/nonexistent.yml"},
		"up unknown provider":   {"up", "CLUS1", "--provider", "vbox"},
		"down neither":          {"down"},
		"down both":             {"down", "CLUS1", "--stale"},
		"exec no command":       {"exec", "CLUS1-00"},
		"logs bad name":         {"logs", "9x"},
		"image nothing":         {"image"},
		"cloudinit unknown":     {"cloudinit", "frob"},
	}
	for name, args := range cases {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, &out, &errb)
		if code := exitCode(err); code != exitUsage {
			t.Errorf("%s: exit %d, err %v", name, code, err)
		}
	}
}

func TestHelpAnswersEveryCommandWithExamples(t *testing.T) {
	for _, cmd := range []string{"up", "down", "list", "exec", "ssh", "logs"} {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{cmd, "--help"}, &out, &errb)
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s --help: %v", cmd, err)
		}
		if !strings.Contains(out.String(), "bcmtest "+cmd) || !strings.Contains(out.String(), "Flags:") {
			t.Errorf("%s --help printed:\n%s", cmd, out.String())
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, &out, &out); err != nil || !strings.Contains(out.String(), "Exit codes") {
		t.Errorf("help: %v\n%s", err, out.String())
	}
}

func TestExitCodes(t *testing.T) {
	for err, want := range map[error]int{
		nil: 0, usagef("x"): 2, envError{errors.New("no qemu")}: 3, errors.New("x"): 1,
		exitStatus(7): 7, errInterrupted: 130,
	} {
		if got := exitCode(err); got != want {
			t.Errorf("exitCode(%v) = %d, want %d", err, got, want)
		}
	}
}
