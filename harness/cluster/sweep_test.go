package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/state"
)

// deadPID is above any pid_max, so no process has it.
const deadPID = 999999999

func exists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Stat(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

func saveRecord(t *testing.T, stateDir string, r record) *record {
	t.Helper()
	r.dir = filepath.Join(ClustersDir(stateDir), r.Name)
	if err := r.save(); err != nil {
		t.Fatal(err)
	}
	return &r
}

// handle is a Cluster as Up returns it, for a cluster recorded in stateDir.
func handle(fp *fakeprovider.Provider, rec *record, log *bytes.Buffer) *Cluster {
	s := validSpec()
	s.Name, s.Provider, s.Log = rec.Name, fp, log
	return &Cluster{spec: resolved{Spec: s.withDefaults()}, p: fp, rec: rec}
}

func TestSplitNodeName(t *testing.T) {
	for _, c := range []struct {
		vm, cluster string
		index       int
		ok          bool
	}{
		{"CLUS1-00", "CLUS1", 0, true},
		{"CLUS1-07", "CLUS1", 7, true},
		{"CLUS1-99", "CLUS1", 99, true},
		{"bcm-test-12", "bcm-test", 12, true},
		{"CLUS1--1", "", 0, false},
		{"CLUS1-+1", "", 0, false},
		{"CLUS1- 1", "", 0, false},
		{"CLUS1-1", "", 0, false},
		{"CLUS1-000", "", 0, false},
		{"CLUS1-0a", "", 0, false},
		{"CLUS1-\u0661\u0662", "", 0, false}, // Arabic-Indic digits
		{"-00", "", 0, false},
		{"CLUS1", "", 0, false},
		{"", "", 0, false},
	} {
		cl, i, ok := splitNodeName(c.vm)
		if cl != c.cluster || i != c.index || ok != c.ok {
			t.Errorf("splitNodeName(%q) = %q, %d, %v; want %q, %d, %v", c.vm, cl, i, ok, c.cluster, c.index, c.ok)
		}
	}
}

func TestDownRemovesOnlyExactNodeNames(t *testing.T) {
	for vm, want := range map[string]bool{
		"CLUS1-00": true, "CLUS1-42": true,
		"CLUS1--1": false, "CLUS1-+1": false, "CLUS1-000": false, "CLUS1-0a": false, "CLUS1-1": false,
		"CLUS10-00": false, "XCLUS1-00": false, "CLUS1-00-00": false,
	} {
		fp := fakeprovider.New()
		fp.Add(provider.Info{Name: vm, Group: "other"})
		removed, err := Down(t.Context(), fp, t.TempDir(), "CLUS1", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(removed) == 1 && removed[0] == vm; got != want {
			t.Errorf("Down(CLUS1) with VM %s: removed %v", vm, removed)
		}
	}
}

func TestDownRefusesAClusterSomeoneHolds(t *testing.T) {
	dir := t.TempDir()
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "CLUS1-00", Group: "CLUS1"})
	saveRecord(t, dir, record{Name: "CLUS1", Owner: os.Getpid()})
	lockPath := filepath.Join(ClustersDir(dir), "CLUS1.lock")
	// As Up holds it while it builds the cluster.
	lock, err := state.TryLock(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Down(t.Context(), fp, dir, "CLUS1", nil)
	var be *BusyError
	if !errors.As(err, &be) || be.Cluster != "CLUS1" || be.PID != os.Getpid() {
		t.Fatalf("want a BusyError naming CLUS1 and pid %d, got %v", os.Getpid(), err)
	}
	if want := fmt.Sprintf("cluster CLUS1 is being used by process %d (", os.Getpid()); !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want it to start %q", err, want)
	}
	if !errors.Is(err, state.ErrLocked) {
		t.Error("a BusyError is not errors.Is state.ErrLocked")
	}
	if len(fp.Names()) != 1 || !exists(t, filepath.Join(ClustersDir(dir), "CLUS1", "cluster.json")) {
		t.Errorf("Down removed a held cluster: VMs %v", fp.Names())
	}
	// The holder's lock file must stay: a new one would let a second
	// process lock the cluster while the holder still has it.
	if !exists(t, lockPath) {
		t.Fatal("Down removed the lock file of a held lock")
	}
	lock.Unlock()
	removed, err := Down(t.Context(), fp, dir, "CLUS1", nil)
	if err != nil || len(removed) != 2 {
		t.Fatalf("Down after unlock: %v %v", removed, err)
	}
	if exists(t, lockPath) || exists(t, filepath.Join(ClustersDir(dir), "CLUS1")) {
		t.Error("Down left the lock file or the state")
	}
}

