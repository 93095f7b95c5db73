package framework

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/gruntwork-io/terratest/modules/testing"
	. "github.com/onsi/ginkgo/v2"

	"github.com/BitcoinCacheMachine/bcmtest/harness/cluster"
	"github.com/BitcoinCacheMachine/bcmtest/harness/heartbeat"
	"github.com/BitcoinCacheMachine/bcmtest/harness/kernelcheck"
	"github.com/BitcoinCacheMachine/bcmtest/harness/provider"
	"github.com/BitcoinCacheMachine/bcmtest/harness/report"
	"github.com/BitcoinCacheMachine/bcmtest/harness/wait"
)

// KernelFindingsFile is the file a teardown check writes its result to,
// beside the run's other reports; `bcmtest matrix` reads it.
const KernelFindingsFile = report.KernelFindingsFile

// KernelHealthInput names the nodes whose kernels are checked.
type KernelHealthInput struct {
	Provider provider.Provider
	Nodes    []string
}

// ExpectKernelHealthyE reads every node's serial console (where the
// provider keeps one) and kernel log and returns what it found; the error
// is a *kernelcheck.Error listing the findings (errors.As), or an error
// about the input. Sources that could not be read are in the result's
// Unread, and logged, not an error.
func ExpectKernelHealthyE(ctx context.Context, t testing.TestingT, input KernelHealthInput) (kernelcheck.Result, error) {
	if input.Provider == nil {
		return kernelcheck.Result{}, errors.New("checking kernel health: KernelHealthInput.Provider is nil")
	}
	if len(input.Nodes) == 0 {
		return kernelcheck.Result{}, errors.New("checking kernel health: KernelHealthInput.Nodes is empty")
	}
	iv, err := wait.Load()
	if err != nil {
		return kernelcheck.Result{}, fmt.Errorf("checking kernel health: %w", err)
	}
	res := kernelcheck.Check(ctx, kernelcheck.Input{Provider: input.Provider, Nodes: input.Nodes, ExecTimeout: iv.WithDefaults().DiagExec.Timeout})
	for _, u := range res.Unread {
		Logger.Logf(t, "kernel health: not read: %s", u)
	}
	return res, res.Err()
}

// ExpectKernelHealthy is ExpectKernelHealthyE that fails the test naming
// every finding (node, kind, time since boot, line).
func ExpectKernelHealthy(ctx context.Context, t testing.TestingT, input KernelHealthInput) kernelcheck.Result {
	t.Helper()
	res, err := ExpectKernelHealthyE(ctx, t, input)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// KeepGoing is BCMTEST_KEEP_GOING=1: teardown checks report what they find
// without failing the run.
func KeepGoing() bool {
	v, _ := strconv.ParseBool(os.Getenv("BCMTEST_KEEP_GOING"))
	return v
}

// TeardownKernelCheckInput is a teardown's kernel check.
type TeardownKernelCheckInput struct {
	KernelHealthInput
	// Dir receives kernel-findings.json; "" writes no file.
	Dir string
	// OnFindings, if set, runs when there are findings, before the node
	// fails: a suite marks its run failed there (diagnostics, keeping).
	OnFindings func()
}

// CheckKernelsAtTeardown is the check every suite runs in its teardown,
// before its nodes are deleted: the result goes into the report (entry
// "kernel health", which the JUnit output carries as a property) and into
// Dir/kernel-findings.json, and a finding fails the running node, naming
// each one, unless BCMTEST_KEEP_GOING=1, when it is only reported.
func CheckKernelsAtTeardown(ctx context.Context, input TeardownKernelCheckInput) {
	GinkgoHelper()
	res, err := ExpectKernelHealthyE(ctx, GinkgoT(), input.KernelHealthInput)
	var kerr *kernelcheck.Error
	if err != nil && !errors.As(err, &kerr) {
		Fail(err.Error())
	}
	AddReportEntry("kernel health", res.Summary())
	if input.Dir != "" {
		if werr := writeKernelFindings(input.Dir, res); werr != nil {
			GinkgoWriter.Printf("kernel health: %v\n", werr)
		}
	}
	if kerr == nil {
		GinkgoWriter.Println(res.Summary())
		return
	}
	if input.OnFindings != nil {
		input.OnFindings()
	}
	if KeepGoing() {
		GinkgoWriter.Printf("%s\n(BCMTEST_KEEP_GOING=1: reported, not failed)\n", res.Summary())
		return
	}
	Fail(res.Summary())
}

// writeKernelFindings leaves the result beside the run's reports. Kernel
// lines are diagnostics: not world-readable.
func writeKernelFindings(dir string, res kernelcheck.Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, KernelFindingsFile), b, 0o600)
}

// HeartbeatsFile is where a teardown leaves the LXD heartbeat record;
// `bcmtest matrix` reads it.
const HeartbeatsFile = report.HeartbeatsFile

// RecordHeartbeatsInput is a cluster whose members' LXD logs are read.
type RecordHeartbeatsInput struct {
	Cluster *cluster.Cluster
	// Dir receives heartbeats.json; "" writes no file.
	Dir string
}

// RecordHeartbeats reads how late LXD's heartbeats were during the run
// from every member's LXD log (see package heartbeat for what the logs can
// tell) and puts it into the report (entry "heartbeats") and
// Dir/heartbeats.json. It is data for the next stall, never a failure.
func RecordHeartbeats(ctx context.Context, input RecordHeartbeatsInput) heartbeat.Record {
	GinkgoHelper()
	var nodes []heartbeat.Node
	for _, m := range input.Cluster.Members() {
		nodes = append(nodes, heartbeat.Node{Name: m.Name, Address: m.Info.PrivateIP})
	}
	rec := heartbeat.Collect(ctx, input.Cluster.Provider(), nodes, wait.LoadOrDefault().DiagExec.Timeout)
	AddReportEntry("heartbeats", rec.Summary())
	GinkgoWriter.Println(rec.Summary())
	if input.Dir != "" {
		b, err := json.MarshalIndent(rec, "", "  ")
		if err == nil {
			err = os.WriteFile(filepath.Join(input.Dir, HeartbeatsFile), b, 0o600)
		}
		if err != nil {
			GinkgoWriter.Printf("heartbeats: writing %s: %v\n", HeartbeatsFile, err)
		}
	}
	return rec
}
