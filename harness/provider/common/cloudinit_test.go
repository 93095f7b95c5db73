package common

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
)

// guest answers CheckCloudInit's commands from files, as a VM whose
// cloud-init failed would: `tail -n N` gives the last N lines of a log,
// and a log missing from logs cannot be read.
type guest struct {
	status []byte            // /run/cloud-init/status.json
	logs   map[string]string // path in the VM -> content
}

func (g guest) exec(name string, argv []string) provider.ExecResult {
	switch {
	case reflect.DeepEqual(argv, []string{"sh", "-c", waitForCloudInit}):
		return provider.ExecResult{Stdout: g.status}
	case len(argv) == 4 && argv[0] == "tail" && argv[1] == "-n":
		n, err := strconv.Atoi(argv[2])
		log, ok := g.logs[argv[3]]
		if err != nil || !ok {
			return provider.ExecResult{Stderr: []byte("tail: cannot open '" + argv[3] + "' for reading: No such file or directory\n"), ExitCode: 1}
		}
		ls := strings.SplitAfter(strings.TrimSuffix(log, "\n"), "\n")
		if len(ls) > n {
			ls = ls[len(ls)-n:]
		}
		return provider.ExecResult{Stdout: []byte(strings.Join(ls, "") + "\n")}
	}
	return provider.ExecResult{Stderr: []byte("unexpected command\n"), ExitCode: 127}
}

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkGuest runs CheckCloudInit against g and returns its CloudInitError.
func checkGuest(t *testing.T, g guest) (*provider.CloudInitError, error) {
	t.Helper()
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "CLUS1-01", Group: "CLUS1", PrivateIP: "10.77.0.11"})
	fp.ExecFunc = g.exec
	err := CheckCloudInit(context.Background(), fp, "CLUS1-01", nil)
	var ce *provider.CloudInitError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *provider.CloudInitError, got %v", err)
	}
	return ce, err
}

// runcmdExit3 is a Debian 12 node (cloud-init 22.4.2) whose runcmd
// printed three lines and exited 3.
func runcmdExit3(t *testing.T) guest {
	return guest{
		status: []byte(readTestdata(t, "runcmd-exit3/status.json")),
		logs: map[string]string{
			"/var/log/cloud-init-output.log": readTestdata(t, "runcmd-exit3/cloud-init-output.log"),
			"/var/log/cloud-init.log":        readTestdata(t, "runcmd-exit3/cloud-init.log"),
		},
	}
}

var runcmdOutput = []string{
	"bcmtest: checking zfs",
	"modprobe: FATAL: Module zfs not found in directory /lib/modules/6.1.0-18-cloud-amd64",
	"bcmtest: failing on purpose",
}

// hostKeyNoise matches what ssh-keygen and cloud-init print about host keys.
var hostKeyNoise = regexp.MustCompile(`^\+-+\[[A-Z0-9 ]+\]-+\+$|^\|.{17}\|$|SSH HOST KEY|Generating public/private|Your identification has been saved|The key fingerprint is:|randomart|^#{20,}$|SHA256:[A-Za-z0-9+/]{43} root@`)

func TestCloudInitErrorLeadsWithTheFailingCommand(t *testing.T) {
	ce, err := checkGuest(t, runcmdExit3(t))
	if ce.FailingCommand != "/var/lib/cloud/instance/scripts/runcmd" || ce.ExitCode != 3 {
		t.Errorf("failing command %q, exit code %d", ce.FailingCommand, ce.ExitCode)
	}
	if !reflect.DeepEqual(ce.FailingOutput, runcmdOutput) {
		t.Errorf("failing output:\n%q\nwant\n%q", ce.FailingOutput, runcmdOutput)
	}
	if !reflect.DeepEqual(ce.FailedModules, []string{"scripts_user"}) {
		t.Errorf("failed modules: %q", ce.FailedModules)
	}

	msg := err.Error()
	lines := strings.Split(msg, "\n")
	head := strings.Join(lines[:min(10, len(lines))], "\n")
	for _, want := range append([]string{"scripts_user", "exit code 3", "/var/lib/cloud/instance/scripts/runcmd"}, runcmdOutput...) {
		if !strings.Contains(head, want) {
			t.Errorf("%q is not within the first 10 lines of the error:\n%s", want, msg)
		}
	}
	for _, l := range lines {
		// A rendered line is the log line, or "  | " and the output line.
		if hostKeyNoise.MatchString(strings.TrimPrefix(strings.TrimPrefix(l, "<14>Mar 10 09:14:30 cloud-init: "), "  | ")) {
			t.Errorf("host-key noise in the error: %q\n%s", l, msg)
		}
	}
	// The rest of the log is still there, after the cause.
	if !strings.Contains(msg, "Cloud-init v. 22.4.2 finished at") || !strings.Contains(msg, "('scripts_user', RuntimeError(") {
		t.Errorf("the log tail or cloud-init's errors are missing:\n%s", msg)
	}
	// The fields keep the log as read, noise included.
	if !strings.Contains(ce.OutputTail, "+----[SHA256]-----+") || !strings.Contains(ce.OutputTail, "-----BEGIN SSH HOST KEY FINGERPRINTS-----") {
		t.Errorf("OutputTail lost what the VM logged:\n%s", ce.OutputTail)
	}
}

