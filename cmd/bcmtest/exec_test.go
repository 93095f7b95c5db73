package main

import (
	"context"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
)

// fakeOnly makes every provider the command line opens the fake fp.
func fakeOnly(t *testing.T, fp provider.Provider) {
	t.Helper()
	orig := newProvider
	newProvider = func(context.Context, providers.Options) (provider.Provider, error) { return fp, nil }
	t.Cleanup(func() { newProvider = orig })
}

// TestExecExitCodesAreTheCommandsOwn: when the command ran, bcmtest exits
// with its code, whatever it is (2, 3 and 130 included), and says nothing
// of its own; bcmtest's codes, with a "bcmtest:" line, mean the command
// did not run. --help says so.
func TestExecExitCodesAreTheCommandsOwn(t *testing.T) {
	isolate(t)
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "CLUS1-01", Group: "CLUS1"})
	fakeOnly(t, fp)
	for _, code := range []int{1, 2, 3, 42, 130, 255} {
		fp.ExecFunc = func(name string, argv []string) provider.ExecResult {
			return provider.ExecResult{ExitCode: code, Stdout: []byte("out\n"), Stderr: []byte("remote stderr\n")}
		}
		got, out, errOut := runCLI(t, "exec", "CLUS1-01", "--", "sh", "-c", "exit 2")
		if got != code {
			t.Errorf("remote exit %d: bcmtest exited %d", code, got)
		}
		if out != "out\n" || errOut != "remote stderr\n" {
			t.Errorf("remote exit %d: bcmtest added to the command's output: stdout %q, stderr %q", code, out, errOut)
		}
	}
	fp.ExecFunc = nil
	if got, _, errOut := runCLI(t, "exec", "CLUS1-01", "--", "true"); got != exitOK || errOut != "" {
		t.Errorf("remote exit 0: bcmtest exited %d: %q", got, errOut)
	}
	// The command did not run: bcmtest's own code and its own line.
	got, _, errOut := runCLI(t, "exec", "CLUS1-09", "--", "true")
	if got != exitUsage || !strings.HasPrefix(errOut, "bcmtest: exec: node \"CLUS1-09\" is not in any cluster") {
		t.Errorf("unknown node: exit %d, stderr %q", got, errOut)
	}
	_, help, _ := runCLI(t, "exec", "--help")
	for _, want := range []string{"exits with the command's own exit code", "only when the command did not run", `line starting "bcmtest:"`} {
		if !strings.Contains(help, want) {
			t.Errorf("exec --help does not say %q:\n%s", want, help)
		}
	}
	_, rootHelp, _ := runCLI(t, "--help")
	if !strings.Contains(rootHelp, "exec exits with the command's own exit code") {
		t.Errorf("bcmtest --help does not give exec's exception to the exit codes:\n%s", rootHelp)
	}
}
