package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/inventory"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/providers"
)

// gitRepo makes a git work tree with one commit of file name.
func gitRepo(t *testing.T, name, content string) string {
	t.Helper()
	return gitRepoWith(t, map[string]string{name: content})
}

// Every bad input of `cloudinit diff` exits 2 naming the field and the
// rule, before any provider is asked for a VM.
func TestCloudInitDiffBadInput(t *testing.T) {
	t.Setenv("BCMTEST_STATE_DIR", t.TempDir())
	t.Setenv("BCMTEST_CACHE_DIR", t.TempDir())
	files := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(files, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "#cloud-config\npackages: [jq]\n")
	empty := write("empty.yaml", " \n\n")
	binary := write("binary.yaml", "#cloud-config\n\x00\x01")
	latin1 := write("latin1.yaml", "#cloud-config\n# caf\xe9\n")
	missing := filepath.Join(files, "missing.yaml")
	repo := gitRepo(t, "tracked.yaml", "#cloud-config\npackages: [jq]\n")
	tracked := filepath.Join(repo, "tracked.yaml")
	untracked := filepath.Join(repo, "untracked.yaml")
	os.WriteFile(untracked, []byte("#cloud-config\n"), 0o644)
	launched := refuseLaunches(t)

	rows := []struct {
		name        string
		args        []string
		field, rule string
	}{
		{"no arguments", []string{"cloudinit", "diff"}, "OLD NEW, or --base REV FILE", "got 0 arguments"},
		{"three arguments", []string{"cloudinit", "diff", good, good, good}, "OLD NEW, or --base REV FILE", "got 3 arguments"},
		{"OLD missing", []string{"cloudinit", "diff", missing, good}, `OLD "` + missing + `"`, "no such file"},
		{"NEW missing", []string{"cloudinit", "diff", good, missing}, `NEW "` + missing + `"`, "no such file"},
		{"NEW empty", []string{"cloudinit", "diff", good, empty}, `NEW "` + empty + `"`, "is empty"},
		{"OLD binary", []string{"cloudinit", "diff", binary, good}, `OLD "` + binary + `"`, "is a binary file (a NUL byte at offset 14)"},
		{"NEW not UTF-8", []string{"cloudinit", "diff", good, latin1}, `NEW "` + latin1 + `"`, "is a binary file (not UTF-8 text)"},
		{"OLD a directory", []string{"cloudinit", "diff", files, good}, `OLD "` + files + `"`, "is a directory"},
		{"not a git work tree", []string{"cloudinit", "diff", "--base", "HEAD", good}, `FILE "` + good + `"`, "needs a git work tree"},
		{"FILE alone outside git", []string{"cloudinit", "diff", good}, `FILE "` + good + `"`, "needs a git work tree"},
		{"unknown revision", []string{"cloudinit", "diff", "--base", "no-such-branch", tracked}, `--base "no-such-branch"`, "unknown revision"},
		{"revision that is a flag", []string{"cloudinit", "diff", "--base=--all", tracked}, `--base "--all"`, "must be a git revision"},
		{"not tracked at the revision", []string{"cloudinit", "diff", "--base", "HEAD", untracked}, `FILE "` + untracked + `"`, "not tracked at revision HEAD"},
		{"FILE missing with --base", []string{"cloudinit", "diff", "--base", "HEAD", filepath.Join(repo, "gone.yaml")}, `FILE "`, "no such file"},
		{"--base with two files", []string{"cloudinit", "diff", "--base", "HEAD", good, good}, "with --base", "want one FILE"},
		{"bad output", []string{"cloudinit", "diff", "-o", "yaml", good, good}, `--output "yaml"`, "must be text, json or markdown"},
		{"inventory diff: missing A", []string{"inventory", "diff", missing, good}, `A "` + missing + `"`, "cannot read it"},
		{"inventory diff: not an inventory", []string{"inventory", "diff", good, good}, `A "` + good + `"`, "not JSON"},
		{"inventory diff: one file", []string{"inventory", "diff", good}, "A.json B.json", "got 1 argument"},
		{"inventory collect: bad node", []string{"inventory", "collect", "../x"}, "../x", "letters, digits and hyphens"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := execute(context.Background(), r.args, &out, &errb)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitUsage, errb.String())
			}
			for _, want := range []string{r.field, r.rule} {
				if !strings.Contains(errb.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, errb.String())
				}
			}
		})
	}
	if l := launched(); len(l) > 0 {
		t.Errorf("bad input launched VMs: %v", l)
	}
}

