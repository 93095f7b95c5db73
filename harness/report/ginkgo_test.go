package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
)

func TestSpecsFromGinkgo(t *testing.T) {
	it := func(text string, state types.SpecState, msg string) types.SpecReport {
		r := types.SpecReport{
			ContainerHierarchyTexts:  []string{"Tor"},
			ContainerHierarchyLabels: [][]string{{"tor"}},
			LeafNodeType:             types.NodeTypeIt,
			LeafNodeText:             text,
			LeafNodeLabels:           []string{"nightly", "tor"},
			State:                    state,
			RunTime:                  1500 * time.Millisecond,
		}
		if msg != "" {
			r.Failure = types.Failure{Message: msg, Location: types.CodeLocation{FileName: "/s/tor_test.go", LineNumber: 61}}
		}
		return r
	}
	rep := types.Report{SpecReports: types.SpecReports{
		{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStateFailed, Failure: types.Failure{
			Message: "cluster did not come up", Location: types.CodeLocation{FileName: "/s/suite_test.go", LineNumber: 40}}},
		{LeafNodeType: types.NodeTypeReportAfterSuite, State: types.SpecStatePassed},
		it("runs tor", types.SpecStatePassed, ""),
		it("answers PROTOCOLINFO", types.SpecStateFailed, "515 Authentication failed"),
		it("stays offline", types.SpecStateTimedout, "A node timeout occurred"),
		it("has an onion", types.SpecStatePending, ""),
		{LeafNodeType: types.NodeTypeAfterSuite, State: types.SpecStatePanicked, Failure: types.Failure{Message: "nil map"}},
	}}
	want := []SpecResult{
		{Name: "Tor runs tor", Labels: []string{"tor", "nightly"}, State: StatePassed, Duration: 1500 * time.Millisecond},
		{Name: "Tor answers PROTOCOLINFO", Labels: []string{"tor", "nightly"}, State: StateFailed, Duration: 1500 * time.Millisecond,
			Failure: "515 Authentication failed\n/s/tor_test.go:61"},
		{Name: "Tor stays offline", Labels: []string{"tor", "nightly"}, State: StateFailed, Duration: 1500 * time.Millisecond,
			Failure: "timedout: A node timeout occurred\n/s/tor_test.go:61"},
		{Name: "Tor has an onion", Labels: []string{"tor", "nightly"}, State: StateSkipped, Duration: 1500 * time.Millisecond},
	}
	wantSuite := "BeforeSuite failed: cluster did not come up\n/s/suite_test.go:40\n\nAfterSuite panicked: nil map"
	got, suite := SpecsFromGinkgo(rep)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SpecsFromGinkgo:\n got %+v\nwant %+v", got, want)
	}
	if suite != wantSuite {
		t.Errorf("suite failure = %q, want %q", suite, wantSuite)
	}

	// The file -ginkgo.json-report writes is a JSON array of reports.
	b, err := json.Marshal([]types.Report{rep})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, suite, err = ReadGinkgoReport(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || suite != wantSuite {
		t.Errorf("ReadGinkgoReport:\n got %+v, %q\nwant %+v, %q", got, suite, want, wantSuite)
	}
}