// holdEnv makes this test binary, run as a child, hold the lock at the path
// it names until its stdin closes.
const holdEnv = "BCMTEST_CLUSTER_TEST_HOLD"

func TestMain(m *testing.M) {
	if p := os.Getenv(holdEnv); p != "" {
		l, err := state.TryLock(p)
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("locked")
		os.Stdin.Read(make([]byte, 1))
		l.Unlock()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdInChild has another process hold the lock at path, as a concurrent
// `bcmtest up` or sweep would, until release.
func holdInChild(t *testing.T, path string) (pid int, release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	release = func() {
		stdin.Close()
		cmd.Wait()
	}
	t.Cleanup(release)
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "locked\n" {
		t.Fatalf("lock holder: %q", line)
	}
	return cmd.Process.Pid, release
}

func TestDestroyAndKeepRefuseAClusterAnotherProcessHolds(t *testing.T) {
	dir := t.TempDir()
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "CLUS1-00", Group: "CLUS1"})
	c := handle(fp, saveRecord(t, dir, record{Name: "CLUS1", Owner: os.Getpid()}), &bytes.Buffer{})
	pid, release := holdInChild(t, c.rec.dir+".lock")
	var be *BusyError
	if err := c.Destroy(t.Context()); !errors.As(err, &be) || be.PID != pid || be.Cluster != "CLUS1" {
		t.Errorf("Destroy: want a BusyError naming pid %d, got %v", pid, err)
	}
	if err := c.Keep("test"); !errors.As(err, &be) || be.PID != pid {
		t.Errorf("Keep: want a BusyError naming pid %d, got %v", pid, err)
	}
	if _, err := Down(t.Context(), fp, dir, "CLUS1", nil); !errors.As(err, &be) || be.PID != pid || !strings.Contains(err.Error(), fmt.Sprintf("process %d (", pid)) {
		t.Errorf("Down: want a BusyError naming pid %d and its command, got %v", pid, err)
	}
	if len(fp.Calls) != 0 || !exists(t, c.rec.dir+".lock") {
		t.Fatalf("a held cluster was touched: %v", fp.Calls)
	}
	release()
	if err := c.Destroy(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(fp.Names()) != 0 || exists(t, c.rec.dir) || exists(t, c.rec.dir+".lock") {
		t.Errorf("Destroy left VMs %v, the state or the lock file", fp.Names())
	}
}

func TestDestroyUnderThisProcesssLockLeavesTheLockFile(t *testing.T) {
	dir := t.TempDir()
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "CLUS1-00", Group: "CLUS1"})
	c := handle(fp, saveRecord(t, dir, record{Name: "CLUS1", Owner: os.Getpid()}), &bytes.Buffer{})
	// As Up holds it when it tears down after a failure: Destroy works
	// under the holder's lock and leaves its file to the holder.
	lock, err := state.TryLock(c.rec.dir + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Destroy(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !exists(t, c.rec.dir+".lock") {
		t.Error("Destroy removed a lock file it did not hold")
	}
	lock.Unlock()
	if len(fp.Names()) != 0 || exists(t, c.rec.dir) {
		t.Errorf("Destroy left VMs %v or state", fp.Names())
	}
}

func TestKeptClusterSurvivesSweepsUntilDown(t *testing.T) {
	dir := t.TempDir()
	fp := fakeprovider.New()
	var log bytes.Buffer
	// An e2e run's cluster (not persistent, never ready) whose run kept it.
	c := handle(fp, saveRecord(t, dir, record{Name: "KEEP", Provider: "fake", Owner: deadPID}), &log)
	fp.Add(provider.Info{Name: "KEEP-00", Group: "KEEP", Owner: deadPID})
	if err := c.Keep("BCMTEST_SKIP_TEARDOWN"); err != nil {
		t.Fatal(err)
	}
	if exists(t, c.rec.dir+".lock") {
		t.Error("Keep left its lock file")
	}
	swept, err := SweepStale(t.Context(), fp, dir, nil)
	if err != nil || len(swept) != 0 {
		t.Fatalf("swept %v, %v", swept, err)
	}
	all, err := List(t.Context(), fp, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Kept == nil || all[0].Kept.Reason != "BCMTEST_SKIP_TEARDOWN" || all[0].Kept.At.IsZero() || all[0].Stale || len(all[0].Nodes) != 1 {
		t.Fatalf("List = %+v", all)
	}
	// A sweep that listed it before it was kept judges it again.
	stale := all[0]
	stale.Stale, stale.Kept = true, nil
	if r, err := sweepOne(t.Context(), fp, dir, stale, nil); r != "" || err != nil {
		t.Errorf("sweepOne removed a kept cluster: %q %v", r, err)
	}
	removed, err := Down(t.Context(), fp, dir, "KEEP", nil)
	if err != nil || len(removed) != 2 || len(fp.Names()) != 0 {
		t.Errorf("Down of a kept cluster: removed %v, %v; left %v", removed, err, fp.Names())
	}
}

func TestAttachedHandleNeverTearsDownOrMarks(t *testing.T) {
	dir := t.TempDir()
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "REUSED-00", Group: "REUSED"})
	var log bytes.Buffer
	c := handle(fp, saveRecord(t, dir, record{Name: "REUSED", Persistent: true, Ready: true}), &log)
	c.attached = true
	if err := c.Destroy(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := c.Keep("BCMTEST_SKIP_TEARDOWN"); err != nil {
		t.Fatal(err)
	}
	if len(fp.Names()) != 1 || len(fp.Calls) != 0 {
		t.Errorf("an attached handle touched VMs: %v", fp.Calls)
	}
	rec, err := loadClusterRecord(c.rec.dir)
	if err != nil || rec.Kept != nil {
		t.Errorf("an attached handle changed the record: %+v %v", rec, err)
	}
	if !strings.Contains(log.String(), "REUSED: attached, not created by this run; leaving it up") {
		t.Errorf("log = %q", log.String())
	}
}

func TestSweepNeverRemovesWhatItCannotJudge(t *testing.T) {
	dir := t.TempDir()
	fp := fakeprovider.New()
	saveRecord(t, dir, record{Name: "KEEP", Owner: deadPID, Kept: &KeptMark{Reason: "keep-on-failure"}})
	fp.Add(provider.Info{Name: "KEEP-00", Group: "KEEP", Owner: deadPID})
	// A dead run's VM with no group and no node name: no cluster to sweep.
	fp.Add(provider.Info{Name: "orphan", Owner: deadPID})
	// No group, but a node name: swept as the cluster LOST.
	fp.Add(provider.Info{Name: "LOST-01", Owner: deadPID})
	// Unreadable and mismatched records are not stale.
	broken := filepath.Join(ClustersDir(dir), "BROKEN", "cluster.json")
	if err := os.MkdirAll(filepath.Dir(broken), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	fp.Add(provider.Info{Name: "BROKEN-00", Group: "BROKEN", Owner: deadPID})
	moved := saveRecord(t, dir, record{Name: "MOVED", Owner: deadPID})
	if err := os.Rename(moved.dir, filepath.Join(ClustersDir(dir), "ELSEWHERE")); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	swept, err := SweepStale(t.Context(), fp, dir, &log)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(swept, ";") != "LOST (VMs: LOST-01)" {
		t.Errorf("swept = %v", swept)
	}
	if got := strings.Join(fp.Names(), ","); got != "BROKEN-00,KEEP-00,orphan" {
		t.Errorf("VMs left = %s", got)
	}
	for _, p := range []string{"KEEP/cluster.json", "BROKEN/cluster.json", "ELSEWHERE/cluster.json"} {
		if !exists(t, filepath.Join(ClustersDir(dir), p)) {
			t.Errorf("the sweep removed %s", p)
		}
	}
	for _, want := range []string{"leaving \"\" alone: VM(s) orphan have no group", "leaving \"BROKEN\" alone: unreadable record: reading " + broken, `it names cluster "MOVED", not "ELSEWHERE"`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}
}

func TestDestroyOnlyRemovesAClustersOwnStateDir(t *testing.T) {
	for _, c := range []struct {
		name, dir string
		ok        bool
	}{
		{"CLUS1", "/s/clusters/CLUS1", true},
		{"CLUS1", "/s/clusters/CLUS1/", true},
		{"", "/s/clusters", false},
		{"", "/s/clusters/", false},
		{"CLUS1", "/s/clusters", false},
		{"CLUS1", "/s/other/CLUS1", false},
		{"CLUS1", "/s/clusters/CLUS2", false},
		{"..", "/s/clusters/..", false},
		{"a/b", "/s/clusters/a/b", false},
	} {
		if err := checkStateDir(c.name, c.dir); (err == nil) != c.ok {
			t.Errorf("checkStateDir(%q, %q) = %v", c.name, c.dir, err)
		}
	}
	fp := fakeprovider.New()
	fp.Add(provider.Info{Name: "nogroup"})
	root := t.TempDir()
	saveRecord(t, root, record{Name: "OTHER"})
	if _, err := destroy(t.Context(), fp, "", ClustersDir(root), nil); err == nil {
		t.Error("destroy with no cluster name succeeded")
	}
	if len(fp.Calls) != 0 || !exists(t, filepath.Join(ClustersDir(root), "OTHER", "cluster.json")) {
		t.Errorf("destroy with no name deleted something: %v", fp.Calls)
	}
}

func TestCheckReusableSaysWhy(t *testing.T) {
	ready := record{Provider: "fake", Owner: deadPID, Ready: true}
	kept := ready
	kept.Kept = &KeptMark{Reason: "BCMTEST_SKIP_TEARDOWN"}
	persistent := ready
	persistent.Persistent = true
	for _, c := range []struct {
		name string
		rec  *record
		vms  bool
		want string // "" = reusable
	}{
		{"NONE", nil, false, "reusing NONE: not found: no VMs of it on fake and no record in "},
		{"NOREC", nil, true, "reusing NOREC: its VMs (NOREC-00) have no record in "},
		{"KEPT", &kept, true, ""},
		{"UP", &persistent, true, ""},
		{"GONE", &kept, false, "none of its VMs exist on fake"},
		{"DEAD", &ready, true, "it was not kept: its run (process 999999999) ended"},
		{"HALF", &record{Provider: "fake", Owner: deadPID, Kept: kept.Kept}, true, "it never finished coming up (kept: BCMTEST_SKIP_TEARDOWN)"},
		{"BUSY", &record{Provider: "fake", Owner: os.Getppid(), Ready: true, Kept: kept.Kept}, true, fmt.Sprintf("its owner, process %d", os.Getppid())},
		{"ELSE", &record{Provider: "qemu", Owner: deadPID, Ready: true, Kept: kept.Kept}, true, "it runs on qemu, not fake"},
	} {
		dir := t.TempDir()
		fp := fakeprovider.New()
		if c.vms {
			fp.Add(provider.Info{Name: c.name + "-00", Group: c.name})
		}
		if c.rec != nil {
			r := *c.rec
			r.Name = c.name
			saveRecord(t, dir, r)
		}
		err := checkReusable(t.Context(), fp, dir, c.name)
		var re *ReuseError
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (!errors.As(err, &re) || re.Cluster != c.name || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: want a ReuseError containing %q, got %v", c.name, c.want, err)
		}
	}
	// Unreadable record.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ClustersDir(dir), "BAD"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ClustersDir(dir), "BAD", "cluster.json"), []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkReusable(t.Context(), fakeprovider.New(), dir, "BAD"); err == nil || !strings.Contains(err.Error(), "its record is unusable: reading ") {
		t.Errorf("unreadable record: %v", err)
	}
}