func TestCloudInitErrorWithoutTheMainLog(t *testing.T) {
	// cloud-init.log unreadable: runparts' warning in the output log names
	// the script and its exit code, and its output precedes it.
	g := runcmdExit3(t)
	delete(g.logs, "/var/log/cloud-init.log")
	ce, err := checkGuest(t, g)
	if ce.FailingCommand != "/var/lib/cloud/instance/scripts/runcmd" || ce.ExitCode != 3 || !reflect.DeepEqual(ce.FailingOutput, runcmdOutput) {
		t.Errorf("got %q exit %d output %q\n%s", ce.FailingCommand, ce.ExitCode, ce.FailingOutput, err)
	}
}

func TestCloudInitErrorWithoutLogs(t *testing.T) {
	g := runcmdExit3(t)
	g.logs = nil
	ce, err := checkGuest(t, g)
	if ce.FailingCommand != "" || ce.FailingOutput != nil || ce.OutputTail != "" {
		t.Errorf("nothing to explain from, got %+v", ce)
	}
	if first, _, _ := strings.Cut(err.Error(), "\n"); first != `cloud-init on CLUS1-01 ended with status "error"; failed modules: scripts_user` {
		t.Errorf("first line: %q", first)
	}
}

func TestExplainPackageInstallFailure(t *testing.T) {
	// apt-get runs with its output on the console: cloud-init.log has the
	// exit code, the output log what apt printed.
	output := `Cloud-init v. 22.4.2 running 'init' at Tue, 10 Mar 2026 09:14:04 +0000. Up 5.62 seconds.
Cloud-init v. 22.4.2 running 'modules:config' at Tue, 10 Mar 2026 09:14:06 +0000. Up 7.95 seconds.
Hit:1 http://deb.debian.org/debian bookworm InRelease
Get:2 http://deb.debian.org/debian bookworm-updates InRelease [55.4 kB]
Fetched 55.4 kB in 0s (312 kB/s)
Reading package lists...
Reading package lists...
Building dependency tree...
Reading state information...
E: Unable to locate package zfsutils-linux
2026-03-10 09:14:12,301 - util.py[WARNING]: Failed to install packages: ['zfsutils-linux']
2026-03-10 09:14:12,305 - cc_package_update_upgrade_install.py[WARNING]: 1 failed with exceptions, re-raising the last one
2026-03-10 09:14:12,306 - util.py[WARNING]: Running module package_update_upgrade_install (<module 'cloudinit.config.cc_package_update_upgrade_install' from '/usr/lib/python3/dist-packages/cloudinit/config/cc_package_update_upgrade_install.py'>) failed
Cloud-init v. 22.4.2 running 'modules:final' at Tue, 10 Mar 2026 09:14:29 +0000. Up 30.41 seconds.
`
	mainLog := `2026-03-10 09:14:04,802 - util.py[INFO]: Cloud-init v. 22.4.2 running 'init' at Tue, 10 Mar 2026 09:14:04 +0000. Up 5.62 seconds.
2026-03-10 09:14:07,551 - handlers.py[DEBUG]: start: modules-config/config-package_update_upgrade_install: running config-package_update_upgrade_install with frequency once-per-instance
2026-03-10 09:14:07,560 - subp.py[DEBUG]: Running command ['eatmydata', 'apt-get', '--option=Dpkg::Options::=--force-confold', '--option=Dpkg::options::=--force-unsafe-io', '--assume-yes', '--quiet', 'update'] with allowed return codes [0] (shell=False, capture=False)
2026-03-10 09:14:11,902 - subp.py[DEBUG]: Running command ['eatmydata', 'apt-get', '--option=Dpkg::Options::=--force-confold', '--option=Dpkg::options::=--force-unsafe-io', '--assume-yes', '--quiet', 'install', 'zfsutils-linux'] with allowed return codes [0] (shell=False, capture=False)
2026-03-10 09:14:12,301 - util.py[WARNING]: Failed to install packages: ['zfsutils-linux']
2026-03-10 09:14:12,301 - util.py[DEBUG]: Failed to install packages: ['zfsutils-linux']
Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/cloudinit/config/cc_package_update_upgrade_install.py", line 123, in handle
    cloud.distro.install_packages(pkglist)
cloudinit.subp.ProcessExecutionError: Unexpected error while running command.
Command: ['eatmydata', 'apt-get', '--option=Dpkg::Options::=--force-confold', '--option=Dpkg::options::=--force-unsafe-io', '--assume-yes', '--quiet', 'install', 'zfsutils-linux']
Exit code: 100
Reason: -
Stdout: -
Stderr: -
2026-03-10 09:14:12,305 - cc_package_update_upgrade_install.py[WARNING]: 1 failed with exceptions, re-raising the last one
2026-03-10 09:14:12,306 - handlers.py[DEBUG]: finish: modules-config/config-package_update_upgrade_install: FAIL: running config-package_update_upgrade_install with frequency once-per-instance
`
	e := &provider.CloudInitError{VM: "CLUS1-01", Status: "error", FailedModules: []string{"package_update_upgrade_install"}}
	explain(e, output, mainLog)
	want := "eatmydata apt-get --option=Dpkg::Options::=--force-confold --option=Dpkg::options::=--force-unsafe-io --assume-yes --quiet install zfsutils-linux"
	if e.FailingCommand != want || e.ExitCode != 100 {
		t.Errorf("got %q exit %d", e.FailingCommand, e.ExitCode)
	}
	wantOut := []string{"Hit:1 http://deb.debian.org/debian bookworm InRelease", "Get:2 http://deb.debian.org/debian bookworm-updates InRelease [55.4 kB]",
		"Fetched 55.4 kB in 0s (312 kB/s)", "Reading package lists...", "Reading package lists...", "Building dependency tree...",
		"Reading state information...", "E: Unable to locate package zfsutils-linux"}
	if !reflect.DeepEqual(e.FailingOutput, wantOut) {
		t.Errorf("output %q", e.FailingOutput)
	}
	if !reflect.DeepEqual(e.FailedModules, []string{"package_update_upgrade_install"}) {
		t.Errorf("modules %q", e.FailedModules)
	}
}

