package image

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// gateScript is the seed gate as the image installs it.
func gateScript(t *testing.T) string {
	customizeScript := customizeScript(Bookworm)
	t.Helper()
	_, rest, ok := strings.Cut(customizeScript, "<<'GATE'\n")
	body, _, ok2 := strings.Cut(rest, "\nGATE\n")
	if !ok || !ok2 {
		t.Fatal("no seed gate in the customize script")
	}
	return body + "\n"
}

// gateRun is one run of the seed gate on this host, as a restored node
// runs it: a template that finds no seed, then the seed arriving.
type gateRun struct {
	out       string // its stdout: the lines it also writes to the console
	console   string // what it wrote to /dev/ttyS0
	exitCode  int
	machineID string
	calls     map[string]string // stub name -> its log
}

// runGate runs the seed gate in a mount and PID namespace of its own,
// with /dev, /run and /proc replaced by tmpfs, /etc/machine-id by a test
// file, and a PATH of stubs only: nothing it does can reach this host's
// devices, clock, machine-id, services or power. fail names the stubs that
// fail ("mount", "ip").
func runGate(t *testing.T, fail ...string) gateRun {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running the seed gate in a namespace of its own needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	seed := filepath.Join(dir, "seed")
	for _, d := range []string{bin, seed} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, body string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(seed, "bcmtest-identity"), "MAC0=52:54:00:aa:bb:c0\nMAC1=52:54:01:aa:bb:c0\nCLOCK=1700000000\n", 0o644)
	write(filepath.Join(seed, "bcmtest-entropy"), "0123456789abcdef", 0o644)
	write(filepath.Join(dir, "machine-id"), "template0000000000000000000000000\n", 0o644)
	failing := map[string]bool{}
	for _, f := range fail {
		failing[f] = true
	}
	logTo := func(name string) string { return `echo "$*" >> "$STUBS/` + name + `.log"` + "\n" }
	stubs := map[string]string{
		// No seed at the first look (a template), the seed from then on.
		"blkid":         `n=$(cat "$STUBS/blkid.n" 2>/dev/null || echo 0); echo $((n+1)) > "$STUBS/blkid.n"; [ "$n" -ge 1 ] && echo cidata; exit 0`,
		"mount":         logTo("mount") + `for f in "$STUBS"/seed/*; do cat "$f" > "$4/${f##*/}"; done`,
		"umount":        logTo("umount"),
		"ip":            logTo("ip"),
		"date":          `case "$*" in *-s*) ` + logTo("date") + ` ;; *) exec /bin/date "$@" ;; esac`,
		"systemctl":     logTo("systemctl"),
		"systemd-id128": `echo 0123456789abcdef0123456789abcdef`,
		"mountpoint":    `exit 1`,
		"find":          `exit 0`, "apt-cache": `exit 0`, "sync": `exit 0`,
	}
	if failing["mount"] {
		stubs["mount"] = logTo("mount") + `echo "mount: $4: wrong fs type, bad option, bad superblock on $3, missing codepage or helper program, or other error." >&2; exit 32`
	}
	if failing["ip"] {
		stubs["ip"] = logTo("ip") + `echo "RTNETLINK answers: Device or resource busy" >&2; exit 2`
	}
	for name, body := range stubs {
		write(filepath.Join(bin, name), "#!/bin/sh\n"+body+"\n", 0o755)
	}
	for _, tool := range []string{"sh", "cat", "mkdir", "rm", "sleep", "tr", "head"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "gate"), gateScript(t), 0o755)
	wrap := `set -eu
t=$1
mount -t tmpfs bcmtest-dev /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/urandom c 1 9
mknod -m 660 /dev/sr0 b 11 0
: > /dev/ttyS0
mount -t tmpfs bcmtest-run /run
mount -t tmpfs bcmtest-proc /proc
if [ -e /etc/machine-id ]; then mount --bind "$t/machine-id" /etc/machine-id; else mount -t tmpfs bcmtest-etc /etc; fi
rc=0
env -i PATH="$t/bin" STUBS="$t" /bin/sh "$t/gate" || rc=$?
cat /dev/ttyS0 > "$t/console"
[ -e /etc/machine-id ] && cat /etc/machine-id > "$t/machine-id.after"
exit $rc
`
	write(filepath.Join(dir, "wrap"), wrap, 0o755)
	cmd := exec.Command("unshare", "--mount", "--pid", "--fork", "--propagation", "private", "/bin/sh", filepath.Join(dir, "wrap"), dir)
	out, err := cmd.Output()
	run := gateRun{out: string(out), calls: map[string]string{}}
	if ee, ok := err.(*exec.ExitError); ok {
		run.exitCode = ee.ExitCode()
		if strings.Contains(string(ee.Stderr), "unshare: ") {
			t.Skipf("no namespaces here: %s", ee.Stderr)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "console"))
	run.console = string(b)
	b, _ = os.ReadFile(filepath.Join(dir, "machine-id.after"))
	run.machineID = strings.TrimSpace(string(b))
	for name := range stubs {
		b, _ := os.ReadFile(filepath.Join(dir, name+".log"))
		run.calls[name] = string(b)
	}
	return run
}