// A file that is empty or binary at the revision is refused like one in
// the work tree, naming the revision.
func TestCloudInitDiffBaseContentRules(t *testing.T) {
	repo := gitRepo(t, "ci.yaml", "\n")
	file := filepath.Join(repo, "ci.yaml")
	os.WriteFile(file, []byte("#cloud-config\n"), 0o644)
	_, err := diffInputs(context.Background(), "cloudinit diff: ", []string{file}, "HEAD", true)
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), `FILE at --base HEAD "HEAD:ci.yaml": is empty`) {
		t.Errorf("got %v", err)
	}
}

// --base HEAD reads the committed file as OLD and the work tree's as NEW.
func TestCloudInitDiffBaseReadsTheCommit(t *testing.T) {
	repo := gitRepoWith(t, map[string]string{"sub/ci.yaml": "#cloud-config\npackages: [jq]\n"})
	file := filepath.Join(repo, "sub", "ci.yaml")
	os.WriteFile(file, []byte("#cloud-config\npackages: [jq, tree]\n"), 0o644)
	sides, err := diffInputs(context.Background(), "", []string{file}, "HEAD", true)
	if err != nil {
		t.Fatal(err)
	}
	if sides[0].Name != "HEAD:sub/ci.yaml" || string(sides[0].Data) != "#cloud-config\npackages: [jq]\n" {
		t.Errorf("OLD = %q %q", sides[0].Name, sides[0].Data)
	}
	if sides[1].Name != file || !strings.Contains(string(sides[1].Data), "tree") {
		t.Errorf("NEW = %q %q", sides[1].Name, sides[1].Data)
	}
}

// gitRepoWith makes a work tree with one commit of the given files.
func gitRepoWith(t *testing.T, files map[string]string) string {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	dir := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q")
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		git("add", name)
	}
	git("commit", "-q", "-m", "first")
	return dir
}

// inventory diff compares two saved inventories offline: exit 0 when B
// succeeded, 1 with --fail-on-diff on a difference, and the report in
// each format.
func TestInventoryDiffOffline(t *testing.T) {
	dir := t.TempDir()
	a := &inventory.Inventory{Schema: inventory.SchemaVersion, Node: "a", Health: inventory.Health{Status: "done", SchemaValid: true}, Packages: map[string]string{"jq": "1.6"}}
	b := &inventory.Inventory{Schema: inventory.SchemaVersion, Node: "b", Health: inventory.Health{Status: "done", SchemaValid: true}, Packages: map[string]string{"jq": "1.6", "tree": "2.1"}}
	save := func(name string, inv *inventory.Inventory) string {
		data, err := inv.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		return p
	}
	pa, pb := save("a.json", a), save("b.json", b)
	var out, errb bytes.Buffer
	if code := execute(context.Background(), []string{"inventory", "diff", pa, pb}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "+ tree (2.1)") || !strings.Contains(out.String(), "NEW succeeded; 0 regression(s), 1 difference(s)") {
		t.Errorf("text:\n%s", out.String())
	}
	out.Reset()
	if code := execute(context.Background(), []string{"inventory", "diff", "--fail-on-diff", "-o", "markdown", pa, pb}, &out, &errb); code != exitFailed {
		t.Errorf("--fail-on-diff with a difference: exit %d, want 1", code)
	}
	if !strings.Contains(out.String(), "| packages | + | `tree` |") {
		t.Errorf("markdown:\n%s", out.String())
	}
	out.Reset()
	if code := execute(context.Background(), []string{"inventory", "diff", "--fail-on-diff", pa, pa}, &out, &errb); code != 0 || !strings.Contains(out.String(), "no difference") {
		t.Errorf("same inventory with --fail-on-diff: exit %d\n%s", code, out.String())
	}
	b.Health.Status = "error"
	pb = save("b.json", b)
	out.Reset()
	errb.Reset()
	if code := execute(context.Background(), []string{"inventory", "diff", "-o", "json", pa, pb}, &out, &errb); code != exitFailed || !strings.Contains(errb.String(), "REGRESSION: NEW failed (error) where OLD succeeded") {
		t.Errorf("B failed: exit %d, stderr %s", code, errb.String())
	}
	if !strings.Contains(out.String(), `"schema": 1`) {
		t.Errorf("json:\n%s", out.String())
	}
}

