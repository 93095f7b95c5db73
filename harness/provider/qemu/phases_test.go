package qemu

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
)

// phasesOf runs a console sample through the parser and the reporter, as
// Launch does after qemu started.
func phasesOf(t *testing.T, console string) []provider.BootPhase {
	t.Helper()
	var got []provider.BootPhase
	r := &phaseReporter{on: func(p provider.BootPhase) { got = append(got, p) }}
	r.report(provider.BootQEMUStarted)
	for _, l := range strings.Split(console, "\n") {
		if ph, ok := consolePhase(l); ok {
			r.report(ph)
		}
	}
	return got
}

func readSample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConsolePhasesColdBoot(t *testing.T) {
	got := phasesOf(t, readSample(t, "console-cold.log"))
	want := []provider.BootPhase{provider.BootQEMUStarted, provider.BootKernel, provider.BootSystemd, provider.BootSeedPresent,
		provider.BootInitLocal, provider.BootInit, provider.BootModulesConfig, provider.BootModulesFinal, provider.BootDone}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("cold boot phases:\n got %v\nwant %v", got, want)
	}
}

func TestConsolePhasesRestored(t *testing.T) {
	// No kernel on a restore; systemd re-executing after the seed is not a
	// step back.
	got := phasesOf(t, readSample(t, "console-restored.log"))
	want := []provider.BootPhase{provider.BootQEMUStarted, provider.BootSeedRestored,
		provider.BootInitLocal, provider.BootInit, provider.BootModulesConfig, provider.BootModulesFinal, provider.BootDone}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("restored phases:\n got %v\nwant %v", got, want)
	}
}

func TestConsolePhaseLines(t *testing.T) {
	for line, want := range map[string]provider.BootPhase{
		"[    0.000000] Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)": provider.BootKernel,
		"Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)\r":              provider.BootKernel,
		"\x1b[0;32m  OK  \x1b[0m": "",
		"[\x1b[0;32m  OK  \x1b[0m] Finished \x1b[0;1;39msystemd-sysctl.service\x1b[0m.":      provider.BootSystemd,
		"         Starting \x1b[0;1;39msystemd-journald.service\x1b[0m - Journal Service...": provider.BootSystemd,
		"[    2.340020] systemd[1]: systemd 252.33-1~deb12u1 running in system mode (+PAM)":  provider.BootSystemd,
		"Welcome to \x1b[1mDebian GNU/Linux 12 (bookworm)\x1b[0m!":                           provider.BootSystemd,
		"bcmtest-seed: seed present at boot (/dev/sr0)":                                      provider.BootSeedPresent,
		"[    3.12] bcmtest-seed-gate[231]: bcmtest-seed: seed present at boot (/dev/sr0)":   provider.BootSeedPresent,
		"bcmtest-seed: seed found after restore (/dev/sr0); identity renewed":                provider.BootSeedRestored,
		"bcmtest-seed: waiting for the seed":                                                 "",
		"Cloud-init v. 22.4.2 running 'init-local' at Tue, 03 Feb 2026 10:11:12 +0000.":      provider.BootInitLocal,
		"cloud-init[301]: Cloud-init v. 22.4.2 running 'init' at Tue, 03 Feb 2026":           provider.BootInit,
		"Cloud-init v. 22.4.2 running 'modules:config' at Tue, 03 Feb 2026 10:11:17 +0000":   provider.BootModulesConfig,
		"Cloud-init v. 22.4.2 running 'modules:final' at Tue, 03 Feb 2026 10:11:18 +0000":    provider.BootModulesFinal,
		"Cloud-init v. 22.4.2 finished at Tue, 03 Feb 2026 10:12:19 +0000. Datasource":       provider.BootDone,
		"Cloud-init v. 22.4.2 running 'single' at Tue, 03 Feb 2026":                          "",
		"[   41.227801] cloud-init[433]: Starting lxd init":                                  "",
		"[    2.108431] EXT4-fs (vda): mounted filesystem with ordered data mode.":           "",
		"Loading, please wait...": "",
		"":                        "",
	} {
		got, ok := consolePhase(line)
		if ok != (want != "") || got != want {
			t.Errorf("consolePhase(%q) = %q, %v; want %q", line, got, ok, want)
		}
	}
}

func TestPhaseReporterOnlyMovesForward(t *testing.T) {
	var got []provider.BootPhase
	r := &phaseReporter{on: func(p provider.BootPhase) { got = append(got, p) }}
	for _, p := range []provider.BootPhase{provider.BootQEMUStarted, provider.BootInit, provider.BootInit, provider.BootModulesConfig,
		provider.BootSSH, provider.BootDone, provider.BootDone} {
		r.report(p)
	}
	want := []provider.BootPhase{provider.BootQEMUStarted, provider.BootInit, provider.BootModulesConfig, provider.BootDone}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	var none *phaseReporter
	none.report(provider.BootDone) // no hook: nothing happens
}

func TestConsoleTailLinesAcrossPollsAndTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serial.log")
	var lines []string
	tl := &consoleTail{path: path, line: func(l string) { lines = append(lines, l) }}
	tl.poll() // no file yet
	appendTo := func(s string) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	appendTo("one\ntw")
	tl.poll()
	appendTo("o\nthree")
	tl.poll()
	tl.poll()
	if want := []string{"one", "two"}; !reflect.DeepEqual(lines, want) {
		t.Fatalf("lines %q, want %q", lines, want)
	}
	// qemu started again truncates the file: read it from its start.
	os.WriteFile(path, []byte("new\n"), 0o600)
	tl.poll()
	if want := []string{"one", "two", "new"}; !reflect.DeepEqual(lines, want) {
		t.Fatalf("after truncation lines %q, want %q", lines, want)
	}
}

func TestWatchConsoleReportsAndStops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serial.log")
	if err := os.WriteFile(path, []byte(readSample(t, "console-cold.log")), 0o600); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []provider.BootPhase
	done := make(chan struct{})
	r := &phaseReporter{on: func(p provider.BootPhase) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, p)
		if p == provider.BootDone {
			close(done)
		}
	}}
	stop := watchConsole(context.Background(), path, time.Millisecond, r)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the watch did not reach cloud-init done")
	}
	stop()
	// After stop nothing more is reported, even when the console grows.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	f.WriteString("Cloud-init v. 22.4.2 running 'init' at now\n")
	f.Close()
	mu.Lock()
	defer mu.Unlock()
	want := []provider.BootPhase{provider.BootKernel, provider.BootSystemd, provider.BootSeedPresent,
		provider.BootInitLocal, provider.BootInit, provider.BootModulesConfig, provider.BootModulesFinal, provider.BootDone}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reported %v, want %v", got, want)
	}
}
