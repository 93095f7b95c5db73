package inventory

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// collectorHead runs the collector up to its packages section, with the
// node's root at root and env added to the environment: the identity
// section and everything collect.py prints.
func collectorHead(t *testing.T, root string, env ...string) (map[string]string, string) {
	t.Helper()
	head, _, ok := strings.Cut(Script, "sec packages\n")
	if !ok {
		t.Fatal("the collector no longer has its packages section")
	}
	const rootArg = `"$tf" / <<`
	if !strings.Contains(head, rootArg) {
		t.Fatal("the collector no longer passes the root / to its Python part")
	}
	head = strings.Replace(head, rootArg, `"$tf" '`+root+`' <<`, 1)
	head = strings.Replace(head, "export LC_ALL=C PATH=", "export LC_ALL=C IGNORED_PATH=", 1)
	cmd := exec.Command("sh", "-s", "k")
	cmd.Stdin = strings.NewReader(head + "sec timing\nprintf '%s' \"$timing\"\nsec end\nexit \"$py_rc\"\n")
	cmd.Env = append(os.Environ(), env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running the collector's head: %v: %s", err, stderr.String())
	}
	return Sections(string(out)), stderr.String()
}

func writeFile(t *testing.T, path, body string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// The Python part is a here-document: no line of it may end it early.
func TestCollectorPythonPartStaysInItsHereDocument(t *testing.T) {
	for _, l := range strings.Split(pythonPart, "\n") {
		if l == "BCMTEST_PY" {
			t.Fatal("collect.py has a line that ends its here-document in collect.sh")
		}
	}
	if strings.Contains(Script, "@@collect.py@@") || !strings.Contains(Script, "def files_section") {
		t.Fatal("Script does not hold collect.py in place of its placeholder")
	}
}

// Without cloud-init's Python package (the commands run as programs, here
// stand-ins): the version comes from the package without the Debian
// revision or epoch; a failed boot's JSON (exit 1) is printed once, with
// no `status --long`; without JSON, the marker and `status --long`.
func TestCollectorStatusAndVersion(t *testing.T) {
	for _, c := range []struct {
		name, statusJSON string
		jsonExit         int
		wantStatus       string
		wantLong         string
	}{
		{"failed boot", `{"status": "error", "errors": ["x"]}`, 1, `{"status": "error", "errors": ["x"]}` + "\n", ""},
		{"done", `{"status": "done"}`, 0, `{"status": "done"}` + "\n", ""},
		{"no JSON", "", 2, `{"bcmtest_format_json": "unsupported"}` + "\n", "status: done (long)\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bin := t.TempDir()
			write := func(name, body string) { writeFile(t, filepath.Join(bin, name), "#!/bin/sh\n"+body, 0o755) }
			write("dpkg-query", `echo "1:25.1.4-1+deb13u1"`+"\n")
			write("cloud-init", fmt.Sprintf(`case "$*" in
"status --format json") [ -n '%[1]s' ] && echo '%[1]s'; [ %[2]d = 2 ] && echo "usage: unknown --format" >&2; exit %[2]d;;
"status --long") echo "status: done (long)";;
"schema --system") echo "Valid schema user-data"; exit 0;;
"--version") echo "/usr/bin/cloud-init 99";;
esac
`, c.statusJSON, c.jsonExit))
			secs, _ := collectorHead(t, t.TempDir(), "PATH="+bin+":"+os.Getenv("PATH"), "PYTHONPATH="+t.TempDir())
			if !strings.Contains(secs["identity"], "cloud_init_version=25.1.4\n") {
				t.Errorf("identity %q: want the package's upstream version 25.1.4", secs["identity"])
			}
			if secs["status"] != c.wantStatus || secs["status_long"] != c.wantLong {
				t.Errorf("status %q, status_long %q; want %q, %q", secs["status"], secs["status_long"], c.wantStatus, c.wantLong)
			}
			if secs["schema"] != "Valid schema user-data\nbcmtest-exit=0\n" {
				t.Errorf("schema %q", secs["schema"])
			}
		})
	}
}

