package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/BitcoinCacheMachine/bcmtest/harness/heartbeat"
	"github.com/BitcoinCacheMachine/bcmtest/harness/kernelcheck"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/qemu/image"
	"github.com/BitcoinCacheMachine/bcmtest/harness/report"
)

// writeRun writes what one `make e2e` cycle leaves in its run directory:
// Ginkgo's report with one spec per state given, and optionally the
// teardown's kernel findings and heartbeats.
func writeRun(t *testing.T, dir string, states map[string]types.SpecState, kernel *kernelcheck.Result, hb *heartbeat.Record) {
	t.Helper()
	var specs types.SpecReports
	for name, st := range states {
		specs = append(specs, types.SpecReport{LeafNodeType: types.NodeTypeIt, LeafNodeText: name, State: st})
	}
	writeRecord(t, filepath.Join(dir, "report.json"), []types.Report{{SuiteDescription: "e2e", SpecReports: specs}})
	if kernel != nil {
		writeRecord(t, filepath.Join(dir, report.KernelFindingsFile), kernel)
	}
	if hb != nil {
		writeRecord(t, filepath.Join(dir, report.HeartbeatsFile), hb)
	}
}

func TestMatrixFromRunsCountsFlakesOverSoakCycles(t *testing.T) {
	t.Setenv(image.ImageEnv, "")
	dir := t.TempDir()
	pass, fail := types.SpecStatePassed, types.SpecStateFailed
	writeRun(t, filepath.Join(dir, "run-1"), map[string]types.SpecState{"tor": pass, "zfs": pass}, nil, nil)
	writeRun(t, filepath.Join(dir, "run-2"), map[string]types.SpecState{"tor": fail, "zfs": pass}, nil,
		&heartbeat.Record{Members: []heartbeat.Member{{Name: "bcm-00", LateRounds: 1, MaxLate: 2 * time.Second}}})
	writeRun(t, filepath.Join(dir, "run-10"), map[string]types.SpecState{"tor": pass, "zfs": pass},
		&kernelcheck.Result{Nodes: []string{"bcm-01"}, Findings: []kernelcheck.Finding{{Node: "bcm-01", Kind: kernelcheck.HungTask,
			Sources: []kernelcheck.Source{kernelcheck.KernelLog}, Line: "INFO: task lxd:812 blocked for more than 120 seconds."}}}, nil)
	if err := os.MkdirAll(filepath.Join(dir, "not-a-run"), 0o755); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := execute(context.Background(), []string{"matrix", "--sizes", "1", "--from-runs", dir}, &stdout, &stderr)
	if code != exitFailed {
		t.Errorf("exit %d, want %d (a run failed)\n%s", code, exitFailed, stderr.String())
	}
	if !strings.Contains(stderr.String(), "matrix: 3 run(s), 6 spec runs, 1 failed, 1 flaky") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	sum, err := report.ReadJSON(filepath.Join(dir, report.JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Runs) != 3 || sum.Runs[1].Passed || !sum.Runs[0].Passed || sum.Repeat != 3 {
		t.Fatalf("runs %+v", sum.Runs)
	}
	// run-10 is the third cycle, not the second.
	if len(sum.Runs[2].Kernel) != 1 || len(sum.Runs[1].Heartbeats) != 1 || sum.Runs[2].Attempt != 3 {
		t.Errorf("teardown files not read into the right runs: %+v", sum.Runs)
	}
	md, err := os.ReadFile(filepath.Join(dir, report.MarkdownFile))
	if err != nil {
		t.Fatal(err)
	}
	// make e2e records no image: the runs are on the default one.
	if sum.Images[0] != string(image.DefaultRelease) || sum.Runs[0].Image != string(image.DefaultRelease) {
		t.Errorf("runs without a recorded image: images %v, run image %q; want the default", sum.Images, sum.Runs[0].Image)
	}
	if !strings.Contains(string(md), "| `tor` | "+string(image.DefaultRelease)+" | 3 | 2 | 1 | 1 | 33.3% |") || !strings.Contains(string(md), "flake rate 16.7%") {
		t.Errorf("summary.md:\n%s", md)
	}
}

func TestMatrixFromRunsNeedsOneSizeAndRuns(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"matrix", "--sizes", "0,1", "--from-runs", dir}, "--from-runs needs exactly one size"},
		{[]string{"matrix", "--sizes", "1", "--from-runs", dir}, "no subdirectory with a report.json"},
		{[]string{"matrix", "--sizes", "1", "--from-runs", filepath.Join(dir, "missing")}, "no such file or directory"},
	} {
		var stdout, stderr bytes.Buffer
		if code := execute(context.Background(), c.args, &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: exit %d, %q; want %d and %q", c.args, code, stderr.String(), exitUsage, c.want)
		}
	}
}

func TestMatrixKeepGoingReachesTheSuite(t *testing.T) {
	m := matrixRun{size: 0, attempt: 1, repeat: 1, dir: t.TempDir(), suiteBin: "/bin/true", keepGoing: true}
	found := false
	for _, e := range m.command(m.dir).Env {
		found = found || e == "BCMTEST_KEEP_GOING=1"
	}
	if !found {
		t.Error("--keep-going is not passed to the suite as BCMTEST_KEEP_GOING=1")
	}
	m.keepGoing = false
	for _, e := range m.command(m.dir).Env {
		if e == "BCMTEST_KEEP_GOING=1" && os.Getenv("BCMTEST_KEEP_GOING") == "" {
			t.Error("BCMTEST_KEEP_GOING=1 set without --keep-going")
		}
	}
	b, _ := json.Marshal(trailingNumber("run-10"))
	if string(b) != "10" || trailingNumber("run") != -1 {
		t.Errorf("trailingNumber: %s, %d", b, trailingNumber("run"))
	}
}
