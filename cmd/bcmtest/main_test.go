package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
)

// isolate gives a test its own state and cache directories and a provider
// choice that never reaches for multipass.
func isolate(t *testing.T) (stateDir, cacheDir string) {
	t.Helper()
	stateDir, cacheDir = t.TempDir(), t.TempDir()
	t.Setenv("BCMTEST_STATE_DIR", stateDir)
	t.Setenv("BCMTEST_CACHE_DIR", cacheDir)
	t.Setenv("BCMTEST_PROVIDER", "qemu")
	t.Setenv("BCMTEST_MULTIPASS", filepath.Join(t.TempDir(), "multipass"))
	return stateDir, cacheDir
}

// runCLI runs a command line as main would, returning the exit code and
// what it printed.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = execute(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// commandPaths lists every visible command below the root as the words a
// user types ("image list").
func commandPaths(t *testing.T) [][]string {
	root, _ := newRoot(&bytes.Buffer{}, &bytes.Buffer{})
	var paths [][]string
	walk(root, func(c *cobra.Command) {
		if c.Hidden || c == root {
			return
		}
		paths = append(paths, strings.Fields(c.CommandPath())[1:])
	})
	if len(paths) < 15 {
		t.Fatalf("the command tree has only %d commands: %v", len(paths), paths)
	}
	return paths
}

func TestEveryCommandAnswersHelpWithAnExample(t *testing.T) {
	isolate(t)
	refuseLaunches(t)
	paths := append(commandPaths(t), []string{})
	for _, p := range paths {
		for _, args := range [][]string{append(append([]string{}, p...), "--help"), append([]string{"help"}, p...)} {
			code, out, errOut := runCLI(t, args...)
			if code != exitOK {
				t.Errorf("bcmtest %s: exit %d, stderr:\n%s", strings.Join(args, " "), code, errOut)
			}
			if !strings.Contains(out, "Examples:\n  bcmtest") {
				t.Errorf("bcmtest %s printed no example:\n%s", strings.Join(args, " "), out)
			}
			if !strings.Contains(out, "Usage:") {
				t.Errorf("bcmtest %s printed no usage:\n%s", strings.Join(args, " "), out)
			}
		}
	}
	for _, group := range []string{"image", "cloudinit", "completion"} {
		if code, out, _ := runCLI(t, group, "help"); code != exitOK || !strings.Contains(out, "Examples:") {
			t.Errorf("bcmtest %s help: exit %d\n%s", group, code, out)
		}
	}
	if code, out, _ := runCLI(t, "help"); code != exitOK || !strings.Contains(out, "Exit codes") {
		t.Errorf("bcmtest help: exit %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, "-help"); code != exitOK || !strings.Contains(out, "Exit codes") {
		t.Errorf("bcmtest -help: exit %d\n%s", code, out)
	}
}

func TestUnknownFlagExitsTwoNamingTheFlag(t *testing.T) {
	isolate(t)
	refuseLaunches(t)
	for _, p := range append(commandPaths(t), []string{}) {
		args := append(append([]string{}, p...), "--no-such-flag")
		code, _, errOut := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(errOut, "--no-such-flag: unknown flag") {
			t.Errorf("bcmtest %s: exit %d, stderr:\n%s", strings.Join(args, " "), code, errOut)
		}
	}
	_, _, errOut := runCLI(t, "up", "CLUS1", "--memroy", "3G")
	if strings.Contains(errOut, "did you mean") {
		t.Errorf("suggested a flag for a typo that shares no prefix: %s", errOut)
	}
	_, _, errOut = runCLI(t, "up", "CLUS1", "--cpu", "3")
	if !strings.Contains(errOut, "did you mean --cpus?") {
		t.Errorf("no suggestion for --cpu: %s", errOut)
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if code, out, _ := runCLI(t, args...); code != exitOK || out != "bcmtest "+version+"\n" {
			t.Errorf("bcmtest %v: exit %d, %q", args, code, out)
		}
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := runCLI(t, "completion", shell)
		if code != exitOK || !strings.Contains(out, "bcmtest") {
			t.Fatalf("completion %s: exit %d: %s", shell, code, errOut)
		}
		bin, err := exec.LookPath(shell)
		if err != nil {
			if shell == "bash" {
				t.Fatalf("bash is needed to check the bash completion: %v", err)
			}
			continue // zsh and fish are checked where installed
		}
		script := filepath.Join(t.TempDir(), "bcmtest."+shell)
		if err := os.WriteFile(script, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command(bin, "-n", script).CombinedOutput(); err != nil {
			t.Errorf("%s -n on the %s completion: %v\n%s", shell, shell, err, b)
		}
	}
}

// complete asks the program for completions as the shell scripts do
// (bcmtest __complete ARGS... PARTIAL) and returns the words and the
// directive.
func complete(t *testing.T, args ...string) ([]string, cobra.ShellCompDirective) {
	t.Helper()
	code, out, errOut := runCLI(t, append([]string{cobra.ShellCompRequestCmd}, args...)...)
	if code != exitOK {
		t.Fatalf("__complete %q: exit %d: %s", args, code, errOut)
	}
	var words []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, ":") {
			var d int
			if _, err := fmt.Sscan(l[1:], &d); err != nil {
				t.Fatalf("directive line %q: %v", l, err)
			}
			return words, cobra.ShellCompDirective(d)
		}
		words = append(words, strings.SplitN(l, "\t", 2)[0])
	}
	t.Fatalf("__complete %q printed no directive:\n%s", args, out)
	return nil, 0
}