func TestExplainCapturedOutput(t *testing.T) {
	// A command run with its output captured: cloud-init.log holds it,
	// continuation lines indented by eight spaces.
	mainLog := `2026-03-10 09:14:04,802 - util.py[INFO]: Cloud-init v. 22.4.2 running 'init' at Tue, 10 Mar 2026 09:14:04 +0000. Up 5.62 seconds.
2026-03-10 09:14:05,001 - util.py[DEBUG]: Failed mount of '/dev/vdb' as 'iso9660': Unexpected error while running command.
Command: ['mount', '-o', 'ro', '-t', 'iso9660', '/dev/vdb', '/run/cloud-init/tmp/tmpk2x7d1qa']
Exit code: 32
Reason: -
Stdout: -
Stderr: mount: wrong fs type
2026-03-10 09:14:07,412 - handlers.py[DEBUG]: start: modules-config/config-bcm_zpool: running config-bcm_zpool with frequency once-per-instance
2026-03-10 09:14:07,431 - util.py[WARNING]: Creating the pool failed
2026-03-10 09:14:07,431 - util.py[DEBUG]: Creating the pool failed
Traceback (most recent call last):
cloudinit.subp.ProcessExecutionError: Unexpected error while running command.
Command: ['zpool', 'create', 'tank', '/dev/vdc']
Exit code: 1
Reason: -
Stdout: -
Stderr: cannot open '/dev/vdc': no such device in /dev
        must be a full path or shorthand device name
2026-03-10 09:14:07,440 - handlers.py[DEBUG]: finish: modules-config/config-bcm_zpool: FAIL: running config-bcm_zpool with frequency once-per-instance
`
	e := &provider.CloudInitError{VM: "CLUS1-01", Status: "error"}
	explain(e, "", mainLog)
	if e.FailingCommand != "zpool create tank /dev/vdc" || e.ExitCode != 1 ||
		!reflect.DeepEqual(e.FailingOutput, []string{"cannot open '/dev/vdc': no such device in /dev", "must be a full path or shorthand device name"}) {
		t.Errorf("got %q exit %d output %q", e.FailingCommand, e.ExitCode, e.FailingOutput)
	}
	if !reflect.DeepEqual(e.FailedModules, []string{"bcm_zpool"}) {
		t.Errorf("modules %q", e.FailedModules)
	}
}

