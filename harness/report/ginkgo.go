package report

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/onsi/ginkgo/v2/types"
)

// SpecsFromGinkgo converts Ginkgo suite reports (what -ginkgo.json-report
// writes) into spec results, so the matrix runner need not know Ginkgo's
// types. Every It is kept; suite-level nodes (BeforeSuite, DeferCleanup,
// ...) only when they failed, because that failure is why the Its did not
// run. Ginkgo's failure states (timedout, panicked, ...) become
// StateFailed and pending becomes StateSkipped, with the original state kept
// at the start of the failure text.
func SpecsFromGinkgo(reports ...types.Report) []SpecResult {
	var out []SpecResult
	for _, rep := range reports {
		for _, sp := range rep.SpecReports {
			isIt := sp.LeafNodeType == types.NodeTypeIt
			if !isIt && !sp.Failed() {
				continue
			}
			r := SpecResult{Name: sp.FullText(), Labels: sp.Labels(), Duration: sp.RunTime, State: StateSkipped}
			if !isIt {
				r.Name = "[" + sp.LeafNodeType.String() + "]"
				if t := sp.FullText(); t != "" {
					r.Name += " " + t
				}
			}
			if len(r.Labels) == 0 {
				r.Labels = nil
			}
			switch {
			case sp.State == types.SpecStatePassed:
				r.State = StatePassed
			case sp.Failed():
				r.State = StateFailed
				r.Failure = sp.Failure.Message
				if sp.State != types.SpecStateFailed {
					r.Failure = sp.State.String() + ": " + r.Failure
				}
				if loc := sp.Failure.Location; loc.FileName != "" {
					r.Failure += "\n" + loc.String()
				}
			}
			out = append(out, r)
		}
	}
	return out
}

// ReadGinkgoReport reads a file written by -ginkgo.json-report and
// converts it with SpecsFromGinkgo.
func ReadGinkgoReport(path string) ([]SpecResult, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var reports []types.Report
	if err := json.Unmarshal(b, &reports); err != nil {
		return nil, fmt.Errorf("reading ginkgo report %s: %w", path, err)
	}
	return SpecsFromGinkgo(reports...), nil
}