func TestCompletionOffersRecordedClustersNodesAndCloudInitFiles(t *testing.T) {
	stateDir, _ := isolate(t)
	writeClusterRecord(t, stateDir, "CLUS1", os.Getpid(), "CLUS1-00", "CLUS1-01")
	writeQEMURecord(t, stateDir, "CLUS1-00", "CLUS1", "10.77.0.10", os.Getpid())
	writeQEMURecord(t, stateDir, "CLUS1-01", "CLUS1", "10.77.0.11", os.Getpid())
	writeQEMURecord(t, stateDir, "CLUS10-00", "CLUS10", "10.77.0.10", 0) // a VM without a cluster record
	writeMultipassRecord(t, stateDir, "MP-00", "MP")

	cases := []struct {
		args      []string
		want      []string
		directive cobra.ShellCompDirective
	}{
		{[]string{"down", ""}, []string{"CLUS1", "CLUS10", "MP"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"down", "CLUS1", ""}, nil, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"logs", "CLUS1"}, []string{"CLUS1", "CLUS10"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"list", "CLUS1", ""}, []string{"CLUS10", "MP"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"exec", ""}, []string{"CLUS1-00", "CLUS1-01", "CLUS10-00", "MP-00"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"ssh", "CLUS1-"}, []string{"CLUS1-00", "CLUS1-01"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"ssh", "CLUS1-00", ""}, nil, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"up", "DEV", "--cloud-init", ""}, []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt},
		{[]string{"matrix", "--cloud-init", ""}, []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt},
		{[]string{"cloudinit", "lint", ""}, []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt},
		{[]string{"cloudinit", "check", ""}, []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt},
		{[]string{"list", "--output", ""}, []string{"table", "json"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"up", "DEV", "--provider", ""}, []string{"auto", "qemu", "multipass"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"grow", ""}, []string{"CLUS1", "CLUS10", "MP"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"grow", "CLUS1", ""}, nil, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"shrink", "CLUS"}, []string{"CLUS1", "CLUS10"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"shrink", "CLUS1", ""}, []string{"CLUS1-00", "CLUS1-01"}, cobra.ShellCompDirectiveNoFileComp},
		{[]string{"shrink", "CLUS1", "CLUS1-00", ""}, nil, cobra.ShellCompDirectiveNoFileComp},
	}
	for _, c := range cases {
		got, d := complete(t, c.args...)
		if strings.Join(got, " ") != strings.Join(c.want, " ") || d != c.directive {
			t.Errorf("completing %q: got %q (directive %d), want %q (directive %d)", c.args, got, d, c.want, c.directive)
		}
	}
	if left, _ := os.ReadDir(filepath.Join(stateDir, "qemu")); len(left) != 1 {
		t.Errorf("completion changed the qemu state directory: %v", left)
	}
}

