package ci

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// depsScript is what `make deps` runs.
const depsScript = "deps.sh"

// makefileHostPackages is the Makefile's HOST_PACKAGES as make expands it.
func makefileHostPackages(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("make", "-s", "--no-print-directory", "-C", "..", "-f", "Makefile", "-f", "/dev/stdin", "print-host-packages")
	cmd.Stdin = strings.NewReader("print-host-packages:\n\t@echo $(HOST_PACKAGES)\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("reading HOST_PACKAGES from the Makefile: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 10 {
		t.Fatalf("the Makefile's HOST_PACKAGES has only %v", pkgs)
	}
	return pkgs
}

// fakeBin makes a PATH directory holding the real tools the script uses
// and stand-ins for dpkg-query, apt-get and sudo that record their
// arguments (one line per call) in calls. dpkg-query reports every package
// missing unless installed names it.
func fakeBin(t *testing.T, installed []string) (dir, calls string) {
	t.Helper()
	dir = t.TempDir()
	calls = filepath.Join(dir, "calls.log")
	for _, tool := range []string{"bash", "sed", "head", "grep", "id", "env", "cat"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	record := "#!/bin/bash\necho \"${0##*/} $*\" >> " + calls + "\n"
	dpkg := record + "case \" " + strings.Join(installed, " ") + " \" in *\" $3 \"*) printf 'install ok installed';; *) exit 1;; esac\n"
	for name, body := range map[string]string{"dpkg-query": dpkg, "apt-get": record, "sudo": record + "exec \"$@\"\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, calls
}

// runDeps runs ci/deps.sh with PATH=bin and HOST_PACKAGES=pkgs.
func runDeps(t *testing.T, bin string, pkgs []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "bash"), append([]string{depsScript}, args...)...)
	cmd.Env = []string{"PATH=" + bin, "HOST_PACKAGES=" + strings.Join(pkgs, " ")}
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", depsScript, err)
	}
	return o.String(), e.String(), code
}

func readCalls(t *testing.T, calls string) []string {
	t.Helper()
	b, err := os.ReadFile(calls)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// TestDepsPackagesPerDistribution runs make deps' script on each supported
// distribution's recorded os-release with nothing installed: apt-get
// installs the Makefile's list plus exactly that distribution's own, and
// the optional lxc client and chromium come with a hint on Ubuntu.
func TestDepsPackagesPerDistribution(t *testing.T) {
	common := makefileHostPackages(t)
	for _, want := range []string{"qemu-system-x86", "mmdebstrap", "genisoimage", "apt-cacher-ng", "vde2"} {
		if !slices.Contains(common, want) {
			t.Errorf("the Makefile's HOST_PACKAGES %v lacks %s", common, want)
		}
	}
	for _, tc := range []struct {
		distro   string
		extra    []string
		absent   []string
		optional []string
	}{
		{"debian-12", []string{"lxd-client", "chromium"}, nil, nil},
		{"debian-13", []string{"chromium"}, []string{"lxd-client"}, []string{"snap install lxd"}},
		{"ubuntu-22.04", nil, []string{"lxd-client", "chromium"}, []string{"snap install lxd", "/usr/bin/chromium"}},
		{"ubuntu-24.04", nil, []string{"lxd-client", "chromium"}, []string{"snap install lxd", "/usr/bin/chromium"}},
	} {
		t.Run(tc.distro, func(t *testing.T) {
			bin, calls := fakeBin(t, nil)
			osRelease := filepath.Join("testdata", "os-release", tc.distro)
			out, errOut, code := runDeps(t, bin, common, "--os-release", osRelease)
			if code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			var update, install []string
			for _, c := range readCalls(t, calls) {
				f := strings.Fields(c)
				switch {
				case len(f) >= 2 && f[0] == "apt-get" && f[1] == "update":
					update = f
				case len(f) >= 2 && f[0] == "apt-get" && slices.Contains(f, "install"):
					if update == nil {
						t.Errorf("apt-get install before apt-get update: %q", c)
					}
					install = f[slices.Index(f, "install")+1:]
				}
			}
			var got []string
			for _, a := range install {
				if !strings.HasPrefix(a, "-") {
					got = append(got, a)
				}
			}
			want := append(slices.Clone(common), tc.extra...)
			if !slices.Equal(got, want) {
				t.Errorf("apt-get install %v\nwant %v", got, want)
			}
			for _, a := range tc.absent {
				if slices.Contains(got, a) {
					t.Errorf("%s installs %s, which it does not have as a package", tc.distro, a)
				}
			}
			if !strings.Contains(out, "("+tc.distro+")") {
				t.Errorf("output does not name the distribution %s:\n%s", tc.distro, out)
			}
			// lxc is not on this PATH: its hint is printed. (Whether the
			// chromium hint is depends on this host's /usr/bin/chromium;
			// --list below shows it.)
			if lxc := slices.Contains(tc.optional, "snap install lxd"); lxc != strings.Contains(out, "not installed: lxc client") {
				t.Errorf("lxc optional: %v, but the output is:\n%s", lxc, out)
			}

			// --list agrees with what was installed, and installs nothing.
			bin2, calls2 := fakeBin(t, nil)
			out, _, code = runDeps(t, bin2, common, "--list", "--os-release", osRelease)
			if code != 0 || !strings.Contains(out, "packages: "+strings.Join(want, " ")+"\n") {
				t.Errorf("--list: exit %d\n%s", code, out)
			}
			if c := readCalls(t, calls2); c != nil {
				t.Errorf("--list ran %v", c)
			}
			for _, hint := range tc.optional {
				if !strings.Contains(out, hint) {
					t.Errorf("--list gives no hint %q for an optional package:\n%s", hint, out)
				}
			}
			if len(tc.optional) == 0 && strings.Contains(out, "optional") {
				t.Errorf("%s has no optional packages but --list printed:\n%s", tc.distro, out)
			}
		})
	}
}

// TestDepsInstallsOnlyWhatIsMissing: with some packages present only the
// others are installed; with all present nothing runs.
func TestDepsInstallsOnlyWhatIsMissing(t *testing.T) {
	common := makefileHostPackages(t)
	osRelease := filepath.Join("testdata", "os-release", "ubuntu-24.04")
	bin, calls := fakeBin(t, common[1:])
	out, errOut, code := runDeps(t, bin, common, "--os-release", osRelease)
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, errOut)
	}
	last := readCalls(t, calls)
	if l := last[len(last)-1]; !strings.HasSuffix(l, "install -y -q --no-install-recommends "+common[0]) {
		t.Errorf("want only %s installed, last call: %q", common[0], l)
	}

	bin, calls = fakeBin(t, append(slices.Clone(common), "lxd-client", "chromium"))
	out, errOut, code = runDeps(t, bin, common, "--os-release", filepath.Join("testdata", "os-release", "debian-12"))
	if code != 0 || !strings.Contains(out, "host packages present (debian-12)") {
		t.Errorf("all present: exit %d\n%s%s", code, out, errOut)
	}
	for _, c := range readCalls(t, calls) {
		if !strings.HasPrefix(c, "dpkg-query ") {
			t.Errorf("with every package present it ran %q", c)
		}
	}
}

