package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

// TestMain lets the test binary stand in for a suite: with
// BCMTEST_TEST_HELPER set it acts as that helper instead of running tests.
func TestMain(m *testing.M) {
	if role := os.Getenv("BCMTEST_TEST_HELPER"); role != "" {
		os.Exit(helperMain(role, os.Getenv("BCMTEST_TEST_HELPER_DIR")))
	}
	os.Exit(m.Run())
}

// helperMain is a fake suite. "leader" starts a "member" child (as a suite
// starts helpers) and both wait for SIGINT, recording that it arrived;
// "deaf" ignores SIGINT, as a hung suite would.
func helperMain(role, dir string) int {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	mark := func(name string) { os.WriteFile(filepath.Join(dir, name), nil, 0o644) }
	switch role {
	case "deaf":
		mark("deaf.ready")
		time.Sleep(time.Minute)
		return 0
	case "empty":
		// A suite whose label filter matched nothing: Ginkgo writes a
		// report in which every spec was skipped, and exits 0.
		return writeEmptyReport(os.Args[1:])
	case "member":
		mark("member.ready")
		<-sig
		mark("member.sigint")
		return 0
	case "leader":
		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), "BCMTEST_TEST_HELPER=member")
		if err := child.Start(); err != nil {
			return 3
		}
		mark("leader.ready")
		<-sig
		mark("leader.sigint")
		// Tear down: wait for the member, as a suite waits for its cleanup.
		if err := child.Wait(); err != nil {
			return 4
		}
		return 0
	}
	return 2
}

func helperCommand(role, dir string) *exec.Cmd {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "BCMTEST_TEST_HELPER="+role, "BCMTEST_TEST_HELPER_DIR="+dir)
	return cmd
}

func waitForFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range names {
		for {
			if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never appeared", n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func TestRunInGroupSendsSIGINTToTheWholeSuiteAndWaits(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runInGroup(ctx, helperCommand("leader", dir), time.Minute) }()
	waitForFiles(t, dir, "leader.ready", "member.ready")
	cancel() // what SIGINT or SIGTERM to bcmtest does
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the suite did not tear down cleanly: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("runInGroup did not return after the suite ended")
	}
	for _, f := range []string{"leader.sigint", "member.sigint"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("SIGINT did not reach the %s: %v", f[:len(f)-len(".sigint")], err)
		}
	}
}

func TestRunInGroupKillsASuiteThatIgnoresSIGINT(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := helperCommand("deaf", dir)
	done := make(chan error, 1)
	go func() { done <- runInGroup(ctx, cmd, 300*time.Millisecond) }()
	waitForFiles(t, dir, "deaf.ready")
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a suite killed after the grace period counted as a clean end")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("runInGroup waited past the grace period")
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the suite ended with %v, want SIGKILL", cmd.ProcessState)
	}
}

func TestMatrixRunsTheSuiteWithAbsolutePaths(t *testing.T) {
	repo := t.TempDir()
	t.Chdir(repo)
	if err := os.MkdirAll(filepath.Join("suites", "e2e"), 0o755); err != nil {
		t.Fatal(err)
	}
	ci, err := absPath("--cloud-init", "my-cloud-init.yml")
	if err != nil {
		t.Fatal(err)
	}
	suites, err := absPath("--suites", "./suites/e2e")
	if err != nil {
		t.Fatal(err)
	}
	if ci != filepath.Join(repo, "my-cloud-init.yml") || suites != filepath.Join(repo, "suites", "e2e") {
		t.Fatalf("cloud-init %s, suites %s", ci, suites)
	}
	if p, _ := absPath("--cloud-init", ""); p != "" {
		t.Errorf("no --cloud-init became %q; the suite would take it for a file", p)
	}
	m := matrixRun{size: 1, attempt: 1, repeat: 1, dir: filepath.Join(repo, "artifacts"), provider: "qemu",
		suiteBin: filepath.Join(repo, "artifacts", "e2e.test"), suiteDir: suites, cloudInit: ci}
	cmd := m.command(filepath.Join(m.dir, m.id()))
	if cmd.Dir != suites || cmd.Path != m.suiteBin {
		t.Errorf("runs %s in %s", cmd.Path, cmd.Dir)
	}
	for _, want := range []string{"BCMTEST_CLOUD_INIT=" + ci, "BCMTEST_MEMBERS=1", "BCMTEST_PROVIDER=qemu", "BCMTEST_ARTIFACTS=" + m.dir, "BCMTEST_RUN_ID=size-1"} {
		if !slices.Contains(cmd.Env, want) {
			t.Errorf("the suite's environment lacks %s", want)
		}
	}
	for _, a := range cmd.Args[1:] {
		if v, ok := cutFlagValue(a); ok && !filepath.IsAbs(v) {
			t.Errorf("argument %s is relative", a)
		}
	}
}

// cutFlagValue returns the path of a report flag (-ginkgo.json-report=P).
func cutFlagValue(arg string) (string, bool) {
	for _, f := range []string{"-ginkgo.json-report=", "-ginkgo.junit-report="} {
		if len(arg) > len(f) && arg[:len(f)] == f {
			return arg[len(f):], true
		}
	}
	return "", false
}

// writeEmptyReport writes, to the -ginkgo.json-report path among args, a
// report whose only spec was skipped by the label filter.
func writeEmptyReport(args []string) int {
	for _, a := range args {
		if path, ok := strings.CutPrefix(a, "-ginkgo.json-report="); ok {
			rep := []types.Report{{SuiteDescription: "fake", SuiteSucceeded: true, SpecReports: types.SpecReports{
				{LeafNodeType: types.NodeTypeIt, LeafNodeText: "runs tor", State: types.SpecStateSkipped},
			}}}
			b, _ := json.Marshal(rep)
			if os.WriteFile(path, b, 0o644) != nil {
				return 5
			}
			return 0
		}
	}
	return 6
}

func TestMatrixSizeWhereNoSpecRanFails(t *testing.T) {
	t.Setenv("BCMTEST_TEST_HELPER", "empty")
	dir := t.TempDir()
	m := matrixRun{size: 1, attempt: 1, repeat: 1, dir: dir, labels: "smok", provider: "qemu",
		suiteBin: os.Args[0], suiteDir: dir}
	r := runSize(context.Background(), m, io.Discard)
	if r.Passed {
		t.Fatalf("a run in which no spec ran passed: %+v", r)
	}
	if !strings.Contains(r.Error, "matched no spec") || !strings.Contains(r.Error, `"smok"`) {
		t.Errorf("the run's error does not say the filter matched nothing: %q", r.Error)
	}
}