func TestExplainOnlyTheLastBoot(t *testing.T) {
	// The image's first boot failed a runcmd; this boot failed a module
	// that ran no command: nothing of the first boot is blamed.
	output := `Cloud-init v. 22.4.2 running 'init' at Mon, 09 Mar 2026 08:00:04 +0000. Up 5.10 seconds.
old output
2026-03-09 08:00:29,903 - util.py[WARNING]: Failed running /var/lib/cloud/instance/scripts/runcmd [1]
Cloud-init v. 22.4.2 running 'init-local' at Tue, 10 Mar 2026 09:14:02 +0000. Up 3.87 seconds.
Cloud-init v. 22.4.2 running 'init' at Tue, 10 Mar 2026 09:14:04 +0000. Up 5.62 seconds.
2026-03-10 09:14:07,306 - util.py[WARNING]: Running module apt_configure (<module 'cloudinit.config.cc_apt_configure' from '/usr/lib/python3/dist-packages/cloudinit/config/cc_apt_configure.py'>) failed
`
	e := &provider.CloudInitError{VM: "CLUS1-01", Status: "error"}
	explain(e, output, "")
	if e.FailingCommand != "" || e.FailingOutput != nil || !reflect.DeepEqual(e.FailedModules, []string{"apt_configure"}) {
		t.Errorf("got %+v", e)
	}
}

func TestCloudInitErrorConsoleTailWithoutHostKeys(t *testing.T) {
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "CLUS1-01"})
	fp.ExecFunc = runcmdExit3(t).exec
	console := "[   30.6] cloud-init[901]: +----[SHA256]-----+\n[   31.2] cloud-init[901]: -----BEGIN SSH HOST KEY KEYS-----\n" +
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9k root@CLUS1-01\n-----END SSH HOST KEY KEYS-----\n\nDebian GNU/Linux 12 CLUS1-01 ttyS0\n\nCLUS1-01 login:"
	err := CheckCloudInit(context.Background(), fp, "CLUS1-01", func() string { return console })
	var ce *provider.CloudInitError
	if !errors.As(err, &ce) || ce.ExitCode != 3 || ce.ConsoleTail != console {
		t.Fatalf("got %v", err)
	}
	if msg := err.Error(); strings.Contains(msg, "[SHA256]") || strings.Contains(msg, "ssh-ed25519") || !strings.Contains(msg, "CLUS1-01 login:") {
		t.Errorf("console tail not cleaned:\n%s", msg)
	}
}

// TestWaitForCloudInitScript runs the in-guest wait with sh against a
// directory standing in for /run/cloud-init: it must block until
// result.json appears and then print status.json.
func TestWaitForCloudInitScript(t *testing.T) {
	dir := t.TempDir()
	status := `{"v1": {"stage": null, "modules-final": {"errors": []}}}`
	if err := os.WriteFile(filepath.Join(dir, "status.json"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	script := strings.ReplaceAll(waitForCloudInit, "/run/cloud-init", dir)
	if script == waitForCloudInit {
		t.Fatal("the wait script does not name /run/cloud-init")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("the wait ended before result.json existed (%v): %q", err, out.String())
	case <-time.After(600 * time.Millisecond):
	}
	if err := os.WriteFile(filepath.Join(dir, "result.json"), []byte(`{"v1": {"errors": []}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("wait: %v", err)
	}
	if out.String() != status {
		t.Errorf("printed %q, want status.json %q", out.String(), status)
	}
}

// TestCheckCloudInitDoneAndInterrupted: a clean status is no error, and a
// wait that ends without status (the VM went away) is a CloudInitError
// that says cloud-init was still running.
func TestCheckCloudInitDoneAndInterrupted(t *testing.T) {
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "CLUS1-01", Group: "CLUS1"})
	fp.ExecFunc = func(string, []string) provider.ExecResult {
		return provider.ExecResult{Stdout: []byte(`{"v1": {"init": {"errors": []}, "modules-final": {"errors": []}}}`)}
	}
	if err := CheckCloudInit(context.Background(), fp, "CLUS1-01", nil); err != nil {
		t.Fatalf("clean cloud-init: %v", err)
	}
	fp.ExecFunc = func(_ string, argv []string) provider.ExecResult {
		if argv[0] == "sh" {
			return provider.ExecResult{Stderr: []byte("Connection closed\n"), ExitCode: 255}
		}
		return provider.ExecResult{ExitCode: 1}
	}
	err := CheckCloudInit(context.Background(), fp, "CLUS1-01", nil)
	var ce *provider.CloudInitError
	if !errors.As(err, &ce) || ce.Status != "running" {
		t.Fatalf("want a CloudInitError with status running, got %v", err)
	}
}