// listedCluster is what a script reads from `bcmtest list --output json`.
type listedCluster struct {
	Name       string `json:"name"`
	Provider   string `json:"provider"`
	Owner      int    `json:"owner"`
	OwnerAlive bool   `json:"owner_alive"`
	Persistent bool   `json:"persistent"`
	Ready      bool   `json:"ready"`
	Stale      bool   `json:"stale"`
	Nodes      []struct {
		Name      string `json:"name"`
		Group     string `json:"group"`
		Provider  string `json:"provider"`
		State     string `json:"state"`
		PrivateIP string `json:"private_ip"`
	} `json:"nodes"`
}

func TestListOutputJSON(t *testing.T) {
	if err := qemu.CheckHost(); err != nil {
		t.Skipf("list opens the qemu provider, which this host lacks: %v", err)
	}
	stateDir, _ := isolate(t)
	refuseLaunches(t)
	writeClusterRecord(t, stateDir, "CLUS1", os.Getpid(), "CLUS1-00", "CLUS1-01")
	writeQEMURecord(t, stateDir, "CLUS1-00", "CLUS1", "10.77.0.10", os.Getpid())
	writeQEMURecord(t, stateDir, "CLUS1-01", "CLUS1", "10.77.0.11", os.Getpid())
	writeQEMURecord(t, stateDir, "CLUS10-00", "CLUS10", "10.77.0.10", 0)

	code, out, errOut := runCLI(t, "list", "--output", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []listedCluster
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(got) != 2 || got[0].Name != "CLUS1" || got[1].Name != "CLUS10" {
		t.Fatalf("clusters: %+v", got)
	}
	c := got[0]
	if c.Provider != "qemu" || c.Owner != os.Getpid() || !c.OwnerAlive || !c.Persistent || !c.Ready || c.Stale {
		t.Errorf("CLUS1: %+v", c)
	}
	if len(c.Nodes) != 2 || c.Nodes[0].Name != "CLUS1-00" || c.Nodes[1].PrivateIP != "10.77.0.11" ||
		c.Nodes[0].State != "Stopped" || c.Nodes[0].Group != "CLUS1" || c.Nodes[0].Provider != "qemu" {
		t.Errorf("CLUS1 nodes: %+v", c.Nodes)
	}
	if !got[1].Persistent || got[1].Stale || len(got[1].Nodes) != 1 {
		t.Errorf("CLUS10 (a VM without record, owner unknown): %+v", got[1])
	}

	code, out, _ = runCLI(t, "list", "CLUS10", "-o", "json")
	got = nil
	if err := json.Unmarshal([]byte(out), &got); code != exitOK || err != nil || len(got) != 1 || got[0].Name != "CLUS10" {
		t.Errorf("list CLUS10 -o json: exit %d, %v: %s", code, err, out)
	}
	code, out, _ = runCLI(t, "list", "NONE", "-o", "json")
	if code != exitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("an empty list must be [] in JSON: exit %d, %q", code, out)
	}
	if code, out, _ = runCLI(t, "list"); code != exitOK || !strings.Contains(out, "CLUS1-01") || !strings.Contains(out, "running") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
}

// writeImage puts a complete image entry (manifest last, as the store
// does) into the cache directory.
func writeImage(t *testing.T, cacheDir, key string, built time.Time, size int64) string {
	t.Helper()
	dir := filepath.Join(cacheDir, "images", key)
	for _, f := range []string{"vmlinuz", "initrd.img", "root.img"} {
		writeRecord(t, filepath.Join(dir, f), "")
	}
	writeRecord(t, filepath.Join(dir, "manifest.json"), image.Manifest{Key: key, Recipe: image.DefaultRecipe(),
		KernelVersion: "6.1.0-test", Built: built, BuildTime: 90 * time.Second, SizeBytes: size})
	return dir
}

