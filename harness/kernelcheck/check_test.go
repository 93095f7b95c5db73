package kernelcheck

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
)

// withConsole is the fake provider with serial consoles, as qemu has.
type withConsole struct {
	*fakeprovider.Provider
	consoles map[string]string
}

func (p withConsole) Console(_ context.Context, name string) ([]byte, error) {
	c, ok := p.consoles[name]
	if !ok {
		return nil, fmt.Errorf("reading serial console of %s: no such file", name)
	}
	return []byte(c), nil
}

func TestCheckReadsConsoleAndKernelLogOfEveryNode(t *testing.T) {
	fake := fakeprovider.New()
	for _, n := range []string{"bcm-00", "bcm-01", "bcm-02"} {
		fake.Add(provider.Info{Name: n})
	}
	var (
		mu         sync.Mutex // nodes are read at once
		dmesgCalls []string
	)
	journal := read(t, "journal-kernel.log")
	fake.ExecFunc = func(name string, argv []string) provider.ExecResult {
		switch argv[0] {
		case "journalctl":
			if name == "bcm-02" {
				return provider.ExecResult{ExitCode: 1, Stderr: []byte("No journal files were found.")}
			}
			return provider.ExecResult{Stdout: []byte(journal)}
		case "dmesg":
			mu.Lock()
			defer mu.Unlock()
			dmesgCalls = append(dmesgCalls, name)
			return provider.ExecResult{Stdout: []byte("[  700.000001] Kernel panic - not syncing: Fatal exception\n")}
		}
		return provider.ExecResult{ExitCode: 127}
	}
	p := withConsole{fake, map[string]string{"bcm-00": read(t, "console-healthy.log"), "bcm-01": read(t, "console-trouble.log")}}
	res := Check(context.Background(), Input{Provider: p, Nodes: []string{"bcm-00", "bcm-01", "bcm-02"}})

	count := map[string]int{}
	for _, f := range res.Findings {
		count[f.Node]++
	}
	// bcm-00: healthy console, but its journal (the recorded one) has
	// three; bcm-01: eleven on the console, two of them also in the
	// journal, plus the injected one; bcm-02: no console, dmesg's panic.
	if count["bcm-00"] != 3 || count["bcm-01"] != 12 || count["bcm-02"] != 1 {
		t.Errorf("findings per node %v, want bcm-00:3 bcm-01:12 bcm-02:1", count)
	}
	if len(dmesgCalls) != 1 || dmesgCalls[0] != "bcm-02" {
		t.Errorf("dmesg read on %v, want only where journalctl failed (bcm-02)", dmesgCalls)
	}
	if len(res.Unread) != 1 || !strings.Contains(res.Unread[0], "bcm-02: serial console") {
		t.Errorf("unread %v, want bcm-02's console", res.Unread)
	}
	var kerr *Error
	if !errors.As(res.Err(), &kerr) || len(kerr.Findings) != len(res.Findings) {
		t.Fatalf("Err() = %v, want an *Error with every finding", res.Err())
	}
	if msg := kerr.Error(); !strings.Contains(msg, "16 finding(s) on 3 node(s)") || !strings.Contains(msg, "bcm-02: panic 700.000 s after boot (kernel log): [  700.000001] Kernel panic") {
		t.Errorf("error message:\n%s", msg)
	}
}

func TestCheckHealthyAndUnreachable(t *testing.T) {
	fake := fakeprovider.New()
	fake.Add(provider.Info{Name: "ok-00"})
	fake.ExecFunc = func(name string, argv []string) provider.ExecResult {
		return provider.ExecResult{Stdout: []byte("[    0.000000] ok-00 kernel: Linux version 6.1.0-18-amd64\n")}
	}
	p := withConsole{fake, map[string]string{"ok-00": read(t, "console-healthy.log"), "gone-01": ""}}
	res := Check(context.Background(), Input{Provider: p, Nodes: []string{"ok-00", "gone-01"}})
	if res.Err() != nil {
		t.Fatalf("healthy: %v", res.Err())
	}
	// gone-01 has a console file but no VM: its kernel log is unread, which
	// is said, not a finding.
	if len(res.Unread) != 1 || !strings.HasPrefix(res.Unread[0], "gone-01: kernel log: ") {
		t.Errorf("unread %v", res.Unread)
	}
	if s := res.Summary(); !strings.Contains(s, "no findings on 2 node(s)") || !strings.Contains(s, "not read: gone-01") {
		t.Errorf("summary %q", s)
	}
}
