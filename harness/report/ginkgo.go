package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/onsi/ginkgo/v2/types"

	"github.com/BitcoinCacheMachine/bcmtest/harness/heartbeat"
	"github.com/BitcoinCacheMachine/bcmtest/harness/kernelcheck"
)

// SpecsFromGinkgo converts Ginkgo suite reports (what -ginkgo.json-report
// writes) into spec results, so a matrix runner need not map Ginkgo's
// states itself. Every It becomes a SpecResult: passed stays passed, any of
// Ginkgo's failure states (failed, timedout, panicked, ...) becomes
// StateFailed with the original state kept at the start of the failure
// text, and anything else (skipped, pending) StateSkipped.
//
// A failed suite-level node (BeforeSuite, AfterSuite, DeferCleanup, ...) is
// not a spec: it is the run failing around the specs, typically the cluster
// not coming up. Those failures come back as suiteFailure, one paragraph
// each, for Run.Error.
func SpecsFromGinkgo(reports ...types.Report) (specs []SpecResult, suiteFailure string) {
	var suite []string
	for _, rep := range reports {
		for _, sp := range rep.SpecReports {
			if sp.LeafNodeType != types.NodeTypeIt {
				if sp.Failed() {
					suite = append(suite, sp.LeafNodeType.String()+" "+failureText(sp))
				}
				continue
			}
			r := SpecResult{Name: sp.FullText(), Labels: sp.Labels(), Duration: sp.RunTime, State: StateSkipped}
			if len(r.Labels) == 0 {
				r.Labels = nil
			}
			switch {
			case sp.State == types.SpecStatePassed:
				r.State = StatePassed
			case sp.Failed():
				r.State, r.Failure = StateFailed, failureText(sp)
				if sp.State == types.SpecStateFailed {
					r.Failure = strings.TrimPrefix(r.Failure, "failed: ")
				}
			}
			specs = append(specs, r)
		}
	}
	return specs, strings.Join(suite, "\n\n")
}

// failureText is "<state>: <message>" plus the failure's location.
func failureText(sp types.SpecReport) string {
	s := sp.State.String() + ": " + sp.Failure.Message
	if loc := sp.Failure.Location; loc.FileName != "" {
		s += "\n" + loc.String()
	}
	return s
}

// ReadGinkgoReport reads a file written by -ginkgo.json-report and
// converts it with SpecsFromGinkgo.
func ReadGinkgoReport(path string) (specs []SpecResult, suiteFailure string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	var reports []types.Report
	if err := json.Unmarshal(b, &reports); err != nil {
		return nil, "", fmt.Errorf("reading ginkgo report %s: %w", path, err)
	}
	specs, suiteFailure = SpecsFromGinkgo(reports...)
	return specs, suiteFailure, nil
}

// ReadTeardownFiles adds to r what the suite's teardown left in dir: the
// kernel check's findings and the heartbeat record. A missing file is no
// error (a run that never reached teardown, or an older suite).
func ReadTeardownFiles(r *Run, dir string) error {
	var kr kernelcheck.Result
	if err := readIfThere(filepath.Join(dir, KernelFindingsFile), &kr); err != nil {
		return err
	}
	r.Kernel = kr.Findings
	var hb heartbeat.Record
	if err := readIfThere(filepath.Join(dir, HeartbeatsFile), &hb); err != nil {
		return err
	}
	r.Heartbeats = hb.Members
	return nil
}

func readIfThere(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}