// TestDepsUnknownDistribution: a clear message listing what to install,
// exit 3, nothing installed.
func TestDepsUnknownDistribution(t *testing.T) {
	common := makefileHostPackages(t)
	bin, calls := fakeBin(t, nil)
	out, errOut, code := runDeps(t, bin, common, "--os-release", filepath.Join("testdata", "os-release", "fedora-41"))
	if code != 3 {
		t.Errorf("exit %d, want 3\n%s%s", code, out, errOut)
	}
	for _, want := range []string{`unsupported distribution "Fedora Linux 41 (Workstation Edition)" (fedora-41`, "debian-12, debian-13, ubuntu-22.04, ubuntu-24.04",
		"vde_switch", "all of: " + strings.Join(common, " ")} {
		if !strings.Contains(errOut, want) {
			t.Errorf("message lacks %q:\n%s", want, errOut)
		}
	}
	if c := readCalls(t, calls); c != nil {
		t.Errorf("an unknown distribution ran %v", c)
	}
	if _, errOut, code := runDeps(t, bin, nil, "--list"); code != 2 || !strings.Contains(errOut, "HOST_PACKAGES is empty") {
		t.Errorf("without HOST_PACKAGES: exit %d, %s", code, errOut)
	}
}

// TestDepsIsANoOpHere runs `make deps`'s script for real on this machine:
// when every package is installed it neither updates nor installs.
// apt-get and sudo are stand-ins that fail, so a call would show.
func TestDepsIsANoOpHere(t *testing.T) {
	common := makefileHostPackages(t)
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		t.Skipf("no /etc/os-release: %v", err)
	}
	want := slices.Clone(common)
	if strings.Contains(string(b), "VERSION_CODENAME=bookworm") && strings.Contains(string(b), "ID=debian") {
		want = append(want, "lxd-client", "chromium")
	}
	for _, p := range want {
		if out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", p).Output(); !strings.Contains(string(out), "install ok installed") {
			t.Skipf("%s is not installed on this machine: make deps would install it", p)
		}
	}
	fake := t.TempDir()
	for _, name := range []string{"apt-get", "sudo"} {
		if err := os.WriteFile(filepath.Join(fake, name), []byte("#!/bin/sh\necho \"$0 $*\" >> "+fake+"/calls\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("bash", depsScript)
	cmd.Env = append(os.Environ(), "PATH="+fake+":"+os.Getenv("PATH"), "HOST_PACKAGES="+strings.Join(common, " "))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "deps: host packages present") {
		t.Errorf("deps on this machine: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(fake, "calls")); err == nil {
		t.Errorf("deps ran with everything installed:\n%s", b)
	}
}

// TestMakeDepsCallsTheScript: the Makefile's deps target is the script,
// given HOST_PACKAGES.
func TestMakeDepsCallsTheScript(t *testing.T) {
	out, err := exec.Command("make", "-n", "--no-print-directory", "-C", "..", "deps").Output()
	if err != nil {
		t.Fatalf("make -n deps: %v", err)
	}
	if !strings.Contains(string(out), "HOST_PACKAGES='"+strings.Join(makefileHostPackages(t), " ")+"' bash ci/deps.sh") {
		t.Errorf("make deps does not run ci/deps.sh with HOST_PACKAGES:\n%s", out)
	}
}
