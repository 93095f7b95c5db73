package multipass

import (
	"errors"
	"fmt"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

func TestCLIErrorKinds(t *testing.T) {
	all := []error{ErrCommandLine, ErrCommandFailed, ErrAlreadyExists, provider.ErrNotFound, ErrDaemonUnreachable, ErrTimeout, ErrExecFailed,
		provider.ErrAlreadyExists, provider.ErrUnreachable}
	for _, tc := range []struct {
		code   int
		stderr string
		kind   string
		is     []error
		msg    string
	}{
		{1, "Unknown option 'mem'.\n", KindCommandLine, []error{ErrCommandLine}, "Unknown option 'mem'. (exit 1)"},
		{2, "launch failed: instance \"CLUS1-02\" already exists\n", KindAlreadyExists, []error{ErrCommandFailed, ErrAlreadyExists, provider.ErrAlreadyExists}, `instance "CLUS1-02" already exists (exit 2)`},
		{2, "info failed: The following errors occurred:\ninstance \"CLUS1-02\" does not exist\n", KindNotFound, []error{ErrCommandFailed, provider.ErrNotFound}, `The following errors occurred:; instance "CLUS1-02" does not exist (exit 2)`},
		{2, "launch failed: Remote \"\" is unknown or unreachable.\n", KindCommandFailed, []error{ErrCommandFailed}, `Remote "" is unknown or unreachable. (exit 2)`},
		{3, "list failed: cannot connect to the multipass socket\n", KindDaemon, []error{ErrDaemonUnreachable, provider.ErrUnreachable}, "cannot connect to the multipass socket (exit 3)"},
		{2, "start failed: cannot connect to the multipass socket\n", KindDaemon, []error{ErrDaemonUnreachable, provider.ErrUnreachable}, "cannot connect to the multipass socket (exit 2)"},
		{5, "Timed out waiting for instance launch.\n", KindTimeout, []error{ErrTimeout}, "Timed out waiting for instance launch. (exit 5)"},
		{255, "exec failed: [ssh client] channel creation failed\n", KindExecFailed, []error{ErrExecFailed, provider.ErrUnreachable}, "[ssh client] channel creation failed (exit 255)"},
		{7, "", KindUnknown, nil, "multipass printed no error message (exit 7)"},
	} {
		e := newCLIError([]string{"x"}, tc.code, tc.stderr)
		if e.Kind != tc.kind {
			t.Errorf("exit %d %q: kind %q, want %q", tc.code, tc.stderr, e.Kind, tc.kind)
		}
		if e.Error() != tc.msg {
			t.Errorf("exit %d %q: message %q, want %q", tc.code, tc.stderr, e.Error(), tc.msg)
		}
		wrapped := fmt.Errorf("doing something to VM: %w", e)
		for _, target := range all {
			want := false
			for _, w := range tc.is {
				want = want || w == target
			}
			if got := errors.Is(wrapped, target); got != want {
				t.Errorf("exit %d %q: errors.Is(%v) = %v, want %v", tc.code, tc.stderr, target, got, want)
			}
		}
		var ce *CLIError
		if !errors.As(wrapped, &ce) || ce.ExitCode != tc.code || ce.Stderr != tc.stderr || ce.Args[0] != "x" {
			t.Errorf("exit %d: errors.As gave %+v", tc.code, ce)
		}
	}
}

func TestExecFailedByMultipass(t *testing.T) {
	for _, tc := range []struct {
		code   int
		stderr string
		want   bool
	}{
		{2, "exec failed: instance \"A\" does not exist\n", true},
		{3, "exec failed: cannot connect to the multipass socket\n", true},
		{255, "exec failed: [ssh client] channel creation failed\n", true},
		{2, "start failed: instance \"A\" is deleted\n", true},
		{1, "remote noise\nexec failed: something\n", true},
		{3, "grep: /x: No such file or directory\n", false},
		{2, "ls: cannot access 'x': No such file or directory\n", false},
		{1, "sudo: a password is required\n", false},
		{255, "", false},
		{42, "exec failed: nope\n", false}, // not a code multipass uses
		{0, "exec failed: nope\n", false},
	} {
		if got := execFailedByMultipass(tc.code, tc.stderr); got != tc.want {
			t.Errorf("execFailedByMultipass(%d, %q) = %v, want %v", tc.code, tc.stderr, got, tc.want)
		}
	}
}

func TestCLIMessageKeepsTail(t *testing.T) {
	in := "noise\nlaunch failed: first\n"
	for i := 0; i < 20; i++ {
		in += fmt.Sprintf("line %d\n", i)
	}
	got := cliMessage(in)
	want := "line 10; line 11; line 12; line 13; line 14; line 15; line 16; line 17; line 18; line 19"
	if got != want {
		t.Errorf("cliMessage = %q, want %q", got, want)
	}
}
