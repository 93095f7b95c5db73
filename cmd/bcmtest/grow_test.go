package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/leaks"
)

// keptCluster writes what `bcmtest up NAME` leaves for a kept cluster of
// nodes: its record (persistent, ready, its owner gone), its pinned
// certificate, and a stopped qemu VM per node.
func keptCluster(t *testing.T, stateDir, name string, nodes ...string) {
	t.Helper()
	writeClusterRecord(t, stateDir, name, deadOwner, nodes...)
	if err := os.WriteFile(filepath.Join(cluster.ClustersDir(stateDir), name, "cluster.crt"), []byte("not used before the refusal\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		writeQEMURecord(t, stateDir, n, name, "10.0.0."+string(rune('1'+i)), deadOwner)
	}
}

// deadOwner is above any pid_max: the run that made the cluster has ended.
const deadOwner = 999999999

// TestGrowShrinkRefuseBadMembers: the refusals that need a kept cluster to
// judge by (an unknown member, the last database member) exit 2 naming the
// field and the rule, before any VM starts or is deleted and before LXD is
// asked anything (the recorded nodes are stopped VMs with no LXD at all).
func TestGrowShrinkRefuseBadMembers(t *testing.T) {
	launched := refuseLaunches(t)
	rows := []badInput{
		{name: "shrink an unknown member", args: []string{"shrink", "CLUS1", "CLUS1-05"},
			setup: func(t *testing.T, d string) { keptCluster(t, d, "CLUS1", "CLUS1-00", "CLUS1-01") },
			code:  exitUsage, field: "member CLUS1-05", rule: "not a member of CLUS1 (members: CLUS1-00, CLUS1-01)"},
		{name: "shrink the last voter", args: []string{"shrink", "SOLO", "SOLO-00"},
			setup: func(t *testing.T, d string) { keptCluster(t, d, "SOLO", "SOLO-00") },
			code:  exitUsage, field: "member SOLO-00", rule: "is the last database member and has no replacement"},
		// A trixie cluster is shrunk on its own image, without --image.
		{name: "shrink an unknown member of a trixie cluster", args: []string{"shrink", "NEWER", "NEWER-05"},
			setup: func(t *testing.T, d string) {
				keptCluster(t, d, "NEWER", "NEWER-00", "NEWER-01")
				rec := filepath.Join(cluster.ClustersDir(d), "NEWER", "cluster.json")
				b, _ := os.ReadFile(rec)
				os.WriteFile(rec, bytes.Replace(b, []byte(`"persistent": true`), []byte(`"persistent": true, "image": "trixie"`), 1), 0o600)
			},
			code: exitUsage, field: "member NEWER-05", rule: "not a member of NEWER (members: NEWER-00, NEWER-01)"},
		{name: "grow a cluster whose run is still going", args: []string{"grow", "BUSY"},
			setup: func(t *testing.T, d string) {
				keptCluster(t, d, "BUSY", "BUSY-00")
				writeClusterRecord(t, d, "BUSY", os.Getpid(), "BUSY-00")
				rec := filepath.Join(cluster.ClustersDir(d), "BUSY", "cluster.json")
				b, _ := os.ReadFile(rec)
				os.WriteFile(rec, bytes.Replace(b, []byte(`"persistent": true`), []byte(`"persistent": false`), 1), 0o600)
			},
			code: exitUsage, field: "NAME", rule: "it was not kept"},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			stateDir, cacheDir := t.TempDir(), t.TempDir()
			t.Setenv("BCMTEST_STATE_DIR", stateDir)
			t.Setenv("BCMTEST_CACHE_DIR", cacheDir)
			t.Setenv("BCMTEST_PROVIDER", "qemu")
			r.setup(t, stateDir)
			vmsBefore := leaks.Files(filepath.Join(stateDir, "qemu", "vms"), 1, "*")
			var stdout, stderr bytes.Buffer
			code := execute(context.Background(), r.args, &stdout, &stderr)
			msg := stderr.String()
			expectRefusal(t, r, code, msg)
			if left := leaks.Processes(stateDir); len(left) > 0 {
				t.Errorf("processes started: %v", left)
			}
			if after := leaks.Files(filepath.Join(stateDir, "qemu", "vms"), 1, "*"); !slices.Equal(after, vmsBefore) {
				t.Errorf("VM directories %v became %v", vmsBefore, after)
			}
		})
	}
	if l := launched(); len(l) > 0 {
		t.Errorf("rows asked a provider to launch VMs: %v", l)
	}
}

// TestGrowTimingsLeaveOutTheBootstrap: a Grow has no bootstrap, so its
// summary does not show one.
func TestGrowTimingsLeaveOutTheBootstrap(t *testing.T) {
	got := growTimings(cluster.Timings{Launch: 146e9, Joins: map[string]time.Duration{"C-03": 50e9, "C-02": 47e9}, Formed: 244e9, Ready: 2e9, Total: 247e9})
	want := "launch+cloud-init 2m26s, joins [C-02=47s C-03=50s], formed @4m4s, ready 2s, total 4m7s"
	if got != want {
		t.Errorf("growTimings = %q, want %q", got, want)
	}
}
