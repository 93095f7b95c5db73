package ci

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

// suiteEnv is what each suite needs set before it lists its specs.
var suiteEnv = map[string]string{
	"e2e":         "BCMTEST_E2E=1",
	"integration": "BCMTEST_INTEGRATION=1",
	"faults":      "BCMTEST_FAULTS=1",
}

// target is one line of `make targets`: a make target, the suite it runs
// and its Ginkgo label filter ("" runs every spec).
type target struct{ name, suite, filter string }

func makeTargets(t *testing.T) []target {
	t.Helper()
	out, err := exec.Command("make", "-s", "-C", "..", "targets").Output()
	if err != nil {
		t.Fatalf("make targets: %v", err)
	}
	var ts []target
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Fatalf("make targets: %q: want TARGET<TAB>SUITE<TAB>FILTER", line)
		}
		ts = append(ts, target{f[0], f[1], f[2]})
	}
	return ts
}

// suiteSpecs lists a suite's specs with their labels, from a Ginkgo dry run
// (no VM, no BeforeSuite).
func suiteSpecs(t *testing.T, suite string) []types.SpecReport {
	t.Helper()
	report := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command("go", "test", "-count=1", "./suites/"+suite, "-ginkgo.dry-run", "-ginkgo.json-report="+report)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), suiteEnv[suite])
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("listing the %s specs: %v\n%s", suite, err, out)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var reports []types.Report
	if err := json.Unmarshal(b, &reports); err != nil {
		t.Fatalf("%s: %v", report, err)
	}
	var specs []types.SpecReport
	for _, r := range reports {
		for _, s := range r.SpecReports {
			if s.LeafNodeType == types.NodeTypeIt {
				specs = append(specs, s)
			}
		}
	}
	return specs
}

// covered reports whether some target runs a spec with these labels.
func covered(t *testing.T, ts []target, suite string, labels []string) []string {
	t.Helper()
	var by []string
	for _, tg := range ts {
		if tg.suite != suite {
			continue
		}
		if tg.filter == "" {
			by = append(by, tg.name)
			continue
		}
		f, err := types.ParseLabelFilter(tg.filter)
		if err != nil {
			t.Fatalf("make %s: label filter %q: %v", tg.name, tg.filter, err)
		}
		if f(labels) {
			by = append(by, tg.name)
		}
	}
	return by
}

func TestCoveredFindsTheTargetsAFilterSelects(t *testing.T) {
	ts := []target{{"test", "integration", "ci"}, {"rest", "integration", "!ci"}, {"e2e", "e2e", "smoke"}}
	if got := covered(t, ts, "integration", []string{"snapshot", "ci"}); len(got) != 1 || got[0] != "test" {
		t.Errorf("a ci spec: got %v, want [test]", got)
	}
	if got := covered(t, ts, "integration", []string{"interrupt"}); len(got) != 1 || got[0] != "rest" {
		t.Errorf("a spec without ci: got %v, want [rest]", got)
	}
	if got := covered(t, ts, "e2e", []string{"nightly", "zfs"}); len(got) != 0 {
		t.Errorf("a nightly e2e spec with only a smoke target: got %v, want none", got)
	}
}

// Every spec runs somewhere: CI runs a subset, so each spec left out of it
// must be picked up by another make target's label filter.
func TestEverySpecIsRunByAMakeTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the three suites for a dry run")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("needs make")
	}
	ts := makeTargets(t)
	for _, suite := range []string{"e2e", "integration", "faults"} {
		specs := suiteSpecs(t, suite)
		if len(specs) == 0 {
			t.Errorf("the %s suite lists no spec", suite)
		}
		for _, s := range specs {
			if by := covered(t, ts, suite, s.Labels()); len(by) == 0 {
				t.Errorf("%s spec %q (labels %v) is run by no make target", suite, s.FullText(), s.Labels())
			}
		}
		t.Logf("%s: %d specs, each run by a make target", suite, len(specs))
	}
	if !strings.Contains(fileText(t, "../.ci/run"), "make test") {
		t.Error(".ci/run no longer runs make test")
	}
}

func fileText(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