func TestSeedGateRenewsTheIdentityWhenEveryStepWorks(t *testing.T) {
	r := runGate(t)
	if r.exitCode != 0 || !strings.Contains(r.console, "bcmtest-seed: seed found after restore (/dev/sr0); identity renewed") {
		t.Fatalf("exit %d; console:\n%s\nstdout:\n%s", r.exitCode, r.console, r.out)
	}
	if !strings.Contains(r.calls["ip"], "link set dev eth0 address 52:54:00:aa:bb:c0") || !strings.Contains(r.calls["ip"], "link set dev eth1 address 52:54:01:aa:bb:c0") {
		t.Errorf("MACs not taken over: ip calls %q", r.calls["ip"])
	}
	if r.machineID != "0123456789abcdef0123456789abcdef" {
		t.Errorf("machine-id after the gate: %q", r.machineID)
	}
	if !strings.Contains(r.calls["systemctl"], "restart systemd-journald.service") {
		t.Errorf("journald not restarted: %q", r.calls["systemctl"])
	}
}

// TestSeedGateStopsLoudlyWhenTheSeedDoesNotMount: a restored node whose
// seed does not mount keeps the template's MACs, clock and machine-id; the
// gate must say so on the console, never "identity renewed", and stop the
// node before cloud-init runs.
func TestSeedGateStopsLoudlyWhenTheSeedDoesNotMount(t *testing.T) {
	r := runGate(t, "mount")
	if strings.Contains(r.console, "identity renewed") {
		t.Errorf("the gate says the identity was renewed although the seed did not mount:\n%s", r.console)
	}
	if !strings.Contains(r.console, "bcmtest-seed: FAILED: mounting the seed /dev/sr0") || !strings.Contains(r.console, "wrong fs type") {
		t.Errorf("no clear console line naming the mount and its error:\n%s", r.console)
	}
	if r.exitCode == 0 {
		t.Error("the gate exited 0")
	}
	if !strings.Contains(r.calls["systemctl"], "poweroff") || strings.Contains(r.calls["systemctl"], "journald") {
		t.Errorf("the node was not stopped (systemctl calls %q)", r.calls["systemctl"])
	}
	if r.machineID != "template0000000000000000000000000" {
		t.Errorf("machine-id changed to %q on a failed renewal", r.machineID)
	}
}

func TestSeedGateStopsLoudlyWhenAMACCannotBeSet(t *testing.T) {
	r := runGate(t, "ip")
	if strings.Contains(r.console, "identity renewed") || !strings.Contains(r.console, "bcmtest-seed: FAILED: setting eth0's MAC") ||
		!strings.Contains(r.console, "Device or resource busy") || r.exitCode == 0 {
		t.Errorf("exit %d; console:\n%s", r.exitCode, r.console)
	}
}
