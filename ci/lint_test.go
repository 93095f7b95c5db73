// Package ci holds the GitHub Actions workflows in ci/workflows and the tests
// that keep them valid: every file is checked by actionlint (used as a Go
// library) and by structural assertions on the parsed YAML.
package ci

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"
)

const (
	workflowDir = "workflows"
	// exampleDir holds workflows for other repositories (a consumer of the
	// action); they are linted like ours.
	exampleDir = "examples"
	// lintConfig is passed to the linter explicitly: custom runner labels and
	// the repository variables the workflows may read.
	lintConfig = "actionlint.yaml"
	// shellcheckEnv opts into actionlint's shellcheck rule: "1" finds
	// shellcheck on PATH (and fails when it is missing), any other non-empty
	// value is the executable to use. Unset, shellcheck and pyflakes are off so
	// the result does not depend on what happens to be installed.
	shellcheckEnv = "BCMTEST_SHELLCHECK"
)

// workflowFiles lists ci/workflows/*.yml and *.yaml and the examples;
// there must be some.
func workflowFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.yml", "*.yaml", "../" + exampleDir + "/*.yml"} {
		m, err := filepath.Glob(filepath.Join(workflowDir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatalf("no workflow files in %s", workflowDir)
	}
	return files
}

// shellcheck returns the shellcheck executable to give actionlint, or "".
func shellcheck(t *testing.T) string {
	t.Helper()
	v := os.Getenv(shellcheckEnv)
	switch v {
	case "":
		t.Logf("shellcheck rule off (set %s=1 to enable it)", shellcheckEnv)
		return ""
	case "1", "true", "yes":
		p, err := exec.LookPath("shellcheck")
		if err != nil {
			t.Fatalf("%s=%s but shellcheck is not on PATH: %v", shellcheckEnv, v, err)
		}
		t.Logf("shellcheck rule on: %s", p)
		return p
	default:
		t.Logf("shellcheck rule on: %s", v)
		return v
	}
}

// lint runs actionlint on files with the project's options. Errors in the
// workflows come back as the slice; err is for the linter failing to run.
func lint(t *testing.T, files []string) []*actionlint.Error {
	t.Helper()
	opts := &actionlint.LinterOptions{
		ConfigFile: lintConfig,
		Color:      actionlint.ColorOptionKindNever,
		Shellcheck: shellcheck(t),
		Pyflakes:   "", // no Python in these workflows; never run pyflakes
	}
	// The linter prints its own report too; the test prints the errors itself.
	l, err := actionlint.NewLinter(io.Discard, opts)
	if err != nil {
		t.Fatalf("actionlint.NewLinter: %v", err)
	}
	errs, err := l.LintFiles(files, nil)
	if err != nil {
		t.Fatalf("actionlint could not lint %v: %v", files, err)
	}
	return errs
}

// format renders one actionlint error as file:line:col: message [kind].
func format(e *actionlint.Error) string {
	return fmt.Sprintf("%s:%d:%d: %s [%s]", e.Filepath, e.Line, e.Column, e.Message, e.Kind)
}

func TestWorkflowsPassActionlint(t *testing.T) {
	files := workflowFiles(t)
	errs := lint(t, files)
	for _, e := range errs {
		t.Error(format(e))
	}
	if len(errs) == 0 {
		t.Logf("actionlint: no errors in %s", strings.Join(files, ", "))
	}
}

// brokenWorkflow has one defect per line marked "defect": the lint must find
// each of them, which proves the lint can fail.
const brokenWorkflow = `name: broken
on: push
permissions:
  contents: read
jobs:
  no-runner:
    unknown-key: 1                           # defect: unknown key
    steps:                                   # defect: no runs-on
      - run: echo "${{ github.ref ==== 1 }}" # defect: bad expression
  bad-label:
    runs-on: [self-hosted, linux, no-such-label] # defect: label not configured
    steps:
      - run: echo "${{ vars.BCMTEST_SKIP_SIZE5 }}" # defect: variable not configured
      - run: cat $HOME/x # defect for shellcheck only: unquoted variable
`

func TestActionlintReportsBrokenWorkflow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broken.yml")
	if err := os.WriteFile(path, []byte(brokenWorkflow), 0o644); err != nil {
		t.Fatal(err)
	}
	errs := lint(t, []string{path})
	if len(errs) == 0 {
		t.Fatal("actionlint reported no error for a broken workflow")
	}
	withShellcheck := os.Getenv(shellcheckEnv) != ""
	var lines []string
	for _, e := range errs {
		s := format(e)
		lines = append(lines, s)
		if e.Line < 1 || e.Column < 1 || !strings.HasSuffix(e.Filepath, "broken.yml") {
			t.Errorf("error without a usable position: %s", s)
		}
	}
	all := strings.Join(lines, "\n")
	t.Logf("actionlint on the broken workflow:\n%s", all)
	for defect, want := range map[string]*regexp.Regexp{
		"unknown key":                regexp.MustCompile(`:7:\d+: unexpected key "unknown-key"`),
		"missing runs-on":            regexp.MustCompile(`:\d+:\d+: "runs-on" section is missing`),
		"bad expression":             regexp.MustCompile(`:9:\d+: .*(unexpected|parse|expression)`),
		"unconfigured runner label":  regexp.MustCompile(`:11:\d+: label "no-such-label" is unknown`),
		"unconfigured repo variable": regexp.MustCompile(`(?i):13:\d+: undefined configuration variable "BCMTEST_SKIP_SIZE5"`),
	} {
		if !want.MatchString(all) {
			t.Errorf("no error for the %s (want %q)", defect, want)
		}
	}
	unquoted := regexp.MustCompile(`:14:\d+: shellcheck reported issue in this script: SC2086`)
	if got := unquoted.MatchString(all); got != withShellcheck {
		t.Errorf("shellcheck on: %v, but SC2086 on line 14 reported: %v", withShellcheck, got)
	}
}

// The structure the project relies on, parsed with yaml.v3.

type workflow struct {
	On          map[string]any    `yaml:"on"`
	Permissions map[string]string `yaml:"permissions"`
	Concurrency struct {
		Group            string `yaml:"group"`
		CancelInProgress bool   `yaml:"cancel-in-progress"`
	} `yaml:"concurrency"`
	Jobs map[string]job `yaml:"jobs"`
}

type job struct {
	RunsOn         any    `yaml:"runs-on"`
	If             string `yaml:"if"`
	Needs          any    `yaml:"needs"`
	TimeoutMinutes int    `yaml:"timeout-minutes"`
	Strategy       *struct {
		FailFast *bool          `yaml:"fail-fast"`
		Matrix   map[string]any `yaml:"matrix"`
	} `yaml:"strategy"`
	Steps []step `yaml:"steps"`
}

type step struct {
	Name string         `yaml:"name"`
	Uses string         `yaml:"uses"`
	Run  string         `yaml:"run"`
	If   string         `yaml:"if"`
	With map[string]any `yaml:"with"`
}

func loadWorkflow(t *testing.T, path string) workflow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var w workflow
	if err := yaml.Unmarshal(b, &w); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(w.Jobs) == 0 {
		t.Fatalf("%s: no jobs", path)
	}
	return w
}

// sortedJobs gives the job ids in a stable order for messages.
func sortedJobs(w workflow) []string {
	ids := make([]string, 0, len(w.Jobs))
	for id := range w.Jobs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

var (
	makeTest  = regexp.MustCompile(`(?m)^\s*(ci/as-root )?make test(\s|$)`)
	alwaysIf  = regexp.MustCompile(`^\s*(\$\{\{\s*)?always\(\)(\s*\}\})?\s*$`)
	actionRef = regexp.MustCompile(`^([^@]+)@(.+)$`)
	// The majors the project pins; a bump is a deliberate edit here.
	pinned = map[string]string{
		"actions/checkout":          "v4",
		"actions/setup-go":          "v5",
		"actions/upload-artifact":   "v4",
		"actions/download-artifact": "v4",
		"actions/cache/restore":     "v4",
		"actions/cache/save":        "v4",
		// The action itself, as a consumer pins it.
		"BitcoinCacheMachine/bcmtest": "v1",
	}
	// localAction is this repository's action.yml, as its own workflows use it.
	localAction = "./"
)

// TestWorkflowConventions holds for every workflow file.
func TestWorkflowConventions(t *testing.T) {
	for _, path := range workflowFiles(t) {
		w := loadWorkflow(t, path)
		if w.Permissions["contents"] != "read" || len(w.Permissions) != 1 {
			t.Errorf("%s: top-level permissions are %v, want exactly contents: read", path, w.Permissions)
		}
		for _, id := range sortedJobs(w) {
			j := w.Jobs[id]
			if j.TimeoutMinutes <= 0 {
				t.Errorf("%s: job %s has no timeout-minutes", path, id)
			}
			for i, s := range j.Steps {
				where := fmt.Sprintf("%s: job %s step %d (%s)", path, id, i+1, s.Name)
				if s.Uses == localAction && !strings.HasPrefix(path, workflowDir) {
					t.Errorf("%s: uses ./ outside this repository's workflows", where)
				}
				if s.Uses != "" && s.Uses != localAction {
					m := actionRef.FindStringSubmatch(s.Uses)
					if m == nil {
						t.Errorf("%s: %q is not pinned to a version", where, s.Uses)
					} else if want, ok := pinned[m[1]]; !ok {
						t.Errorf("%s: action %s is not one the project pins (%v)", where, m[1], pinned)
					} else if m[2] != want {
						t.Errorf("%s: %s pinned to %s, want %s", where, m[1], m[2], want)
					}
					if m != nil && m[1] == "actions/upload-artifact" && !alwaysIf.MatchString(s.If) {
						t.Errorf("%s: upload-artifact has if: %q, want always()", where, s.If)
					}
					if m != nil && m[1] == "actions/setup-go" && s.With["go-version-file"] != "go.mod" {
						t.Errorf("%s: setup-go without go-version-file: go.mod", where)
					}
				}
				if strings.Contains(s.Run, "GITHUB_STEP_SUMMARY") && !strings.Contains(s.Run, `>> "$GITHUB_STEP_SUMMARY"`) {
					t.Errorf("%s: append to the summary as >> \"$GITHUB_STEP_SUMMARY\"", where)
				}
			}
		}
	}
}

// hostedByDefault: runs-on is ubuntu-24.04 unless the repository variable
// BCMTEST_SELF_HOSTED is "true", then the self-hosted labels.
var hostedByDefault = regexp.MustCompile(`^\$\{\{ vars\.BCMTEST_SELF_HOSTED == 'true' && fromJSON\('\["self-hosted", "linux", "x64"\]'\) \|\| 'ubuntu-24\.04' \}\}$`)

func TestE2EWorkflow(t *testing.T) {
	path := filepath.Join(workflowDir, "e2e.yml")
	w := loadWorkflow(t, path)
	for _, ev := range []string{"push", "pull_request"} {
		if _, ok := w.On[ev]; !ok {
			t.Errorf("%s: not triggered on %s", path, ev)
		}
	}
	if !w.Concurrency.CancelInProgress || !strings.Contains(w.Concurrency.Group, "github.ref") {
		t.Errorf("%s: concurrency %+v does not cancel superseded runs on the same ref", path, w.Concurrency)
	}
	found := false
	for _, id := range sortedJobs(w) {
		j := w.Jobs[id]
		e2eAt, testAt, uploadAt := -1, -1, -1
		for i, s := range j.Steps {
			switch {
			case s.Uses == localAction:
				e2eAt = i
			case makeTest.MatchString(s.Run):
				testAt = i
			case strings.HasPrefix(s.Uses, "actions/upload-artifact@"):
				uploadAt = i
			}
		}
		if e2eAt < 0 {
			continue
		}
		found = true
		if rs, _ := j.RunsOn.(string); !hostedByDefault.MatchString(rs) {
			t.Errorf("%s: job %s runs on %v, want ubuntu-24.04 unless vars.BCMTEST_SELF_HOSTED is 'true'", path, id, j.RunsOn)
		}
		if !strings.Contains(j.If, "vars.BCMTEST_SELF_HOSTED != 'true' ||") || !strings.Contains(j.If, "head.repo.full_name == github.repository") {
			t.Errorf("%s: job %s if %q: fork pull requests must not reach the self-hosted runner", path, id, j.If)
		}
		if j.TimeoutMinutes != 90 {
			t.Errorf("%s: job %s timeout-minutes %d, want 90", path, id, j.TimeoutMinutes)
		}
		if testAt < e2eAt {
			t.Errorf("%s: job %s does not run make test after make e2e (the action)", path, id)
		}
		if uploadAt < testAt {
			t.Errorf("%s: job %s does not upload artifacts after the tests", path, id)
		}
	}
	if !found {
		t.Errorf("%s: no job runs make e2e through the action (uses: ./)", path)
	}
}

func TestNightlyWorkflow(t *testing.T) {
	path := filepath.Join(workflowDir, "nightly.yml")
	w := loadWorkflow(t, path)
	for _, ev := range []string{"schedule", "workflow_dispatch"} {
		if _, ok := w.On[ev]; !ok {
			t.Errorf("%s: not triggered on %s", path, ev)
		}
	}
	var matrixJob string
	for _, id := range sortedJobs(w) {
		j := w.Jobs[id]
		if j.Strategy == nil {
			continue
		}
		matrixJob = id
		if j.Strategy.FailFast == nil || *j.Strategy.FailFast {
			t.Errorf("%s: job %s must set fail-fast: false", path, id)
		}
		var sizes []int
		members, _ := j.Strategy.Matrix["members"].([]any)
		for _, m := range members {
			if n, ok := m.(int); ok {
				sizes = append(sizes, n)
			}
		}
		for _, want := range []int{0, 1, 3} {
			if !slices.Contains(sizes, want) {
				t.Errorf("%s: job %s matrix members %v lacks %d", path, id, sizes, want)
			}
		}
		if rs, _ := j.RunsOn.(string); !hostedByDefault.MatchString(rs) {
			t.Errorf("%s: job %s runs on %v, want ubuntu-24.04 unless vars.BCMTEST_SELF_HOSTED is 'true'", path, id, j.RunsOn)
		}
		ranE2E, perSize := false, false
		for _, s := range j.Steps {
			if s.Uses != localAction {
				continue
			}
			members, _ := s.With["members"].(string)
			ranE2E = strings.Contains(members, "matrix.members")
			name, _ := s.With["artifacts-name"].(string)
			perSize = strings.Contains(name, "matrix.members")
		}
		if !ranE2E {
			t.Errorf("%s: job %s does not run the action with members: ${{ matrix.members }}", path, id)
		}
		if !perSize {
			t.Errorf("%s: job %s uploads no artifact named per size (artifacts-name with matrix.members)", path, id)
		}
	}
	if matrixJob == "" {
		t.Fatalf("%s: no matrix job", path)
	}
	summarised := false
	for _, id := range sortedJobs(w) {
		j := w.Jobs[id]
		if !slices.Contains(labels(j.Needs), matrixJob) {
			continue
		}
		downloads := false
		for _, s := range j.Steps {
			downloads = downloads || strings.HasPrefix(s.Uses, "actions/download-artifact@")
		}
		if alwaysIf.MatchString(j.If) && downloads {
			summarised = true
		}
	}
	if !summarised {
		t.Errorf("%s: no job needs %s, runs always() and downloads the artifacts", path, matrixJob)
	}
}

// labels reads a string-or-list field such as runs-on or needs.
func labels(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