// A lint problem only NEW has is a regression: exit 1 before any VM,
// with the report written; a problem both have is not.
func TestCloudInitDiffLintRegression(t *testing.T) {
	t.Setenv("BCMTEST_STATE_DIR", t.TempDir())
	t.Setenv("BCMTEST_CACHE_DIR", t.TempDir())
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	typo := filepath.Join(dir, "typo.yaml")
	os.WriteFile(good, []byte("#cloud-config\npackages: [jq]\n"), 0o644)
	os.WriteFile(typo, []byte("#cloud-config\npakages: [jq]\n"), 0o644)
	launched := refuseLaunches(t)
	out := filepath.Join(dir, "artifacts")
	var stdout, stderr bytes.Buffer
	code := execute(context.Background(), []string{"cloudinit", "diff", "--provider", "qemu", "--out", out, good, typo}, &stdout, &stderr)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr.String())
	}
	for _, want := range []string{"! lint problem only NEW has: " + typo + ":2:1: pakages: unknown top-level key", "NEW not booted (not booted: lint problems); 1 regression(s)"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, stdout.String())
		}
	}
	if _, err := os.Stat(filepath.Join(out, "diff.json")); err != nil {
		t.Errorf("report not in the artifacts: %v", err)
	}
	if l := launched(); len(l) > 0 {
		t.Errorf("launched %v", l)
	}
}

// fakeCollectorOutput is a small collector output of node: the sections
// Parse needs, with the node's own hostname in a file, and one package
// more on the NEW node when extra is set.
func fakeCollectorOutput(node string, extra bool) string {
	return keyedCollectorOutput(node, "", extra)
}

// keyedCollectorOutput is fakeCollectorOutput with its section marks
// keyed as the collector keys them when run with key ("" for none), and
// both cloud-init logs, one with a line that looks like a plain mark.
func keyedCollectorOutput(node, key string, extra bool) string {
	var b strings.Builder
	mark := inventory.SectionMark
	if key != "" {
		mark = strings.TrimSuffix(mark, ":") + "-" + key + ":"
	}
	sec := func(s string) { b.WriteString(mark + s + "\n") }
	sec("identity")
	b.WriteString("hostname=" + node + "\ncloud_init_version=22.4.2\n")
	sec("status")
	b.WriteString(`{"status": "done", "errors": []}` + "\n")
	sec("schema")
	b.WriteString("Valid cloud-config: system userdata\nbcmtest-exit=0\n")
	sec("packages")
	b.WriteString("ii \tjq\t1.6-2.1\n")
	if extra {
		b.WriteString("ii \ttree\t2.1.0-1\n")
	}
	sec("log")
	b.WriteString("2026-12-03 cloud-init[1]: log of " + node + "\n")
	sec("files")
	b.WriteString("file\t/etc/hostname\t644 root:root 10\ttext\t" + base64.StdEncoding.EncodeToString([]byte(node+"\n")) + "\n")
	sec("output_log")
	b.WriteString("output of " + node + "\n" + inventory.SectionMark + "files\n")
	sec("end")
	return b.String()
}

