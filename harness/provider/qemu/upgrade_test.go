package qemu

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseUpgradeDone(t *testing.T) {
	r := parseUpgradeDone("bcmtest-upgrade: done: upgraded 0 packages: ")
	if r.Packages != 0 || len(r.Names) != 0 {
		t.Errorf("nothing upgraded: %+v", r)
	}
	r = parseUpgradeDone("bcmtest-upgrade: done: upgraded 3 packages: a 1 -> 2, b 3 -> 4, c (new) 5")
	if r.Packages != 3 || len(r.Names) != 3 || r.Names[2] != "c (new) 5" {
		t.Errorf("three: %+v", r)
	}
	lines := upgradeLines("[   12.1] x\nbcmtest-upgrade: apt-get update\r\n[  13.0] systemd[1]: bcmtest-upgrade: done: upgraded 1 packages: a 1 -> 2\n")
	if len(lines) != 2 || lines[1] != "bcmtest-upgrade: done: upgraded 1 packages: a 1 -> 2" || lines[0] != "bcmtest-upgrade: apt-get update" {
		t.Errorf("console lines: %q", lines)
	}
}

// The upgrade script is POSIX sh and passes shellcheck (when installed).
func TestUpgradeScriptIsCleanSh(t *testing.T) {
	script := []byte(fmt.Sprintf(upgradeScript, AptProxyAddr))
	dir := t.TempDir()
	f := filepath.Join(dir, "upgrade.sh")
	if err := os.WriteFile(f, script, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-n", f).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v: %s", err, out)
	}
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Skip("shellcheck not installed")
	}
	if out, err := exec.Command("shellcheck", "-s", "sh", "-e", "SC2016,SC2086", f).CombinedOutput(); err != nil {
		t.Errorf("shellcheck: %v\n%s", err, out)
	}
}

// A simulated update names its snapshot, whatever the order of its
// packages, apart from the stale variant and from no simulation; and a
// name apt would not take is refused before any VM.
func TestSimulatedUpdateKeysAndRefusals(t *testing.T) {
	a := SimulatedUpdate{Packages: []string{"tor", "curl"}}
	b := SimulatedUpdate{Packages: []string{"curl", "tor"}}
	stale := SimulatedUpdate{Packages: []string{"tor", "curl"}, Stale: true}
	if a.key() != b.key() || a.key() == stale.key() || a.key() == "" || (SimulatedUpdate{}).key() != "" {
		t.Errorf("keys: %q %q %q %q", a.key(), b.key(), stale.key(), SimulatedUpdate{}.key())
	}
	sh := testShape()
	plain := sh.Key()
	sh.Simulated = a.key()
	if !strings.HasPrefix(sh.Key(), plain+"-sim") || !sh.upgrades() {
		t.Errorf("shape key %s (plain %s), upgrades %v", sh.Key(), plain, sh.upgrades())
	}
	for _, bad := range []string{"Tor", "tor;reboot", "-x", "a b", ""} {
		err := SimulatedUpdate{Packages: []string{bad}}.check()
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("package %q", bad)) || !strings.Contains(err.Error(), "must be a Debian package name") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if _, err := New(Config{Simulate: SimulatedUpdate{Packages: []string{"tor;reboot"}}}); err == nil {
		t.Error("New took a simulated update of \"tor;reboot\"")
	}
}
