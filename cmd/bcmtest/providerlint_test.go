package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture is a file of the project's fixtures directory, as a user passes it.
func fixture(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("..", "..", "fixtures", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("fixture %s: %v", name, err)
	}
	return p
}

// assertEmptyDir fails when anything was created in dir.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) > 0 {
		t.Errorf("%s gained %v", dir, names)
	}
}

func TestUpRefusesAFileTheProviderCannotRunUnlessForced(t *testing.T) {
	stateDir, _ := isolate(t)
	launched := refuseLaunches(t)
	orig := fixture(t, "bcm-original.yaml") // the original scripts' file: snap install lxd

	code, _, errOut := runCLI(t, "up", "--cloud-init", orig, "CLUS9", "0")
	if code != exitUsage {
		t.Errorf("exit %d, want %d: %s", code, exitUsage, errOut)
	}
	for _, w := range []string{"up: --cloud-init " + orig, "for the qemu provider's VMs", "snap", "--force"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("the refusal lacks %q:\n%s", w, errOut)
		}
	}
	assertEmptyDir(t, stateDir)

	// With --force the file gets past the lint; a host without qemu then
	// stops the run before anything is made.
	t.Run("forced, qemu", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		code, _, errOut := runCLI(t, "up", "--cloud-init", orig, "CLUS9", "0", "--force")
		if code != exitEnv || !strings.Contains(errOut, "booting anyway (--force)") || !strings.Contains(errOut, "qemu-system-x86") {
			t.Errorf("exit %d, want %d after the lint: %s", code, exitEnv, errOut)
		}
		assertEmptyDir(t, stateDir)
	})
	t.Run("forced, multipass missing", func(t *testing.T) {
		t.Setenv("BCMTEST_PROVIDER", "multipass")
		t.Setenv("BCMTEST_MULTIPASS", "/nonexistent")
		code, _, errOut := runCLI(t, "up", "--cloud-init", orig, "CLUS9", "0", "--force")
		if code != exitEnv || !strings.Contains(errOut, "BCMTEST_MULTIPASS=/nonexistent") {
			t.Errorf("exit %d, want %d after the lint: %s", code, exitEnv, errOut)
		}
		assertEmptyDir(t, stateDir)
	})
	if l := launched(); len(l) > 0 {
		t.Errorf("launched %v", l)
	}
}

func TestLintWarnsForTheChosenProvider(t *testing.T) {
	isolate(t)
	orig := fixture(t, "bcm-original.yaml")
	code, out, errOut := runCLI(t, "cloudinit", "lint", orig)
	if code != exitOK {
		t.Fatalf("lint found provider problems fatal: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "warning: "+orig+":") || !strings.Contains(out, "snap") || !strings.Contains(out, "(on the qemu provider)") {
		t.Errorf("no snap warning for qemu:\n%s", out)
	}
	code, out, _ = runCLI(t, "cloudinit", "lint", orig, "--provider", "multipass")
	if code != exitOK || strings.Contains(out, "(on the qemu provider)") {
		t.Errorf("--provider multipass: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "cloudinit", "lint", fixture(t, "bcm-debian.yaml"))
	if code != exitOK || strings.Contains(out, "provider)") {
		t.Errorf("the Debian fixture drew provider warnings for qemu: exit %d\n%s", code, out)
	}
}

func TestCheckRefusesAFileTheProviderCannotRunUnlessForced(t *testing.T) {
	stateDir, _ := isolate(t)
	launched := refuseLaunches(t)
	orig := fixture(t, "bcm-original.yaml")
	code, _, errOut := runCLI(t, "cloudinit", "check", orig)
	if code != exitUsage || !strings.Contains(errOut, "cloudinit check: "+orig) || !strings.Contains(errOut, "snap") {
		t.Errorf("exit %d, want %d naming snap: %s", code, exitUsage, errOut)
	}
	assertEmptyDir(t, stateDir)
	t.Setenv("PATH", t.TempDir()) // stops the forced check at the provider
	code, _, errOut = runCLI(t, "cloudinit", "check", "--force", orig)
	if code != exitEnv || !strings.Contains(errOut, "booting anyway (--force)") {
		t.Errorf("exit %d, want %d after the lint: %s", code, exitEnv, errOut)
	}
	if l := launched(); len(l) > 0 {
		t.Errorf("launched %v", l)
	}
}