// cloudinit diff boots both nodes through the provider, runs the
// collector on each, prints the report, leaves the artifacts and deletes
// both nodes; --fail-on-diff turns a difference into exit 1.
func TestCloudInitDiffBootsBothAndTearsDown(t *testing.T) {
	t.Setenv("BCMTEST_STATE_DIR", t.TempDir())
	t.Setenv("BCMTEST_CACHE_DIR", t.TempDir())
	dir := t.TempDir()
	old, nu := filepath.Join(dir, "old.yaml"), filepath.Join(dir, "new.yaml")
	os.WriteFile(old, []byte("#cloud-config\npackages: [jq]\n"), 0o644)
	os.WriteFile(nu, []byte("#cloud-config\npackages: [jq, tree]\n"), 0o644)
	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"differences exit 0", nil, 0},
		{"--fail-on-diff exits 1", []string{"--fail-on-diff"}, exitFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			fake := fakeprovider.New()
			fake.ExecFunc = func(name string, argv []string) provider.ExecResult {
				if len(argv) != 3 || argv[0] != "sh" || argv[1] != "-s" || len(argv[2]) != 32 {
					return provider.ExecResult{ExitCode: 127}
				}
				return provider.ExecResult{Stdout: []byte(keyedCollectorOutput(name, argv[2], strings.HasSuffix(name, "-new")))}
			}
			orig := newProvider
			newProvider = func(ctx context.Context, o providers.Options) (provider.Provider, error) { return fake, nil }
			t.Cleanup(func() { newProvider = orig })
			out := filepath.Join(t.TempDir(), "art")
			var stdout, stderr bytes.Buffer
			args := append([]string{"cloudinit", "diff", "--provider", "qemu", "--out", out}, c.args...)
			code := execute(context.Background(), append(args, old, nu), &stdout, &stderr)
			if code != c.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, c.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), "  packages\n    + tree (2.1.0-1)\n") || !strings.Contains(stdout.String(), "NEW succeeded; 0 regression(s), 1 difference(s)") {
				t.Errorf("report:\n%s", stdout.String())
			}
			var launched, deleted []string
			for _, call := range fake.Calls {
				if n, ok := strings.CutPrefix(call, "launch "); ok {
					launched = append(launched, n)
				}
				if n, ok := strings.CutPrefix(call, "delete "); ok {
					deleted = append(deleted, n)
				}
			}
			slices.Sort(launched)
			slices.Sort(deleted)
			if len(launched) != 2 || !strings.HasSuffix(launched[0], "-new") || strings.TrimSuffix(launched[0], "-new")+"-old" != launched[1] {
				t.Errorf("launched %v, want one pair of OLD and NEW nodes", launched)
			}
			if !slices.Equal(launched, deleted) || len(fake.Names()) != 0 {
				t.Errorf("launched %v, deleted %v, left %v: both must be deleted", launched, deleted, fake.Names())
			}
			for _, f := range []string{"old.inventory.json", "new.inventory.json", "old.collector.txt", "diff.txt", "diff.md", "diff.json"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Errorf("artifact %s: %v", f, err)
				}
			}
			// Both logs come from the collector's output (the fake provider
			// cannot copy a file out), the plain-looking mark kept as text.
			for side, node := range map[string]string{"old": launched[1], "new": launched[0]} {
				for f, want := range map[string]string{
					"cloud-init.log":        "2026-12-03 cloud-init[1]: log of " + node + "\n",
					"cloud-init-output.log": "output of " + node + "\n" + inventory.SectionMark + "files\n",
				} {
					got, err := os.ReadFile(filepath.Join(out, side+"."+f))
					if err != nil || string(got) != want {
						t.Errorf("artifact %s.%s = %q, %v; want %q", side, f, got, err, want)
					}
				}
			}
		})
	}
}

// Two nodes share the host's cores: each gets half of them, one at least
// and two at most, and the memory of a cluster member with one.
func TestDiffShapeSharesTheHost(t *testing.T) {
	for _, c := range []struct {
		host int
		want nodeShape
	}{
		{1, nodeShape{CPUs: 1, MemoryMiB: 1536}},
		{2, nodeShape{CPUs: 1, MemoryMiB: 1536}},
		{3, nodeShape{CPUs: 1, MemoryMiB: 1536}},
		{4, nodeShape{CPUs: 2, MemoryMiB: 2048}},
		{64, nodeShape{CPUs: 2, MemoryMiB: 2048}},
	} {
		if got := diffShape(c.host); got != c.want {
			t.Errorf("diffShape(%d) = %+v, want %+v", c.host, got, c.want)
		}
	}
}