// With cloud-init's Python package, its modules are imported once and
// each command runs in a child of that process with its own output,
// standard error where the command line sends it, and exit code.
func TestCollectorRunsCloudInitInOneProcess(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 here")
	}
	py := t.TempDir()
	imports := filepath.Join(t.TempDir(), "imports")
	writeFile(t, filepath.Join(py, "cloudinit/__init__.py"), "", 0o644)
	writeFile(t, filepath.Join(py, "cloudinit/cmd/__init__.py"), "", 0o644)
	writeFile(t, filepath.Join(py, "cloudinit/cmd/main.py"), `import os, sys
with open(`+fmt.Sprintf("%q", imports)+`, "a") as f:
    f.write("%d\n" % os.getpid())

def main(argv):
    args = argv[1:]
    if args == ["status", "--format", "json"]:
        print('{"status": "error"}')
        return 1
    if args == ["schema", "--system"]:
        print("Invalid user-data", file=sys.stderr)
        sys.exit(1)
    if args == ["analyze", "dump"]:
        print('[{"event_type": "finish"}]')
        print("noise", file=sys.stderr)
        return 0
    print("unexpected", args, file=sys.stderr)
    return 9
`, 0o644)
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "var/log/cloud-init.log"), "a log line\n", 0o644)
	writeFile(t, filepath.Join(root, "run/cloud-init/result.json"), `{"v1": {}}`+"\n", 0o644)
	secs, stderr := collectorHead(t, root, "PYTHONPATH="+py)
	want := map[string]string{
		"status":      `{"status": "error"}` + "\n",
		"status_long": "",
		"result_json": `{"v1": {}}` + "\n",
		"schema":      "Invalid user-data\nbcmtest-exit=1\n",
		"log":         "a log line\n",
		"analyze":     `[{"event_type": "finish"}]` + "\n",
	}
	for name, w := range want {
		if got, ok := secs[name]; !ok || got != w {
			t.Errorf("section %s = %q (present %v), want %q", name, got, ok, w)
		}
	}
	data, err := os.ReadFile(imports)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(data), "\n"); n != 1 {
		t.Errorf("cloud-init's main module was imported %d times, want once", n)
	}
	if strings.Contains(stderr, "unexpected") || strings.Contains(stderr, "noise") {
		t.Errorf("stderr %q: analyze's standard error must be dropped and no unknown command run", stderr)
	}
	for _, name := range []string{"cloud_init_import", "status", "schema", "analyze", "files"} {
		if !strings.Contains(secs["timing"], "\n"+name+" ") && !strings.HasPrefix(secs["timing"], name+" ") {
			t.Errorf("timing %q: no time for %s", secs["timing"], name)
		}
	}
}

// The files section: regular files under the trees cloud-init writes to,
// changed after cloud-init started; the accounts, sudoers, apt and host-ID
// files left to their own sections; a home file equal to its skeleton
// left out; text as base64, binaries and large files by hash, and a
// private key only by its kind.
func TestCollectorFilesSection(t *testing.T) {
	root := t.TempDir()
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	writeFile(t, filepath.Join(root, "run/cloud-init/status.json"),
		fmt.Sprintf(`{"v1": {"init-local": {"start": %d.5}}}`, start.Unix()), 0o644)
	old := start.Add(-time.Minute)
	files := []struct {
		path, body string
		mode       os.FileMode
		before     bool
	}{
		{"etc/new.conf", "a=1\n", 0o640, false},
		{"etc/old.conf", "old\n", 0o644, true},
		{"etc/passwd", "root:x:0:0::/root:/bin/sh\n", 0o644, false},
		{"etc/sudoers.d/90-x", "x ALL=(ALL) ALL\n", 0o440, false},
		{"etc/apt/sources.list.d/x.list", "deb http://x y z\n", 0o644, false},
		{"etc/hostid", "abcd", 0o644, false},
		{"etc/empty", "", 0o644, false},
		{"etc/blank", "\n\n", 0o644, false},
		{"etc/bin.dat", "a\x00b", 0o755, false},
		{"etc/ssh/host_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0\n-----END OPENSSH PRIVATE KEY-----\n", 0o600, false},
		{"etc/skel/.bashrc", "skel\n", 0o644, true},
		{"home/u/.bashrc", "skel\n", 0o644, false},
		{"home/u/.profile", "mine\n", 0o644, false},
		{"usr/local/big", strings.Repeat("x", 65537), 0o644, false},
		{"srv/s p", "space\n", 0o600, false},
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		writeFile(t, p, f.body, f.mode)
		if f.before {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Symlink("new.conf", filepath.Join(root, "etc/link")); err != nil {
		t.Fatal(err)
	}
	secs, _ := collectorHead(t, root, "PYTHONPATH="+t.TempDir(), "PATH=/nonexistent:"+os.Getenv("PATH"))
	lines := strings.Split(strings.TrimSuffix(secs["files"], "\n"), "\n")
	if len(lines) == 0 || lines[0] != fmt.Sprintf("since=%d", start.Unix()) {
		t.Fatalf("files section %q: want since=%d first", secs["files"], start.Unix())
	}
	me := currentOwner(t, root)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	sha := func(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }
	want := []string{
		"file\t/etc/bin.dat\t755 " + me + " 3\tbinary\t" + sha("a\x00b"),
		"file\t/etc/blank\t644 " + me + " 2\tbinary\t" + sha("\n\n"),
		"file\t/etc/empty\t644 " + me + " 0\ttext\t",
		"file\t/etc/new.conf\t640 " + me + " 4\ttext\t" + b64("a=1\n"),
		"file\t/etc/ssh/host_key\t600 " + me + " " + fmt.Sprint(len(files[9].body)) + "\tprivate-key\t-----BEGIN OPENSSH PRIVATE KEY-----",
		"file\t/home/u/.profile\t644 " + me + " 5\ttext\t" + b64("mine\n"),
		"file\t/srv/s p\t600 " + me + " 6\ttext\t" + b64("space\n"),
		"file\t/usr/local/big\t644 " + me + " 65537\tbinary\t" + sha(strings.Repeat("x", 65537)),
	}
	if got := lines[1:]; strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(secs["files"], "c2VjcmV0") || strings.Contains(secs["files"], b64("-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0")) {
		t.Error("the files section printed a private key's content")
	}
}

// currentOwner is "user:group" of a file this test made, as the
// collector names them.
func currentOwner(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("stat", "-c", "%U:%G", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