func TestImageListOutputJSON(t *testing.T) {
	_, cacheDir := isolate(t)
	code, out, _ := runCLI(t, "image", "list", "-o", "json")
	if code != exitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("no images must be [] in JSON: exit %d, %q", code, out)
	}
	current := image.DefaultRecipe().Key()
	old := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	writeImage(t, cacheDir, "0ld0ld0ld0ld", old, 1<<30)
	curDir := writeImage(t, cacheDir, current, old.Add(24*time.Hour), 3<<30)

	code, out, errOut := runCLI(t, "image", "list", "--output", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []struct {
		Key           string    `json:"key"`
		KernelVersion string    `json:"kernel_version"`
		Built         time.Time `json:"built"`
		BuildSeconds  float64   `json:"build_seconds"`
		SizeBytes     int64     `json:"size_bytes"`
		Current       bool      `json:"current"`
		Dir           string    `json:"dir"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(got) != 2 {
		t.Fatalf("images: %+v", got)
	}
	if got[0].Key != current || !got[0].Current || got[0].Dir != curDir || got[0].SizeBytes != 3<<30 ||
		got[0].KernelVersion != "6.1.0-test" || got[0].BuildSeconds != 90 || !got[0].Built.Equal(old.Add(24*time.Hour)) {
		t.Errorf("newest (current) image: %+v", got[0])
	}
	if got[1].Key != "0ld0ld0ld0ld" || got[1].Current {
		t.Errorf("older image: %+v", got[1])
	}
	if code, out, _ := runCLI(t, "image", "list"); code != exitOK || !strings.Contains(out, current) || !strings.Contains(out, "yes") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
}

func TestParseMembersAndSizes(t *testing.T) {
	if n, err := parseMembers("3"); err != nil || n != 3 {
		t.Errorf("3: %d %v", n, err)
	}
	for _, bad := range []string{"-1", "three", "", "1.5", "100"} {
		if _, err := parseMembers(bad); exitCode(err) != exitUsage || !strings.Contains(err.Error(), "MEMBERS") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	s, err := parseSizes("0, 1,3")
	if err != nil || len(s) != 3 || s[2] != 3 {
		t.Errorf("sizes = %v %v", s, err)
	}
	for _, bad := range []string{"", "a", "1,-2", ",", "1,1", "100"} {
		if _, err := parseSizes(bad); exitCode(err) != exitUsage {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseSizeFlag(t *testing.T) {
	for in, want := range map[string]int64{"2G": 2 << 30, "1536M": 1536 << 20, "7T": 7 << 40, "8388607T": 8388607 << 40} {
		if got, err := parseSizeFlag("--memory", in); err != nil || got != want {
			t.Errorf("%s: %d, %v", in, got, err)
		}
	}
	for in, rule := range map[string]string{"": "must not be empty", " ": "must not be empty", "8388608T": "too large",
		"99999999999999999999": "too large", "1e30": "unknown unit", "2X": "unknown unit", "0": "greater than zero"} {
		_, err := parseSizeFlag("--memory", in)
		if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "--memory") || !strings.Contains(err.Error(), rule) {
			t.Errorf("%q: %v, want %q", in, err, rule)
		}
	}
}

func TestExitCodes(t *testing.T) {
	for err, want := range map[error]int{
		nil: 0, usagef("x"): 2, envError{errors.New("no qemu")}: 3, errors.New("x"): 1,
		exitStatus(7): 7, errInterrupted: 130, helpHint{err: usagef("x"), path: "bcmtest up"}: 2,
	} {
		if got := exitCode(err); got != want {
			t.Errorf("exitCode(%v) = %d, want %d", err, got, want)
		}
	}
}

func TestAnInterruptedLoadExits130(t *testing.T) {
	isolate(t)
	file := filepath.Join(t.TempDir(), "ok.yml")
	if err := os.WriteFile(file, []byte("#cloud-config\npackages: [jq]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // as SIGINT would
	for _, args := range [][]string{{"cloudinit", "lint", file}, {"up", "CLUS1", "--cloud-init", file}} {
		var out, errb bytes.Buffer
		if code := execute(ctx, args, &out, &errb); code != exitInterrupted || !strings.Contains(errb.String(), "interrupted") {
			t.Errorf("bcmtest %v with the context done: exit %d, want %d: %s", args, code, exitInterrupted, errb.String())
		}
	}
}

func TestUpJudgesDiskAndPoolSizeTogether(t *testing.T) {
	isolate(t)
	spec := func(disk, pool string) error {
		return checkSpec("up", "CLUS1", []specField{{fmt.Sprintf("--disk %q with --pool-size %q", disk, pool),
			func(s *cluster.Spec) { s.Disk, s.PoolSize = disk, pool }}})
	}
	// As the interrupt specs bring small clusters up.
	if err := spec("12G", "2G"); err != nil {
		t.Errorf("--disk 12G --pool-size 2G: %v", err)
	}
	for _, c := range []struct{ disk, pool, rule string }{
		{"12G", "5G", `pool size "5G": must leave 8G of the 12G disk`},
		{"12G", "512M", `pool size "512M": must be at least 1G`},
		{"5G", "1G", `disk "5G": must be at least 10G`},
	} {
		err := spec(c.disk, c.pool)
		if exitCode(err) != exitUsage || err == nil || !strings.Contains(err.Error(), "--disk") || !strings.Contains(err.Error(), "--pool-size") || !strings.Contains(err.Error(), c.rule) {
			t.Errorf("--disk %s --pool-size %s: %v, want %q", c.disk, c.pool, err, c.rule)
		}
	}
}

func TestImageListAndPruneCoverSnapshots(t *testing.T) {
	_, cacheDir := isolate(t)
	current := image.DefaultRecipe().Key()
	writeImage(t, cacheDir, current, time.Now(), 1<<30)
	snap := func(key, img string) string {
		dir := filepath.Join(cacheDir, "snapshots", key)
		writeRecord(t, filepath.Join(dir, "state"), "")
		writeRecord(t, filepath.Join(dir, "disk.qcow2"), "")
		writeRecord(t, filepath.Join(dir, "snapshot.json"), qemu.SnapshotManifest{Key: key,
			Shape: qemu.Shape{Image: img, CPUs: 1, MemoryMiB: 1536, Accel: "tcg", Devices: "d1"}, RootGiB: 8, SizeBytes: 500 << 20})
		return dir
	}
	snap(current+"-c1-m1536-tcg-d1", current)
	oldDir := snap("bookworm-0ld0ld0ld0ld-c1-m1536-tcg-d1", "bookworm-0ld0ld0ld0ld")
	code, out, errOut := runCLI(t, "image", "list", "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []struct {
		Kind    string      `json:"kind"`
		Key     string      `json:"key"`
		Current bool        `json:"current"`
		Shape   *qemu.Shape `json:"shape"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	kinds := map[string]int{}
	for _, g := range got {
		kinds[g.Kind]++
		if g.Kind == "snapshot" && (g.Shape == nil || g.Shape.CPUs != 1 || g.Current != (g.Shape.Image == current)) {
			t.Errorf("snapshot entry: %+v", g)
		}
	}
	if kinds["image"] != 1 || kinds["snapshot"] != 2 {
		t.Fatalf("entries by kind: %v\n%s", kinds, out)
	}
	if code, out, _ := runCLI(t, "image", "list"); code != exitOK || !strings.Contains(out, "SNAPSHOT") || !strings.Contains(out, "1536 MiB") {
		t.Errorf("table lacks the snapshots: exit %d\n%s", code, out)
	}
	if code, out, errOut := runCLI(t, "image", "prune"); code != exitOK || !strings.Contains(out, "1 snapshot(s) removed") {
		t.Fatalf("prune: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(oldDir); !os.IsNotExist(err) {
		t.Errorf("the older image's snapshot survived prune: %v", err)
	}
}

// TestImagePruneKeepsAnOlderImageAVMIsLayeredOn: after the image recipe
// changes, a kept cluster's nodes are still layered on the older image,
// directly (a cold boot) or through the snapshot they were restored from;
// prune must leave both images, and remove an older one nothing uses.
func TestImagePruneKeepsAnOlderImageAVMIsLayeredOn(t *testing.T) {
	stateDir, cacheDir := isolate(t)
	current := image.DefaultRecipe().Key()
	writeImage(t, cacheDir, current, time.Now(), 1<<30)
	const cold, restored, unused = "bookworm-c0ldc0ldc0ld", "bookworm-5napshot5nap", "bookworm-0ld0ld0ld0ld"
	dirs := map[string]string{}
	for _, k := range []string{cold, restored, unused} {
		dirs[k] = writeImage(t, cacheDir, k, time.Now().Add(-time.Hour), 1<<30)
	}
	snapKey := restored + "-c1-m1536-tcg-d1"
	snapDir := filepath.Join(cacheDir, "snapshots", snapKey)
	writeRecord(t, filepath.Join(snapDir, "state"), "")
	writeRecord(t, filepath.Join(snapDir, "disk.qcow2"), "")
	writeRecord(t, filepath.Join(snapDir, "snapshot.json"), qemu.SnapshotManifest{Key: snapKey,
		Shape: qemu.Shape{Image: restored, CPUs: 1, MemoryMiB: 1536, Accel: "tcg", Devices: "d1"}, RootGiB: 8})
	vm := func(name string, fields map[string]any) {
		fields["name"] = name
		writeRecord(t, filepath.Join(stateDir, "qemu", "vms", name, "vm.json"), fields)
	}
	vm("KEPT-00", map[string]any{"image": cold})
	vm("KEPT-01", map[string]any{"image": restored, "snapshot": snapKey})

	code, out, errOut := runCLI(t, "image", "prune")
	if code != exitOK {
		t.Fatalf("prune: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"kept " + cold + ": in use by VM KEPT-00", "kept " + restored + ": in use by snapshot " + snapKey,
		"removed " + unused, "1 image(s) removed", "0 snapshot(s) removed"} {
		if !strings.Contains(out, want) {
			t.Errorf("prune's output lacks %q:\n%s", want, out)
		}
	}
	for _, k := range []string{cold, restored} {
		if _, err := os.Stat(filepath.Join(dirs[k], "root.img")); err != nil {
			t.Errorf("prune removed image %s, which a kept VM's disk is layered on: %v", k, err)
		}
	}
	if _, err := os.Stat(dirs[unused]); !os.IsNotExist(err) {
		t.Errorf("prune left image %s, which nothing uses: %v", unused, err)
	}
}

func TestListShowsAKeptCluster(t *testing.T) {
	if err := qemu.CheckHost(); err != nil {
		t.Skipf("list opens the qemu provider, which this host lacks: %v", err)
	}
	stateDir, _ := isolate(t)
	refuseLaunches(t)
	since := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	writeRecord(t, filepath.Join(cluster.ClustersDir(stateDir), "DEV", "cluster.json"), map[string]any{
		"name": "DEV", "provider": "qemu", "members": 0, "nodes": []string{"DEV-00"}, "owner": 1 << 22,
		"created": since, "ready": true, "pool_name": "local",
		"kept": map[string]any{"reason": "BCMTEST_SKIP_TEARDOWN=1", "at": since},
	})
	writeQEMURecord(t, stateDir, "DEV-00", "DEV", "10.77.0.10", 1<<22)
	code, out, errOut := runCLI(t, "list", "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got []struct {
		Name  string            `json:"name"`
		Stale bool              `json:"stale"`
		Kept  *cluster.KeptMark `json:"kept"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 1 {
		t.Fatalf("not one cluster: %v\n%s", err, out)
	}
	if got[0].Kept == nil || got[0].Kept.Reason != "BCMTEST_SKIP_TEARDOWN=1" || got[0].Stale {
		t.Errorf("DEV: %+v", got[0])
	}
	if code, out, _ := runCLI(t, "list"); code != exitOK || !strings.Contains(out, "kept: BCMTEST_SKIP_TEARDOWN=1") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
}

// TestGroupCommandsNameEverySubcommand: a grouping command given no
// subcommand lists all of its own, so a new subcommand cannot be left out
// of the message.
func TestGroupCommandsNameEverySubcommand(t *testing.T) {
	isolate(t)
	root, _ := newRoot(&bytes.Buffer{}, &bytes.Buffer{})
	groups := 0
	walk(root, func(c *cobra.Command) {
		if c == root || c.Hidden || !c.HasAvailableSubCommands() {
			return
		}
		groups++
		path := strings.Fields(c.CommandPath())[1:]
		code, _, stderr := runCLI(t, path...)
		if code != exitUsage {
			t.Errorf("%v: exit %d, want %d", path, code, exitUsage)
		}
		for _, sub := range c.Commands() {
			if !sub.IsAvailableCommand() {
				continue
			}
			if !strings.Contains(errorLine(stderr), sub.Name()) {
				t.Errorf("%v without a subcommand: %q does not name %q", path, errorLine(stderr), sub.Name())
			}
		}
	})
	if groups < 3 {
		t.Fatalf("found %d grouping commands, want at least 3 (cloudinit, image, inventory)", groups)
	}
}

// errorLine is the "bcmtest: ..." line of a command's stderr.
func errorLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "bcmtest: ") {
			return l
		}
	}
	return ""
}
