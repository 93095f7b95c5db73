package framework

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"

	"github.com/BitcoinCacheMachine/bcmtest/harness/kernelcheck"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider/fakeprovider"
)

// TestTeardownSuiteHelper is a Ginkgo suite run in a child process by
// TestTeardownKernelCheckFailsTheRunInJUnit: one passing spec, and a
// suite teardown that checks a node whose kernel log has a hung task, as
// the e2e suite's teardown does.
func TestTeardownSuiteHelper(t *testing.T) {
	dir := os.Getenv("BCMTEST_TEARDOWN_SUITE_DIR")
	if dir == "" {
		t.Skip("run by TestTeardownKernelCheckFailsTheRunInJUnit")
	}
	fake := fakeprovider.New()
	fake.Add(provider.Info{Name: "bcm-01"})
	fake.ExecFunc = func(name string, argv []string) provider.ExecResult {
		return provider.ExecResult{Stdout: []byte("[  485.220101] bcm-01 kernel: INFO: task jbd2/vda1-8:241 blocked for more than 120 seconds.\n")}
	}
	BeforeSuite(func() {
		DeferCleanup(func(ctx SpecContext) {
			CheckKernelsAtTeardown(ctx, TeardownKernelCheckInput{
				KernelHealthInput: KernelHealthInput{Provider: fake, Nodes: []string{"bcm-01"}},
				Dir:               dir, OnFindings: func() { os.WriteFile(filepath.Join(dir, "on-findings"), nil, 0o600) }})
		}, NodeTimeout(time.Minute))
	})
	It("passes", func() {})
	RunSpecs(t, "teardown", types.ReporterConfig{JUnitReport: filepath.Join(dir, "junit.xml")})
}

func runTeardownSuite(t *testing.T, keepGoing string) (dir string, failed bool, junit reporters.JUnitTestSuites) {
	t.Helper()
	dir = t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTeardownSuiteHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "BCMTEST_TEARDOWN_SUITE_DIR="+dir, "BCMTEST_KEEP_GOING="+keepGoing)
	out, err := cmd.CombinedOutput()
	b, rerr := os.ReadFile(filepath.Join(dir, "junit.xml"))
	if rerr != nil {
		t.Fatalf("no JUnit report: %v\n%s", rerr, out)
	}
	if err := xml.Unmarshal(b, &junit); err != nil {
		t.Fatal(err)
	}
	return dir, err != nil, junit
}

// TestTeardownKernelCheckFailsTheRunInJUnit: a finding at teardown fails
// the suite, and the JUnit output has it as a failed testcase naming node,
// kind, time since boot and line; under BCMTEST_KEEP_GOING=1 the suite
// passes and the finding is a property of the teardown's testcase.
func TestTeardownKernelCheckFailsTheRunInJUnit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Ginkgo suite in a child process")
	}
	const want = "bcm-01: hung task 485.220 s after boot (kernel log): [  485.220101] INFO: task jbd2/vda1-8:241 blocked for more than 120 seconds."

	dir, failed, junit := runTeardownSuite(t, "")
	if !failed {
		t.Error("a kernel finding at teardown did not fail the run")
	}
	var cleanup *reporters.JUnitTestCase
	for i, tc := range junit.TestSuites[0].TestCases {
		if strings.Contains(tc.Name, "DeferCleanup") {
			cleanup = &junit.TestSuites[0].TestCases[i]
		}
	}
	if cleanup == nil || cleanup.Failure == nil || !strings.Contains(cleanup.Failure.Message, want) {
		t.Fatalf("JUnit has no failed teardown testcase naming the finding: %+v", junit.TestSuites[0].TestCases)
	}
	var res kernelcheck.Result
	b, err := os.ReadFile(filepath.Join(dir, KernelFindingsFile))
	if err != nil || json.Unmarshal(b, &res) != nil || len(res.Findings) != 1 {
		t.Errorf("kernel-findings.json: %v %s", err, b)
	}
	if _, err := os.Stat(filepath.Join(dir, "on-findings")); err != nil {
		t.Error("OnFindings did not run")
	}

	_, failed, junit = runTeardownSuite(t, "1")
	if failed {
		t.Error("BCMTEST_KEEP_GOING=1: the finding failed the run")
	}
	found := false
	for _, tc := range junit.TestSuites[0].TestCases {
		if tc.Failure != nil {
			t.Errorf("keep-going: failed testcase %s", tc.Name)
		}
		if tc.Properties != nil {
			for _, p := range tc.Properties.Properties {
				found = found || (p.Name == "kernel health" && strings.Contains(p.Value, "hung task 485.220 s after boot"))
			}
		}
	}
	if !found {
		t.Error("keep-going: the finding is not in the JUnit output")
	}
}
